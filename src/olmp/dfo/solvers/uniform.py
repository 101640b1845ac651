"""Uniform random search: the baseline of hyper-parameter search (Bergstra & Bengio, 2012)."""

from __future__ import annotations

import numpy as np

from olmp.dfo.solvers.base import Solver


class UniformSearch(Solver):
    """Every candidate drawn uniformly from the whole box, independently of the results.

    On a space of the engine the box is the unit box, so a log-scaled variable is drawn
    uniformly in its logarithm, an integer uniformly over its values and a categorical one
    uniformly over its choices: random search over the space as declared. It learns
    nothing, so it is the reference a search method must beat to have learned anything.
    ``x0`` and ``sigma0`` are not used. Unlike ``random`` (steps around the incumbent, a
    local search), it never narrows in. Default ``popsize`` is 10.
    """

    name = "uniform"
    summary = "uniform random sampling of the whole space (random search; learns nothing)"
    supports = "real (int/cat rounded); batch = popsize; constraints: penalty"

    def _ask(self) -> np.ndarray:
        return self.rng.uniform(self.lower, self.upper, (self.popsize, self.dim))

    def _tell(self, candidates: np.ndarray, fitness: np.ndarray) -> None:
        # Nothing to learn: the base class keeps the best so far.
        return None
