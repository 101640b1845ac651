"""``python -m olmp`` runs the ``olmp`` command."""

from olmp.cli import run

run()
