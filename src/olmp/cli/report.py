"""``olmp report``: a finished run's table, summary and plots; several runs side by side."""

from __future__ import annotations

import argparse
import json

from olmp.cli.compress import print_result
from olmp.cli.parser import COMMAND_HELP, Formatter
from olmp.compression import read_result
from olmp.console import console, print_table
from olmp.errors import OlmpError
from olmp.report import compare_runs, comparison_table, report_run


def _report(args: argparse.Namespace) -> int:
    if len(args.run_dirs) > 1:
        if args.plots is not None:
            raise OlmpError("--plots draws one run's plots: give one RUN_DIR with it")
        comparison = compare_runs(args.run_dirs)
        if args.json:
            print(json.dumps(comparison))
        else:
            print_table(comparison_table(comparison))
        return 0
    args.run_dir = args.run_dirs[0]
    if args.json and args.plots is None:  # the record for a script: no plots unless asked
        print(json.dumps(read_result(args.run_dir)))
        return 0
    result, plots = report_run(args.run_dir, args.plots, force=args.force)
    if args.json:
        print(json.dumps(result))
    else:
        print_result(result)
        options = result.get("config", {}).get("solver_options") or {}
        solver = result["solver"] + "".join(f", {k}={v}" for k, v in options.items())
        print(
            f"{solver}, seed {result['seed']}: best of {result['rounds']} rounds "
            f"is round {result['best_round']}"
            + (" (fine-tuned at the end)" if result.get("best_fine_tuned") else "")
            + (f"; rounds ended by {result['stop_reason']}" if result.get("stop_reason") else "")
            + f"; {result['evaluations']:,} candidate evaluations, "
            f"{result['wall_time_s']:.0f} s"
        )
    console.print(f"plots: {', '.join(str(p) for p in plots)}", highlight=False)
    return 0


def add_command(commands: argparse._SubParsersAction) -> None:
    """Add this module's command(s) to the ``olmp`` parser."""
    report = commands.add_parser(
        "report",
        help=COMMAND_HELP["report"],
        description="Print the per-layer table (shape, total, kept, keep %, threshold) and "
        "the summary of a finished run, and write PNG plots of compression and accuracy per "
        "round and of the per-layer keep ratios (drawn from result.json, so rewriting them "
        "loses nothing). Given several runs, print them side by side instead: ratio, val and "
        "test against each run's reference, rounds, time, the settings that differ, and the "
        "medians.",
        epilog="examples:\n  olmp report runs/demo/compression\n  olmp report runs/r1 --json\n"
        "  olmp report runs/seed-0 runs/seed-1 runs/seed-2",
        formatter_class=Formatter,
    )
    report.add_argument(
        "run_dirs", nargs="+", metavar="RUN_DIR", help="folder of a finished olmp compress"
    )
    report.add_argument(
        "--plots",
        metavar="DIR",
        help="where the PNGs go (default: RUN_DIR/report; with --json, none unless given)",
    )
    report.add_argument(
        "--force", action="store_true", help="replace the plots already in --plots DIR"
    )
    report.add_argument(
        "--json",
        action="store_true",
        help="print the run's record (several runs: their comparison) as JSON",
    )
    report.set_defaults(run=_report)
