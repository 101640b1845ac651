"""``python -m olmp`` runs the ``olmp`` command."""

import sys

from olmp.cli import main

sys.exit(main())
