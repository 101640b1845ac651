"""One round's search: the derivative-free problem over per-layer thresholds.

*Minimise the fraction of weights kept, subject to tune accuracy ≥ the requirement*, as a
death-penalty fitness (:func:`~olmp.compression.steps.search_fitness`) that a solver of
:mod:`olmp.solvers` minimises from the current network, scoring each population through
the task's population scorer. The starting network is scored first, so a round never ends
worse than it began, and the requirement is capped at its own tune accuracy, so it stays
feasible.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from olmp.compression.config import CompressConfig
from olmp.compression.steps import (
    OutOfTime,
    keep_fractions,
    kept_fraction,
    points_kept_fraction,
    search_fitness,
    shortened_step,
)
from olmp.pruning.layers import PrunableLayer
from olmp.pruning.masks import Masks, dense_tensor
from olmp.pruning.thresholds import make_parametrisation
from olmp.solvers import make_solver
from olmp.task import Task


def search_round(
    config: CompressConfig,
    task: Task,
    model: nn.Module,
    layers: list[PrunableLayer],
    masks: Masks,
    *,
    required: float,
    budget: int,
    seed: int,
    shrink_limit: float | None,
    out_of_time: Callable[[], bool],
) -> tuple[torch.Tensor, dict[str, Any], int]:
    """Search thresholds from the network ``masks`` keep; returns the chosen thresholds, a
    summary for the round's record and the candidate evaluations spent.

    ``required``: the tune accuracy a candidate needs; ``budget``: candidate evaluations;
    ``shrink_limit``: the most the chosen network may shrink the starting one (a longer
    step is shortened along the line between them); ``out_of_time()`` true ends the search
    with the best candidate so far.
    """
    abs_weights = [dense_tensor(layer, "weight").detach().abs().cpu() for layer in layers]
    options = {"min_keep": config.min_keep} if config.parametrisation == "keep-ratio" else {}
    param = make_parametrisation(config.parametrisation, abs_weights, **options)
    lower, upper = param.bounds()
    start = np.clip(param.encode(keep_fractions(layers, masks)), lower, upper)
    scorer = task.population_scorer(model, layers, config.prune_biases)
    # The starting network must stay feasible, so a round never grows it: after a
    # backtrack, or when retraining has not recovered the tolerance, the search prunes only
    # what keeps tune accuracy where it is instead of re-growing weights towards the
    # reference (the paper's constraint alone, relative to the reference, did that) ...
    incumbent = start[None, :]
    incumbent_accuracy = scorer(param.thresholds(incumbent))
    # ... unless it breaks the task's constraints (a negative score): then it is not.
    if incumbent_accuracy[0] >= 0:
        required = min(required, float(incumbent_accuracy[0]))
    total = float(sum(layer.n_weights for layer in layers))
    best = {"fitness": math.inf, "z": start, "accuracy": float("nan")}

    def fitness(z: np.ndarray, acc: np.ndarray | None = None) -> np.ndarray:
        """Search fitness of the rows of ``z`` (``acc``: their tune scores, if known)."""
        if acc is None and out_of_time():
            raise OutOfTime
        thresholds = param.thresholds(z)
        size = kept_fraction(param, total, thresholds)
        if acc is None:
            acc = scorer(thresholds, floor=required)
        values = search_fitness(size, acc, required)
        i = int(np.argmin(values))
        if values[i] < best["fitness"]:
            best.update(fitness=float(values[i]), z=np.array(z[i]), accuracy=float(acc[i]))
        return values

    fitness(incumbent, incumbent_accuracy)
    solver = make_solver(
        config.solver,
        lower,
        upper,
        x0=start,
        popsize=config.popsize,
        seed=seed,
        sigma0=config.search_step * (upper - lower),
        **config.solver_options,
    )
    cut_short = False
    if budget > 1:
        try:
            solver.minimize(fitness, budget - 1)
        except OutOfTime:  # the best candidate so far stands
            cut_short = True
    evaluations = max(budget, 1)
    feasible = best["fitness"] <= 1.0
    if feasible and shrink_limit is not None:
        size_of = functools.partial(points_kept_fraction, param, total)
        start_size = float(size_of(start[None, :])[0])
        z = shortened_step(size_of, start, best["z"], start_size / shrink_limit)
        if z is not best["z"]:  # the shortened step's tune accuracy, for the record
            evaluations += 1
            shortened = param.thresholds(z[None, :])
            size = float(kept_fraction(param, total, shortened)[0])
            best.update(fitness=size, z=z, accuracy=float(scorer(shortened)[0]))
    thresholds = param.thresholds(best["z"][None, :])[0]
    summary = {
        "search_feasible": feasible,
        "search_size": best["fitness"] if feasible else None,
        "search_tune_accuracy": best["accuracy"],
        "search_required_accuracy": required,
        "search_cut_short": cut_short,
    }
    return thresholds, summary, evaluations
