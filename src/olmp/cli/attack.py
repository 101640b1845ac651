"""``olmp attack``: targeted black-box ℓ∞ attacks on a checkpoint, and comparisons of runs."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.table import Table

from olmp.attack import METHODS, SUMMARIES, compare, run_attack
from olmp.attack.blocks import DEFAULT_SOLVER
from olmp.attack.folder import RECORDS, check_out, output_folder, read_config
from olmp.attack.methods import method_options, parse_options
from olmp.attack.run import check_settings
from olmp.cli.common import (
    add_data_and_device,
    add_resume_or_force,
    add_trust,
    count,
    fill_defaults,
    number,
    options_given,
    recorded_values,
    seed,
    typed_over_recorded,
)
from olmp.cli.parser import COMMAND_HELP, Formatter
from olmp.console import StepProgress, console, print_table
from olmp.errors import OlmpError

EPILOG = (
    """\
methods:
"""
    + "\n".join(f"  {name:13s} {text}" for name, text in SUMMARIES.items())
    + """

options (--option KEY=VALUE), with their defaults:
"""
    + "\n".join(
        f"  {name:13s} " + ", ".join(f"{k}={o.default}" for k, o in method_options(name).items())
        for name in METHODS
    )
    + """

examples:
  olmp attack --weights ref.safetensors --method square --eps 0.2 --budget 3000 --out atk/sq
  olmp attack --weights ref.safetensors --method bobyqa --solver cmaes --eps 0.2 --out atk/cma
  olmp attack --weights runs/r1/pruned.safetensors --method square --eps 0.2 --out atk/r1
  olmp attack --compare atk/sq atk/r1 --out atk/cmp
"""
)


def _targets(text: str) -> str | int:
    if text in ("all", "random"):
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be 'all', 'random' or a class number, got {text!r}"
        ) from None


def _estimate(value: float | None, interval: list[float] | None, digits: int) -> str:
    """``value [low, high]``, or ``-`` where it is undefined (``None``)."""
    if value is None:
        return "-"
    if interval is None:
        return f"{value:.{digits}f}"
    low, high = interval
    return f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def _rate(rate: dict[str, Any]) -> str:
    return _estimate(rate["success_rate"], rate["interval"], 2)


def _table(rows: list[dict[str, Any]], title: str) -> Table:
    budgets = list(rows[0]["success_at"])
    table = Table(title=title)
    for header in ("run", "compression", "pairs", *[f"success ≤{b}" for b in budgets]):
        table.add_column(header)
    table.add_column("median queries (successes)")
    for row in rows:
        ratio = row.get("compression_ratio")
        table.add_row(
            row["label"],
            "-" if ratio is None else f"{ratio:.1f}x",
            str(row["pairs"]),
            *[_rate(row["success_at"][b]) for b in budgets],
            _estimate(row["median_queries"], row["median_queries_interval"], 0),
        )
    return table


def _progress(
    total_hint: int, label: str
) -> tuple[StepProgress, Callable[[int, int, dict[str, Any]], None]]:
    display = StepProgress(label, "pair", total_hint, lines=10)

    def advance(done: int, total: int, record: dict[str, Any]) -> None:
        display.update(done, f"last {'won' if record['success'] else 'lost'}", total=total)

    return display, advance


#: A run's settings that have a default; None on the command line means not given, so
#: that --compare can refuse them like the others.
RUN_DEFAULTS = {
    "eps": 0.2,
    "budget": 3000,
    "images": 100,
    "targets": "random",
    "split": "test",
    "seed": 0,
}
#: What a resume takes from its run's config.json for the options left out, of what kind.
RECORDED = {
    "method": str,
    "options": dict,
    "eps": int | float,
    "budget": int,
    "images": int,
    "targets": str | int,
    "split": str,
    "seed": int,
}
#: Options of a run that --compare would ignore: refused with it rather than dropped.
RUN_ONLY = ("weights", "model", "dataset", "method", "solver", "option", "resume", *RUN_DEFAULTS)


def _compare(args: argparse.Namespace) -> int:
    given = options_given(args, RUN_ONLY)
    if given:
        verb = "applies" if len(given) == 1 else "apply"
        raise OlmpError(
            f"--compare reads finished runs; {', '.join(given)} only {verb} to a run: drop them"
        )
    summary = compare(args.compare, out=args.out, force=args.force)
    if args.json:
        print(json.dumps(summary, allow_nan=False))
    else:
        rows = [{**r, "label": f"{r['folder']} ({r['method']})"} for r in summary["runs"]]
        print_table(_table(rows, f"targeted success, eps {summary['eps']}"))
        shared = summary["shared_pairs"]
        if shared:
            rates = ", ".join(
                f"{r['folder']} {r['shared_success_rate']:.2f}" for r in summary["runs"]
            )
            said = (
                f"on the {shared} pairs every run attacked (each attacks the images it "
                f"classifies correctly), success: {rates}"
            )
        else:
            said = "no pair was attacked by every run: the runs attacked different images"
        console.print(said, highlight=False, soft_wrap=True)
    return 0


def _finished_pairs(out: Path) -> int | None:
    """The pairs an interrupted run has saved in ``out``: its records' whole lines (a line
    cut by the interruption is attacked again)."""
    try:
        lines = (out / RECORDS).read_bytes().split(b"\n")[:-1] if (out / RECORDS).is_file() else []
    except OSError:
        return None
    return sum(1 for line in lines if line.strip())  # blank lines hold no pair


def _attack(args: argparse.Namespace) -> int:
    if args.compare:
        return _compare(args)
    # A resume takes the settings left out from its run, not from the defaults (those of
    # its method: a resume as another method is refused as that, not for their options).
    recorded: dict[str, Any] = {}
    if args.resume and args.out is not None:
        check_out(output_folder(args.out), resume=True, force=args.force)  # said here
        path = output_folder(args.out) / "config.json"
        record = read_config(path.parent)
        recorded = recorded_values(record, path, RECORDED, required=True)
        recorded |= recorded_values(record, path, {"solver": str})  # None: the method's own
        if args.method not in (None, recorded["method"]):
            recorded = {k: v for k, v in recorded.items() if k not in ("solver", "options")}
    fill_defaults(args, {k: v for k, v in recorded.items() if k != "options"})
    fill_defaults(args, RUN_DEFAULTS)
    missing = [f"--{name}" for name in ("weights", "method", "out") if getattr(args, name) is None]
    if missing:
        raise OlmpError(
            f"olmp attack needs {', '.join(missing)} for a run (or --compare DIRS to compare runs)"
        )
    options = typed_over_recorded(
        recorded.get("options", {}),
        parse_options(args.option or []),
        method_options(args.method) if args.method in METHODS else {},
    )
    check_settings(args.method, args.eps, args.budget, args.solver, args.targets, options)
    bar, on_pair = _progress(args.images, f"{args.method} attack")
    with bar:
        result = run_attack(
            args.weights,
            method=args.method,
            eps=args.eps,
            budget=args.budget,
            images=args.images,
            targets=args.targets,
            seed=args.seed,
            out=args.out,
            resume=args.resume,
            force=args.force,
            solver=args.solver,
            options=options,
            split=args.split,
            model_name=args.model,
            dataset=args.dataset,
            device=args.device,
            data_dir=args.data_dir,
            trust_model_code=args.trust_model_code,
            on_pair=on_pair,
        )
    if args.json:
        print(json.dumps(result, allow_nan=False))
        return 0
    label = args.method + (f"/{result['solver']}" if result.get("solver") else "")
    print_table(_table([{**result, "label": label}], f"targeted success, eps {args.eps}"))
    console.print(
        f"{result['successes']}/{result['pairs']} pairs won; "
        f"{result['skipped_misclassified']} misclassified images skipped; "
        f"records, curve.csv and curve.png in {args.out}",
        highlight=False,
    )
    return 0


def add_command(commands: argparse._SubParsersAction) -> None:
    """Add this module's command(s) to the ``olmp`` parser."""
    attack = commands.add_parser(
        "attack",
        help=COMMAND_HELP["attack"],
        description="Attack a checkpoint's test images towards target classes through a "
        "black box that only returns probabilities and counts queries; report the success "
        "rate against queries. eps is in pixel units ([0, 1]).",
        epilog=EPILOG,
        formatter_class=Formatter,
    )
    # --weights, --method and --out are needed for a run but not for --compare, and a
    # --resume reads --method from the run: argparse cannot require them.
    attack.add_argument(
        "--weights",
        help="checkpoint: a reference, a run's pruned file, an export (required for a run)",
    )
    attack.add_argument("--model", help="model name (default: from the checkpoint)")
    attack.add_argument("--dataset", help="dataset name (default: from the checkpoint)")
    attack.add_argument(
        "--method", help=f"one of: {', '.join(METHODS)} (required for a run; a --resume: the run's)"
    )
    attack.add_argument(
        "--solver", help=f"engine solver of the bobyqa block attack (default: {DEFAULT_SOLVER})"
    )
    attack.add_argument(
        "--option",
        action="append",
        metavar="KEY=VALUE",
        help="an option of the method, repeatable (listed below)",
    )
    attack.add_argument(
        "--eps", type=number, help=f"l-inf bound in pixel units (default: {RUN_DEFAULTS['eps']})"
    )
    attack.add_argument(
        "--budget",
        type=int,
        help=f"queries per (image, target) (default: {RUN_DEFAULTS['budget']})",
    )
    attack.add_argument(
        "--images",
        type=count,
        help=f"correctly classified images (default: {RUN_DEFAULTS['images']})",
    )
    attack.add_argument(
        "--targets",
        type=_targets,
        help=f"all, random, or a class number (default: {RUN_DEFAULTS['targets']})",
    )
    attack.add_argument("--split", help=f"dataset split (default: {RUN_DEFAULTS['split']})")
    attack.add_argument(
        "--seed",
        type=seed,
        help=f"seed of the images, targets and attacks (default: {RUN_DEFAULTS['seed']})",
    )
    attack.add_argument(
        "--out",
        help="the run's folder (required for a run); with --compare, the folder to write "
        "compare.csv, compare.json and compare.png in",
    )
    add_resume_or_force(
        attack,
        resume="continue an interrupted --out, or a finished one with a larger --images",
        force="redo an existing attack --out (with --compare: replace its compare files)",
    )
    attack.add_argument("--json", action="store_true", help="print one JSON object")
    attack.add_argument("--compare", nargs="+", metavar="DIR", help="compare finished runs")
    add_data_and_device(attack)
    add_trust(attack)
    attack.set_defaults(run=_attack, kept=("pair", _finished_pairs))
