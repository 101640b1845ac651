"""``olmp solvers``: the derivative-free solvers and what they support."""

from __future__ import annotations

import argparse
import json

from rich.markup import escape
from rich.table import Table

from olmp.cli.common import (
    count,
    fill_defaults,
    options_given,
    seed,
)
from olmp.cli.parser import COMMAND_HELP, Formatter
from olmp.console import print_table
from olmp.errors import OlmpError

#: The settings of --check's sphere and their defaults (None on the command line: not given).
CHECK_DEFAULTS = {"dim": 10, "budget": 500, "seed": 0}


def _solvers(args: argparse.Namespace) -> int:
    from olmp.solvers import check_solvers, describe_solvers

    given = options_given(args, list(CHECK_DEFAULTS))
    if given and not args.check:
        verb = "applies" if len(given) == 1 else "apply"
        raise OlmpError(f"{', '.join(given)} {verb} to --check only (add --check)")
    fill_defaults(args, CHECK_DEFAULTS)
    if args.check:
        records = check_solvers(dim=args.dim, budget=args.budget, seed=args.seed)
        failed = any(r["installed"] and r["error"] for r in records)
        if args.json:
            print(json.dumps(records, indent=2))
            return 1 if failed else 0
        table = Table(
            title=f"shifted sphere in [-5, 5]^{args.dim}, {args.budget} evaluations, "
            f"seed {args.seed}; f at the centre {records[0]['start']:.4g}"
        )
        for column in ("solver", "best f", "seconds", "note"):
            table.add_column(column)
        for r in records:
            best = "-" if r["best"] is None else f"{r['best']:.3g}"
            seconds = "-" if r["seconds"] is None else f"{r['seconds']:.2f}"
            table.add_row(r["name"], best, seconds, escape(r["error"] or ""))
        print_table(table)
        return 1 if failed else 0
    records = describe_solvers()
    if args.json:
        print(json.dumps(records, indent=2))
        return 0
    table = Table(
        title="solvers (olmp compress, tune and attack --solver NAME)",
        caption="every solver also takes popsize and sigma0 as engine options (olmp tune "
        "--solver-option; olmp compress sets them as --popsize and --search-step); "
        "the solver option max_evaluations is not a budget (olmp compress --max-evaluations "
        "and --evaluations-per-round, olmp tune --budget) but the run length a solver plans "
        "for (ncs, sracos, expsracos) or each "
        "restart's length (cobyqa, bobyqa)",
    )
    for column in ("name", "installed", "backend", "supports", "options (--solver-option)"):
        table.add_column(column)
    for r in records:
        installed = "yes" if r["installed"] else escape(f"no: {r['install']}")
        options = ", ".join(r["options"]) or "-"
        table.add_row(r["name"], installed, r["backend"], r["supports"], options)
    print_table(table)
    return 0


def add_command(commands: argparse._SubParsersAction) -> None:
    """Add this module's command(s) to the ``olmp`` parser."""
    solvers = commands.add_parser(
        "solvers",
        help=COMMAND_HELP["solvers"],
        description="List every solver that olmp compress --solver accepts: what it "
        "supports (variable kinds, candidates per ask, constraints), its backend library "
        "and licence, and whether that is installed. Optional backends install as extras, "
        "e.g. pip install 'olmp[tpe]' or 'olmp[solvers]' for all but bobyqa, whose "
        "Py-BOBYQA is GPL-3.0+ (pip install 'olmp[bobyqa]'). --check runs each installed "
        "solver on a shifted sphere, by default in [-5, 5]^{dim} with {budget} evaluations "
        "and seed {seed}, and reports the best value each reached.".format(**CHECK_DEFAULTS),
        epilog="example:\n  olmp solvers --check",
        formatter_class=Formatter,
    )
    solvers.add_argument("--check", action="store_true", help="run each installed solver")
    solvers.add_argument("--json", action="store_true", help="print a JSON list")
    for name, kind, what in (
        ("dim", count, "dimension"),
        ("budget", count, "evaluations per solver"),
        ("seed", seed, "seed"),
    ):
        solvers.add_argument(
            f"--{name}", type=kind, help=f"--check: {what} (default {CHECK_DEFAULTS[name]})"
        )
    solvers.set_defaults(run=_solvers)
