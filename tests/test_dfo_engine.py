"""The engine's pieces (olmp.dfo): spaces, problems, studies' budgets and records, executors,
the registry, and every bad input named with what is allowed."""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from dataclasses import replace
from types import MappingProxyType
from typing import ClassVar

import numpy as np
import pytest

from olmp.dfo import (
    SOLVERS,
    Categorical,
    Integer,
    Problem,
    ProcessPool,
    Real,
    Solver,
    Space,
    Study,
    Trial,
    register_solver,
)
from olmp.dfo.executors import Executor
from olmp.dfo.solvers import solver_class
from olmp.errors import OlmpError

SPACE = Space([Real("x", -1.0, 1.0), Integer("k", 0, 3), Categorical("c", ["a", {"b": 1}, 2.5])])


def square(params):
    return params["x"] ** 2 + params["k"]


def in_a_worker(params):  # module level: the worker pool pickles it
    time.sleep(0.05)
    return {"value": params["x"] ** 2, "cost": float(os.getpid())}  # the cost says where


# -- space ---------------------------------------------------------------------------------


def test_space_samples_valid_points_and_round_trips_through_json_and_the_unit_box():
    space = Space(
        [
            Real("lr", 1e-5, 1e-1, log=True),
            Integer("layers", 1, 3),
            Integer("w3", 8, 512, log=True, when={"layers": [3]}),
            Categorical("act", ["relu", None, 1]),
        ]
    )
    assert space.dim == 1 + 1 + 1 + 3 and space.kinds() == {
        "log-real",
        "integer",
        "categorical",
        "conditional",
    }
    for params in space.sample(rng=0, n=50):
        space.validate(params)
        assert ("w3" in params) == (params["layers"] == 3)
        back = space.from_unit(space.to_unit(params))
        assert back.keys() == params.keys() and back["act"] is params["act"]
        assert back["lr"] == pytest.approx(params["lr"])
    assert Space.from_json(json.loads(json.dumps(space.to_json()))) == space
    # Every integer value gets an equal share of the unit box.
    cells = [Integer("k", 0, 3).decode(np.array([u])) for u in np.linspace(0, 1, 401)]
    assert (
        sorted(set(cells)) == [0, 1, 2, 3]
        and max(np.bincount(cells)) - min(np.bincount(cells)) <= 1
    )


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: Space.from_json({"variables": [{"name": "a", "kind": "complex"}]}),
            r"unknown variable kind 'complex'; choose one of: categorical, integer, real",
        ),
        (lambda: Categorical("c", []), r"variable 'c': choices must be a non-empty list, got \[\]"),
        (
            lambda: Categorical("c", ["a", "b", "a"]),
            r"choice 'a' is listed twice in \['a', 'b', 'a'\]",
        ),
        (lambda: Real("x", 1.0, 1.0), r"variable 'x': low must be < high, got low=1.0 >= high=1.0"),
        (lambda: Integer("n", 5, 2), r"variable 'n': low must be < high, got low=5 >= high=2"),
        (
            lambda: Real("lr", 0.0, 1.0, log=True),
            r"'lr': a log scale needs bounds > 0, got low=0.0",
        ),
        (lambda: Integer("n", 1.5, 4), r"variable 'n': bounds must be whole, got 1.5"),
        (
            lambda: Space([Real("a", 0, 1, when={"b": [1]})]),
            r"variable 'a' has a condition on unknown variable 'b'",
        ),
        (lambda: Space([Real("a", 0, 1), Real("a", 0, 2)]), r"variable name 'a' is used twice"),
        (
            lambda: Space([Integer("n", 1, 3), Real("x", 0, 1, when={"n": [7]})]),
            r"variable 'x', condition when\['n'\]: variable 'n' must be an integer number in \[1",
        ),
        (
            lambda: SPACE.validate({"x": 2.0, "k": 0, "c": "a"}),
            r"variable 'x' must be a real number in \[-1.0, 1.0\], got 2.0",
        ),
        (lambda: SPACE.validate({"x": 0.0, "k": 0, "c": "z"}), r"variable 'c' must be one of"),
        (lambda: SPACE.validate({"x": 0.0, "k": 0}), r"variable 'c' is active and has no value"),
        (lambda: Real("x", 0, 1, when=["layers"]), r"'x': when must be a dict of variable name"),
        (lambda: Real("x", 0, 1, when=None), r"e.g. when=\{'layers': \[3\]\}, got None"),
        (lambda: Real("x", 1, 100, log="false"), r"'x': log must be True or False, got 'false'"),
        (lambda: Real("x", -1e308, 1e308), r"'x': high - low must be a finite number"),
        (
            lambda: Space.from_json({"variables": [{"name": "x", "kind": ["real"]}]}),
            r"unknown variable kind \"\['real'\]\"; choose one of: categorical",
        ),
    ],
)
def test_bad_spaces_name_the_value_and_what_is_allowed(build, message):
    with pytest.raises(OlmpError, match=message):
        build()


def test_a_condition_given_as_a_whole_float_or_numpy_number_holds():
    for three in (3.0, np.int64(3)):
        space = Space([Integer("layers", 1, 3), Real("w", 0, 1, when={"layers": [three]})])
        space.validate({"layers": 3, "w": 0.5})  # refused before: w "inactive"
        assert space.is_active(space["w"], {"layers": 3})
        assert not space.is_active(space["w"], {"layers": 2})


# -- problem and study ---------------------------------------------------------------------


def test_tell_by_id_checks_ids_constraints_and_fidelities():
    problem = Problem(SPACE, n_constraints=1, fidelities={"cheap": 0.1, "full": 1.0})
    study = Study(problem, "random", seed=0)
    first, second = study.ask(), study.ask(fidelity="cheap")
    assert (first.id, second.id) == (0, 1) and first.fidelity == "full"
    with pytest.raises(OlmpError, match=r"unknown trial id 7; the trials running are \[0, 1\]"):
        study.tell(7, 1.0, constraints=[0.0])
    with pytest.raises(OlmpError, match=r"constraint 0 is NaN"):
        study.tell(1, 1.0, constraints=[math.nan])
    with pytest.raises(OlmpError, match=r"declares 1 constraint\(s\), got 0"):
        study.tell(1, 1.0)
    study.tell(1, 0.5, constraints=[-1.0])  # the later trial first
    study.tell(0, error="out of memory")
    with pytest.raises(OlmpError, match=r"trial 1 was already told \(complete\)"):
        study.tell(1, 0.5, constraints=[-1.0])
    with pytest.raises(OlmpError, match=r"unknown fidelity 'medium'.*cheap, full"):
        study.ask(fidelity="medium")
    with pytest.raises(OlmpError, match=r"fidelity 'full' was not declared; this problem has no"):
        Study(Problem(SPACE), "random").ask(fidelity="full")
    assert study.trials[0].state == "failed" and study.trials[0].error == "out of memory"
    assert study.best is study.trials[1] and study.cost == pytest.approx(1.1)
    # A failure with an empty message is a failure (it was kept as complete, value NaN, and
    # became the best); a told cost must be a number >= 0.
    third = study.ask()
    for cost in (-5, math.nan, "abc"):
        with pytest.raises(OlmpError, match=r"cost must be a number >= 0, got"):
            study.tell(third.id, error="x", cost=cost)
    study.tell(third.id, error="")
    assert third.state == "failed" and third.error and study.best is study.trials[1]


def test_budgets_target_and_callbacks_stop_the_study():
    def run(**kwargs):
        study = Study(Problem(SPACE, square), "random", seed=0, **kwargs)
        study.optimize()
        return study

    assert run(max_evaluations=25).n_evaluations == 25
    by_cost = run(max_cost=5.0, max_evaluations=100)
    assert by_cost.stop_reason == "max_cost" and by_cost.n_evaluations == 5
    # trials out count against the cost at their fidelity's cost until told theirs
    by_hand = Study(Problem(SPACE, square), "random", seed=0, max_cost=3.0)
    out = [by_hand.ask() for _ in range(3)]
    assert by_hand.ask() is None and by_hand.stop_reason is None
    by_hand.tell(out[0].id, 1.0, cost=0.0)  # a result it already had: free
    assert by_hand.ask() is not None and by_hand.ask() is None
    by_target = run(target=0.05, max_evaluations=500)
    assert by_target.stop_reason == "target" and by_target.best.value <= 0.05
    seen = []
    stopped = run(max_evaluations=100, callbacks=[lambda s, t: seen.append(t.id) or t.id == 9])
    assert stopped.stop_reason == "callback" and seen == list(range(10))
    timed = run(max_seconds=0.2)
    assert timed.stop_reason == "max_seconds" and timed.elapsed < 2
    with pytest.raises(OlmpError, match="optimize needs a budget"):
        Study(Problem(SPACE, square), "random").optimize()


def test_the_record_is_saved_as_it_goes_and_never_overwritten(tmp_path):
    path = tmp_path / "s.json"
    study = Study(Problem(SPACE, square), "ncs", seed=0, max_evaluations=12, path=path)
    trial = study.ask()
    record = json.loads(path.read_text())
    assert record["trials"][0]["state"] == "running" and record["log"] == [["a", 0]]
    study.tell(trial.id, 1.0)
    assert json.loads(path.read_text())["trials"][0]["value"] == 1.0
    with pytest.raises(OlmpError, match=r"s.json exists; pass resume=True"):
        Study(Problem(SPACE, square), "ncs", seed=0, path=path)


def test_resuming_another_space_or_a_damaged_file_names_it_and_keeps_it(tmp_path):
    path = tmp_path / "s.json"
    Study(Problem(SPACE, square), "ncs", seed=0, max_evaluations=12, path=path).optimize()
    before = path.read_text()
    other = Space([Real("x", -1.0, 2.0)])
    with pytest.raises(OlmpError, match=r"s.json was written for another space; it is left"):
        Study(Problem(other, square), "ncs", seed=0, path=path, resume=True)
    with pytest.raises(OlmpError, match=r"another seed \(0, here 1\)"):
        Study(Problem(SPACE, square), "ncs", seed=1, path=path, resume=True)
    assert path.read_text() == before
    path.write_text(before[: len(before) // 2])
    with pytest.raises(OlmpError, match=r"study file .*s.json is damaged or unreadable"):
        Study(Problem(SPACE, square), "ncs", seed=0, path=path, resume=True)
    assert path.read_text() == before[: len(before) // 2]


def test_an_option_given_at_its_default_resumes_the_same_study(tmp_path):
    path = tmp_path / "s.json"
    given = {"exploration_rate": 0.01}  # sracos's default
    Study(Problem(SPACE, square), "sracos", options=given, max_evaluations=4, path=path).optimize()
    killed = [tmp_path / ".s.json.ab_12xyz.tmp", tmp_path / ".t.json.ab_12xyz.tmp"]
    for left in killed:  # a SIGKILL mid-save leaves its temporary; the other is another file's
        left.write_text("{")
    resumed = Study(Problem(SPACE, square), "sracos", max_evaluations=6, path=path, resume=True)
    resumed.optimize()
    assert resumed.n_evaluations == 6
    assert not killed[0].exists() and killed[1].exists()
    with pytest.raises(
        OlmpError,
        match=r"another options \(\{\}, here \{'exploration_rate': 0.2\}\)",
    ):
        Study(Problem(SPACE, square), "sracos", options={"exploration_rate": 0.2}, path=path,
              resume=True)  # fmt: skip


def _edited(record, edit):
    record = json.loads(json.dumps(record))
    edit(record)
    return json.dumps(record)


@pytest.mark.parametrize(
    "edit",
    [
        lambda r: r["log"].append(["t", 3]),  # told twice
        lambda r: r["trials"][4].update(id=7),  # out of place
        lambda r: r["trials"][2].update(cost="1"),  # not a number
        lambda r: r["trials"][2].update(constraints=[None]),
        lambda r: r["trials"][2].update(value=None),  # complete without a value
        lambda r: r["log"].append(["t", -1]),
        lambda r: r.update(log=r["log"][:3]),  # a shorter log would drop trials 2-5
        lambda r: r.update(planned_evaluations=0),
    ],
)
def test_a_hand_edited_study_file_is_named_damaged_and_kept(tmp_path, edit):
    path = tmp_path / "s.json"
    Study(Problem(SPACE, square), "random", seed=0, max_evaluations=6, path=path).optimize()
    path.write_text(_edited(json.loads(path.read_text()), edit))
    before = path.read_text()
    with pytest.raises(OlmpError, match=r"s.json is damaged \(.*\); it is left as it is"):
        Study(Problem(SPACE, square), "random", seed=0, path=path, resume=True)
    assert path.read_text() == before


def test_a_study_file_of_a_newer_version_is_named_and_kept(tmp_path):
    path = tmp_path / "s.json"
    Study(Problem(SPACE, square), "random", seed=0, max_evaluations=2, path=path).optimize()
    path.write_text(_edited(json.loads(path.read_text()), lambda r: r.update(version=99)))
    with pytest.raises(OlmpError, match=r"s.json has version 99; this olmp reads versions up to"):
        Study(Problem(SPACE, square), "random", seed=0, path=path, resume=True)


def test_numpy_scalars_and_whole_floats_are_taken_as_the_space_s_own_values(tmp_path):
    space = Space([Integer("layers", 1, 3), Integer("width3", 8, 256, when={"layers": [3]})])
    problem = Problem(space, lambda p: p.get("width3", 0) / 256 + p["layers"])
    # 3.0 is the integer 3, so width3 is active and needed (3.0 used to leave it out).
    with pytest.raises(OlmpError, match=r"variable 'width3' is active and has no value"):
        Study(problem, "random", enqueue=[{"layers": 3.0}])
    enqueue = [{"layers": 3.0, "width3": np.int64(16)}, {"layers": np.int64(2)}]
    options = {"popsize": np.int64(4)}
    path = tmp_path / "s.json"
    study = Study(problem, "random", enqueue=enqueue, options=options, path=path)
    study.max_evaluations = 2
    study.optimize()
    assert [t.params for t in study.trials] == [{"layers": 3, "width3": 16}, {"layers": 2}]
    assert all(type(v) is int for t in study.trials for v in t.params.values())
    assert json.loads(path.read_text())["options"]["popsize"] == 4
    with pytest.raises(OlmpError, match=r"options must be a dict of the solver's options"):
        Study(problem, "random", options=[("popsize", 4)])
    assert Study(problem, "random", options=MappingProxyType({"popsize": 4})).options == options


def test_numpy_trial_ids_and_costs_are_numbers():
    problem = Problem(SPACE, fidelities={"cheap": np.float32(0.25), "full": 1})
    study = Study(problem, "random", seed=0)
    ids = np.array([study.ask().id, study.ask().id])
    assert study.tell(ids[0], 1.0, cost=np.float32(0.5)).state == "complete"
    assert study.tell(ids[1], 2.0).cost == 1.0 and study.cost == 1.5
    returns_a_numpy_cost = Problem(SPACE, lambda p: {"value": 0.0, "cost": np.int64(2)})
    assert returns_a_numpy_cost.evaluate({"x": 0.0, "k": 0, "c": "a"}).cost == 2.0


def test_optimize_given_the_objective_says_where_it_belongs():
    study = Study(Problem(SPACE, square), "random", max_evaluations=2)
    with pytest.raises(OlmpError, match=r"the objective belongs in the problem: Study\(Problem"):
        study.optimize(square)
    with pytest.raises(OlmpError, match=r"callbacks are functions \(study, trial\).*got 'log'"):
        Study(Problem(SPACE, square), "random", callbacks="log")
    # Arguments of the wrong kind are named (they were TypeErrors and ValueErrors).
    problem = Problem(SPACE, square)
    one = Study(problem, "random", seed=0, max_evaluations=2)
    one.optimize()
    complete = one.trials[0]
    calls = [
        (lambda: Study(problem, "random", callbacks=5), r"callbacks are functions .*got 5"),
        (lambda: Study(problem, "random", warm_start=5), r"warm_start takes a Study.*got 5"),
        (lambda: Study(problem, "tpe", seed=2**32), r"seed must be below 2\*\*32, got 4294967296"),
        (lambda: Problem(SPACE, square, fidelities=["a"]), r"fidelities is a dict of name"),
        (
            lambda: Study(problem, "random", warm_start=[replace(complete, value=None)]),
            r"warm-start trial 0 is complete but its value is None",
        ),
        (
            lambda: Study(problem, "random", warm_start=[replace(complete, params=[1])]),
            r"warm-start trial 0: params are a mapping of variable names, got \[1\]",
        ),
    ]
    for call, message in calls:
        with pytest.raises(OlmpError, match=message):
            call()


def test_numpy_values_are_numbers_and_a_saved_study_needs_json_choices(tmp_path):
    numpy_made = Space(
        [Real("x", np.float32(0), np.float64(1)), Categorical("c", list(np.arange(3)))]
    )
    assert numpy_made["c"].choices == (0, 1, 2) and type(numpy_made["x"].low) is float
    path = tmp_path / "s.json"
    Study(Problem(numpy_made, lambda p: p["x"] + p["c"]), "random", path=path, max_evaluations=3)
    # A tuple reads back from the file as a list: refused at once, naming the choice.
    tuples = Space([Categorical("k", [(3, 3), (5, 5)])])
    with pytest.raises(OlmpError, match=r"'k': choice \(3, 3\) does not read back"):
        Study(Problem(tuples, lambda p: 0.0), "random", path=tmp_path / "t.json")
    Study(Problem(tuples, lambda p: 0.0), "random", max_evaluations=2).optimize()  # no file: any
    assert not (tmp_path / "t.json").exists()


def test_one_callback_needs_no_list_and_a_nan_target_is_refused():
    seen = []
    study = Study(
        Problem(SPACE, square),
        "random",
        max_evaluations=3,
        callbacks=lambda study, trial: seen.append(trial),
    )
    study.optimize()
    assert len(seen) == 3
    with pytest.raises(OlmpError, match=r"target must be a number or None, got nan"):
        Study(Problem(SPACE, square), "random", target=math.nan)
    assert Study(Problem(SPACE, square), "random", target=-1).target == -1.0


def test_failing_objectives_and_bad_returns_are_recorded_with_their_message():
    def bad(params):
        return {"value": math.nan} if params["x"] < 0 else {"value": 1.0, "oops": 2}

    study = Study(Problem(SPACE, bad), "random", seed=0, max_evaluations=10)
    study.optimize()
    errors = {t.error.split(" (")[0] for t in study.trials}
    assert "OlmpError: the objective's value is NaN" in errors
    assert any("'oops'" in e for e in errors) and study.best is None


def test_tpe_learns_to_avoid_settings_that_crash_on_a_constrained_problem():
    def crashes_below_two(params):  # feasible only for x >= 9.9
        if params["x"] < 2:
            raise RuntimeError("crashed")
        return {"value": params["x"], "constraints": [9.9 - params["x"]]}

    space = Space([Real("x", 0, 10), Real("y", 0, 1)])
    problem = Problem(space, crashes_below_two, n_constraints=1)
    study = Study(problem, "tpe", seed=0, max_evaluations=60)
    study.optimize()
    # Told as feasible, failures drew TPE back to x < 2 (24 of these 40 trials crashed).
    assert sum(t.state == "failed" for t in study.trials[20:]) <= 5
    assert study.best is not None and study.best.params["x"] >= 9.9


def test_an_objective_that_changes_its_params_does_not_change_the_record():
    space = Space([Integer("layers", 1, 3), Integer("width3", 8, 256, when={"layers": [3]})])

    def fills_in_a_default(params):
        params.setdefault("width3", 16)
        return params["width3"] / 256

    study = Study(Problem(space, fills_in_a_default), "random", seed=0, max_evaluations=8)
    study.optimize()
    assert all("width3" not in t.params for t in study.trials if t.params["layers"] != 3)
    assert any(t.params["layers"] != 3 for t in study.trials)


def test_an_objective_that_changes_a_list_choice_in_place_changes_nothing():
    space = Space([Categorical("kernel", [[3, 3], [5, 5]])])

    def pokes(params):
        params["kernel"][0] = 99
        return 0.0

    study = Study(Problem(space, pokes), "random", seed=0, max_evaluations=4)
    study.optimize()
    assert all(t.params["kernel"] in ([3, 3], [5, 5]) for t in study.trials)
    assert space["kernel"].choices == ([3, 3], [5, 5])


def test_ints_for_a_real_variable_keep_matching_their_conditions():
    space = Space([Real("dropout", 0, 0.5), Real("rate", 0, 1, when={"dropout": [0]})])
    study = Study(
        Problem(space, lambda p: p["dropout"]), "random", enqueue=[{"dropout": 0, "rate": 0.5}]
    )
    assert study.enqueue == [{"dropout": 0, "rate": 0.5}]
    with pytest.raises(
        OlmpError, match=r"variable 'n' must be an integer number in \[1, 3\], got 10"
    ):
        Study(
            Problem(Space([Integer("n", 1, 3)]), lambda p: 0.0), "random", enqueue=[{"n": 10**400}]
        )


def test_warm_start_takes_numpy_values_and_whole_floats(tmp_path):
    space = Space([Integer("layers", 1, 3), Integer("width3", 8, 256, when={"layers": [3]})])
    problem = Problem(space, lambda p: p.get("width3", 0) / 256 + p["layers"])
    done = [
        Trial(id=0, params={"layers": np.int64(2)}, state="complete", value=1.0),
        Trial(id=1, params={"layers": 3.0, "width3": 16}, state="complete", value=2.0),
    ]
    study = Study(problem, "random", warm_start=done, path=tmp_path / "s.json")
    study.max_evaluations = 1
    study.optimize()
    assert [w.params for w in study.warm] == [{"layers": 2}, {"layers": 3, "width3": 16}]


def test_a_callback_that_raises_loses_no_result(tmp_path):
    def breaks_at_trial_three(study, trial):
        if trial.id == 3:
            raise RuntimeError("bug in my logging callback")

    path = tmp_path / "study.json"
    problem = Problem(Space([Real("x", -5, 5)]), lambda p: p["x"] ** 2)
    study = Study(problem, "ncs", max_evaluations=6, path=path, callbacks=breaks_at_trial_three)
    with pytest.raises(RuntimeError, match="bug in my logging callback"):
        study.optimize()
    saved = json.loads(path.read_text())["trials"][3]
    assert saved["state"] == "complete" and saved["value"] == study.trials[3].value


def test_warm_start_trials_must_fit_the_space():
    earlier = Study(
        Problem(Space([Real("y", 0, 1)]), lambda p: p["y"]), "random", max_evaluations=3
    )
    earlier.optimize()
    with pytest.raises(
        OlmpError, match=r"warm-start trial 0 does not fit this study: unknown variable 'y'"
    ):
        Study(Problem(SPACE, square), "random", warm_start=earlier)


def test_enqueued_parameters_must_fit_the_space():
    with pytest.raises(OlmpError, match=r"enqueued parameters \{'y': 0.5\} do not fit the space"):
        Study(Problem(SPACE, square), "random", enqueue=[{"y": 0.5}])
    with pytest.raises(OlmpError, match=r"enqueue takes parameter dicts, got 0.5"):
        Study(Problem(SPACE, square), "random", enqueue=[0.5])


def test_bad_solver_options_and_unknown_solvers():
    with pytest.raises(OlmpError, match=r"solver 'ncs' has no option 'rr'; its options are"):
        Study(Problem(SPACE), "ncs", options={"rr": 1})
    with pytest.raises(OlmpError, match=r"r must be a number in \(0.0, 1.0\], got 2"):
        Study(Problem(SPACE), "ncs", options={"r": 2}).ask()
    with pytest.raises(OlmpError, match=r"unknown solver 'nsc'; choose one of: .*cobyqa"):
        Study(Problem(SPACE), "nsc")


# -- executors -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["random", "ncs"])
def test_a_worker_pool_evaluates_in_parallel(name):
    options = {"popsize": 4} if name == "ncs" else None
    study = Study(Problem(SPACE, in_a_worker), name, seed=0, max_evaluations=16, options=options)
    study.optimize(n_jobs=4)
    assert study.n_evaluations == 16 and all(t.state == "complete" for t in study.trials)
    workers = {t.cost for t in study.trials}
    assert len(workers) > 1 and os.getpid() not in workers  # (the speed: benchmarks/engine.py)
    with pytest.raises(OlmpError, match="cannot be pickled"):
        Study(Problem(SPACE, lambda p: 0.0), "random", max_evaluations=2).optimize(n_jobs=2)
    with pytest.raises(OlmpError, match="n_jobs must be an integer >= 1, got 0"):
        ProcessPool(0)


def dies_past_half(params):
    if params["x"] > 0.5:
        os._exit(1)  # a worker killed (out of memory, say), not an objective that raises
    return square(params)


def test_a_worker_that_dies_is_named_and_its_trials_kept(tmp_path):
    path = tmp_path / "s.json"
    study = Study(Problem(SPACE, dies_past_half), "random", seed=0, max_evaluations=30, path=path)
    with pytest.raises(OlmpError, match=r"a worker process died .* resume=True"):
        study.optimize(n_jobs=2)
    failed = [t for t in study.trials if t.state == "failed"]
    assert failed and not study.running()  # none left to kill a resume again
    again = Study(Problem(SPACE, square), "random", seed=0, max_evaluations=30, path=path,
                  resume=True)  # fmt: skip
    again.optimize(n_jobs=2)
    assert again.n_evaluations == 30 and len(again.trials) == 30


class ThreeSlots(Executor):
    """Runs each evaluation at once, in this process, but offers three workers."""

    capacity = 3


def test_a_solver_that_cannot_fill_the_workers_says_so():
    def run(name, options=None):
        study = Study(Problem(SPACE, square), name, seed=0, max_evaluations=6, options=options)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            study.optimize(ThreeSlots())
        assert study.n_evaluations == 6
        return [str(w.message) for w in caught]

    assert run("sracos") == [
        "solver sracos has at most 1 trial(s) out at once (its popsize), so the 3 workers "
        "run 1 at a time; the solver option popsize=3 would keep them busy"
    ]
    assert run("sracos", {"popsize": 3}) == []
    assert run("random") == []
    # COBYQA always asks one point at a time: nothing to advise.
    assert run("cobyqa") == [
        "solver cobyqa has at most 1 trial(s) out at once (its popsize), so the 3 workers "
        "run 1 at a time"
    ]


# -- registry ------------------------------------------------------------------------------


def test_a_user_registers_a_solver_and_the_engine_runs_it():
    class Coordinate(Solver):
        """Tries one coordinate at a time, a step either side of the best point."""

        summary = "coordinate search (test)"
        supports = "real"

        turn = 0

        def _ask(self):
            i, self.turn = self.turn % self.dim, self.turn + 1
            centre = self.x0 if self.best_x is None else self.best_x
            rows = np.repeat(centre[None, :], self.popsize, axis=0)
            rows[:, i] += self.sigma0[i] * np.linspace(-1, 1, self.popsize)
            return np.clip(rows, self.lower, self.upper)

        def _tell(self, rows, fitness):
            pass

    register_solver("coordinate", Coordinate)
    try:
        study = Study(Problem(SPACE, square), "coordinate", max_evaluations=100)
        assert study.optimize().value < 0.05
        with pytest.raises(OlmpError, match=r"solver 'coordinate' is already registered"):
            register_solver("coordinate", type("Other", (Coordinate,), {}))
        with pytest.raises(OlmpError, match=r"register_solver needs a subclass of olmp.dfo.Solver"):
            register_solver("bad", object)
        lost = type("Lost", (Coordinate,), {"_ask": lambda self: np.full((1, self.dim), np.nan)})
        with pytest.raises(RuntimeError, match=r"Lost._ask returned NaN or infinite values"):
            lost([0.0], [1.0], popsize=1).ask()  # a subclass's bug, named where it happens
    finally:
        SOLVERS.pop("coordinate")


def test_settings_with_a_result_are_told_again_not_evaluated_again(monkeypatch):
    from olmp.dfo import sampler

    told = []  # every (row, value) the solver is told

    class Scripted(Solver):
        """Asks these populations, then the last row for ever (a converged search)."""

        summary = "scripted (test)"
        supports = "real"
        variable_batch = True  # populations of any size up to popsize
        script: ClassVar[list] = [[[0.1], [0.2], [0.1]], [[0.2], [0.3]]]

        def _ask(self):
            return np.array(self.script.pop(0) if self.script else [[0.3]])

        def _tell(self, rows, fitness):
            told.extend(zip(rows[:, 0].tolist(), fitness.tolist(), strict=True))

    register_solver("scripted", Scripted)
    monkeypatch.setattr(sampler, "MAX_REPEATS", 5)
    try:
        space = Space([Real("x", 0.0, 1.0)])
        study = Study(Problem(space, lambda p: 10 * p["x"]), "scripted", max_evaluations=5)
        first, second = study.ask(), study.ask()
        assert study.ask() is None  # the third row repeats the first, which is out: it waits
        study.tell(second.id, 2.0)
        assert study.ask() is None and not told
        study.tell(first.id, 1.0)
        assert told == [(0.1, 1.0), (0.2, 2.0), (0.1, 1.0)]  # the repeat told the first's result
        # Next population: 0.2 is known (told again), 0.3 is new. Then the solver asks
        # 0.3 only: five rows answered from memory, then it goes out as a trial again.
        study.optimize()
        assert [t.params["x"] for t in study.trials] == [0.1, 0.2, 0.3, 0.3, 0.3]
        assert told[3] == (0.2, 2.0) and told[4:10] == [(0.3, 3.0)] * 6

        # A log scale decodes an enqueued 0.05 as 0.05000000000000003: the same setting.
        log_space = Space([Real("lr", 1e-4, 1.0, log=True)])
        again = float(log_space.to_unit({"lr": 0.05})[0])
        assert log_space.from_unit([again])["lr"] != 0.05
        Scripted.script = [[[0.9], [again]]]
        study = Study(Problem(log_space, lambda p: p["lr"]), "scripted", max_evaluations=3,
                      enqueue=[{"lr": 0.05}])  # fmt: skip
        study.optimize()
        lrs = [t.params["lr"] for t in study.trials]
        assert lrs[0] == 0.05 and len({round(lr, 9) for lr in lrs}) == 3  # no 0.05 again
    finally:
        SOLVERS.pop("scripted")


def test_olmp_solvers_lists_cobyqa_with_what_each_supports_natively():
    from olmp.solvers import describe_solvers

    records = {r["name"]: r for r in describe_solvers()}
    assert {"ncs", "cmaes", "random", "sracos", "tpe", "mads", "bobyqa", "cobyqa"} <= set(records)
    assert records["cobyqa"]["native"]["constraints"] == "native"
    assert records["cobyqa"]["installed"] and records["cobyqa"]["install"] is None
    assert records["tpe"]["native"]["kinds"]["conditional"].startswith("native")
    assert (
        records["tpe"]["native"]["order_dependent"]
        and not records["ncs"]["native"]["order_dependent"]
    )


@pytest.mark.parametrize("name", ["cobyqa", "bobyqa"])
def test_model_based_solvers_take_a_linear_model(name):
    cls = solver_class(name)
    if not cls.available():
        pytest.skip(cls.install_hint())

    def asked(model: str) -> np.ndarray:
        solver = cls(-np.ones(4), np.ones(4), x0=np.full(4, 0.3), seed=0, model=model)
        points = []
        try:
            solver.plan(12)
            for _ in range(12):
                x = solver.ask()[:1]
                solver.tell(x, np.array([float(np.sum((x - 0.5) ** 2))]))
                points.append(x[0])
        finally:
            solver.close()
        return np.array(points)

    linear, quadratic = asked("linear"), asked("quadratic")
    assert not np.allclose(linear, quadratic)  # the option reaches the library
    with pytest.raises(OlmpError, match="quadratic"):
        cls(-np.ones(2), np.ones(2), model="cubic")
