"""The pieces a round is made of: scoring ``W ⊙ M``, retraining it, the search's
fitness, shortening a step, and choosing which networks the final phase fine-tunes."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch import nn

from olmp.errors import warn_user
from olmp.pruning.layers import PrunableLayer
from olmp.pruning.masks import (
    Masks,
    apply_masks,
    count_kept,
    current_masks,
    layer_counts,
    remove_masks,
    split_masks,
    update_masks_with_hysteresis,
)
from olmp.pruning.thresholds import Parametrisation
from olmp.task import Task, expected_standard_error
from olmp.training import model_device, seeded_torch_rng

#: Val's expected paired standard error (a fraction) above which, when it is also above
#: the tolerance, a run warns that val is too small (:func:`check_val_size`).
SMALL_VAL_ERROR = 0.01


class OutOfTime(Exception):
    """Raised inside a search or a retraining when ``time_limit`` is spent, to stop it."""


@contextlib.contextmanager
def masks_applied(layers: list[PrunableLayer], masks: Masks) -> Iterator[None]:
    """``W ⊙ M`` in the layers' forward inside the block; the model is unmasked after."""
    apply_masks(layers, masks, straight_through=False)
    try:
        yield
    finally:
        remove_masks(layers, bake=False)


def masked_score(
    task: Task, model: nn.Module, layers: list[PrunableLayer], masks: Masks, split: str
) -> float:
    """The task's score of ``W ⊙ M`` on ``split``; the model is left unmasked afterwards."""
    with masks_applied(layers, masks):
        return task.score(model, split)


def masked_constraint_report(
    task: Task, model: nn.Module, layers: list[PrunableLayer], masks: Masks, split: str
) -> dict[str, float] | None:
    """The task's :meth:`~olmp.task.Task.constraint_report` of ``W ⊙ M`` on ``split``."""
    with masks_applied(layers, masks):
        return task.constraint_report(model, split)


def adjust(
    model: nn.Module,
    layers: list[PrunableLayer],
    masks: Masks,
    task: Task,
    *,
    steps: int,
    lr: float,
    seed: int,
    thresholds: torch.Tensor | None,
    update_every: int = 10,
    out_of_time: Callable[[], bool] | None = None,
) -> Masks:
    """Retrain ``model`` with ``masks`` through ``task``; returns the masks at the end.

    With ``thresholds`` this is Dynamic Network Surgery (straight-through gradients, masks
    re-derived with hysteresis every ``update_every`` steps); without, plain fine-tuning
    with frozen masks. The model's dense weights are updated in place and left unmasked.
    When ``out_of_time()`` turns true after a step, training stops there.
    """
    dns = thresholds is not None
    apply_masks(layers, masks, straight_through=dns)

    def on_step(step: int) -> None:
        if dns and step % update_every == 0:
            update_masks_with_hysteresis(layers, thresholds)
        if out_of_time is not None and out_of_time():
            raise OutOfTime

    hook = on_step if dns or out_of_time is not None else None
    try:  # the masks come off however retraining ends (diverged, Ctrl-C): the model is plain
        # Seeded: a model with dropout retrains alike in every run (and CLI and API agree).
        with contextlib.suppress(OutOfTime), seeded_torch_rng(seed, model_device(model)):
            task.retrain(model, steps=steps, lr=lr, seed=seed, on_step=hook)
        return current_masks(layers)
    finally:
        remove_masks(layers, bake=False)


def search_fitness(size: np.ndarray, score: np.ndarray, required: float) -> np.ndarray:
    """The search's objective, to minimise: the kept fraction ``size`` of a candidate whose
    tune ``score`` reaches ``required``, else ``1 + shortfall`` — worse than any feasible
    candidate, yet still telling the solver which infeasible one is closer."""
    return np.where(score >= required, size, 1.0 + np.maximum(required - score, 0.0))


def kept_fraction(param: Parametrisation, total: float, thresholds: torch.Tensor) -> np.ndarray:
    """Fraction of ``total`` weights kept by each row of ``thresholds``."""
    return (param.kept_counts(thresholds).sum(1).double() / total).numpy()


def points_kept_fraction(param: Parametrisation, total: float, z: np.ndarray) -> np.ndarray:
    """Fraction of ``total`` weights kept by each row of ``z`` (points of ``param``)."""
    return kept_fraction(param, total, param.thresholds(z))


def shortened_step(
    size_of: Callable[[np.ndarray], np.ndarray],
    start: np.ndarray,
    end: np.ndarray,
    min_size: float,
    iterations: int = 30,
) -> np.ndarray:
    """``end``, or the point of the segment ``start -> end`` nearest to it whose size is at
    least ``min_size`` (bisection; ``size_of`` maps rows of points to sizes, and ``start``
    must be at least ``min_size``)."""
    if size_of(end[None, :])[0] >= min_size:
        return end
    low, high = 0.0, 1.0  # the size at `low` is >= min_size, at `high` below it
    for _ in range(iterations):
        middle = (low + high) / 2
        if size_of((start + middle * (end - start))[None, :])[0] >= min_size:
            low = middle
        else:
            high = middle
    return start + low * (end - start)


def smallest_passing(count: int, attempts: int, passes: Callable[[int], bool]) -> int | None:
    """The index of the smallest network found to pass, probing at most ``attempts`` of
    ``count`` candidates sorted from the smallest (index 0) up; ``None`` if none passed.

    ``passes(i)`` fine-tunes and checks candidate ``i``. A larger network passes more
    often, so after the smallest fails the rest is bisected: a pass sends the search to
    the smaller half, a failure to the larger. The attempts so home in on the size where
    fine-tuning stops holding val, wherever it lies; trying the smallest in order spends
    every attempt far below that size when the last rounds overshot it.
    """
    if count == 0 or attempts == 0:
        return None
    if passes(0):
        return 0
    lo, hi, found = 1, count, None
    for _ in range(attempts - 1):
        if lo >= hi:
            break
        mid = (lo + hi) // 2
        if passes(mid):
            found, hi = mid, mid
        else:
            lo = mid + 1
    return found


def keep_fractions(layers: list[PrunableLayer], masks: Masks) -> np.ndarray:
    """Fraction of each layer's weights that ``masks`` keep."""
    return np.array([r["kept_weights"] / r["total_weights"] for r in layer_counts(layers, masks)])


def split_snapshot(
    tensors: dict[str, torch.Tensor],
) -> tuple[dict[str, torch.Tensor], Masks]:
    """``(state_dict, masks)`` of a round snapshot (keys ``model/...`` and ``mask/...``)."""
    others, masks = split_masks(tensors)
    return {k.removeprefix("model/"): v for k, v in others.items()}, masks


def network_size(layers: list[PrunableLayer], masks: Masks) -> float:
    """Fraction of the prunable weights that ``masks`` keep (the search's objective)."""
    counts = count_kept(layers, masks)
    return counts["kept_weights"] / counts["weights"]


def check_val_size(reference_accuracy: float, examples: int, tolerance: float) -> None:
    """Warn, before the rounds, when val is too small to see a loss of ``tolerance``: its
    expected paired standard error (:func:`olmp.task.expected_standard_error`) is above
    both the tolerance and one point, so networks that lose more can pass val by luck."""
    error = expected_standard_error(reference_accuracy, examples)
    if error > max(tolerance, SMALL_VAL_ERROR):
        warn_user(
            f"the val split has only {examples} examples: a change of val accuracy has a "
            f"paired standard error of about {100 * error:.1f} points, more than the "
            f"tolerance of {100 * tolerance:g} points, so networks that lose more can pass "
            "val by luck; give a larger val split for a result to trust (test accuracy "
            "will show the loss)"
        )


def reproduced(
    outcomes: dict[str, np.ndarray] | None, recorded: dict[str, float]
) -> dict[str, np.ndarray] | None:
    """``outcomes`` (per split, per example) if their means reproduce the ``recorded``
    ``{split}_accuracy`` scores; else ``None`` with a warning (other data on a resume, or
    an evaluation that is not deterministic)."""
    for split, values in (outcomes or {}).items():
        score = recorded[f"{split}_accuracy"]
        if abs(float(values.mean()) - score) > 1e-9:
            warn_user(
                f"the reference now scores {float(values.mean()):.6g} on {split}, not the "
                f"{score:.6g} recorded when the run started; the result gives no "
                "paired_change"
            )
            return None
    return outcomes
