"""``olmp tune``: search a network's architecture and training settings."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from olmp.cli.common import (
    add_data_dir,
    add_resume_or_force,
    add_solver_option,
    check_recorded,
    count,
    fill_defaults,
    number,
    recorded_values,
    require_options,
    seed,
    typed_over_recorded,
)
from olmp.cli.parser import COMMAND_HELP, Formatter
from olmp.console import StepProgress, console, show_error
from olmp.data import DATASETS
from olmp.dfo.solvers import SOLVERS, parse_solver_options, solver_class
from olmp.errors import OlmpError, check_count, check_seed, unknown_choice
from olmp.files import other_settings, resumed_record, setting_difference
from olmp.tune import FAMILIES, tune
from olmp.tune.blackbox import check_dataset
from olmp.tune.ensemble import ENSEMBLE_DATASETS
from olmp.tune.ensemble import check_dataset as check_ensemble_dataset
from olmp.tune.run import DEFAULTS as TUNE_DEFAULTS
from olmp.tune.run import FORMAT, TASKS


def _progress(budget: int) -> tuple[StepProgress, Callable[[int, int, float | None], None]]:
    display = StepProgress("tuning", "trial", budget)

    def step(done: int, total: int, best: float | None) -> None:
        display.update(done, "no complete trial yet" if best is None else f"best val {best:.2%}")

    return display, step


#: The options with a default (``tune``'s, but ``--budget``: the command asks for a search's
#: length); ``--epochs``, ``--train-size`` and the others left out (None) are ``tune``'s to fill.
DEFAULTS = {key: value for key, value in TUNE_DEFAULTS.items() if key != "budget"} | {"n_jobs": 1}


def _recorded(out: str, task: str | None, solver: str | None) -> dict[str, Any]:
    """The settings of the search in ``out`` as its ``tune.json`` records them, by option,
    for a resume that leaves them out; none of another ``solver``'s (a resume as another is
    refused for that, not for the options they do not share). An error when there is no
    search to resume, its record is damaged, or ``task`` is another."""
    path = Path(out) / "tune.json"
    record = resumed_record(Path(out), path.name, FORMAT, "search")
    # What every search records, then what some do.
    kinds = {"task": str, "solver": str, "dataset": str, "seed": int, "split_seed": int}
    recorded = recorded_values(record, path, kinds, required=True)
    recorded |= recorded_values(record, path, {"budget": int})  # older records lack it
    check_recorded(path, {"task": _check_task}, recorded)
    if task not in (None, recorded["task"]):  # said before its dataset is checked as task's
        shown = setting_difference("task", recorded["task"], task, task, {"task": "--task"})
        raise other_settings(out, "search", shown)
    checks = {
        "dataset": _dataset_check(recorded["task"]),
        "solver": solver_class,
        "seed": check_seed,
        "split_seed": check_seed,
        "budget": lambda budget: budget is None or check_count(budget, "budget"),
    }
    check_recorded(path, checks, recorded)
    optional = {"epochs": int, "train_size": int, "trial_time_limit": int | float}
    if recorded["task"] == "cnn":  # the space as searched (an ensemble has one space)
        optional["space"] = dict
    if solver in (None, recorded["solver"]):
        optional |= {"solver_options": dict, "experience": dict}
    recorded |= recorded_values(record, path, optional)
    if recorded.pop("solver_options", None) is not None:  # an experience by its file
        options = {k: v for k, v in record["solver_options"].items() if k != "experience"}
        recorded["solver_option"] = options
    experience = recorded.pop("experience", None)
    if experience is not None:
        file = recorded_values(experience, path, {"file": str}, within="experience")["file"]
        recorded["experience"] = file
    return recorded


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise unknown_choice("task", task, list(TASKS))


def _dataset_check(task: str) -> Callable[[str], None]:
    """How a dataset of ``task`` is checked (the cnn task takes images only)."""
    return check_dataset if task == "cnn" else check_ensemble_dataset


def _finished_trials(out: Path) -> int | None:
    """The trials an interrupted search has saved in ``out`` (the engine's study.json or
    MADS's mads.json; ``None`` when it cannot be read)."""
    for name, key in (("study.json", "trials"), ("mads.json", "evaluations")):
        if (out / name).is_file():
            try:
                trials = json.loads((out / name).read_text())[key]
                return sum(trial["state"] != "running" for trial in trials)
            except (OSError, ValueError, KeyError, TypeError):
                return None
    return 0


def _tune(args: argparse.Namespace) -> int:
    # A resume takes the options left out from its search, not from the defaults.
    budget_typed = args.budget is not None
    recorded = _recorded(args.out, args.task, args.solver) if args.resume else {}
    fill_defaults(args, recorded)
    if args.resume and args.budget is None:
        raise OlmpError(
            f"{Path(args.out) / 'tune.json'} records no budget (an older olmp wrote it): "
            "give --budget"
        )
    require_options(args, "dataset", "budget")
    fill_defaults(args, DEFAULTS)
    _dataset_check(args.task)(args.dataset)
    declared = solver_class(args.solver).options
    options = args.solver_option  # a resumed search's own: already a mapping
    if isinstance(options, list):  # typed: over the search's own
        options = parse_solver_options(options)
        own = recorded.get("solver_option")
        options = options if own is None else typed_over_recorded(own, options, declared)
    if args.experience is not None:
        if args.solver != "expsracos":
            raise OlmpError(f"--experience is for --solver expsracos, not {args.solver}")
        if options and "experience" in options:
            raise OlmpError(
                "the experience is given twice (--experience and --solver-option "
                "experience=); give it once"
            )
        options = {**(options or {}), "experience": args.experience}
    display, step = _progress(args.budget)
    with display:
        summary = tune(
            args.dataset,
            args.out,
            space=args.space,
            solver=args.solver,
            task=args.task,
            budget=args.budget,
            epochs=args.epochs,
            train_size=args.train_size,
            time_limit=args.time_limit,
            trial_time_limit=args.trial_time_limit,
            n_jobs=args.n_jobs,
            seed=args.seed,
            split_seed=args.split_seed,
            solver_options=options,
            data_dir=args.data_dir,
            resume=args.resume,
            force=args.force,
            progress=step,
        )
    if summary["trials"] > args.budget:  # a resume with a smaller budget runs nothing
        asked = "--budget" if budget_typed else "its recorded budget"
        console.print(
            f"the search already had {summary['trials']} trials, more than {asked} "
            f"{args.budget}: no trial was run (a larger --budget continues it)",
            highlight=False,
        )
    # A search that completed no trial has no result to use: a failure, not bad input,
    # said on stderr as other failures are (stdout keeps the summary for --json).
    status = 1 if summary["best_val_accuracy"] is None else 0
    if status:
        show_error(
            f"no trial of {summary['trials']} completed; see {summary['trials_file']}",
            args.command_parser.prog,
        )
    if args.json:
        print(json.dumps(summary))
    if args.json or status:
        return status
    print(
        f"{summary['trials']} trials ({summary['failed']} failed) with {args.solver} on "
        f"{args.dataset}: best val accuracy {summary['best_val_accuracy']:.2%}, "
        f"its test accuracy {summary['test_accuracy']:.2%}"
    )
    if summary.get("experience_weights"):
        ranked = sorted(summary["experience_weights"].items(), key=lambda kv: -kv[1])
        print("experience that counted: " + ", ".join(f"{d} {w:.0%}" for d, w in ranked))
    if summary.get("best_checkpoint"):
        print(f"saved {summary['best_checkpoint']} (olmp compress --weights takes it)")
    else:
        print(f"best settings in {args.out}/result.json")
    return 0


def add_command(commands: argparse._SubParsersAction) -> None:
    """Add this module's command(s) to the ``olmp`` parser."""
    p = commands.add_parser(
        "tune",
        help=COMMAND_HELP["tune"],
        description="Search a CNN's architecture (conv and fully connected layers and their "
        "settings) and its training settings (optimiser, learning rate, ...) with a "
        "derivative-free solver, as HyperNOMAD does. Every trial trains on the train split "
        "and is scored on val; the best network is saved as a checkpoint that olmp "
        "compress takes, with its test accuracy (test is read once). Space families: "
        + ", ".join(FAMILIES)
        + ".",
        epilog="examples:\n  olmp tune --dataset digits --solver tpe --budget 20 --out runs/t1\n"
        "  olmp tune --dataset fashion-mnist --solver mads --budget 50 --epochs 2 "
        "--train-size 10000 --space space.toml --out runs/t2\n"
        "  olmp tune --task ensemble --dataset wine --solver sracos --budget 30 --out runs/wine\n"
        "  olmp tune --task ensemble --dataset iris --solver expsracos --experience e.exp "
        "--budget 30 --out runs/iris",
        formatter_class=Formatter,
    )
    p.add_argument(
        "--task",
        choices=TASKS,
        help="cnn: a CNN's architecture and training (default); ensemble: a weighted vote "
        "of scikit-learn models and their hyper-parameters",
    )
    p.add_argument(
        "--dataset",
        help=f"cnn: {', '.join(DATASETS)}; ensemble: {', '.join(ENSEMBLE_DATASETS)} "
        "(required unless --resume)",
    )
    p.add_argument("--out", required=True, help="folder of the search's record and best network")
    p.add_argument(
        "--space",
        help="cnn: JSON or TOML file fixing or narrowing families of the space "
        "(default: the whole space)",
    )
    p.add_argument("--solver", help=", ".join(SOLVERS) + f" (default: {DEFAULTS['solver']})")
    add_solver_option(p)
    p.add_argument(
        "--experience",
        help="expsracos: a file of olmp experience build (refused when it "
        "learned on --dataset, unless --force)",
    )
    p.add_argument(
        "--budget",
        type=count,
        help="trials (required unless --resume, which runs to the search's last budget)",
    )
    p.add_argument("--epochs", type=count, help="cnn: training epochs per trial (default: 2)")
    p.add_argument(
        "--train-size",
        type=count,
        help="cnn: train each trial on this many images (default: all of the train split)",
    )
    p.add_argument(
        "--time-limit",
        type=number,
        help="wall-time budget of the search, in seconds (default: none)",
    )
    p.add_argument(
        "--trial-time-limit",
        type=number,
        help="cnn: a trial that runs longer than this many seconds fails (default: none)",
    )
    p.add_argument(
        "--n-jobs",
        type=count,
        help="trials run in parallel, at most one population of the solver at once (sracos "
        "and expsracos ask one trial at a time unless --solver-option popsize=N; "
        f"default: {DEFAULTS['n_jobs']})",
    )
    p.add_argument("--seed", type=seed, help="solver and training seed (default: 0)")
    p.add_argument(
        "--split-seed",
        type=seed,
        help="seed of the tune/val carve (default: 0)",
    )
    add_data_dir(p)
    add_resume_or_force(
        p,
        resume="continue the search in --out (the options left out are its own; a larger "
        "--budget extends it)",
        force="start again, replacing --out; also allows an --experience learned on --dataset",
    )
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.set_defaults(run=_tune, kept=("trial", _finished_trials))
