"""Samplers: what a :class:`~olmp.dfo.study.Study` asks for trials and tells results to.

The interface is small, as in optuna: :meth:`Sampler.ask` proposes the parameters of one
trial (or ``None`` when it must wait for results first), :meth:`Sampler.tell` hands back the
result of any asked trial, in any order, and :meth:`Sampler.warm_start` passes the results
of earlier trials before the first ask. The study's loop, budgets and record live apart.

:class:`BoxSampler` runs any box solver (:class:`~olmp.dfo.solvers.base.Solver`) on a
space through its unit-box transform (:class:`Coordinates`; a space of plain real
variables is searched in its own box, so a box solver there runs exactly as through
:func:`olmp.solvers.make_solver`). A box solver wants the results of a whole population
(``ask`` gives ``popsize`` rows) before it proposes more, told row by row in its order, so
the sampler hands the rows out as trials one at a time, keeps results that come back early,
and tells the solver once every row of the population has come back. Hence its trials do
not depend on the order results come back in, and at most ``popsize`` trials are out at
once. :class:`RandomSampler` (``random``) asks ahead without waiting.

A box solver rounds integer and categorical coordinates, so two of its rows often decode to
the same settings: SRacos, resampling a few coordinates of a good point, proposed settings
already trained in 5 to 9 of 30 trials of an ``olmp tune --task ensemble`` search. The
:class:`BoxSampler` therefore spends no trial on settings it has a result for (an earlier
trial's, or a warm start's): the solver is told that result, as if evaluated again, and
asked on; a row repeating a trial still out waits for its result. Only after
:data:`MAX_REPEATS` such rows in a row (a solver that proposes nothing new has converged)
does a repeat go out as a trial, so that a study still ends within its budget.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from olmp.dfo.solvers.base import Solver
from olmp.dfo.solvers.checks import Option, check_options, integer, real
from olmp.dfo.space import Real, Space, settings_key
from olmp.errors import warn_user

#: Common solver arguments a study passes through its ``options`` (``sigma0``: the initial
#: step as a fraction of the unit box; ``popsize``: candidates per population).
_BOX_OPTIONS = {
    "popsize": Option(None, integer(1, optional=True)),
    "sigma0": Option(
        None, lambda name, v: v if v is None else real(0.0, 1.0, open_low=True)(name, v)
    ),
}
BOX_ARGUMENTS = tuple(_BOX_OPTIONS)

#: Rows in a row a :class:`BoxSampler` answers from earlier results before it hands a
#: repeat out as a trial (see the module docstring).
MAX_REPEATS = 20


@dataclass(frozen=True)
class Told:
    """A result as a sampler sees it: ``value`` is ``+inf`` for a failed evaluation."""

    params: dict[str, Any]
    value: float
    constraints: tuple[float, ...] = ()

    @property
    def violation(self) -> float:
        return float(sum(max(c, 0.0) for c in self.constraints))


def best_of(records: Sequence[Told]) -> Told | None:
    """The least violating record, then the least value (``None`` for none)."""
    return min(records, key=lambda r: (r.violation, r.value), default=None)


class Coordinates:
    """The box a box solver searches for ``space``: the unit box of
    :meth:`~olmp.dfo.space.Space.to_unit`, or, when every variable is a linear real one
    without a condition, the variables' own box (no transform at all)."""

    def __init__(self, space: Space) -> None:
        self.space = space
        self.plain = all(isinstance(v, Real) and not v.log and not v.when for v in space)
        if self.plain:
            self.names = space.names
            self.lower = np.array([v.low for v in space], dtype=float)  # type: ignore[attr-defined]
            self.upper = np.array([v.high for v in space], dtype=float)  # type: ignore[attr-defined]
        else:
            self.lower, self.upper = np.zeros(space.dim), np.ones(space.dim)

    def decode(self, x: np.ndarray) -> dict[str, Any]:
        if self.plain:
            return dict(zip(self.names, x.tolist(), strict=True))
        return self.space.from_unit(x)

    def encode(self, params: dict[str, Any]) -> np.ndarray:
        if self.plain:
            return np.array([params[name] for name in self.names], dtype=float)
        return self.space.to_unit(params)


class Sampler:
    """Proposes trials for a study. Subclasses override :meth:`ask` and :meth:`tell`.

    Args:
        solver: The registered solver class this sampler serves.
        space: The space searched.
        seed: Seed of everything random in the sampler.
        n_constraints: Constraint values in every result.
        budget: Evaluations the study plans (``None``: unknown).
        options: The solver's own options, plus ``popsize`` and ``sigma0`` (a fraction of
            the unit box).
    """

    def __init__(
        self,
        solver: type[Solver],
        space: Space,
        *,
        seed: int = 0,
        n_constraints: int = 0,
        budget: int | None = None,
        options: dict[str, Any] | None = None,
    ) -> None:
        self.solver_class = solver
        self.space = space
        self.seed = seed
        self.n_constraints = n_constraints
        self.budget = budget
        self.options = dict(options or {})
        self.warm: list[Told] = []
        self.box = Coordinates(space)

    def warm_start(self, records: Sequence[Told]) -> None:
        """Learn from earlier results before the first :meth:`ask` (default: keep them)."""
        self.warm = list(records)

    def ask(self, trial_id: int) -> dict[str, Any] | None:
        """Parameters for trial ``trial_id``, or ``None`` until more results are told."""
        raise NotImplementedError

    def tell(self, trial_id: int, record: Told) -> None:
        """The result of an asked trial (any order)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release what the sampler holds (threads, child processes)."""
        return None

    def max_in_flight(self) -> int | None:
        """The most trials this sampler hands out before it needs results back (``None``:
        no limit). Known after the first :meth:`ask`."""
        return None

    def warn_idle_workers(self, workers: int) -> None:
        """Say so when the solver cannot keep ``workers`` busy (SRacos at its default popsize
        1, BOBYQA, COBYQA), which a user asking for parallel trials would not see. Call it
        after the first :meth:`ask`."""
        limit = self.max_in_flight()
        if limit is None or limit >= workers:
            return
        settable = self.solver_class.fixed_popsize is None
        advice = f"; the solver option popsize={workers} would keep them busy" if settable else ""
        warn_user(
            f"solver {self.solver_class.name} has at most {limit} trial(s) out at once (its "
            f"popsize), so the {workers} workers run {limit} at a time{advice}"
        )


class BoxSampler(Sampler):
    """A box solver on the space's unit box; see the module docstring."""

    def __init__(self, solver: type[Solver], space: Space, **kwargs: Any) -> None:
        super().__init__(solver, space, **kwargs)
        self.solver: Solver | None = None  # built at the first ask, after any warm start
        self._rows = np.empty((0, space.dim))
        self._params: list[dict[str, Any]] = []  # the settings of each row of the population
        self._keys: list[str] = []  # and their keys (settings_key)
        self._results: list[Told | None] = []
        self._handed = 0
        self._row_of: dict[int, int] = {}
        self._twin_of: dict[int, int] = {}  # row -> the row out with the same settings
        self._known: dict[str, Told] = {}  # settings -> the result told for them
        self._repeats = 0  # rows answered from _known since the last trial handed out
        # The warm start the solver starts from, until its first population is drawn.
        self._start: tuple[np.ndarray, Told] | None = None

    def warm_start(self, records: Sequence[Told]) -> None:
        super().warm_start(records)
        for record in records:
            self._known[settings_key(record.params)] = record

    def _build(self) -> Solver:
        best = best_of([r for r in self.warm if math.isfinite(r.value)])
        x0 = None if best is None else self.box.encode(best.params)
        if best is not None:
            self._start = (x0, best)
        options = dict(self.options)
        if options.get("sigma0") is not None:  # a fraction of the box, per coordinate
            options["sigma0"] = options["sigma0"] * (self.box.upper - self.box.lower)
        solver = self.solver_class(self.box.lower, self.box.upper, x0=x0, seed=self.seed, **options)
        if self.budget is not None:
            solver.plan(self.budget)
        return solver

    def ask(self, trial_id: int) -> dict[str, Any] | None:
        if self.solver is None:
            self.solver = self._build()
        while True:
            if self._handed == len(self._rows):
                if any(r is None for r in self._results):
                    return None  # the population is out; wait for its results
                self._draw()
                continue
            row = self._handed
            self._handed += 1
            if self._repeats < MAX_REPEATS and self._answer_repeat(row):
                self._repeats += 1
                continue
            self._repeats = 0
            self._row_of[trial_id] = row
            return dict(self._params[row])

    def max_in_flight(self) -> int | None:
        # A box solver waits for its whole population (popsize rows) before drawing more.
        return None if self.solver is None else self.solver.popsize

    def _draw(self) -> None:
        """Ask the solver for its next population."""
        assert self.solver is not None
        self._rows = self.solver.ask()
        self._params = [self.box.decode(row) for row in self._rows]
        self._keys = [settings_key(params) for params in self._params]
        self._results = [None] * len(self._rows)
        self._handed = 0
        self._twin_of = {}
        start, self._start = self._start, None
        if start is not None and np.allclose(self._rows[0], start[0], rtol=0.0, atol=1e-9):
            # A solver that evaluates its start first (SRacos) is told the warm result
            # (whose encoding may not decode to exactly its parameters).
            self._results[0], self._handed = start[1], 1
            self._tell_if_complete()

    def _answer_repeat(self, row: int) -> bool:
        """Whether ``row`` repeats settings with a result (told now) or out (waiting)."""
        key = self._keys[row]
        if key in self._known:
            self._results[row] = self._known[key]
            self._tell_if_complete()
            return True
        out = [r for r in self._row_of.values() if self._keys[r] == key]
        if out:
            self._twin_of[row] = out[0]
            return True
        return False

    def tell(self, trial_id: int, record: Told) -> None:
        row = self._row_of.pop(trial_id)
        self._results[row] = record
        self._known[self._keys[row]] = record
        for twin, of in self._twin_of.items():
            if of == row:
                self._results[twin] = record
        self._tell_if_complete()

    def _tell_if_complete(self) -> None:
        """Tell the solver its population once every row of it has a result."""
        if self._handed == len(self._rows) and all(r is not None for r in self._results):
            assert self.solver is not None
            told = [r for r in self._results if r is not None]
            values = [r.value for r in told]
            constraints = [r.constraints for r in told] if self.n_constraints else None
            self.solver.tell(self._rows, values, constraints)

    def close(self) -> None:
        if self.solver is not None:
            self.solver.close()


class RandomSampler(Sampler):
    """Random search around the incumbent (``random``), asking ahead.

    As the box solver :class:`~olmp.dfo.solvers.random_search.RandomSearch`: blocks of
    ``popsize`` (default 10) points ``x_best + sigma0 * N(0, I)`` clipped into the box
    (``sigma0``: 0.2 of the box by default), ``x_best`` the best result told when the
    block is drawn (``x0``, the box centre or the best warm-start point, before any). A
    study run one trial at a time therefore asks exactly what the box solver would; but
    the next block is drawn at once, whether or not the last one has come back, so any
    number of trials may be out.
    """

    def __init__(self, solver: type[Solver], space: Space, **kwargs: Any) -> None:
        super().__init__(solver, space, **kwargs)
        self.rng = np.random.default_rng(self.seed)
        width = self.box.upper - self.box.lower
        self.sigma = float(self.options.get("sigma0") or 0.2) * width
        self.popsize = int(self.options.get("popsize") or 10)
        self.best: Told | None = None
        self._centre = 0.5 * (self.box.lower + self.box.upper)
        self._block = np.empty((0, space.dim))
        self._drawn: dict[int, np.ndarray] = {}  # the point of each trial out

    def warm_start(self, records: Sequence[Told]) -> None:
        super().warm_start(records)
        for record in records:
            self._consider(record, self.box.encode(record.params))

    def _consider(self, record: Told, point: np.ndarray) -> None:
        if not math.isfinite(record.value):
            return
        if self.best is None or (record.violation, record.value) < (
            self.best.violation,
            self.best.value,
        ):
            self.best = record
            # The point drawn, not the encoding of its parameters: steps from it keep the
            # arg-max margins of categorical variables as they were drawn.
            self._centre = point

    def ask(self, trial_id: int) -> dict[str, Any]:
        if not len(self._block):
            steps = self.sigma * self.rng.standard_normal((self.popsize, self.space.dim))
            self._block = np.clip(self._centre + steps, self.box.lower, self.box.upper)
        self._drawn[trial_id], self._block = self._block[0], self._block[1:]
        return self.box.decode(self._drawn[trial_id])

    def tell(self, trial_id: int, record: Told) -> None:
        self._consider(record, self._drawn.pop(trial_id))


def make_sampler(solver: type[Solver], space: Space, **kwargs: Any) -> Sampler:
    """The sampler that runs ``solver`` on ``space`` (the solver's ``sampler`` names it):
    ``"box"`` (:class:`BoxSampler`), ``"ahead"`` (:class:`RandomSampler`) or ``"tpe"``
    (:class:`~olmp.dfo.optuna_sampler.TPESampler`). Options are checked here, so a bad
    one fails before any trial."""
    options = dict(kwargs.pop("options", None) or {})
    check_options(solver.name, {**solver.options, **_BOX_OPTIONS}, options)
    if options.get("popsize") is not None:  # the solver is built at the first ask, later
        solver.check_popsize(options["popsize"])
    if not solver.available():
        solver.import_backend()  # raises OlmpError with the install line
    kind = solver.sampler
    if kind == "tpe":
        from olmp.dfo.optuna_sampler import TPESampler  # imports optuna: only when picked

        return TPESampler(solver, space, options=options, **kwargs)
    if kind == "ahead":
        return RandomSampler(solver, space, options=options, **kwargs)
    return BoxSampler(solver, space, options=options, **kwargs)
