"""Which of a run's networks is the result: val accuracy smoothed over networks of about
the same size.

A run scores dozens of networks on one val split of about a thousand images, where one
network's accuracy has a standard error of about half a point. Keeping the smallest
network whose own val score clears the threshold keeps the luckiest of many: on
LeNet-300-100 / mnist-5k that rule kept a 151.9× network with val equal to the reference's
and 1.3 points less on test (BENCHMARKS.md).

The rule here also asks the networks around it: a candidate's *smoothed* accuracy is the
mean val accuracy of the run's networks within a factor :data:`WINDOW` of its size (itself
included), and the result is the smallest network whose own and smoothed accuracies both
clear the threshold. A lucky small network is averaged with the unluckier ones of about its
size, and repeated rounds of one size count as repeated measurements. The window is local
on purpose: a run that went back to an earlier network and pruned again holds networks of
one size from different branches, and a global fit (a curve that never rises as the
network shrinks, tried first) let one unlucky early round veto every smaller network of
the other branch (``benchmarks/selection.py``). The reference's own score stays the
threshold, unsmoothed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Networks within this factor of a candidate's size are averaged into its smoothed
#: accuracy (1.25: a 100× candidate pools the networks of 80–125×).
WINDOW = 1.25


@dataclass(frozen=True)
class Candidate:
    """One network the run could return: its kept fraction of the prunable weights, its
    val accuracy, and whether it may be chosen (it meets the task's constraints)."""

    size: float
    val_accuracy: float
    eligible: bool = True


def smoothed_accuracies(candidates: Sequence[Candidate]) -> np.ndarray:
    """Each candidate's mean val accuracy over the candidates within a factor
    :data:`WINDOW` of its size (itself included)."""
    if not candidates:
        return np.zeros(0)
    log_size = np.log([c.size for c in candidates])
    values = np.array([c.val_accuracy for c in candidates])
    near = np.abs(log_size[:, None] - log_size[None, :]) <= math.log(WINDOW) + 1e-12
    return (near * values[None, :]).sum(axis=1) / near.sum(axis=1)


def select(candidates: Sequence[Candidate], threshold: float) -> int | None:
    """Index of the smallest eligible candidate whose val accuracy, both its own and the
    smoothed, is at least ``threshold`` (of one size, the one with the highest own score),
    or ``None``. Its own score is what a user checks; the smoothed one is what makes it
    more than luck."""
    smooth = smoothed_accuracies(candidates)
    passing = [
        i
        for i, c in enumerate(candidates)
        if c.eligible and min(smooth[i], c.val_accuracy) + 1e-12 >= threshold
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
