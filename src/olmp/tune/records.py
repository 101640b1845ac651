"""What a search writes beside its study: the trials' records, the summary's fields and the
plot of the best val accuracy so far (see :func:`olmp.tune.tune` for the folder)."""

from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path
from typing import Any

from olmp.files import write_json_atomic
from olmp.plots import counted_x_axis, pyplot, save_figure

#: The summary's fields about the best trial, per task: ``None`` while no trial has
#: completed, so a script reads the same fields from every search.
_BEST = ("best_val_accuracy", "test_accuracy", "best_trial", "best_settings")
BEST_FIELDS = {"ensemble": _BEST, "cnn": (*_BEST, "best_checkpoint", "best_spec", "best_recipe")}


def add_elapsed(records: list[dict[str, Any]]) -> None:
    """``elapsed`` of each trial: the search's time at its end, over all its sessions, as the
    engine's study records it at each tell. Trials of studies recorded before it kept that
    get it from their own times: each adds what passed between its start (or the previous
    trial's end, when later) and its own end, never more than its own ``seconds``, so the
    time the search was stopped is left out (and the solver's time between trials too)."""
    total, previous = 0.0, -math.inf
    for r in sorted((r for r in records if r.get("finished")), key=lambda r: r["finished"]):
        if r.get("elapsed") is not None:
            total = r["elapsed"]
        else:
            started = r.get("started")
            if started is None:  # told by hand
                started = r["finished"] - (r["seconds"] or 0.0)
            step = r["finished"] - max(started, previous)
            if r["seconds"] is not None:  # a trial asked before an interruption, run after it
                step = min(step, r["seconds"])
            total += max(step, 0.0)
            r["elapsed"] = round(total, 3)
        previous = r["finished"]
    for r in records:
        r.setdefault("elapsed", None)


def write_summary(path: Path, summary: dict[str, Any]) -> dict[str, Any]:
    """Write the search's ``summary`` to ``path`` and return it, unless the file there
    says the same but for ``seconds``: a resumed search with nothing left to do keeps its
    file (and the seconds it took) as they were."""
    if path.is_file():
        with contextlib.suppress(OSError, ValueError):  # damaged: written anew
            old = json.loads(path.read_text())
            if isinstance(old, dict) and {**old, "seconds": None} == {**summary, "seconds": None}:
                return old
    write_json_atomic(path, summary)
    return summary


def best_so_far(records: list[dict[str, Any]]) -> list[float]:
    """Best val accuracy after each trial (NaN before the first complete one)."""
    best, curve = -math.inf, []
    for r in records:
        if r["state"] == "complete":
            best = max(best, r["val_accuracy"])
        curve.append(best if best > -math.inf else math.nan)
    return curve


def empty_summary(
    out: Path, records: list[dict[str, Any]], config: dict[str, Any], study: str
) -> dict[str, Any]:
    """The summary's fields before the best trial is known (:data:`BEST_FIELDS` ``None``)."""
    return {
        "dataset": config["dataset"],
        "solver": config["solver"],
        "trials": len(records),
        "failed": sum(r["state"] != "complete" for r in records),
        **dict.fromkeys(BEST_FIELDS[config["task"]]),
        "study": str(out / study),
        "trials_file": str(out / "trials.json"),
        "plot": str(out / "best_val.png"),
    }


def plot_best_so_far(path: Path, records: list[dict[str, Any]], title: str) -> None:
    """Best val accuracy against trials and against seconds (nothing for no trials)."""
    if not records:
        return
    plt = pyplot()
    ordered = sorted(records, key=lambda r: r.get("elapsed") or 0.0)
    curve = best_so_far(ordered)
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    left.step(range(1, len(curve) + 1), curve, where="post")
    left.set(ylabel="best val accuracy", title=title)
    counted_x_axis(left, "trials")
    right.step([r.get("elapsed") or 0.0 for r in ordered], curve, where="post")
    right.set(xlabel="seconds", ylabel="best val accuracy")
    fig.tight_layout()
    save_figure(fig, path, dpi=80)
