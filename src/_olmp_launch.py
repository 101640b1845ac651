"""The ``olmp`` program's entry point, kept outside the ``olmp`` package: importing olmp
loads PyTorch (about two seconds), and a Ctrl-C in that time would end in Python's
traceback instead of olmp's one line."""

import sys


def run() -> None:
    """Import the command, then run it (:func:`olmp.cli.run`)."""
    try:
        from olmp.cli import run as run_command
    except KeyboardInterrupt:
        print("olmp: interrupted", file=sys.stderr)
        sys.exit(130)
    run_command()
