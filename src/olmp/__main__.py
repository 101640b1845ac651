"""``python -m olmp`` runs the ``olmp`` command, through the same entry point as the
``olmp`` program (which says a Ctrl-C while it starts in one line)."""

if __name__ == "__main__":
    try:
        from _olmp_launch import run
    except ModuleNotFoundError:  # the package copied without the launcher beside it
        from olmp.cli import run

    run()
