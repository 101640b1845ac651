"""CMA-ES through pycma (``cma.CMAEvolutionStrategy``), behind the common ask/tell interface."""

from __future__ import annotations

import math

import numpy as np

from olmp.dfo.solvers.base import Solver


class CMAES(Solver):
    """Covariance Matrix Adaptation Evolution Strategy (pycma), box-constrained.

    pycma runs with its ``bounds`` option (its smooth boundary transformation, so every
    candidate is feasible), a global step of 1 and ``CMA_stds = sigma0``, so the initial
    step follows the width of each coordinate. Random numbers come from this solver's own
    generator (pycma's ``randn`` option), so runs are reproducible from ``seed`` and
    pycma's use of the global ``numpy.random`` state never interferes.

    Default ``popsize`` is pycma's ``4 + floor(3 ln dim)``.

    How awkward tells are handled, honestly rather than by inventing information:

    * Partial population (fewer rows than asked, e.g. the last batch of
      :meth:`~olmp.dfo.solvers.base.Solver.minimize`): pycma can only update from complete
      populations, so the rows count towards best-so-far and ``n_evaluations`` but the
      search distribution is left unchanged; the next :meth:`ask` samples afresh from it.
    * ``NaN``/``+inf`` fitness: CMA-ES only uses the ranking of a population, so such values
      are handed to pycma as a finite value worse than every finite one told with them. If
      no value in the population is finite, the population says nothing and is not passed on.
    """

    name = "cmaes"
    summary = "CMA-ES with box bounds (pycma)"
    supports = "real (int/cat rounded); batch = popsize >= 2; constraints: penalty"
    backend = "cma"
    backend_package = "cma (BSD-3-Clause)"
    min_popsize = 2

    def _setup(self) -> None:
        options = {
            "bounds": [self.lower.tolist(), self.upper.tolist()],
            "popsize": self.popsize,
            "CMA_stds": self.sigma0.tolist(),
            "verbose": -9,
            # NaN seed: pycma neither reseeds the global numpy state nor warns that the seed
            # is unused, since sampling goes through our own generator below.
            "seed": math.nan,
            "randn": self._standard_normal,
        }
        if self.dim == 1:
            # pycma (4.5) fails on one variable once a step outgrows its cap (a third of the
            # bounds' width by default: a 0-d array in _stds_into_limits): no cap there.
            options["maxstd"] = math.inf
        # Imported here, not at the top: pycma pulls in scipy.stats and matplotlib, about a
        # second that every olmp command paid at start-up whichever solver it used.
        import cma

        self._es = cma.CMAEvolutionStrategy(self.x0.tolist(), 1.0, options)
        self._pycma_population: list[np.ndarray] = []
        #: Populations pycma learned from (complete ones with at least one finite value).
        self.n_updates = 0

    def _standard_normal(self, *shape: int) -> np.ndarray:
        # pycma calls randn(lam, dim) like numpy.random.randn.
        return self.rng.standard_normal(shape)

    def _default_popsize(self) -> int:
        return 4 + int(3 * math.log(self.dim))

    def _ask(self) -> np.ndarray:
        # Keep pycma's own arrays: tell must hand back exactly those objects so pycma can
        # find the internal (untransformed) samples it drew them from.
        self._pycma_population = self._es.ask()
        return np.array(self._pycma_population)

    def _tell(self, candidates: np.ndarray, fitness: np.ndarray) -> None:
        if candidates.shape[0] < self.popsize:
            return  # partial population: see the class docstring
        finite = np.isfinite(fitness)
        if not finite.any():
            return
        worst = float(fitness[finite].max())
        stand_in = worst + 1.0 + abs(worst)
        values = np.where(finite, fitness, stand_in)
        self._es.tell(self._pycma_population, values.tolist())
        self.n_updates += 1
