"""TPE on the space itself, through optuna: every kind native, conditional ones included.

optuna samples define-by-run, so a variable whose condition does not hold is simply never
suggested; real and integer variables keep their log scale, categorical ones are
unordered. Trials are optuna trials, asked and told by id in any order (the sampler's
constant liar keeps the trials that are out from piling onto one spot), so any number may
be out at once, and what is asked depends on what has come back. Constraints reach TPE
natively (``Trial.set_constraint``); a failed evaluation is told as ``+inf``, its
constraints too (a failure with none told would count as feasible), which optuna ranks
last. Warm-start results become finished optuna trials.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

from olmp.dfo.sampler import Sampler, Told
from olmp.dfo.solvers.base import Solver
from olmp.dfo.solvers.checks import check_options
from olmp.dfo.space import Categorical, Integer, Real, Space


class TPESampler(Sampler):
    """optuna's ``TPESampler`` (multivariate, seeded) on a :class:`~olmp.dfo.Space`."""

    def __init__(self, solver: type[Solver], space: Space, **kwargs: Any) -> None:
        super().__init__(solver, space, **kwargs)
        optuna = solver.import_backend()
        own = {k: v for k, v in self.options.items() if k in solver.options}
        settings = check_options(solver.name, solver.options, own)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self._optuna = optuna
        with warnings.catch_warnings():  # optuna calls `group` experimental; we rely on it
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            sampler = optuna.samplers.TPESampler(
                seed=self.seed,
                multivariate=True,
                group=space.conditional,  # conditional variables: one model per group
                n_startup_trials=settings["n_startup_trials"],
                constant_liar=True,
            )
        self.study = optuna.create_study(direction="minimize", sampler=sampler)
        self._open: dict[int, Any] = {}
        self._distributions = {v.name: self._distribution(v) for v in space}
        self._asked_any = False

    def _distribution(self, variable: Any) -> Any:
        d = self._optuna.distributions
        if isinstance(variable, Real):
            return d.FloatDistribution(variable.low, variable.high, log=variable.log)
        if isinstance(variable, Integer):
            return d.IntDistribution(variable.low, variable.high, log=variable.log)
        assert isinstance(variable, Categorical)
        # By index: optuna takes only None, bool, int, float and str as choices.
        return d.CategoricalDistribution(list(range(len(variable.choices))))

    def _to_optuna(self, params: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for name, value in params.items():
            variable = self.space[name]
            out[name] = variable.index(value) if isinstance(variable, Categorical) else value
        return out

    def warm_start(self, records: Sequence[Told]) -> None:
        super().warm_start(records)
        for record in records:
            params = self._to_optuna(record.params)
            self.study.add_trial(
                self._optuna.trial.create_trial(
                    params=params,
                    distributions={name: self._distributions[name] for name in params},
                    value=record.value if math.isfinite(record.value) else math.inf,
                    constraints={f"c{j}": c for j, c in enumerate(record.constraints)} or None,
                )
            )

    def ask(self, trial_id: int) -> dict[str, Any]:
        if not self._asked_any and not self.warm and self.box.plain:
            # On a box of plain reals, the first trial is its centre, as for the other
            # solvers and for TPE through olmp.solvers (so runs there are the same). A
            # mixed space's "centre" (first choices, middle values) is no better a start
            # than TPE's own random ones, and was worse in benchmarks/engine.py mixed.
            centre = self.box.decode(0.5 * (self.box.lower + self.box.upper))
            self.study.enqueue_trial(self._to_optuna(centre))
        self._asked_any = True
        trial = self.study.ask()
        self._open[trial_id] = trial
        params: dict[str, Any] = {}
        for variable in self.space:
            if variable.when and not self.space.is_active(variable, params):
                continue
            params[variable.name] = self._suggest(trial, variable)
        return params

    @staticmethod
    def _suggest(trial: Any, variable: Any) -> Any:
        if isinstance(variable, Real):
            return trial.suggest_float(variable.name, variable.low, variable.high, log=variable.log)
        if isinstance(variable, Integer):
            return trial.suggest_int(variable.name, variable.low, variable.high, log=variable.log)
        index = trial.suggest_categorical(variable.name, list(range(len(variable.choices))))
        return variable.choices[int(index)]

    def tell(self, trial_id: int, record: Told) -> None:
        trial = self._open.pop(trial_id)
        for j, value in enumerate(record.constraints):
            trial.set_constraint(f"c{j}", float(value))
        self.study.tell(trial, record.value)
