"""Tree-structured Parzen Estimator through optuna (``optuna.samplers.TPESampler``).

optuna is an optional extra (MIT licence): ``pip install 'olmp[tpe]'``. It is imported when
a :class:`TPE` is built, never at ``import olmp``.

optuna's ``study.ask()`` / ``study.tell()`` is already an ask/tell interface, so the adapter
is thin: one optuna trial per candidate, one variable ``x00, x01, ...`` per coordinate.

* Variables: real ones become ``suggest_float``, integer ones ``suggest_int`` and categorical
  ones ``suggest_categorical`` over ``lower..upper``, all natively.
* Constraints: natively, through ``Trial.set_constraint`` (optuna >= 5), which the TPE
  sampler reads to prefer feasible trials.
* Batches: ``popsize`` trials are asked at once (default 1, TPE's natural sequential mode).
  The sampler's constant liar keeps the trials of one batch from piling onto one spot.
* ``x0`` is the first trial (``enqueue_trial``); ``sigma0`` is not used (TPE samples from
  density models over the whole box, it has no step size).
* Rows not told (a partial tell, or asking again without telling) are offered again at the
  next :meth:`~olmp.dfo.solvers.base.Solver.ask`: their trials stay open until told.
* Fitness ``+inf`` (and ``NaN``, which the base class turns into ``+inf``) is told as is;
  optuna ranks it last.
* Setting up quiets optuna's logger to warnings, for the whole process.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from olmp.dfo.solvers.base import Option, Solver
from olmp.dfo.solvers.checks import integer


class TPE(Solver):
    """TPE (optuna's ``TPESampler``, multivariate, seeded) behind the ask/tell interface.

    Args:
        lower, upper, x0, sigma0, popsize, seed, space: See
            :class:`~olmp.dfo.solvers.base.Solver` (``sigma0`` is unused; default ``popsize`` 1).
        n_startup_trials: Random trials before the density models take over (optuna's
            default, 10).
    """

    name = "tpe"
    summary = "Tree-structured Parzen Estimator, multivariate (optuna)"
    supports = "real, int, cat (native); batch = popsize; constraints: native"
    backend = "optuna"
    backend_package = "optuna (MIT)"
    extra = "tpe"
    native_kinds = frozenset({"real", "integer", "categorical"})
    native_constraints = True
    sampler = "tpe"
    parallel_asks = "any number"
    order_dependent = True
    kind_handling: ClassVar[dict[str, str]] = {
        "real": "native",
        "log-real": "native",
        "integer": "native",
        "categorical": "native (unordered)",
        "conditional": "native (define-by-run)",
    }
    options: ClassVar[dict[str, Option]] = {
        "n_startup_trials": Option(10, integer(0), "random trials first")
    }

    def _setup(self) -> None:
        optuna = self._backend
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        sampler = optuna.samplers.TPESampler(
            seed=self.seed,
            multivariate=True,
            n_startup_trials=self.n_startup_trials,
            constant_liar=True,
        )
        self._study = optuna.create_study(direction="minimize", sampler=sampler)
        width = len(str(self.dim - 1))
        self._names = [f"x{i:0{width}d}" for i in range(self.dim)]
        self._study.enqueue_trial(self._as_params(self.x0))
        # Trials asked and not told yet, with their rows; offered first at the next ask.
        self._open: list[tuple[Any, np.ndarray]] = []

    def _default_popsize(self) -> int:
        return 1

    @property
    def study(self) -> Any:
        """The optuna study (read it; telling it directly would confuse the adapter)."""
        return self._study

    def _as_params(self, x: np.ndarray) -> dict[str, float | int]:
        return {
            name: float(value) if kind == "real" else int(value)
            for name, kind, value in zip(self._names, self.kinds, x, strict=True)
        }

    def _suggest(self, trial: Any) -> np.ndarray:
        row = np.empty(self.dim)
        for i, (name, kind) in enumerate(zip(self._names, self.kinds, strict=True)):
            low, high = float(self.lower[i]), float(self.upper[i])
            if kind == "real":
                row[i] = trial.suggest_float(name, low, high)
            elif kind == "integer":
                row[i] = trial.suggest_int(name, int(low), int(high))
            else:
                choices = list(range(int(low), int(high) + 1))
                row[i] = trial.suggest_categorical(name, choices)
        return row

    def _ask(self) -> np.ndarray:
        while len(self._open) < self.popsize:
            trial = self._study.ask()
            self._open.append((trial, self._suggest(trial)))
        return np.array([row for _, row in self._open[: self.popsize]])

    def _tell(self, candidates: np.ndarray, fitness: np.ndarray) -> None:
        self._tell_constrained(candidates, fitness, None)

    def _tell_constrained(
        self, candidates: np.ndarray, fitness: np.ndarray, constraints: np.ndarray | None
    ) -> None:
        told, self._open = self._open[: len(fitness)], self._open[len(fitness) :]
        for i, (trial, _) in enumerate(told):
            if constraints is not None:
                for j, value in enumerate(constraints[i]):
                    trial.set_constraint(f"c{j}", float(value))
            self._study.tell(trial, float(fitness[i]))
