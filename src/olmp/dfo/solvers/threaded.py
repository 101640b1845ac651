"""Ask/tell for libraries that only offer a callback loop, through a worker thread.

Py-BOBYQA's ``solve(objfun, x0, ...)`` and SciPy's ``minimize(fun, x0, method="COBYQA")``
call ``objfun(x)`` one point at a time and expect the value back. :class:`CallbackSolver`
runs such a loop in a daemon worker thread whose ``objfun`` hands ``x`` to the caller's
thread and blocks until :meth:`~olmp.dfo.solvers.base.Solver.tell` supplies the value. So:

* Every ask returns exactly one candidate (``fixed_popsize = 1``; ``popsize`` is still
  validated). A candidate that was asked and not told cannot be taken back: the next ask
  offers it again.
* Fitness ``+inf`` (failed evaluations included) cannot go into a model; it is passed as a
  finite stand-in, ``worst + 1 + |worst|`` of the finite values told so far (``1e30``
  before any).
* When a run ends (its trust region shrank or its budget is spent) and the caller asks
  again, a new run starts from the best point (:attr:`CallbackSolver.n_restarts`); its
  first evaluation, the best point, is answered from memory.
* ``max_evaluations`` is the budget of each run (else the budget of
  :meth:`~olmp.dfo.solvers.base.Solver.minimize`, else 1000).

Ending the thread: :meth:`CallbackSolver.close` (also called when the solver is garbage
collected or leaves a ``with`` block) makes the blocked ``objfun`` raise, which unwinds the
library's loop and ends the thread. The thread is a daemon, so a caller that stops asking
and never closes does not keep the interpreter from exiting.
"""

from __future__ import annotations

import abc
import math
import queue
import threading
import weakref
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from olmp.dfo.solvers.base import Option, Solver
from olmp.dfo.solvers.checks import integer, one_of
from olmp.errors import OlmpError

#: Value passed for failed evaluations before any finite value was told.
FIRST_STAND_IN = 1e30
#: Seconds between checks that the worker is still alive while the caller waits for it.
_POLL_S = 1.0


class _Stopped(Exception):
    """Raised inside ``objfun`` to unwind the library's loop when the solver is closed."""


_STOP = object()


@dataclass
class _Run:
    """One run of the library: its thread and the two queues between it and the caller."""

    points: queue.Queue[tuple[str, Any]]  # worker -> caller: ("point" | "done" | "error", ...)
    values: queue.Queue[Any]  # caller -> worker: what tell supplied, or _STOP
    thread: threading.Thread | None = None

    def stop(self) -> None:
        self.values.put(_STOP)


def _work(run: _Run, solve: Any, x0: np.ndarray, known: Any, options: dict[str, Any]) -> None:
    """The worker thread: one run of the library, whose objective asks the caller."""
    first = [True]

    def objective(x: np.ndarray) -> Any:
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
        result = solve(objective, x0.copy(), options)
    except _Stopped:
        return
    except BaseException as error:  # handed to the caller, who raises it
        run.points.put(("error", error))
        return
    run.points.put(("done", result))


#: The ``model`` option of the model-based (trust-region) solvers: how many points their
#: interpolation models use. ``quadratic`` (2d + 1, the libraries' default) models
#: curvature; ``linear`` (d + 1) needs fewer evaluations before each step, which pays on
#: short runs such as the attack's block batches of about 1.3 evaluations per variable.
MODEL_OPTION = Option("quadratic", one_of("quadratic", "linear"), "interpolation model")


def interpolation_points(model: str, dim: int) -> int:
    """Points of a ``model`` (see :data:`MODEL_OPTION`) interpolation model in ``dim`` d."""
    return dim + 1 if model == "linear" else 2 * dim + 1


class CallbackSolver(Solver):
    """A solver whose library drives the loop; see the module docstring."""

    fixed_popsize = 1
    parallel_asks = "1 (sequential)"
    options: ClassVar[dict[str, Option]] = {
        "max_evaluations": Option(None, integer(1, optional=True), "budget of each run"),
    }

    def _setup(self) -> None:
        #: Runs started after the first (see the module docstring).
        self.n_restarts = 0
        #: The result of the latest run that ended by itself (``None``: none yet).
        self.last_result: Any = None
        self._planned: int | None = None
        self._run: _Run | None = None
        self._pending: np.ndarray | None = None  # handed to the caller, value not told
        self._worst_finite = -math.inf
        self._closed = False
        self._finalizer: weakref.finalize | None = None

    # -- what a library adapter provides ----------------------------------------------------

    @abc.abstractmethod
    def _run_options(self, restart: int) -> dict[str, Any]:
        """Options of run number ``restart`` (0: the first), computed in the caller's thread."""

    @abc.abstractmethod
    def _solve_function(self) -> Any:
        """``solve(objective, x0, options)``, which runs the library's loop to its end in the
        worker thread. It must not hold on to the solver, or a dropped solver could never
        be collected and its thread never stopped."""

    def _told_value(self) -> Any:
        """What the library was told for the best point (answered from memory on restart)."""
        return self._stand_in(self._best_f + self.constraint_penalty * self._best_violation)

    # -- the worker ------------------------------------------------------------------------

    def budget(self) -> int:
        """Evaluations one run may spend (see the module docstring)."""
        return self.max_evaluations or self._planned or 1000

    def _plan(self, budget: int) -> None:
        if self._run is None and self._planned is None:
            self._planned = budget

    def _start_run(self, x0: np.ndarray, known: Any) -> None:
        run = _Run(points=queue.Queue(), values=queue.Queue())
        options = self._run_options(self.n_restarts)
        run.thread = threading.Thread(
            target=_work,
            args=(run, self._solve_function(), x0.copy(), known, options),
            name=f"olmp-{self.name}-{id(self):x}",
            daemon=True,
        )
        if self._finalizer is not None:
            self._finalizer.detach()
        self._finalizer = weakref.finalize(self, run.stop)
        self._run = run
        run.thread.start()

    def _next_point(self) -> np.ndarray:
        if self._run is None:
            self._start_run(self.x0, None)
        while True:
            assert self._run is not None and self._run.thread is not None
            try:
                kind, payload = self._run.points.get(timeout=_POLL_S)
            except queue.Empty:
                if self._run.thread.is_alive():
                    continue
                raise RuntimeError(f"the {self.name} worker thread ended without a word") from None
            if kind == "point":
                return payload
            if kind == "error":
                raise RuntimeError(f"{self.backend_package} failed: {payload!r}") from payload
            self.last_result = payload  # "done": start again from the best point
            self.n_restarts += 1
            assert self._best_x is not None  # a run cannot end before evaluating anything
            self._start_run(self._best_x, self._told_value())

    def close(self) -> None:
        """Stop the worker thread (it unwinds the library's loop and ends); idempotent."""
        self._closed = True
        if self._finalizer is not None:
            self._finalizer()
        if self._run is not None and self._run.thread is not None:
            self._run.thread.join(timeout=5.0)

    @property
    def worker_alive(self) -> bool:
        """Whether a worker thread is running (blocked or computing)."""
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
            raise OlmpError(f"this {self.name} solver was closed; build a new one to search again")
        if self._pending is None:
            self._pending = self._next_point()
        return self._pending[None, :]

    def _hand_over(self, fitness: np.ndarray, told: Any) -> None:
        """Give the worker ``told`` for the pending point (fitness: to track the worst)."""
        value = float(fitness[0])
        if math.isfinite(value):
            self._worst_finite = max(self._worst_finite, value)
        assert self._run is not None
        self._pending = None
        self._run.values.put(told)

    def _tell(self, candidates: np.ndarray, fitness: np.ndarray) -> None:
        # A finite value is its own stand-in, so tracking the worst after is the same.
        self._hand_over(fitness, self._stand_in(float(fitness[0])))
