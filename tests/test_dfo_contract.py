"""The contract every registered solver keeps on the engine (olmp.dfo), one suite for all.

Parametrised over :data:`olmp.dfo.SOLVERS`, so a solver added with ``register_solver``
before collection is held to it too, and over :data:`VARIANTS`, registered solvers with
options that change how they search (``expsracos`` with an experience file). Optional
backends that are not installed are skipped with the line that installs them.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from olmp.dfo import SOLVERS, Categorical, Integer, Problem, Real, Space, Study
from olmp.dfo import sampler as sampler_module
from olmp.errors import OlmpError

#: Solvers held to the contract with options: name -> (registered solver, options). The
#: experience file is written once per session (see ``_experience_file``).
VARIANTS = {"expsracos+experience": ("expsracos", {"k": 5})}
NAMES = list(SOLVERS) + list(VARIANTS)
#: Solvers whose runs do not depend on the seed (deterministic methods).
SEEDLESS = {"bobyqa", "cobyqa"}
#: Solvers that learn nothing from results (a warm start cannot help them).
MEMORYLESS = {"uniform"}

MIXED = Space(
    [
        Real("x", -2.0, 3.0),
        Real("lr", 1e-4, 1.0, log=True),
        Integer("n", 1, 6),
        Categorical("act", ["tanh", "relu", None]),
        Integer("width", 4, 64, log=True, when={"act": ["relu"]}),
    ]
)


def mixed(params):
    """A known optimum away from the box centre: x = 1.7, lr = 0.003, n = 2, act = relu,
    width = 40; 0 there."""
    value = (params["x"] - 1.7) ** 2 + math.log10(params["lr"] / 0.003) ** 2
    value += (params["n"] - 2) ** 2 + (0.0 if params["act"] == "relu" else 2.0)
    if "width" in params:
        value += math.log2(params["width"] / 40) ** 2
    return value


def constrained(params):
    return {"value": mixed(params), "constraints": [0.5 - params["x"]]}  # x >= 0.5


def _cls(name):
    return SOLVERS[VARIANTS[name][0] if name in VARIANTS else name]


def _need(name):
    cls = _cls(name)
    if not cls.available():
        pytest.skip(f"{name} needs {cls.backend_package}: {cls.install_hint()}")


_EXPERIENCE = {}


@pytest.fixture(autouse=True)
def _experience_file(tmp_path_factory):
    """An experience file learned from two random searches on MIXED (written once)."""
    if "path" not in _EXPERIENCE and SOLVERS["expsracos"].available():
        from olmp.experience import build_experience

        folder = tmp_path_factory.mktemp("experience")
        studies = []
        for seed in (0, 1):
            path = folder / f"s{seed}" / "study.json"
            Study(
                Problem(MIXED, mixed), "random", seed=seed, max_evaluations=40, path=path
            ).optimize()
            studies.append(path)
        _EXPERIENCE["path"] = str(folder / "mixed.exp")
        build_experience(studies, _EXPERIENCE["path"], seed=0)


def _study(name, objective=mixed, **kwargs):
    _need(name)
    n_constraints = kwargs.pop("n_constraints", 0)
    problem = Problem(MIXED, objective, n_constraints=n_constraints)
    kwargs.setdefault("max_evaluations", 30)
    if name in VARIANTS:
        name, options = VARIANTS[name]
        extra = {**options, "experience": _EXPERIENCE["path"]}
        kwargs["options"] = {**extra, **(kwargs.get("options") or {})}
    return Study(problem, name, **kwargs)


def _params(study):
    return [t.params for t in study.trials]


@pytest.fixture(autouse=True)
def _close_samplers(monkeypatch):
    """Close every study's sampler after the test (threads, NOMAD's child process)."""
    made = []
    real_init = Study.__init__

    def init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(Study, "__init__", init)
    yield
    for study in made:
        study.sampler.close()


@pytest.mark.parametrize("name", NAMES)
def test_bounds_and_kinds_are_respected(name):
    study = _study(name, seed=1)
    study.optimize()
    assert study.n_evaluations == 30
    for params in _params(study):
        MIXED.validate(params)  # every active variable inside, of its kind; inactive absent
        assert isinstance(params["n"], int) and params["act"] in ("relu", "tanh", None)
    assert study.best is not None and study.best.value == min(t.value for t in study.trials)


@pytest.mark.parametrize("name", list(SOLVERS))
def test_one_variable_is_searched_to_the_budget(name):
    # pycma fails on one variable pushed to its bound; the solver must not.
    _need(name)
    space = Space([Real("x", -1.0, 1.0)])
    study = Study(Problem(space, lambda p: p["x"]), name, seed=0, max_evaluations=40)
    study.optimize()
    assert study.n_evaluations == 40 and all(-1 <= p["x"] <= 1 for p in _params(study))
    assert study.best.value < -0.8


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_trials(name):
    first = _study(name, seed=3)
    first.optimize()
    again = _study(name, seed=3)
    again.optimize()
    assert _params(first) == _params(again)
    if name not in SEEDLESS:
        other = _study(name, seed=4)
        other.optimize()
        assert _params(other) != _params(first)


@pytest.mark.parametrize("name", NAMES)
def test_out_of_order_and_partial_tells(name):
    study = _study(
        name, seed=2, options={"popsize": 4} if _cls(name).fixed_popsize is None else None
    )
    out = []
    while len(out) < 4 and (trial := study.ask()) is not None:
        out.append(trial)
    assert out, "a study asks at least one trial"
    # Tell the last first and keep one back: the study goes on with what came back.
    kept = out.pop(0) if len(out) > 1 else None
    for trial in reversed(out):
        study.tell(trial.id, mixed(trial.params))
    asked_while_one_is_out = study.ask()
    if kept is not None:
        study.tell(kept.id, mixed(kept.params))
    if asked_while_one_is_out is not None:
        study.tell(asked_while_one_is_out.id, mixed(asked_while_one_is_out.params))
    study.optimize()
    assert all(t.done for t in study.trials) and study.n_evaluations == 30


@pytest.mark.parametrize("name", [n for n in NAMES if not _cls(n).order_dependent])
def test_completion_order_does_not_change_what_comes_next(name):
    def run(order):
        study = _study(name, seed=5)
        for _ in range(3):
            batch = []
            while (trial := study.ask()) is not None:
                batch.append(trial)
            for trial in order(batch):
                study.tell(trial.id, mixed(trial.params))
        return _params(study)

    assert run(list) == run(lambda batch: list(reversed(batch)))


@pytest.mark.parametrize("name", NAMES)
def test_constraints_lead_to_a_feasible_best(name):
    study = _study(name, constrained, n_constraints=1, seed=0, max_evaluations=40)
    best = study.optimize()
    assert best is not None and best.feasible and best.params["x"] >= 0.5
    assert all(len(t.constraints) == 1 for t in study.trials)


@pytest.mark.parametrize("n_constraints", [0, 1])
@pytest.mark.parametrize("name", NAMES)
def test_failures_are_recorded_and_the_study_goes_on(name, n_constraints):
    def flaky(params):
        if params["n"] % 2:
            raise RuntimeError(f"n={params['n']} crashed")
        return constrained(params) if n_constraints else mixed(params)

    study = _study(name, flaky, n_constraints=n_constraints, seed=0)
    study.optimize()
    failed = [t for t in study.trials if t.state == "failed"]
    assert study.n_evaluations == 30 and failed
    assert all("RuntimeError: n=" in t.error and t.value is None for t in failed)
    if n_constraints:  # a failure is no feasible point (a solver is told it as +inf)
        assert study.best is not None and study.best.params["x"] >= 0.5


class _Killed(BaseException):
    """Stands for the process being killed (not an Exception: the study cannot catch it)."""


def _dies_at(n, objective):
    """``objective``, but the process is killed at its ``n``-th call."""
    calls = []

    def dying(params):
        calls.append(1)
        if len(calls) == n:
            raise _Killed
        return objective(params)

    return dying


@pytest.mark.parametrize("name", NAMES)
def test_a_killed_study_resumes_to_the_same_end(name, tmp_path):
    whole = _study(name, seed=7, max_evaluations=24)
    whole.optimize()
    path = tmp_path / "study.json"
    with pytest.raises(_Killed):
        _study(name, _dies_at(15, mixed), seed=7, max_evaluations=24, path=path).optimize()
    resumed = _study(name, seed=7, max_evaluations=24, path=path, resume=True)
    assert resumed.n_evaluations == 14 and len(resumed.running()) == 1
    resumed.optimize()
    assert _params(resumed) == _params(whole)
    assert [t.value for t in resumed.trials] == [t.value for t in whole.trials]


@pytest.mark.parametrize("name", NAMES)
def test_a_finished_study_resumes_with_a_larger_budget(name, tmp_path):
    # The solver keeps the plan of the first budget (SRacos sizes itself by it), so the
    # recorded trials replay and the search goes on.
    path = tmp_path / "study.json"
    first = _study(name, seed=7, max_evaluations=12, path=path)
    first.optimize()
    longer = _study(name, seed=7, max_evaluations=60, path=path, resume=True)
    longer.optimize()
    assert _params(longer)[:12] == _params(first) and longer.n_evaluations > 12


@pytest.mark.parametrize("name", NAMES)
def test_warm_start_from_another_study(name):
    earlier = _study(name, seed=0, max_evaluations=40)
    earlier.optimize()
    warm = _study(name, seed=1, max_evaluations=12, warm_start=earlier)
    cold = _study(name, seed=1, max_evaluations=12)
    warm.optimize()
    cold.optimize()
    assert len(warm.warm) == 40
    if name in MEMORYLESS:  # it asks what it would have asked without the warm start
        assert _params(warm) == _params(cold)
        return
    assert warm.best.value < cold.best.value
    assert warm.best.value <= earlier.best.value + 1.0  # it starts where the other ended


#: Few settings: a box solver's rounded rows often decode to settings already tried.
DISCRETE = Space([Integer("n", 1, 4), Categorical("kind", ["x", "y", "z"]), Integer("m", 0, 1)])


def discrete(params):
    return abs(params["n"] - 3) + (params["kind"] != "y") + params["m"]


@pytest.mark.parametrize("name", [n for n in SOLVERS if SOLVERS[n].sampler == "box"])
def test_a_box_solver_spends_no_trial_on_settings_it_has_a_result_for(name, tmp_path, monkeypatch):
    _need(name)

    def study(path, objective=discrete, **kwargs):
        return Study(Problem(DISCRETE, objective), name, seed=1, max_evaluations=30,
                     path=tmp_path / path, **kwargs)  # fmt: skip

    def distinct(study):
        return len({tuple(sorted(t.params.items())) for t in study.trials})

    # More trials than settings (24): once the solver proposes nothing new, repeats go
    # out as trials, so the study still ends; a killed study resumes to the same end.
    whole = study("a.json")
    whole.optimize()
    assert whole.n_evaluations == 30
    with pytest.raises(_Killed):
        study("b.json", _dies_at(21, discrete)).optimize()
    resumed = study("b.json", resume=True)
    resumed.optimize()
    assert _params(resumed) == _params(whole)
    monkeypatch.setattr(sampler_module, "MAX_REPEATS", 0)  # every row evaluated, as before
    every_row = study("c.json")
    every_row.optimize()
    assert distinct(whole) >= distinct(every_row)
    if name in ("sracos", "cmaes"):  # they repeat settings on this space
        assert distinct(whole) > distinct(every_row)


def test_every_registered_solver_declares_what_it_supports():
    for name, cls in SOLVERS.items():
        assert set(cls.kind_handling) == {
            "real",
            "log-real",
            "integer",
            "categorical",
            "conditional",
        }
        assert isinstance(cls.native_constraints, bool) and cls.parallel_asks, name


def test_random_and_tpe_ask_ahead_box_solvers_wait_for_their_population():
    _need("tpe")
    for name in ("random", "tpe"):
        study = _study(name)
        assert all(study.ask() is not None for _ in range(12))
    study = _study("ncs", options={"popsize": 5})
    asked = [study.ask() for _ in range(6)]
    assert all(a is not None for a in asked[:5]) and asked[5] is None
    np.testing.assert_equal(len(study.running()), 5)


@pytest.mark.parametrize("name", NAMES)
def test_enqueued_points_come_first_are_not_evaluated_twice_and_resume(name, tmp_path):
    good = {"x": 1.7, "lr": 0.003, "n": 2, "act": "relu", "width": 40}  # the optimum
    calls = []

    def counted(params):
        calls.append(dict(params))
        return mixed(params)

    path = tmp_path / "study.json"
    study = _study(name, counted, seed=3, max_evaluations=12, enqueue=[good], path=path)
    study.optimize()
    assert study.trials[0].params == good and study.best.value == 0.0
    # told as a warm start; a solver that evaluates its start first (SRacos, MADS, BOBYQA)
    # is told its result rather than spending the next trial on it again
    assert mixed(calls[1]) > 1e-12 and len(calls) == 12
    again = _study(name, seed=3, max_evaluations=12, enqueue=[good], path=path, resume=True)
    assert _params(again) == _params(study)
    with pytest.raises(OlmpError, match="another enqueue"):
        _study(name, seed=3, max_evaluations=12, path=path, resume=True)
