"""Group fairness of a binary classifier, and the constraints that bound it.

Every measure here is computed the same way on **hard** predictions (0/1, for reporting
and selection) and on **soft** ones (the predicted probability of label 1, for the
constraint terms of the training loss), for any number of groups:

- ``dp_difference``: the largest minus the smallest group's rate of positive predictions
  (demographic parity; fairlearn's ``demographic_parity_difference``);
- ``eo_difference``: the larger of the false-positive-rate gap (among rows labelled 0) and
  the true-positive-rate gap, equal to the false-negative-rate gap (among rows labelled 1);
  each rate is conditioned on group **and** true label (equalized odds; fairlearn's
  ``equalized_odds_difference``);
- ``di_ratio``: the smallest group's positive rate over the largest one's (disparate
  impact; fairlearn's ``demographic_parity_ratio``).

A constraint keeps a measure at or below ``epsilon``: ``dp`` bounds ``dp_difference``,
``eo`` bounds both gaps of ``eo_difference``, ``di`` bounds ``1 - di_ratio`` (so
``epsilon = 0.2`` is the "80 % rule").
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from olmp.errors import OlmpError, OptionError


def _rate_gap(values: torch.Tensor, groups: torch.Tensor, rows: torch.Tensor | None = None):
    """(largest - smallest group mean, smallest / largest) of ``values``; groups with no
    row (in ``rows``) are left out."""
    if rows is not None:
        values, groups = values[rows], groups[rows]
    means = torch.stack([values[groups == g].mean() for g in torch.unique(groups)])
    if len(means) < 2:
        zero = values.new_zeros(())
        return zero, zero + 1.0
    high, low = means.max(), means.min()
    ratio = low / high if float(high.detach()) > 0 else high.new_ones(())
    return high - low, ratio


def _values(predictions: torch.Tensor) -> torch.Tensor:
    # Hard 0/1 predictions are counted in float64, so reported rates are exact to 1e-15
    # (fairlearn's precision); soft ones keep their dtype and gradient.
    return predictions if predictions.is_floating_point() else predictions.double()


def dp_difference(predictions: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    """Demographic parity difference of 0/1 or probability ``predictions``."""
    return _rate_gap(_values(predictions), groups)[0]


def di_ratio(predictions: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    """Disparate impact ratio (smallest over largest group positive rate)."""
    return _rate_gap(_values(predictions), groups)[1]


def odds_gaps(
    predictions: torch.Tensor, labels: torch.Tensor, groups: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(false-positive-rate gap, false-negative-rate gap) across groups."""
    predictions = _values(predictions)
    fpr_gap = _rate_gap(predictions, groups, labels == 0)[0]
    fnr_gap = _rate_gap(predictions, groups, labels == 1)[0]  # TPR gap = FNR gap
    return fpr_gap, fnr_gap


def eo_difference(
    predictions: torch.Tensor, labels: torch.Tensor, groups: torch.Tensor
) -> torch.Tensor:
    """Equalized odds difference: the larger of the FPR and FNR gaps."""
    return torch.stack(odds_gaps(predictions, labels, groups)).max()


def fairness_report(
    predictions: torch.Tensor, labels: torch.Tensor, groups: torch.Tensor
) -> dict[str, float]:
    """Accuracy and every measure of hard 0/1 ``predictions``, as plain floats."""
    fpr_gap, fnr_gap = odds_gaps(predictions, labels, groups)
    return {
        "accuracy": float((predictions == labels).double().mean()),
        "dp_difference": float(dp_difference(predictions, groups)),
        "eo_difference": float(max(fpr_gap, fnr_gap)),
        "fpr_difference": float(fpr_gap),
        "fnr_difference": float(fnr_gap),
        "di_ratio": float(di_ratio(predictions, groups)),
        "positive_rate": float(_values(predictions).mean()),
    }


#: The true label each constrained term's group rates are conditioned on (None: all rows).
TERM_LABEL = {"dp_difference": None, "1 - di_ratio": None, "fpr_difference": 0, "fnr_difference": 1}

#: Which group is ahead on a term and which behind: (high, low) group codes.
Orientation = tuple[int, int]

#: Per group: (its rate, how many rows it was computed over), see :func:`group_rates`.
Rates = dict[int, tuple[torch.Tensor, int]]


def group_rates(
    predictions: torch.Tensor, labels: torch.Tensor, groups: torch.Tensor, term: str
) -> Rates:
    """Per group: (its rate of positive ``predictions`` over the rows ``term`` is
    conditioned on, how many such rows); groups without such a row are left out. The FNR
    gap's rate is the true-positive rate (the two gaps are equal)."""
    label = TERM_LABEL[term]
    if label is not None:
        rows = labels == label
        predictions, groups = predictions[rows], groups[rows]
    values = _values(predictions)
    codes, rows = torch.unique(groups, return_inverse=True)
    counts = torch.bincount(rows, minlength=len(codes))
    means = values.new_zeros(len(codes)).index_add(0, rows, values) / counts
    return {int(g): (means[i], int(counts[i])) for i, g in enumerate(codes.tolist())}


@dataclass(frozen=True)
class Constraint:
    """A fairness constraint: the measures it keeps at or below ``epsilon``."""

    name: str
    description: str
    terms: tuple[str, ...]  # one Lagrange multiplier per term

    def measures(
        self, predictions: torch.Tensor, labels: torch.Tensor, groups: torch.Tensor
    ) -> torch.Tensor:
        """The constrained measures of (hard or soft) ``predictions``, one per term."""
        if self.name == "dp":
            return dp_difference(predictions, groups).reshape(1)
        if self.name == "di":
            return (1.0 - di_ratio(predictions, groups)).reshape(1)
        return torch.stack(odds_gaps(predictions, labels, groups))


#: Allowed constraints, by name.
CONSTRAINTS: dict[str, Constraint] = {
    c.name: c
    for c in (
        Constraint("dp", "demographic parity: dp_difference <= epsilon", ("dp_difference",)),
        Constraint(
            "eo",
            "equalized odds: FPR and FNR gaps each <= epsilon",
            ("fpr_difference", "fnr_difference"),
        ),
        Constraint("di", "disparate impact: 1 - di_ratio <= epsilon", ("1 - di_ratio",)),
    )
}


def get_constraint(name: object) -> Constraint:
    """The constraint called ``name``, or an error listing the allowed ones."""
    if not isinstance(name, str) or name not in CONSTRAINTS:
        allowed = ", ".join(f"{c.name} ({c.description})" for c in CONSTRAINTS.values())
        raise OlmpError(f"unknown fairness constraint {name!r}; allowed: {allowed}")
    return CONSTRAINTS[name]  # type: ignore[index]


def term_value(report: dict[str, float], term: str) -> float:
    """The value of one constrained ``term`` (see :class:`Constraint`) in a report."""
    return 1.0 - report["di_ratio"] if term == "1 - di_ratio" else report[term]


def constraint_value(report: dict[str, float], constraints: Sequence[str]) -> float:
    """The largest constrained measure of ``report``: what must stay at or below epsilon."""
    return max(term_value(report, t) for name in constraints for t in get_constraint(name).terms)


def violation(report: dict[str, float], bounds: dict[str, float]) -> float:
    """How far ``report`` breaks constraints ``{name: epsilon}``: the largest measure minus
    its epsilon (met when <= 0)."""
    return max(
        term_value(report, term) - eps
        for name, eps in bounds.items()
        for term in get_constraint(name).terms
    )


def check_epsilon(value: object) -> float:
    """``value`` as a float in [0, 1], or an error naming it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value <= 1:
        raise OptionError("epsilon", f"must be a number in [0, 1], got {value!r}")
    return float(value)
