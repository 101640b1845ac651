"""``python -m olmp`` runs the ``olmp`` command, through the same entry point as the
``olmp`` program (which says a Ctrl-C while it starts in one line)."""

if __name__ == "__main__":
    from _olmp_launch import run

    run()
