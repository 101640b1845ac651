"""Random search around the incumbent: the baseline the released OLMP code amounted to."""

from __future__ import annotations

import math

import numpy as np

from olmp.dfo.solvers.base import Solver, clip_into_box


class RandomSearch(Solver):
    """Gaussian sampling with a fixed step around the best candidate found so far.

    Every :meth:`ask` draws ``popsize`` points ``x_best + sigma0 * N(0, I)`` and clips them
    into the box, where ``x_best`` is the best candidate with finite fitness told so far
    (``x0`` until there is one). Nothing adapts: the step stays ``sigma0``. This is what
    the released OLMP code effectively did (its NCS never replaced a parent), and it is
    the baseline the other solvers have to beat. Default ``popsize`` is 10.
    """

    name = "random"
    summary = "Gaussian sampling with a fixed step around the incumbent (baseline)"
    supports = "real (int/cat rounded); batch = popsize; constraints: penalty"
    # In the engine, one trial at a time around the incumbent (olmp.dfo.sampler.RandomSampler).
    sampler = "ahead"
    parallel_asks = "any number"
    order_dependent = True

    def _ask(self) -> np.ndarray:
        centre = self._best_x if math.isfinite(self._best_f) else self.x0
        steps = self.sigma0 * self.rng.standard_normal((self.popsize, self.dim))
        return clip_into_box(centre + steps, self.lower, self.upper)

    def _tell(self, candidates: np.ndarray, fitness: np.ndarray) -> None:
        # The incumbent is the base class's best-so-far; there is nothing else to learn.
        return None
