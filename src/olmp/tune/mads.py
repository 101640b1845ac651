"""MADS with an extended poll over the network's structure (HyperNOMAD's scheme, our code).

The structure of a network, its numbers of conv and fully connected layers and its
optimiser, are categorical: changing one adds or removes a block of variables. As in
HyperNOMAD, MADS (NOMAD 4 through the engine's ``mads`` solver) searches the continuous and
integer variables of one structure at a time, and an *extended poll* moves between
structures:

1. **MADS phase**: a study of the engine's ``mads`` on the sub-space of the incumbent's
   structure, started from the incumbent (a warm start), for ``phase`` evaluations.
2. **Extended poll**: the neighbours of the incumbent, with one conv layer more or fewer,
   one fully connected layer more or fewer, and the next optimiser in the cycle SGD ->
   Adam -> Adagrad -> RMSprop. A new layer starts as a copy of the last one of its kind
   (the family's start value when there is none); a new optimiser starts from its default
   settings with the incumbent's learning rate. The best neighbour that beats the
   incumbent becomes the incumbent and the next phase runs in its structure.
3. Repeat until the budget (evaluations or time) is spent. After an extended poll that
   finds nothing better, the next phase starts with half the initial step.

What HyperNOMAD does that this does not: NOMAD's own categorical extended poll with
``NEIGHBORS_EXE`` inside one NOMAD run (our phases are separate NOMAD runs, each restarting
the mesh from the incumbent), its extended-poll trigger and its search steps; here the poll
happens after every phase.

Every evaluation is kept by its complete settings in ``mads.json``: a point asked twice is
not trained twice, and a resumed search replays its phases against that record (the
driver is deterministic given its results), training only what was never evaluated.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from olmp.dfo import Problem, Study, Trial
from olmp.dfo.executors import make_executor
from olmp.errors import OlmpError
from olmp.files import write_json_atomic
from olmp.tune.blackbox import TuneObjective, trial_key
from olmp.tune.space import CONV_ATTRS, OPTIMIZERS, STRUCTURE, TuneSpace

#: Initial MADS step (fraction of the unit box) of a phase.
SIGMA0 = 0.25


@dataclass
class _Cached:
    """An objective that answers from the record, else trains (``phase`` of the caller:
    a hit recorded in another phase costs 0, so it is not counted twice)."""

    objective: TuneObjective
    cache: dict[str, dict[str, Any]]
    phase: int
    pin: dict[str, Any] = field(default_factory=dict)

    def __call__(self, params: Mapping[str, Any]) -> dict[str, Any]:
        key = trial_key(self.objective.space.complete(params, self.pin))
        hit = self.cache.get(key)
        if hit is None:
            return replace(self.objective, pin=self.pin)(params)
        if hit["error"] is not None:
            raise OlmpError(hit["error"])
        return {"value": 1.0 - hit["val_accuracy"], "cost": float(hit["phase"] == self.phase)}


def structure_of(full: Mapping[str, Any]) -> dict[str, Any]:
    return {k: full[k] for k in STRUCTURE}


def neighbours(space: TuneSpace, full: Mapping[str, Any]) -> list[tuple[dict, dict]]:
    """``(structure, settings)`` of the extended poll's neighbours of ``full``."""
    out = []
    for prefix, attrs in (("conv", CONV_ATTRS), ("fc", ("size",))):
        count = f"{prefix}_layers"
        if count in space.fixed:
            continue
        low, high = space.ranges[count]
        n = int(full[count])
        for m in (n + 1, n - 1):
            if not low <= m <= high:
                continue
            values = dict(full)
            values[count] = m
            if m > n:  # the new layer copies the last one
                for attr in attrs:
                    if n > 0:
                        values[f"{prefix}{m}_{attr}"] = full[f"{prefix}{n}_{attr}"]
            else:
                for attr in attrs:
                    values.pop(f"{prefix}{n}_{attr}", None)
            out.append(values)
    if "optimizer" not in space.fixed:
        choices = [o for o in OPTIMIZERS if o in space.ranges["optimizer"]]
        if len(choices) > 1:
            values = dict(full)
            values["optimizer"] = choices[(choices.index(full["optimizer"]) + 1) % len(choices)]
            for family in ("momentum", "beta1", "alpha", "lr_decay"):
                values.pop(family, None)  # the new optimiser's defaults
            out.append(values)
    result = []
    for values in out:
        pin = {k: values[k] for k in STRUCTURE if k not in space.fixed}
        params = space.project(values, pin)
        result.append((pin, params))
    return result


def extended_poll_mads(
    objective: TuneObjective,
    path: Path,
    *,
    budget: int,
    seed: int = 0,
    time_limit: float | None = None,
    n_jobs: int = 1,
    resume: bool = False,
    options: Mapping[str, Any] | None = None,
    phase: int | None = None,
    progress: Callable[[int, int, float | None], None] | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """Run the scheme of the module docstring; returns the trial records and why it
    stopped. ``phase``: evaluations per MADS phase (default ``max(6, budget // 4)``)."""
    space = objective.space
    phase_len = phase or max(6, budget // 4)
    cache: dict[str, dict[str, Any]] = {}
    if resume and path.exists():
        try:
            cache = {r["key"]: r for r in json.loads(path.read_text())["evaluations"]}
        except (OSError, KeyError, TypeError, json.JSONDecodeError) as error:
            raise OlmpError(f"{path} is damaged ({error}); it is left as it is") from None
    began = time.monotonic()
    elapsed_before = max((r.get("elapsed", 0.0) for r in cache.values()), default=0.0)

    def spent(k: int) -> int:
        return sum(1 for r in cache.values() if r["phase"] < k)

    def record(k: int, kind: str, pin: dict, trial: Trial) -> None:
        full = space.complete(trial.params, pin)
        key = trial_key(full)
        if key in cache:
            return
        cache[key] = {
            "key": key,
            "id": len(cache),
            "phase": k,
            "kind": kind,
            "state": trial.state,
            "val_accuracy": None if trial.value is None else 1.0 - trial.value,
            "error": trial.error,
            "seconds": trial.seconds,
            "finished": trial.finished,
            "elapsed": elapsed_before + time.monotonic() - began,
            "settings": full,
        }
        write_json_atomic(path, {"format": "olmp-tune-mads", "evaluations": list(cache.values())})
        if progress is not None:
            done = [r["val_accuracy"] for r in cache.values() if r["state"] == "complete"]
            progress(len(cache), budget, max(done, default=None))

    def time_left() -> float | None:
        if time_limit is None:
            return None
        return time_limit - (elapsed_before + time.monotonic() - began)

    start = space.start()
    incumbent = space.complete(start)
    best_value = None
    k, failures, stop = 0, 0, None
    while True:
        left = budget - spent(k)
        if left <= 0:
            stop = "max_evaluations"
            break
        if (t := time_left()) is not None and t <= 0:
            stop = "max_seconds"
            break
        pin = {key: incumbent[key] for key in STRUCTURE if key not in space.fixed}
        sub = space.engine_space(pin)
        params = space.project(incumbent, pin)
        # MADS starts from the incumbent: the first phase evaluates the default network
        # first (enqueued), later phases start from the incumbent's known result.
        first = best_value is None
        warm = [] if first else [Trial(id=-1, params=params, state="complete", value=best_value)]
        sigma = SIGMA0 * 0.5 ** min(failures, 4)
        study = Study(
            Problem(sub, _Cached(objective, cache, k, pin)),
            "mads",
            seed=seed + k,
            options={"sigma0": sigma, **dict(options or {})},
            max_cost=min(phase_len, left),
            max_evaluations=3 * phase_len + 10,
            max_seconds=time_left(),
            warm_start=warm,
            enqueue=[params] if first else (),
            callbacks=[lambda s, t, k=k, pin=pin: record(k, "mads", pin, t)],
        )
        study.optimize(n_jobs=n_jobs)
        study.sampler.close()
        improved = False
        if study.best is not None and (best_value is None or study.best.value < best_value):
            best_value = float(study.best.value)
            incumbent = space.complete(study.best.params, pin)
            improved = True
        k += 1
        # the extended poll
        left = budget - spent(k)
        if left <= 0 or ((t := time_left()) is not None and t <= 0):
            continue
        polls = neighbours(space, incumbent)[:left]
        found = _poll(objective, cache, k, polls, n_jobs, record)
        for pin_n, params_n, value in found:
            if value is not None and (best_value is None or value < best_value):
                best_value = value
                incumbent = space.complete(params_n, pin_n)
                improved = True
        failures = 0 if improved else failures + 1
        k += 1
    records = sorted(cache.values(), key=lambda r: r["id"])
    return records, stop


def _poll(
    objective: TuneObjective,
    cache: dict[str, dict[str, Any]],
    k: int,
    polls: list[tuple[dict, dict]],
    n_jobs: int,
    record: Callable[[int, str, dict, Trial], None],
) -> list[tuple[dict, dict, float | None]]:
    """Evaluate the neighbours (in parallel with ``n_jobs``); ``(pin, params, value)``."""
    out = []
    problems = [
        Problem(objective.space.engine_space(pin), _Cached(objective, cache, k, pin))
        for pin, _ in polls
    ]
    with make_executor(min(n_jobs, max(len(polls), 1))) as executor:
        futures = [
            executor.submit(problem.evaluate, params)
            for problem, (_, params) in zip(problems, polls, strict=True)
        ]
        results = [f.result() for f in futures]
    for (pin, params), result in zip(polls, results, strict=True):
        trial = Trial(id=-1, params=params, finished=time.time(), seconds=result.seconds)
        trial.state = "failed" if result.error else "complete"
        trial.value = None if result.error else result.value
        trial.error = result.error
        record(k, "extended-poll", pin, trial)
        out.append((pin, params, trial.value))
    return out
