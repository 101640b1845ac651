"""FNNC: training a classifier under fairness constraints with Lagrange multipliers.

Padala and Gujar (IJCAI 2020) put each constraint ``measure <= epsilon`` into the loss,

    L(theta, lambda) = cross-entropy(theta) + sum_i lambda_i * (measure_i(theta) - epsilon),

and alternate, on every mini-batch, a descent step on the weights ``theta`` with an ascent
step on the multipliers ``lambda_i >= 0``. For the descent the measures are estimated on
the batch from **soft** predictions (the probability of label 1), which are
differentiable. The ascent judges them on the batch's **hard** predictions, as they are
reported: a multiplier grows while its constraint is violated and shrinks towards 0 once
it holds. Both read a gap as the rate of the group that earlier batches put ahead minus
that of the group behind (:class:`GapOrientation`), not as the largest minus the smallest
rate of the batch, which a batch's noise inflates.

The network scored and kept is not the last iterate but an exponential moving average of
the weights over about the last hundred steps (:data:`AVERAGE_DECAY`, torch's
``AveragedModel``). A primal-dual game converges on average, not in its last iterate: the
descent and the ascent chase each other, and on COMPAS the last iterate's dp on train
swings between about 0.01 and 0.27 from one epoch to the next, while the average settles.

After every epoch the averaged network is scored with hard predictions. Its constraint
measures are judged on **train and val together**: on val alone they are too noisy to
select by (COMPAS's 494 val rows give dp a standard error of about 0.045, larger than an
epsilon of 0.01), and a network fits train's group rates far less than its labels. The
epoch kept is the one most accurate on **val** among those whose measures meet
``epsilon``; while none does, the one closest to meeting them. Every epoch runs: the
multipliers take many epochs to grow to what a small epsilon needs, so stopping when val
stops improving stops too soon. Test is scored once, on the kept network.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from olmp.data.tabular import GroupedSplit
from olmp.errors import OlmpError, check_callback, check_count, check_seed, check_type
from olmp.fair.metrics import (
    Constraint,
    Orientation,
    Rates,
    check_epsilon,
    constraint_value,
    fairness_report,
    get_constraint,
    group_rates,
)
from olmp.models import check_finite_weights

#: How much of the running group rates that orient the gaps each batch keeps (they
#: reflect about the last ten batches).
ORIENTATION_DECAY = 0.9

#: How much of the averaged network each step keeps, at most: the average spans about the
#: last 100 steps (on Adult about an epoch, on COMPAS about six). Early in training it keeps
#: less, ``(1 + n) / (10 + n)`` after ``n`` steps, so that a short run is not an average
#: dominated by its first, untrained steps.
AVERAGE_DECAY = 0.99


def _moving_average(
    averaged: list[torch.Tensor], current: list[torch.Tensor], steps: torch.Tensor
) -> None:
    """Fold ``current`` into ``averaged`` in place (``AveragedModel``'s ``multi_avg_fn``:
    the share is read from ``steps`` once per step, not once per tensor)."""
    keep = min(AVERAGE_DECAY, (1 + int(steps)) / (10 + int(steps)))
    for average, value in zip(averaged, current, strict=True):
        average.copy_(keep * average + (1 - keep) * value)


@dataclass(frozen=True)
class FairSettings:
    """How FNNC trains; the defaults are what ``olmp fair train`` runs."""

    epochs: int = 40
    batch_size: int = 256
    lr: float = 1e-3  # Adam, on the weights
    dual_lr: float = 0.05  # plain ascent, on the multipliers


@dataclass
class FairFit:
    """What :func:`fit_fair` returns: the kept network and how training went."""

    model: nn.Module
    epoch: int  # the kept epoch (1-based)
    feasible: bool  # whether its measures on train and val together meet epsilon
    val: dict[str, float]
    train_and_val: dict[str, float]  # the report the constraints were judged on
    test: dict[str, float]
    history: list[dict[str, Any]] = field(default_factory=list)


def positive_probability(outputs: torch.Tensor) -> torch.Tensor:
    """P(label 1) from a network's outputs: two logits (softmax) or one (sigmoid)."""
    if outputs.ndim == 2 and outputs.shape[1] == 2:
        return torch.softmax(outputs, dim=1)[:, 1]
    if outputs.ndim == 1 or outputs.shape[-1] == 1:
        return torch.sigmoid(outputs.reshape(-1))
    raise OlmpError(
        "a fair classifier needs 2 output logits (or 1), got outputs of shape "
        f"{tuple(outputs.shape)}"
    )


def classification_loss(outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    if outputs.ndim == 2 and outputs.shape[1] == 2:
        return nn.functional.cross_entropy(outputs, labels)
    return nn.functional.binary_cross_entropy_with_logits(outputs.reshape(-1), labels.float())


def group_codes(split: GroupedSplit, protected: str, part: str) -> torch.Tensor:
    """The ``protected`` groups of ``split``'s rows; an error when the split has one group."""
    if protected not in split.groups:
        raise OlmpError(
            f"unknown protected attribute {protected!r}; allowed: {', '.join(split.groups)}"
        )
    codes = split.groups[protected]
    if len(torch.unique(codes)) < 2:
        raise OlmpError(
            f"the {part} split has one {protected} group only; fairness between groups "
            "needs at least two (use another seed or attribute)"
        )
    return codes


def term_bounds(constraints: dict[str, float]) -> torch.Tensor:
    """Each constrained term's epsilon, in the order :func:`primal_dual_step` takes them."""
    return torch.tensor(
        [eps for name, eps in constraints.items() for _ in get_constraint(name).terms]
    )


class GapOrientation:
    """Which group is ahead on each constrained term, from running rates of earlier
    batches' hard predictions (each batch keeps :data:`ORIENTATION_DECAY` of the counts),
    and each term's gap on a batch read that way (:meth:`gaps`).

    A batch holds few members of a small group (on Adult about ten positive women per
    256 rows), so its largest-minus-smallest rate gap is mostly noise, and biased upwards:
    it stays above a small epsilon however fair the network is. The ascent then grew the
    multiplier without end, and the descent, rewarded for shrinking that noise, made the
    predictions constant (equalized odds at 0.01: a 0.755-accurate classifier on all 5
    Adult seeds). The rate of the group ahead minus that of the group behind, with ahead
    decided before the batch is seen, is linear in the batch and its noise averages out.
    """

    def __init__(self, constraints: Sequence[Constraint]) -> None:
        self.constraints = list(constraints)
        # Per term: group -> [decayed positive predictions, decayed rows].
        self.counts: list[dict[int, list[float]]] = [{} for c in self.constraints for _ in c.terms]

    def current(self) -> list[list[Orientation | None]]:
        """Per constraint, per term: (group ahead, group behind), or ``None`` until two
        groups have been seen."""
        pairs = iter([_ahead_behind(counts) for counts in self.counts])
        return [[next(pairs) for _ in c.terms] for c in self.constraints]

    def gaps(
        self,
        predictions: torch.Tensor,
        labels: torch.Tensor,
        groups: torch.Tensor,
        pairs: list[list[Orientation | None]],
    ) -> tuple[torch.Tensor, list[Rates]]:
        """Each term's gap in (hard or soft) ``predictions`` as ``pairs`` (from
        :meth:`current`) orient it — may be negative; largest minus smallest for a term
        not oriented yet — and the group rates it was read from, one entry per term."""
        values, rates = [], []
        for constraint, constraint_pairs in zip(self.constraints, pairs, strict=True):
            unoriented = None
            for i, (term, pair) in enumerate(zip(constraint.terms, constraint_pairs, strict=True)):
                term_rates = group_rates(predictions, labels, groups, term)
                rates.append(term_rates)
                if pair is None:
                    if unoriented is None:
                        unoriented = constraint.measures(predictions, labels, groups)
                    values.append(unoriented[i])
                else:
                    values.append(_oriented_gap(term, term_rates, pair, predictions))
        return torch.stack(values), rates

    def update(self, rates: list[Rates]) -> None:
        """Fold in a batch's hard predictions, as the rates :meth:`gaps` returned."""
        for term_rates, counts in zip(rates, self.counts, strict=True):
            for count in counts.values():
                count[0] *= ORIENTATION_DECAY
                count[1] *= ORIENTATION_DECAY
            for g, (rate, rows) in term_rates.items():
                count = counts.setdefault(g, [0.0, 0.0])
                count[0] += float(rate) * rows
                count[1] += rows


def _oriented_gap(
    term: str, rates: Rates, pair: Orientation, predictions: torch.Tensor
) -> torch.Tensor:
    """The rate of ``pair``'s group ahead minus that of its group behind (for disparate
    impact, one minus behind over ahead); 0 when the sample lacks either group."""
    high, low = pair
    if high not in rates or low not in rates:
        return predictions.new_zeros(())
    if term == "1 - di_ratio":
        top = rates[high][0]
        return 1.0 - (rates[low][0] / top if float(top.detach()) > 0 else top.new_ones(()))
    return rates[high][0] - rates[low][0]


def _ahead_behind(counts: dict[int, list[float]]) -> Orientation | None:
    if len(counts) < 2:
        return None
    rate = {g: positives / rows for g, (positives, rows) in counts.items()}
    return max(rate, key=rate.__getitem__), min(rate, key=rate.__getitem__)


def primal_dual_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    orientation: GapOrientation,
    bounds: torch.Tensor,
    multipliers: torch.Tensor,
    dual_lr: float,
) -> tuple[float, torch.Tensor]:
    """One step of FNNC's method on ``batch`` = (inputs, labels, groups): descent on the
    weights for ``loss + sum(multipliers * (measures - bounds))`` (soft measures), then
    ascent on the multipliers; returns the batch loss and the new multipliers. Gaps are
    read as ``orientation`` says, and the batch then updates it."""
    x, y, g = batch
    outputs = model(x)
    p = positive_probability(outputs)
    pairs = orientation.current()
    measures, _ = orientation.gaps(p, y, g, pairs)
    loss = classification_loss(outputs, y) + (multipliers * (measures - bounds)).sum()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    # The ascent step: grow a multiplier while its constraint is violated, judged on hard
    # predictions (what is reported), not the soft ones.
    predicted = (p.detach() > 0.5).float()
    hard, rates = orientation.gaps(predicted, y, g, pairs)
    orientation.update(rates)
    return float(loss.detach()), (multipliers + dual_lr * (hard - bounds)).clamp(min=0)


def pooled_report(
    predictions: Sequence[torch.Tensor], splits: Sequence[GroupedSplit], protected: str
) -> dict[str, float]:
    """The fairness report, between the groups of ``protected``, of several splits' rows
    together (``predictions`` split by split, in the order of ``splits``): how the
    constraints are judged when a network is kept, on train and val (see the module's
    docstring)."""
    return fairness_report(
        torch.cat(list(predictions)),
        torch.cat([split.y for split in splits]),
        torch.cat([split.groups[protected] for split in splits]),
    )


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 8192) -> torch.Tensor:
    """Hard 0/1 predictions of ``model`` on ``x``."""
    model.eval()
    probabilities = torch.cat(
        [positive_probability(model(x[i : i + batch_size])) for i in range(0, len(x), batch_size)]
    )
    return (probabilities > 0.5).long()


def fit_fair(
    model: nn.Module,
    train: GroupedSplit,
    val: GroupedSplit,
    test: GroupedSplit,
    *,
    protected: str,
    constraints: Sequence[str] = ("dp",),
    epsilon: float = 0.05,
    settings: FairSettings | None = None,
    seed: int = 0,
    progress: Callable[[int, dict[str, Any]], None] | None = None,
) -> FairFit:
    """Train ``model`` (any binary classifier) under ``constraints`` with FNNC's method.

    ``constraints`` are names of :data:`olmp.fair.metrics.CONSTRAINTS`; each of their
    measures is kept at or below ``epsilon`` between the groups of attribute ``protected``.
    ``progress(epoch, record)`` is called after every epoch.
    """
    check_type("model", model, nn.Module, "a torch nn.Module (a binary classifier)")
    for name, split in (("train", train), ("val", val), ("test", test)):
        check_type(
            name,
            split,
            GroupedSplit,
            f"one split with groups (splits.{name} of a tabular dataset), not all of them",
        )
    model_name = type(model).__name__
    check_finite_weights(model, model_name)
    try:  # at the call, not as a matrix-shape error from the first training step
        with torch.no_grad():
            positive_probability(model.eval()(train.x[:2]))
    except RuntimeError as exc:
        raise OlmpError(
            f"inputs of shape {tuple(train.x.shape[1:])} do not fit model {model_name}: "
            f"{str(exc).splitlines()[0]}"
        ) from None
    constraints = [constraints] if isinstance(constraints, str) else constraints  # one name
    chosen = [get_constraint(name) for name in constraints]
    if not chosen:
        raise OlmpError("give at least one fairness constraint")
    eps = check_epsilon(epsilon)
    check_callback("progress", progress)
    settings = check_settings(FairSettings() if settings is None else settings)
    check_seed(seed)
    groups = {
        part: group_codes(split, protected, part)
        for part, split in (("train", train), ("val", val), ("test", test))
    }
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    bounds = term_bounds({c.name: eps for c in chosen})
    multipliers = torch.zeros(len(bounds))
    orientation = GapOrientation(chosen)

    average = AveragedModel(model, multi_avg_fn=_moving_average, use_buffers=True)

    best: tuple[float, float] | None = None  # (violation, -val accuracy) of the kept epoch
    kept_state, kept_epoch, history = None, 0, []
    for epoch in range(1, settings.epochs + 1):
        model.train()
        order = torch.randperm(len(train), generator=generator)
        total = 0.0
        for start in range(0, len(order), settings.batch_size):
            rows = order[start : start + settings.batch_size]
            batch = (train.x[rows], train.y[rows], groups["train"][rows])
            loss, multipliers = primal_dual_step(
                model, optimizer, batch, orientation, bounds, multipliers, settings.dual_lr
            )
            average.update_parameters(model)
            total += loss * len(rows)
        network = average.module
        val_predictions = predict(network, val.x)
        report = fairness_report(val_predictions, val.y, groups["val"])
        judged = pooled_report(
            [predict(network, train.x), val_predictions], [train, val], protected
        )
        violation = constraint_value(judged, constraints) - eps
        record = {
            "epoch": epoch,
            "train_loss": total / len(train),
            "multipliers": [round(float(m), 6) for m in multipliers],
            "val": report,
            "train_and_val": judged,
            "violation": violation,
        }
        history.append(record)
        if progress is not None:
            progress(epoch, record)
        score = (max(violation, 0.0), -report["accuracy"])
        if best is None or score < best:
            best, kept_epoch = score, epoch
            kept_state = copy.deepcopy(network.state_dict())
    assert kept_state is not None
    model.load_state_dict(kept_state)
    kept = history[kept_epoch - 1]
    test_report = fairness_report(predict(model, test.x), test.y, groups["test"])
    return FairFit(
        model=model,
        epoch=kept_epoch,
        feasible=kept["violation"] <= 0,
        val=kept["val"],
        train_and_val=kept["train_and_val"],
        test=test_report,
        history=history,
    )


def check_settings(settings: FairSettings) -> FairSettings:
    """``settings`` if every field is allowed, else an error naming the field."""
    check_type("settings", settings, FairSettings, "a FairSettings (FairSettings(**options))")
    for name in ("epochs", "batch_size"):
        check_count(getattr(settings, name), name)
    for name in ("lr", "dual_lr"):
        value = getattr(settings, name)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not (math.isfinite(value) and value > 0)
        ):
            raise OlmpError(f"{name} must be a positive number, got {value!r}")
    return settings
