"""BOBYQA (Powell 2009) through Py-BOBYQA, turned into ask/tell with a worker thread.

Py-BOBYQA is licensed **GPL-3.0-or-later**, unlike olmp (Apache-2.0). It is therefore only
an optional extra, ``pip install 'olmp[bobyqa]'``, imported when the user builds a
:class:`BOBYQA`, never at ``import olmp``; whoever installs it accepts its licence.

Py-BOBYQA only offers a callback loop, ``pybobyqa.solve(objfun, x0, bounds=..., ...)``,
which calls ``objfun(x)`` one point at a time and expects the value back. The adapter runs
``solve`` in a daemon worker thread whose ``objfun`` hands ``x`` to the caller's thread and
blocks until :meth:`~olmp.solvers.base.Solver.tell` supplies the value. So:

* Every ask returns exactly one candidate: BOBYQA is sequential, the population size is
  fixed at 1 whatever ``popsize`` says (the value is still validated).
* A candidate that was asked and not told cannot be taken back: the next ask offers it
  again.
* Fitness ``+inf`` (failed evaluations included) cannot go into BOBYQA's quadratic model; it
  is passed as a finite stand-in, ``worst + 1 + |worst|`` of the finite values told so far
  (``1e30`` before any). Constraints are folded into fitness as a penalty (see
  :mod:`olmp.solvers.base`); integer and categorical variables are only rounded, which
  makes the function piecewise constant for a model-based method.
* Py-BOBYQA works in the box scaled to the unit cube (``scaling_within_bounds``) with
  coordinate initial directions, so runs are deterministic: ``seed`` changes nothing. The
  initial trust-region radius ``rhobeg`` is the mean of ``sigma0 / (upper - lower)``,
  capped at 0.49; Py-BOBYQA moves ``x0`` inwards when it is closer than ``rhobeg`` to a
  bound.
* ``maxfun`` of each Py-BOBYQA run is the planned budget (``max_evaluations``, else the
  budget of :meth:`~olmp.solvers.base.Solver.minimize`, else 1000). When a run ends (its
  trust region shrank to ``rhoend`` or its budget is spent) and the caller asks again, a new
  run starts from the best point with ``rhobeg`` doubled (up to 0.25), counted in
  :attr:`BOBYQA.n_restarts`; its first evaluation, the best point, is answered from memory.

Ending the thread: :meth:`BOBYQA.close` (also called when the solver is garbage collected
or leaves a ``with`` block) makes the blocked ``objfun`` raise, which unwinds ``solve`` and
ends the thread. The thread is a daemon, so a caller that stops asking and never closes
does not keep the interpreter from exiting.
"""

from __future__ import annotations

import math
import queue
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from olmp.errors import OlmpError
from olmp.solvers.base import Solver, check_int

#: Largest initial trust-region radius in the unit cube (Py-BOBYQA needs < 0.5).
MAX_RHOBEG = 0.49
#: Largest radius a restart grows to.
MAX_RESTART_RHOBEG = 0.25
#: Value passed for failed evaluations before any finite value was told.
FIRST_STAND_IN = 1e30
#: Seconds between checks that the worker is still alive while the caller waits for it.
_POLL_S = 1.0


class _Stopped(Exception):
    """Raised inside ``objfun`` to unwind Py-BOBYQA when the solver is closed."""


_STOP = object()


@dataclass
class _Run:
    """One Py-BOBYQA run: its thread and the two queues between it and the caller."""

    points: queue.Queue[tuple[str, Any]]  # worker -> caller: ("point" | "done" | "error", ...)
    values: queue.Queue[Any]  # caller -> worker: a float, or _STOP
    thread: threading.Thread | None = None

    def stop(self) -> None:
        self.values.put(_STOP)


def _work(
    run: _Run, solve: Any, x0: np.ndarray, known: float | None, options: dict[str, Any]
) -> None:
    """The worker thread: one ``pybobyqa.solve`` whose objective asks the caller."""
    first = [True]

    def objective(x: np.ndarray) -> float:
        if first[0] and known is not None and np.array_equal(x, x0):
            first[0] = False
            return known
        first[0] = False
        run.points.put(("point", np.array(x, dtype=float)))
        value = run.values.get()
        if value is _STOP:
            raise _Stopped
        return value

    try:
        result = solve(objective, x0, **options)
    except _Stopped:
        return
    except BaseException as error:  # handed to the caller, who raises it
        run.points.put(("error", error))
        return
    run.points.put(("done", result))


class BOBYQA(Solver):
    """BOBYQA (Py-BOBYQA, GPL-3.0+) behind ask/tell through a worker thread.

    Args:
        lower, upper, x0, sigma0, popsize, seed, space: See
            :class:`~olmp.solvers.base.Solver`; the population size is always 1 and
            ``seed`` is unused (BOBYQA is deterministic here).
        max_evaluations: ``maxfun`` of each Py-BOBYQA run (see the module docstring).
        rhoend: Trust-region radius (in the unit cube) at which a run ends; default 1e-8.
    """

    name = "bobyqa"
    summary = "BOBYQA, bound-constrained quadratic-model trust region (Py-BOBYQA)"
    supports = "real (int/cat rounded); 1 per ask (thread); constraints: penalty; GPL"
    backend = "pybobyqa"
    backend_package = "Py-BOBYQA (GPL-3.0-or-later)"
    extra = "bobyqa"
    fixed_popsize = 1

    def __init__(
        self,
        lower: ArrayLike,
        upper: ArrayLike,
        *,
        x0: ArrayLike | None = None,
        sigma0: float | ArrayLike | None = None,
        popsize: int | None = None,
        seed: int = 0,
        space: Sequence[str] | None = None,
        max_evaluations: int | None = None,
        rhoend: float = 1e-8,
    ) -> None:
        self._pybobyqa = self.import_backend()
        super().__init__(
            lower, upper, x0=x0, sigma0=sigma0, popsize=popsize, seed=seed, space=space
        )
        self.max_evaluations = (
            None if max_evaluations is None else check_int("max_evaluations", max_evaluations, 1)
        )
        self.rhobeg = float(min(np.mean(self.sigma0 / (self.upper - self.lower)), MAX_RHOBEG))
        if not (isinstance(rhoend, int | float) and 0 < rhoend < self.rhobeg):
            raise OlmpError(
                f"rhoend must be a number in (0, rhobeg={self.rhobeg:g}), got {rhoend!r}"
            )
        self.rhoend = float(rhoend)
        #: Py-BOBYQA runs started after the first (see the module docstring).
        self.n_restarts = 0
        #: The result of the latest Py-BOBYQA run that ended by itself (``None``: none yet).
        self.last_result: Any = None
        self._planned: int | None = None
        self._run: _Run | None = None
        self._pending: np.ndarray | None = None  # handed to the caller, value not told
        self._worst_finite = -math.inf
        self._closed = False
        self._finalizer: weakref.finalize | None = None

    # -- the worker ------------------------------------------------------------------------

    def _plan(self, budget: int) -> None:
        if self._run is None and self._planned is None:
            self._planned = budget

    def _start_run(self, x0: np.ndarray, known: float | None, rhobeg: float) -> None:
        npt = 2 * self.dim + 1
        budget = self.max_evaluations or self._planned or 1000
        options = {
            "bounds": (self.lower.copy(), self.upper.copy()),
            "npt": npt,
            "rhobeg": rhobeg,
            "rhoend": min(self.rhoend, 0.5 * rhobeg),
            # Never below npt + 1 (Py-BOBYQA warns); the caller stops asking when it is done.
            "maxfun": max(budget, npt + 1),
            "scaling_within_bounds": True,
            "do_logging": False,
            "print_progress": False,
        }
        run = _Run(points=queue.Queue(), values=queue.Queue())
        run.thread = threading.Thread(
            target=_work,
            args=(run, self._pybobyqa.solve, x0.copy(), known, options),
            name=f"olmp-bobyqa-{id(self):x}",
            daemon=True,
        )
        if self._finalizer is not None:
            self._finalizer.detach()
        self._finalizer = weakref.finalize(self, run.stop)
        self._run = run
        run.thread.start()

    def _next_point(self) -> np.ndarray:
        if self._run is None:
            self._start_run(self.x0, None, self.rhobeg)
        while True:
            assert self._run is not None and self._run.thread is not None
            try:
                kind, payload = self._run.points.get(timeout=_POLL_S)
            except queue.Empty:
                if self._run.thread.is_alive():
                    continue
                raise RuntimeError("the Py-BOBYQA worker thread ended without a word") from None
            if kind == "point":
                return payload
            if kind == "error":
                raise RuntimeError(f"Py-BOBYQA failed: {payload!r}") from payload
            self.last_result = payload  # "done": start again from the best point
            self.n_restarts += 1
            rhobeg = min(self.rhobeg * 2.0**self.n_restarts, MAX_RESTART_RHOBEG)
            assert self._best_x is not None  # a run cannot end before evaluating anything
            # What BOBYQA was told for the best point: its fitness, penalised if infeasible.
            told = self._best_f + self.constraint_penalty * self._best_violation
            self._start_run(self._best_x, self._stand_in(told), max(rhobeg, self.rhobeg))

    def close(self) -> None:
        """Stop the worker thread (it unwinds Py-BOBYQA and ends); idempotent."""
        self._closed = True
        if self._finalizer is not None:
            self._finalizer()
        if self._run is not None and self._run.thread is not None:
            self._run.thread.join(timeout=5.0)

    @property
    def worker_alive(self) -> bool:
        """Whether a Py-BOBYQA worker thread is running (blocked or computing)."""
        return bool(self._run and self._run.thread and self._run.thread.is_alive())

    # -- ask / tell ------------------------------------------------------------------------

    def _stand_in(self, value: float) -> float:
        if math.isfinite(value):
            return value
        if math.isfinite(self._worst_finite):
            return self._worst_finite + 1.0 + abs(self._worst_finite)
        return FIRST_STAND_IN

    def _ask(self) -> np.ndarray:
        if self._closed:
            raise OlmpError("this BOBYQA solver was closed; build a new one to search again")
        if self._pending is None:
            self._pending = self._next_point()
        return self._pending[None, :]

    def _tell(self, candidates: np.ndarray, fitness: np.ndarray) -> None:
        value = float(fitness[0])
        if math.isfinite(value):
            self._worst_finite = max(self._worst_finite, value)
        assert self._run is not None
        self._pending = None
        self._run.values.put(self._stand_in(value))
