"""A study: the record of one optimisation, asked and told by trial id.

>>> from olmp.dfo import Problem, Real, Space, Study
>>> problem = Problem(Space([Real("x", -5, 5)]), lambda p: (p["x"] - 2) ** 2)
>>> study = Study(problem, "cmaes", seed=0, max_evaluations=60)
>>> best = study.optimize()
>>> round(best.params["x"], 2)
2.0

Or by hand: ``trial = study.ask()`` gives a :class:`~olmp.dfo.trial.Trial` with an ``id``
(``None`` while the solver waits for results), ``study.tell(trial.id, value, constraints=...)``
takes results in any order, for any part of the trials out.

* **Budgets** (``max_evaluations``, ``max_seconds`` of wall time, ``max_cost`` in
  evaluation costs) and ``target`` (stop once a feasible value ``<= target`` is found) end
  :meth:`Study.optimize`; :attr:`Study.stop_reason` says which. ``callbacks`` are called
  with ``(study, trial)`` after every tell; one that returns ``True`` stops the study.
* **Record**: with ``path``, the study is saved atomically (:func:`olmp.files.write_json_atomic`)
  after every ask and tell: space, solver, seed, options, every trial and the order of asks
  and tells. An existing file is never overwritten: pass ``resume=True`` to continue it.
  An option given as an object is recorded as its solver declares (``expsracos``'s
  experience model by its fingerprint), so a resume checks the model, not a file's path.
* **Resume** rebuilds the solver from its seed and replays the recorded asks and tells, so
  its state is exactly what it was; trials that were running are evaluated again first.
  A sequential study killed and resumed therefore ends exactly as one never interrupted.
* **Warm start** (``warm_start=`` another study, its file, or trials): their complete results
  are told to the solver before its first ask (box solvers start from the best one; ``tpe``
  learns from all), kept in the record, not in :attr:`Study.trials`.
* **Enqueue** (``enqueue=`` parameter sets, as optuna's ``enqueue_trial``): the first trials
  evaluate them in order; their complete results reach the solver as warm-start ones, so a
  known good setting (a default network) is evaluated first and searched from, whatever the solver.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from olmp.dfo.executors import Executor, WorkerDied, make_executor
from olmp.dfo.problem import Problem, Result
from olmp.dfo.record import FORMAT, VERSION, check_written_for, load_study_file
from olmp.dfo.sampler import Sampler, Told, make_sampler
from olmp.dfo.solvers import solver_class
from olmp.dfo.solvers.checks import recorded_options, with_defaults
from olmp.dfo.space import Space
from olmp.dfo.trial import Trial
from olmp.dfo.warm_start import warm_results
from olmp.errors import (
    OlmpError,
    check_count,
    check_seed,
    check_type,
    is_integer,
    is_number,
)
from olmp.files import remove_interrupted_writes, write_json_atomic

Callback = Callable[["Study", Trial], Any]


class Study:
    """One optimisation of ``problem`` by ``solver``; see the module docstring."""

    def __init__(
        self,
        problem: Problem,
        solver: str = "ncs",
        *,
        seed: int = 0,
        options: dict[str, Any] | None = None,
        max_evaluations: int | None = None,
        max_seconds: float | None = None,
        max_cost: float | None = None,
        target: float | None = None,
        callbacks: Callback | Sequence[Callback] = (),
        path: str | os.PathLike[str] | None = None,
        resume: bool = False,
        warm_start: Study | Iterable[Trial] | str | os.PathLike[str] | None = None,
        enqueue: Sequence[dict[str, Any]] = (),
    ) -> None:
        if not isinstance(problem, Problem):
            raise OlmpError(f"a study needs an olmp.dfo.Problem, got {problem!r}")
        self.problem = problem
        self.solver = solver
        self.seed = check_seed(seed)
        if self.seed >= 2**32:  # numpy's and optuna's generators take no more
            raise OlmpError(f"seed must be below 2**32, got {seed!r}")
        check_type("options", options or {}, Mapping, "a dict of the solver's options")
        # numpy's scalars as Python's: the options are recorded in the study's JSON.
        self.options = {
            k: v.item() if isinstance(v, np.generic) else v for k, v in (options or {}).items()
        }
        self.max_evaluations = (
            None if max_evaluations is None else check_count(max_evaluations, "max_evaluations")
        )
        self.max_seconds = _limit("max_seconds", max_seconds)
        self.max_cost = _limit("max_cost", max_cost)
        self.target = None if target is None else _limit("target", target, positive=False)
        one = callable(callbacks) or not isinstance(callbacks, Iterable)  # 5: named below
        self.callbacks = [callbacks] if one else list(callbacks)  # one, or many
        for callback in self.callbacks:  # at once, not after the first evaluation
            if not callable(callback):
                raise OlmpError(
                    f"callbacks are functions (study, trial) -> True to stop, got {callbacks!r}"
                )
        self.path = None if path is None else Path(path)
        if self.path is not None:  # at once, not at the first save or a resume's replay
            problem.space.check_json()
        #: Parameters of the first trials, evaluated before the solver's first ask.
        self.enqueue = [self._enqueued(params) for params in enqueue]
        self._handed_over = False  # whether the warm and enqueued results reached the solver
        #: Every trial asked, by id (ids count from 0 in ask order).
        self.trials: list[Trial] = []
        #: Results told to the solver before its first ask (see the module docstring).
        self.warm: list[Told] = []
        #: ``["a", id]`` and ``["t", id]`` in the order asks and tells happened.
        self.log: list[list[Any]] = []
        self.best: Trial | None = None
        self._told = 0  # counters kept as trials are told: the loop reads them every trial
        self._cost = 0.0
        self._stopped_by_callback = False
        self._elapsed_before = 0.0
        self._began = time.monotonic()
        record = self._read_record() if self.path is not None and self.path.exists() else None
        if record is not None and not resume:
            raise OlmpError(f"study file {self.path} exists; pass resume=True to continue it")
        if record is None and resume:  # a mistyped path would silently start anew
            missing = f"no study file at {self.path}" if self.path else "resume=True needs path="
            raise OlmpError(f"nothing to resume: {missing}")
        #: The run length the solver plans for (SRacos's sizes, NCS's schedule): the first
        #: ``max_evaluations``, kept when a resume changes it, or the replay would differ.
        self.planned_evaluations = self.max_evaluations
        if record is not None:
            budgets = record.get("budgets")
            # Files from before planned_evaluations planned for their max_evaluations.
            first = budgets.get("max_evaluations") if isinstance(budgets, dict) else None
            planned = record.get("planned_evaluations", first)
            if planned is not None and not (is_integer(planned) and planned >= 1):
                raise OlmpError(
                    f"study file {self.path} is damaged (planned_evaluations {planned!r}); it "
                    "is left as it is"
                )
            self.planned_evaluations = planned
        self.sampler: Sampler = make_sampler(
            solver_class(solver),
            problem.space,
            seed=self.seed,
            n_constraints=problem.n_constraints,
            budget=self.planned_evaluations,
            options=self.options,
        )
        if record is not None:
            self._replay(record)
            remove_interrupted_writes(self.path.parent, of=self.path.name)
        else:
            if warm_start is not None:
                source = warm_start.trials if isinstance(warm_start, Study) else warm_start
                self.warm = warm_results(source, self.problem)
            self._save()

    # -- state ---------------------------------------------------------------------------

    @property
    def n_evaluations(self) -> int:
        """Trials told (complete or failed)."""
        return self._told

    @property
    def cost(self) -> float:
        """Total cost of the trials told."""
        return self._cost

    @property
    def elapsed(self) -> float:
        """Wall seconds the study has run, over all its sessions."""
        return self._elapsed_before + time.monotonic() - self._began

    def running(self) -> list[Trial]:
        return [t for t in self.trials if not t.done]

    @property
    def stop_reason(self) -> str | None:
        """Why the study stops, or ``None`` while it may go on."""
        if self._stopped_by_callback:
            return "callback"
        best = self.best
        if self.target is not None and best is not None and best.value <= self.target:  # type: ignore[operator]
            return "target"
        if self.max_evaluations is not None and self.n_evaluations >= self.max_evaluations:
            return "max_evaluations"
        if self.max_cost is not None and self.cost >= self.max_cost:
            return "max_cost"
        if self.max_seconds is not None and self.elapsed >= self.max_seconds:
            return "max_seconds"
        return None

    # -- ask / tell ----------------------------------------------------------------------

    def ask(self, fidelity: str | None = None) -> Trial | None:
        """A new trial to evaluate, or ``None`` when the study is stopped, its evaluation
        or cost budget is all out (the trials out count at their fidelity's cost: what
        they are expected to cost), or the solver waits for results of the trials out."""
        fidelity = self.problem.check_fidelity(fidelity)
        out = len(self.trials)
        if self.stop_reason or (self.max_evaluations is not None and out >= self.max_evaluations):
            return None
        if self.max_cost is not None:
            # Without this, trials run in parallel would each pass the limit in turn.
            committed = sum(self.problem.cost_of(t.fidelity) for t in self.running())
            if self.cost + committed >= self.max_cost:
                return None
        params = self._propose(out)
        if params is None:
            return None
        trial = Trial(id=out, params=params, fidelity=fidelity, started=time.time())
        self.trials.append(trial)
        self.log.append(["a", trial.id])
        self._save()
        return trial

    def _propose(self, trial_id: int) -> dict[str, Any] | None:
        """The parameters of trial ``trial_id``: an enqueued set, else the solver's, which
        first gets the warm and enqueued results (so it waits for the enqueued ones)."""
        n = len(self.enqueue)
        if trial_id < n:
            return dict(self.enqueue[trial_id])
        if not self._handed_over:
            if not all(t.done for t in self.trials[:n]):
                return None
            first = [self._as_told(t) for t in self.trials[:n] if t.state == "complete"]
            self.sampler.warm_start(self.warm + first)
            self._handed_over = True
        return self.sampler.ask(trial_id)

    def _enqueued(self, params: Any) -> dict[str, Any]:
        if not isinstance(params, dict):
            raise OlmpError(f"enqueue takes parameter dicts, got {params!r}")
        canonical = self.problem.space.canonical(params)
        try:
            self.problem.space.validate(canonical)
        except OlmpError as error:
            raise OlmpError(
                f"enqueued parameters {params!r} do not fit the space: {error}"
            ) from None
        return canonical

    def tell(
        self,
        trial_id: int,
        value: float | None = None,
        *,
        constraints: Sequence[float] | None = None,
        cost: float | None = None,
        error: str | None = None,
    ) -> Trial:
        """Record the result of trial ``trial_id`` (any order): its ``value`` and
        ``constraints``, or ``error`` (a message) for a failed evaluation."""
        trial = self._running(trial_id)
        if error is not None:
            # An empty message is a failure too ("" would read as no error).
            cost = self.problem.told_cost(cost, trial.fidelity)
            result = Result(cost=cost, error=str(error) or "failed (no message given)")
        else:
            if value is None:
                raise OlmpError(f"tell trial {trial_id} a value, or error='message' if it failed")
            returned = {"value": value, "constraints": constraints, "cost": cost}
            result = self.problem.read(
                {k: v for k, v in returned.items() if v is not None}, trial.fidelity
            )
        return self._record(trial, result)

    def _running(self, trial_id: Any) -> Trial:
        if not is_integer(trial_id) or not 0 <= trial_id < len(self.trials):
            running = [t.id for t in self.running()]
            raise OlmpError(f"unknown trial id {trial_id!r}; the trials running are {running}")
        trial = self.trials[int(trial_id)]
        if trial.done:
            raise OlmpError(f"trial {trial_id} was already told ({trial.state}); tell it once")
        return trial

    def _record(self, trial: Trial, result: Result, replay: bool = False) -> Trial:
        failed = result.error is not None
        trial.state = "failed" if failed else "complete"
        trial.value = None if failed else result.value
        trial.constraints = [] if failed else list(result.constraints)
        trial.cost, trial.error = result.cost, result.error
        if not replay:
            trial.finished, trial.elapsed = time.time(), round(self.elapsed, 3)
            trial.seconds = result.seconds or None
        self._told += 1
        self._cost += trial.cost or 0.0
        if trial.id >= len(self.enqueue):  # the solver asked it (see _propose)
            self.sampler.tell(trial.id, self._as_told(trial))
        self.log.append(["t", trial.id])
        if trial.feasible and (self.best is None or trial.value < self.best.value):  # type: ignore[operator]
            self.best = trial
        if not replay:
            self._save()  # first: a callback that raises must not lose the result
            for callback in self.callbacks:
                if callback(self, trial) is True:
                    self._stopped_by_callback = True
        return trial

    def _as_told(self, trial: Trial) -> Told:
        """``trial`` as its sampler is told it. A failed trial is ranked last: its value
        and every constraint are ``+inf``, so a constrained solver does not take it for a
        feasible point, nor rows of different lengths."""
        if trial.state != "complete":
            failed = (math.inf,) * self.problem.n_constraints
            return Told(dict(trial.params), math.inf, failed)
        return Told(dict(trial.params), float(trial.value), tuple(trial.constraints))  # type: ignore[arg-type]

    # -- the loop ------------------------------------------------------------------------

    def optimize(self, executor: Executor | None = None, n_jobs: int = 1) -> Trial | None:
        """Ask, evaluate with the problem's objective, tell, until a budget or stop rule
        ends the study; returns :attr:`best`. Trials left running by a killed session are
        evaluated first. ``n_jobs > 1`` evaluates in a pool of worker processes (or pass
        an ``executor``); see :mod:`olmp.dfo.executors`."""
        members = ("capacity", "submit", "wait")  # an executor is duck-typed
        if executor is not None and not all(hasattr(executor, m) for m in members):
            raise OlmpError(  # optimize(objective), say: optuna's habit
                f"optimize takes an executor (capacity, submit, wait) or n_jobs=, got "
                f"{executor!r}; the objective belongs in the problem: "
                "Study(Problem(space, objective), ...)"
            )
        if self.problem.objective is None:
            raise OlmpError("this problem has no objective: evaluate by hand with ask and tell")
        if self.max_evaluations is None and self.max_seconds is None and self.max_cost is None:
            raise OlmpError("optimize needs a budget: max_evaluations, max_seconds or max_cost")
        own = executor is None
        executor = make_executor(n_jobs) if executor is None else executor
        try:
            self._loop(executor)
        except WorkerDied as died:  # the trials out are lost with the pool: failed, not left
            for lost in self.running():  # running to kill a resume again
                self._record(
                    lost, Result(cost=self.problem.cost_of(lost.fidelity), error=str(died))
                )
            raise
        finally:
            if own:
                executor.close()
        return self.best

    def _loop(self, executor: Executor) -> None:
        evaluate = self.problem.evaluate
        if type(executor) is Executor:  # in-process: no futures to keep, one at a time
            for trial in self.running():
                self._record(trial, evaluate(trial.params, trial.fidelity))
            while not self.stop_reason and (trial := self.ask()) is not None:
                self._record(trial, evaluate(trial.params, trial.fidelity))
            return
        out: dict[Any, Trial] = {}
        for trial in self.running():  # left by a killed session
            out[executor.submit(evaluate, trial.params, trial.fidelity)] = trial
        warned = False
        while True:
            while len(out) < executor.capacity and not self.stop_reason:
                trial = self.ask()
                if trial is None:
                    break
                out[executor.submit(evaluate, trial.params, trial.fidelity)] = trial
            if not warned:  # once, after the first asks (the sampler's solver exists by now)
                warned = True
                self.sampler.warn_idle_workers(executor.capacity)
            if not out:
                return
            for future in executor.wait(out):
                trial = out.pop(future)
                try:
                    result = future.result()
                except Exception as error:  # the worker itself failed, not the objective
                    result = Result(cost=self.problem.cost_of(trial.fidelity), error=repr(error))
                self._record(trial, result)

    # -- warm start, record, resume ------------------------------------------------------------

    def identity(self) -> dict[str, Any]:
        """What a resumed file must share with this study."""
        return {
            "space": self.problem.space.to_json(),
            "solver": self.solver,
            "seed": self.seed,
            "options": recorded_options(solver_class(self.solver).options, self.options),
            "n_constraints": self.problem.n_constraints,
            "fidelities": self.problem.fidelities,
            "enqueue": self.enqueue,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            **self.identity(),
            "planned_evaluations": self.planned_evaluations,
            "budgets": {
                "max_evaluations": self.max_evaluations,
                "max_seconds": self.max_seconds,
                "max_cost": self.max_cost,
                "target": self.target,
            },
            "elapsed": self.elapsed,
            "warm": [[t.params, t.value, list(t.constraints)] for t in self.warm],
            "trials": [t.to_json() for t in self.trials],
            "log": self.log,
        }

    def _save(self) -> None:
        if self.path is not None:
            write_json_atomic(self.path, self.to_json())

    def _read_record(self) -> dict[str, Any]:
        assert self.path is not None
        record = load_study_file(self.path)
        declared = solver_class(self.solver).options
        options = {"options": lambda given: with_defaults(declared, given)}
        check_written_for(record, self.identity(), self.path, options)
        return record

    def _replay(self, record: dict[str, Any]) -> None:
        """Rebuild the solver's state by replaying the recorded asks and tells."""
        try:
            self.warm = [Told(p, float(v), tuple(c)) for p, v, c in record["warm"]]
            trials = [Trial.from_json(t) for t in record["trials"]]
            log = [(str(op), int(i)) for op, i in record["log"]]
            self._elapsed_before = float(record["elapsed"])
        except (KeyError, TypeError, ValueError, OlmpError) as error:
            raise OlmpError(
                f"study file {self.path} is damaged ({error}); it is left as it is"
            ) from None
        told: set[int] = set()
        for op, i in log:
            if op == "a":
                params = self._propose(i)
                if i != len(self.trials) or i >= len(trials) or trials[i].id != i:
                    raise OlmpError(
                        f"study file {self.path} is damaged (trial {i} out of place); it is "
                        "left as it is"
                    )
                if params != trials[i].params:
                    raise OlmpError(
                        f"study file {self.path} does not replay: trial {i} was recorded with "
                        f"other parameters than the solver proposes now (another library "
                        "version?); it is left as it is"
                    )
                self.trials.append(trials[i])
                self.log.append(["a", i])
            elif op == "t" and 0 <= i < len(self.trials) and self.trials[i].done and i not in told:
                told.add(i)
                t = self.trials[i]
                if t.state == "complete" and (t.value is None or math.isnan(t.value)):
                    raise OlmpError(
                        f"study file {self.path} is damaged (trial {i} is complete without a "
                        "value); it is left as it is"
                    )
                result = Result(
                    t.value if t.value is not None else math.nan,
                    t.constraints,
                    t.cost or 0.0,
                    t.error,
                )
                self._record(t, result, replay=True)
            else:
                raise OlmpError(
                    f"study file {self.path} is damaged (log entry {op!r} {i}); it is left as it is"
                )
        # Every trial recorded is asked in the log, and every finished one told: a shorter
        # log would drop trials when the study is saved again.
        if len(self.trials) != len(trials) or any(t.done and t.id not in told for t in trials):
            raise OlmpError(
                f"study file {self.path} is damaged (its log and its trials disagree); it is "
                "left as it is"
            )
        self._began = time.monotonic()


def _limit(name: str, value: Any, positive: bool = True) -> float | None:
    if value is None:
        return None
    # A target may be any number but NaN; numpy's numbers are numbers.
    if not is_number(value) or math.isnan(value) or (positive and not value > 0):
        raise OlmpError(f"{name} must be a number{' > 0' * positive} or None, got {value!r}")
    return float(value)


__all__ = ["Space", "Study"]
