"""``olmp compress``: prune a trained model with OLMP."""

from __future__ import annotations

import argparse
import math
import shlex
from collections.abc import Sequence
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from torch import nn

from olmp.cli.common import (
    add_resume_or_force,
    add_solver_option,
    add_weights_options,
    check_names,
    fill_defaults,
    integer,
    number,
    recorded_values,
    typed_over_recorded,
    weights_arguments,
)
from olmp.cli.parser import COMMAND_HELP, Formatter
from olmp.compression import (
    STATE_JSON,
    CompressConfig,
    RunState,
    compress,
    load_for_compression,
    prepare_run_dir,
)
from olmp.compression.config import OPTION_GROUPS, flag
from olmp.compression.resume import recorded_run, refuse_other_settings
from olmp.console import StepProgress, console, print_table, results
from olmp.data import DatasetSplits
from olmp.dfo.solvers import solver_class
from olmp.errors import OlmpError, OptionError
from olmp.fair.compress import fairness_constraints
from olmp.reference import pick_device
from olmp.report import (
    change_line,
    layer_rich_table,
    standard_error_of_change,
    summary_line,
)
from olmp.solvers import parse_solver_options
from olmp.task import meets_constraints

LARGE_TOLERANCE = 0.05  # tolerances above this get a note on their units


def _argument_kind(annotation: str) -> dict[str, Any]:
    """argparse settings for a config field of type ``annotation`` (a string: the config
    module uses postponed annotations)."""
    base = annotation.removesuffix(" | None")
    if base == "bool":
        return {"action": "store_true"}
    if base == "tuple[str, ...]":
        return {"nargs": "+"}
    return {"type": {"float": number, "int": integer, "str": str}[base]}


def _value_text(value: Any) -> str:
    """A default as ``--help`` shows it."""
    if isinstance(value, tuple):
        return " ".join(value) or "none"
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def _with_default(help: str, shown: str) -> str:
    return help if "default" in help else f"{help} (default: {shown})"


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """One option per :class:`CompressConfig` field that declares one
    (:func:`olmp.compression.config.option`), in its group, its help ending with the
    field's default; ``--solver-option`` for ``solver_options``."""
    defaults = CompressConfig()
    groups = {name: parser.add_argument_group(name) for name in OPTION_GROUPS}
    for f in fields(CompressConfig):
        if f.name == "solver_options":
            add_solver_option(groups["search"])
            continue
        declared = f.metadata
        shown = _value_text(getattr(defaults, f.name))
        if declared["zero_means_none"] and shown == "none":
            shown = "0"
        kind = _argument_kind(str(f.type))
        if declared["metavar"] is not None:
            kind["metavar"] = declared["metavar"]
        groups[declared["group"]].add_argument(
            flag(f.name), help=_with_default(declared["help"], shown).replace("%", "%%"), **kind
        )


def _config_from_args(
    args: argparse.Namespace, resumed: tuple[Path, CompressConfig] | None = None
) -> CompressConfig:
    """A CompressConfig from the command line; options left out keep their defaults, or
    for a ``resumed`` ``(run folder, config)`` the config's values, which the options typed
    may change only in the budgets. Errors name the flag typed, not the field."""
    given: dict[str, Any] = {}
    for f in fields(CompressConfig):
        value = getattr(args, "solver_option" if f.name == "solver_options" else f.name)
        if value is None or value is False:
            continue
        if f.name == "solver_options":
            value = parse_solver_options(value)
        elif isinstance(value, list):
            value = tuple(value)
        elif f.metadata["zero_means_none"] and value == 0:
            value = None
        given[f.name] = value
    if resumed is not None:  # checked first: the other settings follow from these
        own = resumed[1]
        if "solver_options" in given and given.get("solver", own.solver) == own.solver:
            declared = solver_class(own.solver).options
            typed = given["solver_options"]
            given["solver_options"] = typed_over_recorded(own.solver_options, typed, declared)
        refuse_other_settings(*resumed, given)
    try:
        return CompressConfig(**given) if resumed is None else replace(resumed[1], **given)
    except OptionError as error:
        declared = {f.name: f.metadata for f in fields(CompressConfig)}
        option_name = error.option
        zero_means_none = declared.get(option_name, {}).get("zero_means_none")
        if option_name in declared:
            option_name = flag(option_name)
        raise error.named(
            option_name, none_allowed=False, none_typed_as="0" if zero_means_none else None
        ) from None


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
        "compressing", "round", config.max_rounds, limit_s=config.time_limit, transient=False
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
    _explain_selection(result)
    ended = f", rounds ended by {result['stop_reason']}" if result.get("stop_reason") else ""
    console.print(f"done in {result['wall_time_s']:.0f} s{ended}; results in {run_dir}")
    # One command a line, quoted for the shell, so either can be pasted as it is; the
    # export goes beside the run folder, one file per run.
    export = ["olmp", "export", str(run_dir), "--out", f"{run_dir}.olmp.safetensors"]
    console.print(
        f"next:\n  {shlex.join(['olmp', 'report', str(run_dir)])}   # plots\n"
        f"  {shlex.join(export)}   # the small file",
        highlight=False,
    )
    return result


def print_result(result: dict) -> None:
    """The per-layer table, the summary line, the test change with its error and, under
    fairness constraints, their measures (what ``olmp compress`` and ``olmp report`` show)."""
    print_table(layer_rich_table(result))
    results.print(summary_line(result), highlight=False)
    change = change_line(result)
    if change is not None:
        results.print(change, highlight=False)
    _print_constraints(result)


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
            # val's verdict is judged on train and val together (FairTask): show those
            # measures, and val's own beside them.
            judged, where, alone = r, split, ""
            if "train_and_val" in r:
                judged, where = r["train_and_val"], "train+val"
                alone = f" (val alone: dp {r['dp_difference']:.4f}, eo {r['eo_difference']:.4f})"
            verdict = "met" if r["violation"] <= 0 else f"violated by {r['violation']:.4f}"
            results.print(
                f"  {who} {where}: dp {judged['dp_difference']:.4f}, eo "
                f"{judged['eo_difference']:.4f}, di ratio {judged['di_ratio']:.3f}, "
                f"{verdict}{alone}",
                highlight=False,
            )
    if not meets_constraints(record["result"]["val"]):  # no round did: this is the reference
        console.print(
            "warning: no network met the fairness constraints on train+val, the reference "
            "included, so the result is the reference. olmp fair train aims at epsilon itself "
            "and its network can land just above it there: train the reference at a smaller "
            "epsilon than the constraint's (say 0.04 for dp<=0.05), or allow a larger epsilon",
            highlight=False,
        )


def _explain_selection(result: dict) -> None:
    """Say so when the search found much smaller networks than the one val accepted (only
    those meeting the fairness constraints count: a tolerance cannot accept the others)."""
    rounds = [h for h in result["history"] if meets_constraints(h.get("val_constraints"))]
    if not rounds:
        return
    smallest = max(rounds, key=lambda h: h["compression_ratio"])
    if smallest["compression_ratio"] < 1.2 * result["compression_ratio"]:
        return
    # Rounded up: 0.0111 shown as 0.011 would name a tolerance that rejects the network.
    needed = math.ceil(1000 * (result["reference_val_accuracy"] - smallest["val_accuracy"]) - 1e-6)
    error = standard_error_of_change(result, "val")
    scale = (
        f" For scale, the selected network's val change has a paired standard error of "
        f"{error:.3f} ({100 * error:.2f} points)."
        if error  # none, or 0 when the reference itself was kept: nothing to scale by
        else ""
    )
    console.print(
        f"note: round {smallest['round']} reached {smallest['compression_ratio']:.1f}x with val "
        f"accuracy {smallest['val_accuracy']:.2%} (reference {result['reference_val_accuracy']:.2%}"
        f"); --tolerance {needed / 1000:.3f} or more would accept networks that small.{scale}"
    )


def _note_large_tolerance(tolerance: float) -> None:
    """Tolerances are fractions; one of more than 5 points is more often a slip for points
    (0.5 meant as half a point) than a wish, so say what it allows before the run starts."""
    if tolerance > LARGE_TOLERANCE:
        console.print(
            f"note: --tolerance {tolerance:g} lets val accuracy drop by {100 * tolerance:g} "
            f"percentage points (it is a fraction: half a point is 0.005)"
        )


def _resumed(args: argparse.Namespace, run_dir: Path) -> tuple[Path, CompressConfig]:
    """The run in ``run_dir`` for ``--resume``: its config, and the options left out that
    name its data (dataset, split seed, fairness constraints) set from its record; a
    dataset typed otherwise refused here, before it is loaded. Never its model: a name
    read from a file must not choose code to import."""
    prepare_run_dir(run_dir, resume=True, force=args.force)  # nothing to resume: said here
    record = recorded_run(run_dir)
    path = run_dir / STATE_JSON
    metadata = record.get("metadata", {})
    dataset = recorded_values(metadata, path, {"dataset": str}, within="metadata")
    kinds = {"split_seed": int, "fairness_constraints": dict[str, int | float], "protected": str}
    task = recorded_values(record.get("task", {}), path, kinds, within="task")
    if args.dataset not in (None, dataset["dataset"]):
        raise OlmpError(
            f"cannot resume {run_dir}: it ran on dataset {dataset['dataset']!r}, and this run "
            f"names {args.dataset!r}; resume with the same options or start anew with --force"
        )
    fill_defaults(args, dataset | {k: task[k] for k in ("split_seed", "protected")})
    if not args.constraint and task["fairness_constraints"]:
        args.constraint = [f"{k}<={v!r}" for k, v in task["fairness_constraints"].items()]
    return run_dir, CompressConfig.from_dict(record["config"])


def _compress(args: argparse.Namespace) -> int:
    run_dir = Path(args.out)
    resumed = _resumed(args, run_dir) if args.resume else None
    check_names(args.model, args.dataset)
    config = _config_from_args(args, resumed)
    if args.constraint:
        fairness_constraints(args.constraint)  # bad ones fail before any work
        if args.protected is None:
            raise OlmpError("--constraint needs --protected (whose groups to compare)")
    elif args.protected is not None:
        raise OlmpError("--protected needs --constraint (e.g. --constraint 'dp<=0.05')")
    _note_large_tolerance(config.tolerance)
    pick_device(args.device)
    if resumed is None:  # a resume's folder was checked first, in _resumed
        prepare_run_dir(run_dir, resume=False, force=args.force)
    model, splits, recipe, metadata = load_for_compression(**weights_arguments(args))
    run_compression(
        model,
        splits,
        config,
        run_dir,
        metadata,
        resume=args.resume,
        force=args.force,
        recipe=recipe,
        constraints=args.constraint or (),
        protected=args.protected,
    )
    return 0


def finished_rounds(run: Path) -> int:
    """The rounds an interrupted run has saved in ``run`` (round-000 is the reference,
    scored before the first round)."""
    return max(len(list(run.glob("rounds/round-*.safetensors"))) - 1, 0)


def add_command(commands: argparse._SubParsersAction) -> None:
    """Add this module's command(s) to the ``olmp`` parser."""
    comp = commands.add_parser(
        "compress",
        help=COMMAND_HELP["compress"],
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
    fair = comp.add_argument_group("fairness (tabular datasets: adult, compas, german, ...)")
    fair.add_argument(
        "--constraint",
        action="append",
        metavar="NAME<=EPSILON",
        help="keep a fairness measure at or below epsilon, repeatable: 'dp<=0.05', 'eo<=0.1', "
        "'di<=0.2' (quoted: a shell reads < as a redirection; see olmp fair train --help)",
    )
    fair.add_argument("--protected", help="the attribute whose groups --constraint compares")
    add_config_options(comp)
    add_resume_or_force(
        comp,
        resume="continue the run in RUN_DIR (a finished one too, given a larger budget)",
        force="start anew in RUN_DIR",
    )
    # An interrupted run keeps its finished rounds (round-000 is the reference).
    comp.set_defaults(run=_compress, kept=("round", finished_rounds))
