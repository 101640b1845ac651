"""``olmp compress``: prune a trained model with OLMP."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from torch import nn

from olmp.cli.common import (
    Formatter,
    add_solver_option,
    add_weights_options,
    check_names,
    number,
    seed,
    weights_arguments,
)
from olmp.compression import CompressConfig, RunState, compress, prepare_run_dir
from olmp.compression.selection import fitted_accuracies, run_candidates
from olmp.console import StepProgress, console, print_table, results
from olmp.data import DatasetSplits
from olmp.errors import OlmpError, OptionError
from olmp.fair.compress import fairness_constraints
from olmp.pruning.thresholds import PARAMETRISATIONS
from olmp.reference import load_weights, pick_device
from olmp.report import (
    change_line,
    layer_rich_table,
    standard_error_of_change,
    summary_line,
)
from olmp.solvers import SOLVERS, parse_solver_options

LARGE_TOLERANCE = 0.05  # tolerances above this get a note on their units


#: ``olmp compress`` options that set a :class:`CompressConfig` field: field -> flag. Errors
#: about a field name the flag, and each option's help shows the field's default.
COMPRESS_FLAGS = {
    "tolerance": "--tolerance",
    "search_tolerance": "--search-tolerance",
    "solver": "--solver",
    "solver_options": "--solver-option",
    "parametrisation": "--parametrisation",
    "popsize": "--popsize",
    "evaluations_per_round": "--evaluations-per-round",
    "max_rounds": "--rounds",
    "patience": "--patience",
    "backtrack_after": "--backtrack-after",
    "backtracks_per_best": "--backtracks-per-best",
    "backtrack_shrink": "--backtrack-shrink",
    "search_can_grow": "--search-can-grow",
    "racing_z": "--racing-z",
    "max_evaluations": "--max-evaluations",
    "max_time_s": "--time-limit",
    "adjust": "--adjust",
    "adjust_steps": "--adjust-steps",
    "augment_shift": "--augment-shift",
    "distill": "--distill",
    "final_steps": "--final-steps",
    "final_order": "--final-order",
    "prune_biases": "--prune-biases",
    "include": "--include",
    "exclude": "--exclude",
    "seed": "--seed",
}
#: Options whose value 0 on the command line means "no limit" (None in the config).
ZERO_MEANS_NONE = ("racing_z", "backtrack_shrink")


def _dest(flag: str) -> str:
    return flag.removeprefix("--").replace("-", "_")


def _config_from_args(args: argparse.Namespace) -> CompressConfig:
    """A CompressConfig from the command line; options left out keep their defaults.
    Errors name the flag the user typed, not the config field."""
    given = {}
    for name, flag in COMPRESS_FLAGS.items():
        value = getattr(args, _dest(flag))
        if value is None or value is False or value == []:
            continue
        if name == "solver_options":
            value = parse_solver_options(value)
        elif isinstance(value, list):
            value = tuple(value)
        elif name in ZERO_MEANS_NONE and value == 0:
            value = None
        given[name] = value
    try:
        return CompressConfig(**given)
    except OptionError as error:
        raise error.named(COMPRESS_FLAGS.get(error.option, error.option)) from None


def _show_defaults(parser: argparse.ArgumentParser) -> None:
    """Append each compress option's default (from CompressConfig) to its help."""
    defaults = CompressConfig()
    flag_field = {flag: name for name, flag in COMPRESS_FLAGS.items()}
    for action in parser._actions:
        name = next((flag_field[o] for o in action.option_strings if o in flag_field), None)
        if name is None or action.help is None or "default" in action.help:
            continue
        value = getattr(defaults, name)
        if isinstance(value, tuple):
            value = " ".join(value) or "none"
        elif isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items()) or "the solver's own"
        elif value is None:
            value = "none"
        elif isinstance(value, bool):
            value = "on" if value else "off"
        action.help += f" (default: {value})"


def run_compression(
    model: nn.Module,
    splits: DatasetSplits,
    config: CompressConfig,
    run_dir: Path,
    metadata: dict,
    *,
    resume: bool = False,
    force: bool = False,
    recipe: dict | None = None,
    constraints: Sequence[str] = (),
    protected: str | None = None,
) -> dict:
    """Run :func:`olmp.compress` with progress over rounds (a bar on a terminal, a line per
    round otherwise); print the layer table. ``recipe``: the reference's training recipe;
    ``constraints``, ``protected``: fairness constraints (see :func:`olmp.compress`)."""
    display = StepProgress(
        "compressing", "round", config.max_rounds, limit_s=config.max_time_s, transient=False
    )

    def on_round(entry: dict, state: RunState) -> None:
        ratio = f"now {entry['compression_ratio']:.1f}x, best {1 / state.best['size']:.1f}x"
        accuracy = f"val {entry['val_accuracy']:.2%}"
        display.update(entry["round"], f"{ratio}, {accuracy}", elapsed_s=state.elapsed_s)

    with display:
        _, result = compress(
            model,
            splits,
            config,
            run_dir=run_dir,
            resume=resume,
            force=force,
            metadata=metadata,
            on_round=on_round,
            recipe=recipe,
            constraints=constraints,
            protected=protected,
        )
    print_result(result)
    _print_constraints(result)
    _explain_selection(result)
    ended = f", rounds ended by {result['stop_reason']}" if result.get("stop_reason") else ""
    console.print(f"done in {result['wall_time_s']:.0f} s{ended}; results in {run_dir}")
    console.print(
        f"next: olmp report {run_dir}   (plots) · "
        f"olmp export {run_dir} --out pruned.olmp.safetensors   (a small file)",
        highlight=False,
    )
    return result


def print_result(result: dict) -> None:
    """The per-layer table, the summary line and the test change with its error."""
    print_table(layer_rich_table(result))
    results.print(summary_line(result), highlight=False)
    change = change_line(result)
    if change is not None:
        results.print(change, highlight=False)


def _print_constraints(result: dict) -> None:
    """The fairness constraints' measures for the reference and the result, val and test."""
    record = result.get("constraints")
    if not record:
        return
    limits = ", ".join(f"{k} <= {v:g}" for k, v in result["fairness_constraints"].items())
    results.print(f"fairness ({result['protected']}: {limits}):", highlight=False)
    for who in ("reference", "result"):
        for split in ("val", "test"):
            r = record[who][split]
            results.print(
                f"  {who} {split}: dp {r['dp_difference']:.4f}, eo {r['eo_difference']:.4f}, "
                f"di ratio {r['di_ratio']:.3f}, "
                + ("met" if r["violation"] <= 0 else f"violated by {r['violation']:.4f}"),
                highlight=False,
            )


def _explain_selection(result: dict) -> None:
    """Say so when the search found much smaller networks than the one val accepted, and
    what tolerance would accept them (by the selection's rule: their own val accuracy and
    the one smoothed over the run)."""
    history = result["history"]
    if not history:
        return
    smallest = max(history, key=lambda h: h["compression_ratio"])
    if smallest["compression_ratio"] < 1.2 * result["compression_ratio"]:
        return
    reference = result["reference_val_accuracy"]
    candidates = run_candidates(reference, history, result.get("final_attempts", []))
    fitted = fitted_accuracies(candidates)[1 + history.index(smallest)]
    needed = reference - min(fitted, smallest["val_accuracy"])
    error = standard_error_of_change(result, "val")
    scale = (
        f" For scale, the selected network's val change has a paired standard error of {error:.3f}."
        if error is not None
        else ""
    )
    console.print(
        f"note: round {smallest['round']} reached {smallest['compression_ratio']:.1f}x with val "
        f"accuracy {smallest['val_accuracy']:.2%}, {fitted:.2%} smoothed over the run's networks "
        f"(reference {reference:.2%}); --tolerance {needed:.3f} or more would accept networks "
        f"that small.{scale}"
    )


def _note_large_tolerance(tolerance: float) -> None:
    """Tolerances are fractions; one of more than 5 points is more often a slip for points
    (0.5 meant as half a point) than a wish, so say what it allows before the run starts."""
    if tolerance > LARGE_TOLERANCE:
        console.print(
            f"note: --tolerance {tolerance:g} lets val accuracy drop by {100 * tolerance:g} "
            f"percentage points (it is a fraction: half a point is 0.005)"
        )


def _compress(args: argparse.Namespace) -> int:
    check_names(args.model, args.dataset)
    config = _config_from_args(args)
    if args.constraint:
        fairness_constraints(args.constraint)  # bad ones fail before any work
        if args.protected is None:
            raise OlmpError("--constraint needs --protected (whose groups to compare)")
    elif args.protected is not None:
        raise OlmpError("--protected needs --constraint (e.g. --constraint dp<=0.05)")
    _note_large_tolerance(config.tolerance)
    pick_device(args.device)
    run_dir = Path(args.out)
    prepare_run_dir(run_dir, resume=args.resume, force=args.force)
    model, splits, meta = load_weights(**weights_arguments(args))
    metadata = {
        "model": args.model or meta["model"],
        "dataset": splits.name,
        "weights": str(args.weights),
    }
    if meta.get("model_options") and not args.model:  # a tuned-cnn's architecture spec
        metadata["model_options"] = meta["model_options"]
    run_compression(
        model,
        splits,
        config,
        run_dir,
        metadata,
        resume=args.resume,
        force=args.force,
        recipe=meta.get("recipe"),
        constraints=args.constraint or (),
        protected=args.protected,
    )
    return 0


def add_command(commands: argparse._SubParsersAction) -> None:
    """Add this module's command(s) to the ``olmp`` parser."""
    comp = commands.add_parser(
        "compress",
        help="prune a trained model with OLMP",
        description="Prune every Linear and Conv layer of a trained model by weight "
        "magnitude, with per-layer thresholds chosen by derivative-free search so that the "
        "network is as small as possible while its accuracy stays within the tolerance; "
        "rounds of search alternate with retraining (frozen-mask fine-tuning, or Dynamic "
        "Network Surgery with --adjust dns). RUN_DIR "
        "receives result.json, the pruned checkpoint, the run state (for --resume) and a "
        "progress plot.",
        epilog="examples:\n  olmp compress --weights ref.safetensors --out runs/r1\n"
        "  olmp compress --model lenet-5 --dataset fashion-mnist --weights l5.safetensors "
        "--out runs/l5 --solver cmaes --seed 1\n"
        "  olmp compress --weights ref.safetensors --out runs/r1 --resume",
        formatter_class=Formatter,
    )
    add_weights_options(comp, "trained checkpoint to compress")
    comp.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder")
    comp.add_argument(
        "--tolerance",
        type=number,
        help="allowed val-accuracy loss as a fraction, 0.005 = half a point",
    )
    comp.add_argument(
        "--search-tolerance",
        type=number,
        help="allowed tune-accuracy loss of a candidate before retraining",
    )
    comp.add_argument("--solver", help=", ".join(SOLVERS))
    add_solver_option(comp)
    fair = comp.add_argument_group("fairness (tabular datasets: adult, compas, german, ...)")
    fair.add_argument(
        "--constraint",
        action="append",
        metavar="NAME<=EPSILON",
        help="keep a fairness measure at or below epsilon, repeatable: dp<=0.05, eo<=0.1, "
        "di<=0.2 (see olmp fair train --help)",
    )
    fair.add_argument("--protected", help="the attribute whose groups --constraint compares")
    comp.add_argument("--parametrisation", help=f"{', '.join(PARAMETRISATIONS)}")
    comp.add_argument("--seed", type=seed, help="solver and training seed")
    budget = comp.add_argument_group("budget")
    budget.add_argument("--rounds", type=int, help="most search-and-retrain rounds")
    budget.add_argument("--patience", type=int, help="stop after N rounds without shrinking")
    budget.add_argument(
        "--backtrack-after",
        type=int,
        metavar="N",
        help="after N rounds failing val, resume from the best with half the search tolerance",
    )
    budget.add_argument(
        "--backtracks-per-best",
        type=int,
        metavar="N",
        help="end the run when rounds fail again after N returns to the same best network",
    )
    budget.add_argument(
        "--backtrack-shrink",
        type=number,
        metavar="FACTOR",
        help="after a backtrack, let a round shrink the network by at most FACTOR "
        "(greater than 1; 0: no limit)",
    )
    budget.add_argument(
        "--racing-z",
        type=number,
        metavar="Z",
        help="stop scoring a candidate once the tune samples seen put it Z standard errors "
        "above or below the search's requirement (0: only once it cannot pass, "
        "so every decision is exact)",
    )
    budget.add_argument("--evaluations-per-round", type=int, help="candidates per search")
    budget.add_argument("--max-evaluations", type=int, help="total candidate evaluations")
    budget.add_argument(
        "--time-limit",
        type=number,
        metavar="SECONDS",
        help="wall-time limit of the whole run, final phase included",
    )
    budget.add_argument("--popsize", type=int, help="candidates per solver generation")
    budget.add_argument(
        "--adjust-steps", type=int, help="retraining steps per round (finetune or dns)"
    )
    budget.add_argument("--final-steps", type=int, help="fine-tuning steps at the end")
    budget.add_argument(
        "--final-order",
        help="which rounds below the best the final phase fine-tunes: bisect (the "
        "smallest, then a bisection by size) or smallest-first",
    )
    comp.add_argument("--adjust", help="retraining between searches: finetune or dns")
    comp.add_argument(
        "--augment-shift",
        type=int,
        metavar="PIXELS",
        help="random-shift augmentation while retraining (default: the checkpoint's "
        "training recipe, 0 when it records none)",
    )
    comp.add_argument(
        "--distill",
        type=number,
        metavar="WEIGHT",
        help="weight of distillation from the dense reference while retraining",
    )
    comp.add_argument(
        "--search-can-grow",
        action="store_true",
        help="let a round's search keep more weights than the network it starts from "
        "(the paper's constraint alone)",
    )
    comp.add_argument("--prune-biases", action="store_true", help="mask biases too")
    comp.add_argument(
        "--include",
        nargs="+",
        metavar="PATTERN",
        help="glob patterns (fnmatch: *, ?, [..]) of the layer names to prune, e.g. 'fc*'",
    )
    comp.add_argument(
        "--exclude",
        nargs="+",
        metavar="PATTERN",
        help="glob patterns of layer names to leave dense, e.g. 'fc3' or 'features.*'",
    )
    again = comp.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true", help="continue the run in RUN_DIR")
    again.add_argument("--force", action="store_true", help="start anew in RUN_DIR")
    _show_defaults(comp)
    comp.set_defaults(run=_compress)
