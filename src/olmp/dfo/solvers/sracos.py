"""Sequential RACOS (Hu, Qian & Yu, AAAI 2017) through ZOOpt (``zoopt``), ask/tell.

ZOOpt is an optional extra (MIT licence): ``pip install 'olmp[sracos]'``. It is imported
when an :class:`SRacos` is built, never at ``import olmp``.

SRACOS keeps the best ``train_size`` solutions, splits them into a few positive (best) and
the negative rest, learns a random axis-parallel box that holds a positive solution and
none of the negatives, and samples the next candidate inside it (or, rarely, anywhere).
ZOOpt 0.4.2 offers it as ask/tell through ``SRacosTune.suggest()`` / ``complete()`` (written
for Ray Tune), which this adapter drives, so no thread is needed. How it is driven:

* ZOOpt works in the unit cube (precision 1e-10); rows are mapped onto ``[lower, upper]``.
  ``x0`` is the first initial sample; the other ``train_size - 1`` are uniform. ``sigma0``
  is not used: SRACOS has no step size.
* ``SRacosTune`` deadlocks if its initial samples are told one by one before the next
  suggestion is asked for (its "wait for the initial samples" switch is only flipped by a
  suggestion made while some are outstanding). The adapter therefore asks for all initial
  samples at the start, flips the switch, and hands the samples out ``popsize`` at a time.
* Up to ``popsize`` candidates are in flight at once (ZOOpt's ``parallel_num``); the default
  is 1, SRACOS's sequential mode. A batch may be shorter than ``popsize`` at the end of the
  initial samples (``variable_batch``).
* Rows not told (a partial tell, or asking again without telling) are offered again at the
  next ask: ZOOpt still counts them as in flight.
* If ZOOpt cannot find a candidate distinct from those it holds (it gives up after 100
  draws, i.e. it has converged to its precision), the adapter hands ZOOpt a uniform random
  point of its own instead and counts it in :attr:`SRacos.n_fallbacks`.
* ZOOpt draws from numpy's global generator and keeps its float precisions in a module
  global. The adapter swaps in this solver's own generator state and precisions around
  every call into ZOOpt and restores the caller's afterwards, so runs are reproducible from
  ``seed`` and the global ``numpy.random`` state is left as it was. This is not safe if
  another thread uses ``numpy.random`` at the same time.
* Integer and categorical variables are rounded by the base class; constraints are folded
  into fitness as a penalty (see :mod:`olmp.dfo.solvers.base`).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np

from olmp.dfo.solvers.base import Option, Solver
from olmp.dfo.solvers.checks import integer, real
from olmp.errors import OlmpError

#: Precision ZOOpt rounds the unit-cube coordinates to.
PRECISION = 1e-10


def default_sizes(budget: int) -> tuple[int, int]:
    """ZOOpt's own ``(train_size, positive_size)`` for a run of ``budget`` evaluations."""
    if budget <= 50:
        return 4, 1
    if budget <= 100:
        return 6, 1
    if budget <= 1000:
        return 12, 2
    return 22, 2


class SRacos(Solver):
    """Sequential RACOS (ZOOpt's ``SRacosTune``) behind the ask/tell interface.

    Args:
        lower, upper, x0, sigma0, popsize, seed, space: See
            :class:`~olmp.dfo.solvers.base.Solver` (``sigma0`` is unused; default ``popsize`` 1).
        max_evaluations: Planned length of the run, from which ``train_size`` and
            ``positive_size`` default as in ZOOpt (12 and 2 for 101-1000 evaluations). If
            ``None``, :meth:`minimize` uses its budget; plain ask/tell assumes 1000.
        train_size: Solutions SRACOS keeps (and initial samples it draws), at least 3.
        positive_size: How many of them count as positive, in ``[1, train_size - 2]``
            (ZOOpt needs two negative solutions).
        exploration_rate: Probability of sampling the whole box instead of the learned
            region; ZOOpt's default 0.01.
    """

    name = "sracos"
    summary = "Sequential RACOS, classification-based optimisation (ZOOpt)"
    supports = "real (int/cat rounded); batch <= popsize in flight; constraints: penalty"
    backend = "zoopt"
    backend_package = "zoopt (MIT)"
    extra = "sracos"
    variable_batch = True
    options: ClassVar[dict[str, Option]] = {
        "max_evaluations": Option(None, integer(1, optional=True), "planned run length"),
        "train_size": Option(None, integer(3, optional=True), "solutions kept"),
        "positive_size": Option(None, integer(1, optional=True), "of which positive"),
        "exploration_rate": Option(0.01, real(0.0, 1.0), "chance of sampling the whole box"),
    }

    def _setup(self) -> None:
        # ZOOpt fails (an IndexError) unless it keeps at least two negative solutions.
        sizes = (self.positive_size, self.train_size)
        if None not in sizes and sizes[0] > sizes[1] - 2:  # type: ignore[operator]
            raise OlmpError(
                f"positive_size must be at most train_size - 2 (ZOOpt keeps two or more "
                f"negative solutions), got {sizes[0]} and {sizes[1]}"
            )
        #: Candidates the adapter made up because ZOOpt had none (see the module docstring).
        self.n_fallbacks = 0
        self._planned: int | None = None
        self._tune: Any = None  # the SRacosTune, built at the first ask
        self._np_state = np.random.RandomState(self.seed % 2**32).get_state()
        self._precisions: list[Any] = []
        self._initial: list[Any] = []  # initial samples not handed out yet
        self._in_flight: list[tuple[Any, np.ndarray]] = []  # handed out, not told

    def _default_popsize(self) -> int:
        return 1

    def _plan(self, budget: int) -> None:
        if self._tune is None and self._planned is None:
            self._planned = budget

    @contextlib.contextmanager
    def _zoopt_state(self) -> Iterator[None]:
        """Run ZOOpt with this solver's numpy generator state and float precisions."""
        from zoopt.utils import zoo_global

        outer_state = np.random.get_state()
        outer_precisions = getattr(zoo_global.gl, "float_precisions", None)
        np.random.set_state(self._np_state)
        zoo_global.gl.float_precisions = self._precisions
        try:
            yield
        finally:
            self._np_state = np.random.get_state()
            self._precisions = zoo_global.gl.float_precisions
            np.random.set_state(outer_state)
            zoo_global.gl.float_precisions = outer_precisions

    def _start(self) -> None:
        from zoopt import Dimension2, Parameter, ValueType
        from zoopt.algos.opt_algorithms.racos.sracos import SRacosTune

        budget = self.max_evaluations or self._planned or 1000
        train, positive = default_sizes(budget)
        train = self.train_size or max(train, (self.positive_size or 0) + 2)
        positive = self.positive_size or min(positive, train - 2)
        self.train_size, self.positive_size = train, positive
        start = (self.x0 - self.lower) / (self.upper - self.lower)
        with self._zoopt_state():
            dimension = Dimension2([(ValueType.CONTINUOUS, [0.0, 1.0], PRECISION)] * self.dim)
            parameter = Parameter(
                budget=budget,
                # numpy floats, as in ZOOpt's own samples: ZOOpt's test for duplicate
                # solutions counts coordinates of different types as different.
                init_samples=[list(np.clip(start, 0.0, 1.0))],
                exploration_rate=self.exploration_rate,
                autoset=False,
            )
            parameter.set_train_size(train)
            parameter.set_positive_size(positive)
            parameter.set_negative_size(train - positive)
            self._tune = SRacosTune(dimension, parameter, parallel_num=self.popsize)
            self._initial = [self._suggest() for _ in range(train)]
            # The suggestion that flips SRacosTune to "wait for the initial samples"; made
            # now, while they are outstanding, or SRacosTune would never sample again.
            assert self._tune.suggest() is None
        self._initial = [(solution, self._to_box(solution)) for solution in self._initial]

    def _suggest(self) -> Any:
        """One suggestion from ZOOpt, or a uniform one when ZOOpt has none (in ZOOpt state)."""
        tune = self._tune
        counters = (tune.init_num, tune.live_num)
        solution = tune.suggest()
        if hasattr(solution, "get_x"):
            return solution
        # No distinct point found: undo the counters and count our own point as a suggestion.
        tune.init_num, tune.live_num = counters[0] + 1, counters[1] + 1
        self.n_fallbacks += 1
        point = np.round(self.rng.uniform(size=self.dim), 10)
        return tune.get_objective().construct_solution(list(point))

    def _propose(self) -> Any:
        """The next candidate after the initial samples (in ZOOpt state): ZOOpt's own
        suggestion here; :class:`~olmp.dfo.solvers.expsracos.ExpSRacos` chooses among several."""
        return self._suggest()

    def _to_box(self, solution: Any) -> np.ndarray:
        unit = np.asarray(solution.get_x(), dtype=float)
        return self.lower + unit * (self.upper - self.lower)

    def _ask(self) -> np.ndarray:
        if self._tune is None:
            self._start()
        while len(self._in_flight) < self.popsize and self._initial:
            self._in_flight.append(self._initial.pop(0))
        initial_phase = self._tune.complete_num < self.train_size
        if not initial_phase:
            with self._zoopt_state():
                while len(self._in_flight) < self.popsize:
                    solution = self._propose()
                    self._in_flight.append((solution, self._to_box(solution)))
        return np.array([row for _, row in self._in_flight])

    def _tell(self, candidates: np.ndarray, fitness: np.ndarray) -> None:
        told, self._in_flight = self._in_flight[: len(fitness)], self._in_flight[len(fitness) :]
        with self._zoopt_state():
            for (solution, _), value in zip(told, fitness, strict=True):
                # ZOOpt compares values with < only, so +inf ranks last as it should.
                self._tune.complete(solution, float(value) if math.isfinite(value) else math.inf)
