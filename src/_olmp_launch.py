"""The ``olmp`` program's entry point, kept outside the ``olmp`` package, so that a Ctrl-C
while the command starts (importing olmp.cli and rich; PyTorch loads later, inside
:func:`olmp.cli.main`, which says the same) ends in olmp's one line, not a traceback."""

import sys


def run() -> None:
    """Import the command, then run it (:func:`olmp.cli.run`)."""
    try:
        from olmp.cli import run as run_command
    except KeyboardInterrupt:
        print("olmp: interrupted", file=sys.stderr)
        sys.exit(130)
    run_command()
