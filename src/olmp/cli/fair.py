"""``olmp fair train``: classifiers trained under fairness constraints (FNNC)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from olmp.cli.common import (
    add_data_dir,
    add_resume_or_force,
    check_recorded,
    count,
    fill_defaults,
    number,
    recorded_values,
    require_options,
    seed,
)
from olmp.cli.parser import COMMAND_HELP, Formatter
from olmp.console import StepProgress
from olmp.data import TABULAR_DATASETS
from olmp.errors import OlmpError, check_count, check_seed
from olmp.fair import CONSTRAINTS, FairSettings, fair_train
from olmp.fair.metrics import check_epsilon, get_constraint
from olmp.fair.run import FORMAT
from olmp.files import other_settings, resumed_record, setting_difference
from olmp.models.registry import MODELS, is_code_path

#: The options with a default, as ``fair_train``'s record names them (``settings.epochs``:
#: a field of its settings).
DEFAULTS = {
    "constraint": ["dp"],
    "epsilon": [0.05],
    "seed": 0,
    "model": "mlp",
    "epochs": FairSettings.epochs,
}
#: Each option a resume may leave out: where ``fair_train``'s record holds it, of what kind.
RECORDED_AS = {
    "dataset": ("dataset", str),
    "protected": ("protected", str),
    "constraint": ("constraints", list[str]),
    "epsilon": ("epsilons", list[int | float]),
    "seed": ("seed", int),
    "model": ("model", str),
    "epochs": ("settings.epochs", int),
}


def _recorded(out: str, model_given: bool) -> dict[str, Any]:
    """The options of the run in ``out`` as its ``fair.json`` records them, by option name,
    for a resume that leaves them out. An error when there is no run to resume, its record
    is damaged, or, with the model left out (not ``model_given``), it names one outside
    olmp's registry (a name read from a file must not choose code to import)."""
    path = Path(out) / "fair.json"
    record = resumed_record(Path(out), path.name, FORMAT, "run")
    settings = recorded_values(record, path, {"settings": dict}, required=True)["settings"]
    epochs = recorded_values(settings, path, {"epochs": int}, required=True, within="settings")
    kinds = {key: kind for key, kind in RECORDED_AS.values() if key != "settings.epochs"}
    values = recorded_values(record, path, kinds, required=True)
    values["settings.epochs"] = epochs["epochs"]

    def each(check: Callable[[Any], object]) -> Callable[[list], bool]:
        return lambda items: bool(items) and all(check(item) is not False for item in items)

    checks = {  # the dataset first: the protected attribute is one of its own
        "dataset": lambda name: name in TABULAR_DATASETS,
        "protected": lambda name: name in TABULAR_DATASETS[values["dataset"]].protected,
        "constraints": each(get_constraint),
        "epsilons": each(check_epsilon),
        "seed": check_seed,
        "settings.epochs": lambda epochs: check_count(epochs, "epochs"),
    }
    if not is_code_path(values["model"]):  # a registry name; a code path is refused below
        checks["model"] = lambda name: name in MODELS
    check_recorded(path, checks, values)
    if not model_given and is_code_path(values["model"]):
        raise OlmpError(
            f"{path} records model {values['model']!r}, which would import and run code named "
            "by the file; if you trust it, name the model yourself (--model)"
        )
    return {name: values[key] for name, (key, _) in RECORDED_AS.items()}


def _train(args: argparse.Namespace) -> int:
    if args.resume:  # options left out: the run's own, not the defaults
        recorded = _recorded(args.out, model_given=args.model is not None)
        # Said before anything is loaded or built from them (another dataset's attributes
        # would be checked against the run's --protected).
        for name in ("dataset", "protected", "model"):
            typed = getattr(args, name)
            if typed not in (None, recorded[name]):
                shown = setting_difference(f"--{name}", recorded[name], typed, typed, {})
                raise other_settings(args.out, "run", shown)
        fill_defaults(args, recorded)
    if args.protected is None and args.dataset in TABULAR_DATASETS:  # say what it may be
        allowed = ", ".join(TABULAR_DATASETS[args.dataset].protected)
        raise OlmpError(f"--protected is required: whose groups to compare ({allowed})")
    require_options(args, "dataset", "protected")
    fill_defaults(args, DEFAULTS)
    for name in args.constraint:
        if "<=" in name:  # olmp compress's form, one bound per constraint
            kind, _, bound = name.partition("<=")
            raise OlmpError(
                f"--constraint takes a name here, got {name!r}: the bounds are --epsilon, "
                f"one or more (--constraint {kind.strip()} --epsilon {bound.strip()})"
            )
        get_constraint(name)
    for epsilon in args.epsilon:
        check_epsilon(epsilon)
    settings = FairSettings(epochs=args.epochs)
    epsilons = sorted(set(args.epsilon))
    # One bar over every epsilon's epochs.
    display = StepProgress("training", "epoch", settings.epochs * len(epsilons))

    def step(epsilon: float, epoch: int, record: dict) -> None:
        done = epsilons.index(epsilon) * settings.epochs + epoch
        display.update(done, f"eps {epsilon:g}: val accuracy {record['val']['accuracy']:.2%}")

    with display:
        summaries = fair_train(
            args.dataset,
            args.out,
            protected=args.protected,
            constraints=args.constraint,
            epsilons=epsilons,
            seed=args.seed,
            model=args.model,
            settings=settings,
            data_dir=args.data_dir,
            resume=args.resume,
            force=args.force,
            progress=step,
        )
    for summary in summaries:
        if args.json:
            print(json.dumps(summary))
            continue
        print(
            f"eps {summary['epsilon']:g}: test accuracy {summary['accuracy']:.2%}, "
            f"{'/'.join(summary['constraints'])} value {summary['constraint_value']:.4f} "
            f"(dp {summary['dp_difference']:.4f}, eo {summary['eo_difference']:.4f}, "
            f"di ratio {summary['di_ratio']:.3f}); val: accuracy "
            f"{summary['val']['accuracy']:.2%}, value {summary['val']['constraint_value']:.4f}; "
            f"train+val value {summary['train_and_val']['constraint_value']:.4f}"
            + ("" if summary["feasible"] else " (no epoch met epsilon there)")
        )
    if not args.json:
        print(f"saved in {args.out}")
    return 0


def add_command(commands: argparse._SubParsersAction) -> None:
    """Add ``olmp fair`` and its subcommands to the ``olmp`` parser."""
    fair = commands.add_parser(
        "fair",
        help=COMMAND_HELP["fair"],
        description="Fairness-constrained training on tabular data.",
        formatter_class=Formatter,
    )
    sub = fair.add_subparsers(dest="fair_command", metavar="COMMAND", required=True)
    allowed = "; ".join(f"{c.name}: {c.description}" for c in CONSTRAINTS.values())
    p = sub.add_parser(
        "train",
        help="train a classifier under fairness constraints (FNNC)",
        description="Train a classifier (an MLP by default) under group-fairness "
        "constraints with FNNC's method: each constraint enters the loss with a Lagrange "
        "multiplier; every mini-batch takes a descent step on the weights and an ascent "
        "step on the multipliers. The network kept is a moving average of the weights, at "
        "the epoch most accurate on val among those meeting epsilon on train and val "
        "together; test is reported once, with hard predictions. Several "
        f"--epsilon values give an accuracy-fairness front (front.csv, front.png). "
        f"Constraints: {allowed}.",
        epilog="examples:\n"
        "  olmp fair train --dataset adult --protected sex --constraint dp --epsilon 0.05 "
        "--out runs/f1\n"
        "  olmp fair train --dataset compas --protected race --constraint eo "
        "--epsilon 0.01 0.05 0.1 --out runs/f2",
        formatter_class=Formatter,
    )
    p.add_argument("--dataset", help=", ".join(TABULAR_DATASETS) + " (required unless --resume)")
    p.add_argument(
        "--protected",
        help="protected attribute (required unless --resume): "
        + "; ".join(
            f"{name}: {', '.join(spec.protected)}" for name, spec in TABULAR_DATASETS.items()
        ),
    )
    p.add_argument(
        "--constraint",
        nargs="+",
        type=str.lower,  # DP as dp, as olmp compress --constraint takes it
        help=", ".join(CONSTRAINTS) + " (default dp)",
    )
    p.add_argument("--epsilon", nargs="+", type=number, help="bound(s) (default 0.05)")
    p.add_argument("--seed", type=seed, help="split and initialisation seed (default: 0)")
    p.add_argument("--out", required=True, help="folder of the run's record and networks")
    p.add_argument("--model", help="model name (default mlp, 100-100 hidden)")
    p.add_argument(
        "--epochs", type=count, help=f"epochs per network (default: {DEFAULTS['epochs']})"
    )
    add_data_dir(p)
    add_resume_or_force(
        p,
        resume="continue the run in --out (the options left out are the run's own)",
        force="start again, replacing --out",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object per epsilon")
    p.set_defaults(
        run=_train, kept=("epsilon", lambda out: len(list(out.glob("eps-*/result.json"))))
    )
