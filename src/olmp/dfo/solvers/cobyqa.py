"""COBYQA (Ragonneau & Zhang) through SciPy, turned into ask/tell with a worker thread.

COBYQA, *Constrained Optimization BY Quadratic Approximations*, is a derivative-free
trust-region method on quadratic models, like Powell's BOBYQA, that also takes general
nonlinear constraints. SciPy (BSD) ships it since 1.14 as ``minimize(method="COBYQA")``, so
unlike ``bobyqa`` (GPL) it needs nothing beyond olmp's own dependencies.

SciPy's COBYQA only offers a callback loop; :mod:`olmp.dfo.solvers.threaded` turns it into
ask/tell (one point per ask, stand-ins for failed evaluations, restarts from the best
point). Besides:

* Constraints are native: each becomes an upper-bounded ``NonlinearConstraint`` (feasible
  when ``<= 0``). COBYQA evaluates the objective and the constraints at the same points,
  so one tell answers both. The first ask is ``x0`` alone, answered before COBYQA starts:
  its tell says how many constraints there are.
* Variables are scaled to ``[-1, 1]`` by their bounds (COBYQA's ``scale``); the initial
  trust-region radius is twice the mean of ``sigma0 / (upper - lower)`` (capped at 1), so
  the default step is the same fraction of the box as the other solvers'. Each restart
  doubles it (up to 1).
* SciPy wraps COBYQA in one process-wide lock, which would block a second solver while the
  first waits for a tell; the adapter calls SciPy's COBYQA module (``scipy._lib.cobyqa``)
  below that lock where it exists. The callers of one solver are sequential, so the
  threads never run COBYQA at the same time.
* COBYQA is deterministic: ``seed`` changes nothing.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from olmp.dfo.solvers.base import Option
from olmp.dfo.solvers.checks import real
from olmp.dfo.solvers.threaded import (
    FIRST_STAND_IN,
    MODEL_OPTION,
    CallbackSolver,
    interpolation_points,
)

#: Largest trust-region radius in COBYQA's scaled box ``[-1, 1]``.
MAX_RADIUS = 1.0


def _cobyqa_minimize() -> Any:
    """SciPy's COBYQA entry point, below SciPy's process-wide lock where possible."""
    try:
        from scipy._lib.cobyqa import minimize  # the module scipy.optimize calls

        return minimize
    except ImportError:  # another SciPy layout: the public, locked entry point
        from scipy.optimize import minimize as scipy_minimize

    def locked(
        fun: Any,
        x0: Any,
        args: Any,
        bounds: Any,
        constraints: Any,
        callback: Any,
        options: dict[str, Any],
    ) -> Any:
        public = {
            "maxfev": options["maxfev"],
            "scale": options["scale"],
            "initial_tr_radius": options["radius_init"],
            "final_tr_radius": options["radius_final"],
        }
        return scipy_minimize(
            fun, x0, method="COBYQA", bounds=bounds, constraints=constraints, options=public
        )

    return locked


def _solve(
    minimize: Any, bounds: Any, m: int, objective: Any, x0: np.ndarray, options: dict[str, Any]
) -> Any:
    """One COBYQA run (in the worker thread); ``objective`` returns (value, constraints)."""
    from scipy.optimize import NonlinearConstraint

    last: dict[str, Any] = {}

    def fun(x: np.ndarray) -> float:
        value, constraints = objective(x)
        last.update(x=np.array(x, dtype=float), constraints=constraints)
        return value

    def constraint_values(x: np.ndarray) -> np.ndarray:
        if "x" not in last or not np.array_equal(last["x"], x):
            fun(x)  # not met so far: COBYQA evaluates both at the same points
        return np.asarray(last["constraints"], dtype=float)

    constraints = [NonlinearConstraint(constraint_values, -np.inf, 0.0)] if m else []
    return minimize(fun, x0, (), bounds, constraints, None, options)


class COBYQA(CallbackSolver):
    """COBYQA (SciPy, BSD) behind ask/tell through a worker thread.

    Args:
        lower, upper, x0, sigma0, popsize, seed, space: See
            :class:`~olmp.dfo.solvers.base.Solver`; the population size is always 1 and
            ``seed`` is unused (COBYQA is deterministic).
        max_evaluations: ``maxfev`` of each COBYQA run.
        final_radius: Trust-region radius (in the scaled box) at which a run ends.
    """

    name = "cobyqa"
    summary = "COBYQA, quadratic-model trust region with constraints (SciPy)"
    supports = "real (int/cat rounded); 1 per ask (thread); constraints: native"
    backend = "scipy"
    backend_package = "SciPy (BSD-3-Clause)"
    native_constraints = True
    options: ClassVar[dict[str, Option]] = {
        **CallbackSolver.options,
        "final_radius": Option(1e-8, real(0.0, open_low=True), "final trust-region radius"),
        "model": MODEL_OPTION,
    }

    def _setup(self) -> None:
        super()._setup()
        width = self.upper - self.lower
        self.radius = float(min(2.0 * np.mean(self.sigma0 / width), MAX_RADIUS))
        self._minimize = _cobyqa_minimize()
        self._at_x0: tuple[float, list[float]] | None = None  # what x0's tell said

    def _run_options(self, restart: int) -> dict[str, Any]:
        radius = min(self.radius * 2.0**restart, MAX_RADIUS) if restart else self.radius
        return {
            "disp": False,
            "maxfev": max(self.budget(), 2 * self.dim + 2),
            "maxiter": 1000 * max(self.budget(), self.dim),
            "target": -math.inf,
            "feasibility_tol": 1e-8,
            "radius_init": radius,
            "radius_final": min(self.final_radius, 0.5 * radius),
            "scale": True,
            "nb_points": interpolation_points(self.model, self.dim),
        }

    def _solve_function(self) -> Any:
        from scipy.optimize import Bounds

        bounds, m, minimize = (
            Bounds(self.lower, self.upper),
            self.n_constraints or 0,
            self._minimize,
        )
        return lambda objective, x0, options: _solve(minimize, bounds, m, objective, x0, options)

    # -- x0 first, then COBYQA's points -------------------------------------------------

    def _ask(self) -> np.ndarray:
        if self._run is None and self._at_x0 is None:
            self._pending = self.x0.copy()  # before COBYQA starts: see the module docstring
            return self._pending[None, :]
        if self._run is None:
            self._start_run(self.x0, self._at_x0)
        return super()._ask()

    def _told_value(self) -> tuple[float, list[float]]:
        constraints = self._best_constraints
        return self._stand_in(self._best_f), self._constraint_stand_ins(constraints)

    @staticmethod
    def _constraint_stand_ins(values: np.ndarray | None) -> list[float]:
        if values is None:
            return []
        return np.minimum(np.nan_to_num(values, posinf=FIRST_STAND_IN), FIRST_STAND_IN).tolist()

    def _tell(self, candidates: np.ndarray, fitness: np.ndarray) -> None:
        self._tell_constrained(candidates, fitness, None)

    def _tell_constrained(
        self, candidates: np.ndarray, fitness: np.ndarray, constraints: np.ndarray | None
    ) -> None:
        told = (
            self._stand_in(float(fitness[0])),
            self._constraint_stand_ins(None if constraints is None else constraints[0]),
        )
        if self._run is None:  # x0's tell: remembered for COBYQA's first evaluation
            value = float(fitness[0])
            if math.isfinite(value):
                self._worst_finite = max(self._worst_finite, value)
            self._at_x0, self._pending = told, None
            return
        self._hand_over(fitness, told)
