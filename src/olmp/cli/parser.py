"""The ``olmp`` parser: its commands, each built by a module of its own, and the parser
class every command uses. Light on purpose: a command's module (and torch with it, about
two seconds) is imported only when that command is run or its help asked for, so ``olmp
--help`` and a mistyped command answer at once."""

from __future__ import annotations

import argparse
import importlib
import re
from collections.abc import Collection, Sequence
from typing import Any, NamedTuple, NoReturn

from olmp.console import console
from olmp.version import __version__


class Command(NamedTuple):
    name: str
    module: str  # under olmp.cli; its add_command builds the parser and sets ``run``
    summary: str  # the line in ``olmp --help``


#: The commands, in the order ``olmp --help`` lists them. A new command is a module with
#: an ``add_command`` (taking its summary from here) plus one line.
COMMANDS = (
    Command("train", "train", "train a reference model with the default recipe"),
    Command("evaluate", "evaluate", "print val and test accuracy of a checkpoint"),
    Command("compress", "compress", "prune a trained model with OLMP"),
    Command("demo", "demo", "the main job: train and compress LeNet-300-100 on built-in mnist-5k"),
    Command(
        "export", "export", "write a run's pruned network as a small sparse file (and/or ONNX)"
    ),
    Command("inspect", "export", "show what an exported file holds"),
    Command("report", "report", "show a finished run: per-layer table, summary, plots"),
    Command("tune", "tune", "search a network's architecture and training settings"),
    Command(
        "experience",
        "experience",
        "learn from recorded searches, for olmp tune --solver expsracos",
    ),
    Command(
        "attack",
        "attack",
        "targeted black-box l-inf attacks on a checkpoint (success vs queries)",
    ),
    Command("fair", "fair", "fairness-constrained classifiers (FNNC)"),
    Command(
        "solvers", "solvers", "list the derivative-free solvers; --check runs the installed ones"
    ),
    Command("list", "listing", "list the built-in models and datasets"),
)
COMMAND_HELP = {command.name: command.summary for command in COMMANDS}

EPILOG_MAIN = """\
examples:
  olmp demo
  olmp compress --weights ref.safetensors --out runs/r1
  olmp report runs/r1
  olmp export runs/r1 --out r1.olmp.safetensors
  olmp train --model lenet-300-100 --dataset mnist-5k --out ref.safetensors
  olmp evaluate --weights ref.safetensors --json
"""


class Formatter(argparse.RawDescriptionHelpFormatter):
    pass


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (the usage is a --help away) and exit
    with status 2, like every other bad input."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # argparse takes "-1e-3", "-inf" and "-nan" for options ("expected one argument"),
        # so that --tolerance -inf was never named as the bad value it is.
        self._negative_number_matcher = re.compile(
            r"^-(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$|^-(inf|nan)$", re.IGNORECASE
        )

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        namespace, extras = super().parse_known_args(args, namespace)
        # The innermost command's parser (a command's runs first and its namespace is
        # copied up): an argument it does not take is named with its --help, not olmp's.
        if not hasattr(namespace, "command_parser"):
            namespace.command_parser = self
        return namespace, extras

    def error(self, message: str) -> NoReturn:
        console.print(
            f"[red]{self.prog}: error:[/] {message} (see {self.prog} --help)", highlight=False
        )
        raise SystemExit(2)


def command_in(argv: Sequence[str]) -> str | None:
    """The command ``argv`` runs, or None: no command, an unknown one, or olmp's own
    ``--help`` or ``--version`` before it (which list the commands). It reads the first
    word that is no option as the command: ``olmp`` itself takes no option with a value
    (one that did would need skipping here, or its value would be taken for a command)."""
    for arg in argv:
        if not arg.startswith("-"):
            return arg if arg in COMMAND_HELP else None
        if arg in ("-h", "--help", "--version"):
            return None
    return None


def build_parser(commands: Collection[str] | None = None) -> Parser:
    """The argument parser of the ``olmp`` command with every command in ``commands``
    (default: all) built by its module; the others are listed by name and summary only,
    their modules not imported."""
    parser = Parser(
        prog="olmp",
        description="Compress trained PyTorch networks by layer-wise magnitude pruning "
        "with thresholds chosen by derivative-free optimisation (OLMP).",
        epilog=EPILOG_MAIN,
        formatter_class=Formatter,
    )
    parser.add_argument("--version", action="version", version=f"olmp {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    # A module builds all its commands (export: export and inspect), at the first of them.
    modules = {c.module for c in COMMANDS if commands is None or c.name in commands}
    built = set()
    for command in COMMANDS:
        if command.module not in modules:
            subparsers.add_parser(command.name, help=command.summary)
        elif command.module not in built:
            importlib.import_module(f"olmp.cli.{command.module}").add_command(subparsers)
            built.add(command.module)
    return parser
