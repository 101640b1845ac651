"""The ``olmp`` command. Each subcommand is a thin layer over a public Python function,
declared in a module of its own here (``add_command`` builds its parser and sets ``run``);
:data:`olmp.cli.parser.COMMANDS` lists them. Only the module of the command run is
imported."""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from olmp.cli.parser import build_parser, command_in
from olmp.console import console, install_warning_printer, show_error
from olmp.errors import OlmpError, OptionError


def _kept(args: argparse.Namespace, out: Path) -> str:
    """What the interrupted command says it kept in ``out`` for ``--resume``: its command
    module declares the unit it saves as it finishes each and how to count them in a
    folder (``kept``: ``None`` when the count cannot be read)."""
    unit, count = args.kept
    instead = " instead of --force" if getattr(args, "force", False) else ""
    resume = f"run the same command with --resume{instead}"
    finished = count(out)
    if finished == 0:  # stopped in the first one: a resume starts it again, in that folder
        return f"; no {unit} had finished: {resume} to start again in {out}"
    if finished is None:
        return f"; finished {unit}s are saved in {out}: {resume}"
    saved = f"1 finished {unit} is" if finished == 1 else f"{finished} finished {unit}s are"
    return f"; {saved} saved in {out}: {resume}"


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, a batch system's time limit): the command stops as Ctrl-C stops
    it, saying what was kept and how to resume, with the exit status of that signal."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def as_typed(error: OlmpError, parser: argparse.ArgumentParser, argv: Sequence[str]) -> OlmpError:
    """``error`` naming its option as the user typed it in ``argv`` (``--eps``, where the
    Python function that found the bad value calls it ``eps``). A value the user did not
    type (read from a run's record or a checkpoint's recipe) keeps the function's name."""
    if isinstance(error, OptionError):
        for action in parser._actions:  # argparse keeps no public list of its options
            if action.option_strings and action.dest == error.option.replace(" ", "_"):
                typed = [
                    flag
                    for flag in action.option_strings
                    if any(arg == flag or arg.startswith(f"{flag}=") for arg in argv)
                ]
                if typed:
                    return error.named(typed[0], none_allowed=False)
    return error


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``olmp`` command; returns the exit status (2 for bad input; 130 after
    Ctrl-C, 143 after SIGTERM)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        name = command_in(argv)
        parser = build_parser(commands=[] if name is None else [name])
    except KeyboardInterrupt:  # Ctrl-C while the command's modules (torch) load
        console.print("olmp: interrupted", highlight=False)
        return 130
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        args.command_parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    install_warning_printer()
    # Only the main thread may set a handler (main() called from another thread keeps none).
    on_main_thread = threading.current_thread() is threading.main_thread()
    before = signal.signal(signal.SIGTERM, _terminate) if on_main_thread else None
    # Whole seconds: a file system that keeps them only must not date this run's record
    # before its start.
    started = math.floor(time.time())
    try:
        return args.run(args)
    except OlmpError as exc:
        show_error(str(as_typed(exc, args.command_parser, argv)), args.command_parser.prog)
        return 2
    except BrokenPipeError:  # the reader of stdout went away (olmp report --json | head)
        # Python would complain again when it flushes stdout at exit: point it at nothing.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as exc:  # the disk or the system, not the input: one line all the same
        show_error(str(exc), args.command_parser.prog)
        return 1
    except KeyboardInterrupt as stop:
        hint = ""
        out = getattr(args, "out", None)
        resumable = hasattr(args, "resume") and not getattr(args, "compare", None)
        # No hint when stopped before the record --resume needs was written, nor, with
        # --force, before the old run's record was replaced: a resume would continue that.
        from olmp.files import COMMAND_RECORDS  # loaded with the command already

        if getattr(args, "kept", None) and resumable and out:
            record = Path(out) / COMMAND_RECORDS[args.command][0]
            force = getattr(args, "force", False)
            if record.is_file() and (not force or record.stat().st_mtime >= started):
                hint = _kept(args, Path(out))
        stopped = "terminated" if isinstance(stop, Terminated) else "interrupted"
        console.print(f"olmp: {stopped}{hint}", highlight=False, soft_wrap=True)
        return 143 if isinstance(stop, Terminated) else 130
    finally:
        if before is not None:
            signal.signal(signal.SIGTERM, before)


def run() -> None:
    """The ``olmp`` program (and ``python -m olmp``): :func:`main`, then exit with its
    status. Once the command is done, Ctrl-C and SIGTERM are ignored: while Python shuts
    down one would kill the process (status 130 or 143, no message) after every result
    was written, and a script would take the finished command for a failed one."""
    status = main()
    for stop in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop, signal.SIG_IGN)
    sys.exit(status)


if __name__ == "__main__":
    run()
