"""Which of a run's networks is the result: val accuracy smoothed over the run.

A run scores dozens of networks on one val split of about a thousand images, where one
network's accuracy has a standard error of about half a point. Keeping the smallest
network whose own val score clears the threshold keeps the luckiest of many: on
LeNet-300-100 / mnist-5k that rule kept a 151.9× network with val equal to the reference's
and 1.3 points less on test (BENCHMARKS.md).

The rule here pools each network's score with its neighbours in size instead. Networks of
one run are nested prunings of one another, so a smaller one is not expected to be more
accurate: the val accuracies are fitted by a least-squares curve that never increases as
the network shrinks (isotonic regression), and the result is the smallest network whose
*fitted* accuracy clears the threshold as well as its own. A lucky small network is
averaged with the unluckier ones around it; the reference's own score stays the threshold,
unsmoothed. No setting: the only assumption is that monotonicity.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import isotonic_regression

#: Sizes closer than this are one size (rounds that kept the same network).
SAME_SIZE = 1e-9


@dataclass(frozen=True)
class Candidate:
    """One network the run could return: its kept fraction of the prunable weights, its
    val accuracy, and whether it may be chosen (it meets the task's constraints)."""

    size: float
    val_accuracy: float
    eligible: bool = True


def fitted_accuracies(candidates: Sequence[Candidate]) -> np.ndarray:
    """Each candidate's val accuracy fitted by the least-squares curve that does not
    increase as size decreases; candidates of one size share their mean's fit."""
    if not candidates:
        return np.zeros(0)
    sizes = np.array([c.size for c in candidates])
    values = np.array([c.val_accuracy for c in candidates])
    group_of = np.empty(len(candidates), dtype=int)
    means: list[float] = []  # per size, smallest first: the sum of scores, then the mean
    weights: list[float] = []
    group_start = -np.inf
    for i in np.argsort(sizes, kind="stable"):
        if sizes[i] - group_start > SAME_SIZE:  # a new size
            group_start = sizes[i]
            means.append(0.0)
            weights.append(0.0)
        means[-1] += values[i]
        weights[-1] += 1.0
        group_of[i] = len(means) - 1
    mean = np.array(means) / np.array(weights)
    fit = isotonic_regression(mean, weights=np.array(weights), increasing=True).x
    return fit[group_of]


def select(candidates: Sequence[Candidate], threshold: float) -> int | None:
    """Index of the smallest eligible candidate whose val accuracy, both its own and the
    fitted, is at least ``threshold`` (of one size, the one with the highest own score),
    or ``None``. Its own score is what a user checks; the fitted one is what makes it
    more than luck."""
    fit = fitted_accuracies(candidates)
    passing = [
        i
        for i, c in enumerate(candidates)
        if c.eligible and min(fit[i], c.val_accuracy) + 1e-12 >= threshold
    ]
    if not passing:
        return None
    return min(passing, key=lambda i: (candidates[i].size, -candidates[i].val_accuracy, i))


def run_candidates(
    reference_val_accuracy: float,
    history: Sequence[dict[str, Any]],
    final_attempts: Sequence[dict[str, Any]] = (),
    reference_eligible: bool = True,
) -> list[Candidate]:
    """A run's networks as candidates, from its record: the reference (size 1), each
    round's (``history``) and each the final phase fine-tuned (``final_attempts``), in
    that order."""
    found = [Candidate(1.0, reference_val_accuracy, reference_eligible)]
    for h in history:
        met = h.get("val_constraints", {}).get("violation", 0.0) <= 0
        found.append(Candidate(h["size"], h["val_accuracy"], met))
    found += [
        Candidate(a["size"], a["val_accuracy"], a.get("constraints_met", True))
        for a in final_attempts
    ]
    return found
