"""``fair_train``: FNNC on a tabular dataset, for one epsilon or a front of them.

``out`` holds:

* ``fair.json``: what the run is (dataset, protected attribute, constraints, epsilons,
  seed, model, settings); a resume must match it.
* per epsilon, ``eps-<epsilon>/``: ``model.safetensors`` (the kept network, with its
  record), ``result.json`` (val and test reports, the kept epoch, every epoch's record)
  and ``constraint_val.png`` (the constrained measures on val, and on train and val together,
  over training).
* ``results.json``: every epsilon's summary; with two epsilons or more, ``front.csv`` and
  ``front.png``: test accuracy against the test constraint value.

A resumed run (the same dataset, attribute, constraints, seed, model and settings, which
``fair.json`` must match) keeps every epsilon whose ``result.json`` is there and trains the
others; ``fair.json`` and ``results.json`` then list the epsilons asked for. ``force``
removes the files of the run it replaces, its epsilons' too (not a file of the user's).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import numbers
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from olmp.data.tabular import load_tabular
from olmp.environment import describe_environment
from olmp.errors import OlmpError, check_callback, check_type
from olmp.fair.metrics import check_epsilon, constraint_value, get_constraint, term_value
from olmp.fair.train import FairSettings, check_settings, fit_fair, group_codes
from olmp.files import (
    prepare_output_folder,
    refuse_resume_and_force,
    save_checkpoint,
    write_json_atomic,
    write_text_atomic,
)
from olmp.models import build_model
from olmp.plots import counted_x_axis, pyplot, save_figure

FORMAT = "olmp-fair"
IDENTITY = ("dataset", "protected", "constraints", "seed", "model", "settings")
#: How a refused resume names a setting: by its option, as the user typed it; the
#: ``FairSettings`` fields that have none (the Python API's) as "training setting".
RESUME_NAMES = {
    **{key: f"--{key}" for key in ("dataset", "protected", "seed", "model")},
    "constraints": "--constraint",
    "settings": "training setting",
    "settings.epochs": "--epochs",
}
#: What ``force`` removes: each epsilon's files too (a resume would take their results),
#: and its folder once that leaves it empty (a file of the user's there stays).
OUR_FILES = (
    "fair.json",
    "results.json",
    "front.csv",
    "front.png",
    "eps-*/model.safetensors",
    "eps-*/result.json",
    "eps-*/constraint_val.png",
)


def _eps_folder(out: Path, epsilon: float) -> Path:
    return out / f"eps-{epsilon:g}"


def fair_train(
    dataset: str,
    out: str | Path,
    *,
    protected: str,
    constraints: Sequence[str] = ("dp",),
    epsilons: Sequence[float] = (0.05,),
    seed: int = 0,
    model: str = "mlp",
    settings: FairSettings | None = None,
    data_dir: str | Path | None = None,
    resume: bool = False,
    force: bool = False,
    progress: Callable[[float, int, dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Train one FNNC classifier per epsilon on ``dataset`` and return their summaries.

    The split seed and the initialisation seed are both ``seed``. Each summary holds the
    test report at the top level (``accuracy``, ``dp_difference``, ``eo_difference``,
    ``di_ratio``, ...), the val report under ``val``, and the run's settings.
    """
    check_type("model", model, str, "a model's name (olmp list shows them)")
    check_callback("progress", progress)
    constraints = [constraints] if isinstance(constraints, str) else list(constraints)  # one name
    for name in constraints:
        get_constraint(name)
    constraints = list(dict.fromkeys(constraints))
    if not constraints:
        raise OlmpError("give at least one fairness constraint")
    if isinstance(epsilons, str | bytes):  # not its characters, one by one
        raise OlmpError(
            f"epsilons must be a number or a list of numbers, got the text {epsilons!r}"
        )
    epsilons = [epsilons] if isinstance(epsilons, numbers.Real) else epsilons  # one epsilon
    epsilons = sorted({check_epsilon(e) for e in epsilons})
    if not epsilons:
        raise OlmpError("give at least one epsilon")
    for low, high in itertools.pairwise(epsilons):
        if f"{low:g}" == f"{high:g}":  # one folder, eps-<epsilon:g>, would take both
            raise OlmpError(f"epsilons {low!r} and {high!r} are too close; give distinct ones")
    settings = check_settings(FairSettings() if settings is None else settings)
    refuse_resume_and_force(resume, force)
    splits = load_tabular(dataset, seed=seed, data_dir=data_dir)
    if protected not in splits.group_names:
        allowed = ", ".join(splits.group_names)
        raise OlmpError(
            f"unknown protected attribute {protected!r} for {dataset}; allowed: {allowed}"
        )

    # Everything that can refuse the run is checked before anything is written.
    for part in ("train", "val", "test"):
        group_codes(getattr(splits, part), protected, part)
    build_model(model, splits.input_shape, splits.num_classes)

    out = Path(out)
    config = {
        "format": FORMAT,
        "dataset": dataset,
        "protected": protected,
        "groups": list(splits.group_names[protected]),
        "constraints": constraints,
        "epsilons": epsilons,
        "seed": seed,
        "model": model,
        "settings": asdict(settings),
        "sizes": splits.sizes(),
    }
    prepare_output_folder(
        out,
        "fair.json",
        config,
        IDENTITY,
        OUR_FILES,
        what="run",
        resume=resume,
        force=force,
        names=RESUME_NAMES,
    )
    finished = {}
    if resume:  # the same run (checked); its record names the epsilons asked for now
        for epsilon in epsilons:  # every finished result checked before anything is written
            if (_eps_folder(out, epsilon) / "result.json").is_file():
                finished[epsilon] = _finished_summary(_eps_folder(out, epsilon), epsilon)
        write_json_atomic(out / "fair.json", config)
    summaries = []
    for epsilon in epsilons:
        folder = _eps_folder(out, epsilon)
        if epsilon in finished:
            summaries.append(finished[epsilon])
            continue
        torch.manual_seed(seed)
        network = build_model(model, splits.input_shape, splits.num_classes)
        fit = fit_fair(
            network,
            splits.train,
            splits.val,
            splits.test,
            protected=protected,
            constraints=constraints,
            epsilon=epsilon,
            settings=settings,
            seed=seed,
            progress=None if progress is None else (lambda e, r, eps=epsilon: progress(eps, e, r)),
        )
        summary = {
            "dataset": dataset,
            "protected": protected,
            "constraints": constraints,
            "epsilon": epsilon,
            "seed": seed,
            **fit.test,
            "constraint_value": constraint_value(fit.test, constraints),
            "val": {**fit.val, "constraint_value": constraint_value(fit.val, constraints)},
            "train_and_val": {
                **fit.train_and_val,
                "constraint_value": constraint_value(fit.train_and_val, constraints),
            },
            "feasible": fit.feasible,
            "epoch": fit.epoch,
            "epochs_run": len(fit.history),
        }
        folder.mkdir(parents=True, exist_ok=True)
        save_checkpoint(
            folder / "model.safetensors",
            fit.model.state_dict(),
            {
                "format": FORMAT,
                "model": model,
                "input_shape": list(splits.input_shape),
                "num_classes": splits.num_classes,
                "dataset": dataset,
                "feature_names": list(splits.feature_names),
                "split_seed": seed,
                "protected": protected,
                "constraints": constraints,
                "epsilon": epsilon,
            },
        )
        plot_constraint_history(folder / "constraint_val.png", fit.history, constraints, epsilon)
        write_json_atomic(
            folder / "result.json",
            {"summary": summary, "history": fit.history, "environment": describe_environment()},
        )
        summaries.append(summary)
    write_json_atomic(out / "results.json", summaries)
    if len(summaries) > 1:
        write_front(out, summaries)
    else:  # a resume with one epsilon left: an earlier front no longer matches results.json
        for name in ("front.csv", "front.png"):
            (out / name).unlink(missing_ok=True)
    return summaries


def _finished_summary(folder: Path, epsilon: float) -> dict[str, Any]:
    """The summary of an epsilon a resumed run already trained, or an error naming its
    damaged ``result.json`` (left as it is)."""
    path = folder / "result.json"
    try:
        summary = json.loads(path.read_text())["summary"]
        if float(summary["epsilon"]) != epsilon:
            raise ValueError(f"it is the result of epsilon {summary['epsilon']}")
        # What the front and the command's lines read.
        values = [summary[k] for k in ("accuracy", "dp_difference", "eo_difference", "di_ratio")]
        values += [summary[part]["constraint_value"] for part in ("val", "train_and_val")]
        values += [summary["constraint_value"], summary["val"]["accuracy"]]
        if not all(isinstance(v, int | float) for v in values):
            raise ValueError("a value of its summary is not a number")
        if not isinstance(summary["constraints"], list) or "feasible" not in summary:
            raise ValueError("its summary lacks its constraints or feasibility")
        if not (folder / "model.safetensors").is_file():
            raise ValueError("its model.safetensors is missing")
    except (OSError, ValueError, KeyError, TypeError) as error:
        detail = f"no {error}" if isinstance(error, KeyError) else error
        raise OlmpError(
            f"{path} is damaged ({detail}); it is left as it is: delete its folder to train "
            "that epsilon again, or start anew with --force (force=True)"
        ) from None
    return summary


FRONT_COLUMNS = ("epsilon", "accuracy", "constraint_value", "val_accuracy", "val_constraint_value")


def write_front(out: Path, summaries: list[dict[str, Any]]) -> None:
    """``front.csv`` and ``front.png``: test accuracy against the test constraint value."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(FRONT_COLUMNS)
    for s in summaries:
        val = s["val"]
        row = [s["epsilon"], s["accuracy"], s["constraint_value"]]
        writer.writerow([*row, val["accuracy"], val["constraint_value"]])
    write_text_atomic(out / "front.csv", text.getvalue())
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 4))
    x = [s["constraint_value"] for s in summaries]
    y = [s["accuracy"] for s in summaries]
    ax.plot(x, y, "o-")
    for s in summaries:
        ax.annotate(f"eps {s['epsilon']:g}", (s["constraint_value"], s["accuracy"]), fontsize=8)
    ax.set_xlabel(f"test {' / '.join(summaries[0]['constraints'])} value")
    ax.set_ylabel("test accuracy")
    ax.set_title(f"FNNC on {summaries[0]['dataset']} ({summaries[0]['protected']})")
    ax.grid(alpha=0.3)
    save_figure(fig, out / "front.png")


def plot_constraint_history(
    path: Path, history: list[dict[str, Any]], constraints: Sequence[str], epsilon: float
) -> None:
    """The constrained measures on val, and on train and val together (what the epoch is
    kept by), and the val accuracy, after every epoch."""
    plt = pyplot()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6, 5), sharex=True)
    epochs = [r["epoch"] for r in history]
    for name in constraints:
        for term in get_constraint(name).terms:
            (line,) = top.plot(epochs, [term_value(r["val"], term) for r in history], label=term)
            judged = [term_value(r["train_and_val"], term) for r in history]
            top.plot(epochs, judged, ls=":", color=line.get_color(), label=f"{term}, train+val")
    top.axhline(epsilon, color="k", ls="--", lw=1, label=f"epsilon {epsilon:g}")
    top.set_ylabel("value")
    top.legend(fontsize=8)
    bottom.plot(epochs, [r["val"]["accuracy"] for r in history], color="C3")
    bottom.set_ylabel("val accuracy")
    counted_x_axis(bottom, "epoch")
    save_figure(fig, path)
