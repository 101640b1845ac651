"""What OLMP needs to know about a job: how good a network is, and how to retrain it.

OLMP itself only masks weights, searches thresholds and keeps the best network. A *task*
supplies the rest:

* ``score(model, split)`` — the quality of the network as it is now (masks applied), on
  ``"tune"`` (the search's constraint), ``"val"`` (selection) or ``"test"`` (the report);
  higher is better. For classification it is accuracy.
* ``population_scorer(model, layers, prune_biases)`` — a function scoring many candidate
  threshold vectors on the tune split at once. The default applies each candidate's masks
  in turn and calls ``score``; :class:`SplitsTask` uses
  :class:`~olmp.pruning.evaluate.PopulationEvaluator` (one batched pass on a GPU).
* ``outcomes(model, split)`` (optional) — the per-example scores whose mean is ``score``
  (for accuracy: 1 where an example is classified correctly), so that a result's change
  against the reference can be given with a paired standard error
  (:func:`paired_changes`). ``None`` where the task cannot tell, as for your own
  ``evaluate``.
* ``retrain(model, steps, lr, seed, on_step)`` — train the (masked) network in place for
  ``steps`` optimiser steps at peak learning rate ``lr``, calling ``on_step(step)`` after
  each step when it is given (Dynamic Network Surgery re-derives its masks there).

Two tasks come with olmp: :class:`SplitsTask`, classification on a
:class:`~olmp.data.DatasetSplits` (what the CLI uses), and :class:`CallableTask`, built
from your own ``evaluate`` and ``train`` functions, so a model with its own data pipeline
or metric needs nothing else.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from olmp.data.registry import DatasetSplits, Split
from olmp.errors import OlmpError, warn_user
from olmp.pruning.evaluate import PopulationEvaluator
from olmp.pruning.layers import PrunableLayer
from olmp.pruning.masks import apply_masks, magnitude_masks, remove_masks
from olmp.training import TrainConfig, accuracy, correct, model_device, train

SPLITS = ("tune", "val", "test")
REPORTED_SPLITS = ("val", "test")
"""The splits whose change against the reference a result reports."""


class PopulationScorer(Protocol):
    """``scorer(thresholds, floor=None)``: thresholds of shape (P, layers) in, P scores out.

    ``floor`` is the score the search needs; a scorer may stop evaluating a candidate once
    it is certain to fall below it and return an estimate that is also below it
    (:meth:`olmp.pruning.evaluate.PopulationEvaluator.accuracies` does), or ignore it.
    """

    def __call__(self, thresholds: torch.Tensor, floor: float | None = None) -> np.ndarray: ...


class Task(abc.ABC):
    """How to score and retrain networks for one OLMP run (see the module docstring)."""

    #: Name of the score in messages and records.
    metric: str = "score"

    @abc.abstractmethod
    def score(self, model: nn.Module, split: str) -> float:
        """Quality of ``model`` (as it is, masks included) on ``split``; higher is better."""

    @abc.abstractmethod
    def retrain(
        self,
        model: nn.Module,
        *,
        steps: int,
        lr: float,
        seed: int,
        on_step: Callable[[int], None] | None,
    ) -> None:
        """Train ``model`` in place for ``steps`` optimiser steps."""

    def outcomes(self, model: nn.Module, split: str) -> np.ndarray | None:
        """Per-example scores of ``model`` on ``split`` whose mean is ``score(model,
        split)``, or ``None`` when the task cannot tell (the default)."""
        return None

    def split_size(self, split: str) -> int | None:
        """Number of examples in ``split``, or ``None`` when the task cannot tell (the
        default)."""
        return None

    def population_scorer(
        self, model: nn.Module, layers: list[PrunableLayer], prune_biases: bool
    ) -> PopulationScorer:
        """Tune-split scores of candidate thresholds, one candidate at a time (every
        candidate scored in full: ``floor`` is not used)."""

        def scores(thresholds: torch.Tensor, floor: float | None = None) -> np.ndarray:
            values = []
            for row in thresholds:
                apply_masks(layers, magnitude_masks(layers, row, prune_biases), False)
                try:
                    values.append(self.score(model, "tune"))
                finally:
                    remove_masks(layers, bake=False)
            return np.array(values, dtype=float)

        return scores

    def constraint_report(self, model: nn.Module, split: str) -> dict[str, float] | None:
        """``None`` for a task without constraints beside its score; else what they
        measure on ``split``, with ``violation`` (met when <= 0)."""
        return None

    def describe(self) -> dict[str, Any]:
        """Fields for the run record (dataset, split seed, input shape, ...)."""
        return {}

    def check(self, model: nn.Module, model_name: str) -> None:  # noqa: B027 (optional hook)
        """Raise :class:`OlmpError` when the task cannot work with ``model`` (nothing is
        checked unless a task knows what to check)."""

    def check_layers(  # noqa: B027 (optional hook)
        self, model: nn.Module, layers: list[PrunableLayer], model_name: str
    ) -> None:
        """Raise :class:`OlmpError` when pruning ``layers`` cannot change what the task
        measures (nothing is checked unless a task can tell)."""


def meets_constraints(report: dict[str, Any] | None) -> bool:
    """Whether a :meth:`Task.constraint_report` (``None``: no constraints) is met."""
    return report is None or report["violation"] <= 0


class SplitsTask(Task):
    """Classification accuracy on ``splits``; retraining with :func:`olmp.training.train`
    on ``splits.train`` (SGD, cosine schedule, optional random-shift augmentation).
    Candidates are scored by
    :class:`~olmp.pruning.evaluate.PopulationEvaluator` (``racing_z``: its sequential
    test)."""

    metric = "accuracy"

    def __init__(
        self,
        splits: DatasetSplits,
        *,
        batch_size: int = 64,
        augment_shift: int = 0,
        racing_z: float | None = None,
    ) -> None:
        self.splits = splits
        self.racing_z = racing_z
        self.batch_size = batch_size
        self.augment_shift = augment_shift

    def _split(self, split: str) -> Split:
        if split not in SPLITS:
            raise OlmpError(f"unknown split {split!r}; choose one of: {', '.join(SPLITS)}")
        return getattr(self.splits, split)

    def score(self, model: nn.Module, split: str) -> float:
        return accuracy(model, self._split(split))

    def outcomes(self, model: nn.Module, split: str) -> np.ndarray:
        """1.0 for each example of ``split`` classified correctly, else 0.0."""
        return correct(model, self._split(split)).numpy().astype(float)

    def split_size(self, split: str) -> int:
        return len(self._split(split))

    def population_scorer(
        self, model: nn.Module, layers: list[PrunableLayer], prune_biases: bool
    ) -> PopulationScorer:
        evaluator = PopulationEvaluator(
            model, layers, self.splits.tune, prune_biases=prune_biases, racing_z=self.racing_z
        )
        return evaluator.accuracies

    def retrain(
        self,
        model: nn.Module,
        *,
        steps: int,
        lr: float,
        seed: int,
        on_step: Callable[[int], None] | None,
    ) -> None:
        config = TrainConfig(
            epochs=1,
            max_steps=steps,
            lr=lr,
            batch_size=self.batch_size,
            max_shift=self.augment_shift,
            seed=seed,
        )
        train(
            model,
            self.splits.train,
            config,
            on_step=(lambda _, step: on_step(step)) if on_step else None,
        )

    def describe(self) -> dict[str, Any]:
        return {
            "split_seed": self.splits.split_seed,
            "input_shape": list(self.splits.input_shape),
            "num_classes": self.splits.num_classes,
        }

    def check(self, model: nn.Module, model_name: str) -> None:
        """The dataset's inputs must run through the model and give one logit per class,
        and retraining needs weights it may train."""
        weights = list(model.parameters())  # none at all: "no prunable layers" says it
        if weights and not any(p.requires_grad for p in weights):
            raise OlmpError(
                f"every parameter of model {model_name!r} is frozen (requires_grad=False), "
                "so the pruned network cannot be retrained; unfreeze what retraining may "
                "change (model.requires_grad_(True))"
            )
        kinds = sorted(
            {str(w.dtype).removeprefix("torch.") for w in weights if w.is_floating_point()}
        )
        if kinds and kinds != ["float32"]:  # torch's own message names neither fix
            raise OlmpError(
                f"model {model_name!r} has {' and '.join(kinds)} weights, but the data is "
                "float32: convert the model with model.float() first"
            )
        splits = self.splits
        side = min(splits.input_shape[1:]) if len(splits.input_shape) == 3 else None
        if side is not None and self.augment_shift >= side:  # images only are shifted
            raise OlmpError(
                f"a shift of {self.augment_shift} pixels (--augment-shift, augment_shift=) "
                f"would move the {'x'.join(map(str, splits.input_shape[1:]))} images of "
                f"dataset {splits.name!r} off the frame; give less than {side} (a pixel or "
                "two is usual)"
            )
        probe = splits.val.x[:2].to(model_device(model))
        try:
            # no_grad, not inference_mode: a lazy layer made here must stay trainable.
            with torch.no_grad():
                out = model.eval()(probe)
        except RuntimeError as exc:
            raise OlmpError(
                f"dataset {splits.name!r} (input shape {splits.input_shape}) does not fit "
                f"model {model_name!r}: {str(exc).splitlines()[0]}"
            ) from None
        if not isinstance(out, torch.Tensor):  # a dict of outputs, say: not one logit tensor
            raise OlmpError(
                f"model {model_name!r} returns a {type(out).__name__}; it must return one "
                "tensor of class scores (batch x classes)"
            )
        if out.ndim != 2 or out.shape[1] != splits.num_classes:
            raise OlmpError(
                f"model {model_name!r} outputs shape {tuple(out.shape)}, but dataset "
                f"{splits.name!r} has {splits.num_classes} classes"
            )

    def check_layers(self, model: nn.Module, layers: list[PrunableLayer], model_name: str) -> None:
        """Pruning must be able to change what the model computes: each layer's weights set
        to zero in turn, its outputs on up to 256 val images must change. None changing is
        refused; those that do not are named in a warning (an auxiliary head used in
        training only, say). Call after :meth:`check` (the data fit the model)."""
        probe = self.splits.val.x[:256].to(model_device(model))
        with torch.no_grad():
            model.eval()
            dense = model(probe)
            idle = []
            for layer in layers:
                weight = layer.module.weight
                kept = weight.detach().clone()
                weight.zero_()
                try:
                    if torch.equal(model(probe), dense):
                        idle.append(layer.name)
                finally:
                    weight.copy_(kept)
        if idle and len(idle) == len(layers):
            raise OlmpError(
                f"zeroing any of model {model_name}'s prunable layers ({', '.join(idle)}) "
                "leaves its outputs on val unchanged, so pruning cannot change its accuracy"
            )
        if idle:
            warn_user(
                f"zeroing layers {', '.join(idle)} of model {model_name} leaves its outputs on "
                "val unchanged (not used when it evaluates?): pruning them counts as compression "
                "but changes nothing; exclude them (--exclude / exclude=) if so"
            )


def reported_outcomes(task: Task, model: nn.Module) -> dict[str, np.ndarray] | None:
    """``task.outcomes`` of ``model`` on each of :data:`REPORTED_SPLITS`, or ``None`` when
    the task cannot tell per example."""
    outcomes = {split: task.outcomes(model, split) for split in REPORTED_SPLITS}
    return None if any(v is None for v in outcomes.values()) else outcomes


def paired_change(reference: np.ndarray, result: np.ndarray) -> dict[str, Any]:
    """How a per-example score changed from ``reference`` to ``result`` on the same
    examples: the mean change, its standard error, and how many examples got better or
    worse. The error is that of the paired differences, so it counts only the examples
    on which the two networks disagree; it tells how far the change could be the luck of
    which examples the split happens to hold."""
    reference = np.asarray(reference, dtype=float)
    result = np.asarray(result, dtype=float)
    if reference.ndim != 1 or reference.shape != result.shape:
        raise OlmpError(
            f"paired outcomes must be one score per example, for the same examples; got "
            f"shapes {reference.shape} and {result.shape}"
        )
    diff = result - reference
    n = diff.size
    return {
        "change": float(diff.mean()) if n else 0.0,
        "standard_error": float(diff.std(ddof=1) / np.sqrt(n)) if n > 1 else None,
        "examples": n,
        "better": int((diff > 0).sum()),
        "worse": int((diff < 0).sum()),
    }


def expected_standard_error(accuracy: float, examples: int) -> float:
    """The paired standard error to expect, before a run, of the change of a network's
    accuracy on a split of ``examples`` whose reference scores ``accuracy`` there.

    The paired error is about ``sqrt(d / n)``, ``d`` the fraction of examples on which the
    two networks disagree; a network that keeps the reference's accuracy disagrees with it
    on about as many examples as the reference gets wrong, so ``d`` is taken as its error
    rate (at least one example). On mnist-5k's 1,000 val images (reference about 96 %)
    this gives 0.6 points, where finished runs measured 0.4–0.6 (BENCHMARKS.md).
    """
    disagree = max(1.0 - accuracy, 1.0 / examples)
    return float(np.sqrt(disagree / examples))


def paired_changes(
    reference: dict[str, np.ndarray] | None, result: dict[str, np.ndarray] | None
) -> dict[str, dict[str, Any]] | None:
    """:func:`paired_change` per split of two :func:`reported_outcomes` (``None`` when
    either is)."""
    if reference is None or result is None:
        return None
    return {split: paired_change(reference[split], result[split]) for split in reference}


def scores_accuracy(record: dict[str, Any]) -> bool:
    """Whether a run record's scores (its ``*_accuracy`` fields) are accuracies: records
    of a task with another metric (your own ``evaluate``) hold that metric there."""
    return record.get("metric", "accuracy") == "accuracy"


class CallableTask(Task):
    """A task from your own functions.

    Args:
        evaluate: ``evaluate(model, split) -> float`` with ``split`` one of ``"tune"``,
            ``"val"``, ``"test"``; higher is better (accuracy, negative loss, ...). Use
            disjoint data for the three: the search reads tune, selection reads val, and
            test is only reported.
        train: ``train(model, *, steps, lr, seed, on_step)`` trains ``model`` in place for
            ``steps`` optimiser steps at learning rate ``lr`` (any optimiser and schedule),
            calling ``on_step(step)`` after each step when ``on_step`` is not ``None``
            (for ``adjust="dns"``, and so that ``time_limit`` can stop training: it raises
            to stop). Without it, rounds do not retrain.
    """

    def __init__(
        self,
        evaluate: Callable[[nn.Module, str], float],
        train: Callable[..., None] | None = None,
    ) -> None:
        if not callable(evaluate):
            raise OlmpError(f"evaluate must be callable, got {evaluate!r}")
        if train is not None and not callable(train):
            raise OlmpError(f"train must be callable or None, got {train!r}")
        self.evaluate = evaluate
        self.train = train
        self._said_scale = False  # whether a score above 1 was warned about
        self._said_on_step = False  # whether a train() that ignores on_step was

    def score(self, model: nn.Module, split: str) -> float:
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                value = self.evaluate(model, split)
        finally:
            model.train(was_training)
        try:
            if isinstance(value, bool | np.bool_ | str | bytes) or (  # float() takes them
                isinstance(value, torch.Tensor) and value.dtype == torch.bool
            ):
                raise TypeError
            value = float(value)
        except (TypeError, ValueError):
            raise OlmpError(
                f"evaluate(model, {split!r}) returned {value!r}, not a number"
            ) from None
        if not np.isfinite(value):
            raise OlmpError(f"evaluate(model, {split!r}) returned {value}; it must be finite")
        if value > 1 and not self._said_scale:  # 95 for 95 %: tolerances would be points
            self._said_scale = True
            warn_user(
                f"evaluate(model, {split!r}) returned {value:g}: tolerances (below 1) are in "
                "the score's own units, so for a percentage 0.005 allows 0.005 points; "
                "return a fraction (0.95, not 95)"
            )
        return value

    def retrain(
        self,
        model: nn.Module,
        *,
        steps: int,
        lr: float,
        seed: int,
        on_step: Callable[[int], None] | None,
    ) -> None:
        if self.train is None or steps <= 0:
            return
        if on_step is None or self._said_on_step:
            self.train(model, steps=steps, lr=lr, seed=seed, on_step=on_step)
            return
        called = False

        def counted(step: int) -> None:
            nonlocal called
            called = True
            on_step(step)

        self.train(model, steps=steps, lr=lr, seed=seed, on_step=counted)
        if not called:  # then adjust="dns" never updates its masks, time_limit never stops it
            self._said_on_step = True
            warn_user(
                f"train() ran {steps} steps without calling on_step(step), which olmp needs "
                "here: adjust='dns' and the baselines update their masks through it, "
                "time_limit stops retraining with it"
            )
