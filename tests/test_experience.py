"""Experienced optimisation: the directional model, expsracos, olmp experience build, and
olmp tune --task ensemble with --experience."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import FAIRNESS
from safetensors import safe_open

from olmp.cli import main
from olmp.dfo import Categorical, Integer, Problem, Real, Space, Study, directional
from olmp.dfo.directional import (
    DirectionalModel,
    Reliability,
    pairs,
    space_difference,
    train_directional_model,
)
from olmp.dfo.solvers import SOLVERS, make_solver
from olmp.errors import OlmpError
from olmp.experience import build_experience, read_study
from olmp.files import HASH_KEY, METADATA_KEY, command_record_in
from olmp.tune import ensemble, tune
from olmp.tune.ensemble import load_table

pytestmark = pytest.mark.skipif(
    not SOLVERS["sracos"].available(), reason="expsracos needs zoopt: pip install 'olmp[sracos]'"
)

PLANE = Space([Real("a", 0.0, 1.0), Real("b", 0.0, 1.0), Real("c", 0.0, 1.0)])


def plane(params):
    """Lower is better the larger ``a`` is; ``b`` and ``c`` do not matter."""
    return -params["a"]


def _history(objective, seed, solver="random", n=40, space=PLANE):
    study = Study(Problem(space, objective), solver, seed=seed, max_evaluations=n)
    study.optimize()
    return [(t.params, t.value) for t in study.trials]


def _planted_model(space=PLANE, coordinate=0, sharpness=1.0):
    """A model by hand whose score grows with feature ``coordinate`` (the candidate's
    coordinate, or from ``dim`` on its step from the best)."""
    dim = space.dim
    w1 = np.zeros((2 * dim, 1))
    w1[coordinate, 0] = sharpness
    weights = {"w1": w1, "b1": np.zeros(1), "w2": np.full((1, 1), 10.0), "b2": np.zeros(1)}
    return DirectionalModel(space, weights, {"sources": [{"dataset": "planted"}]})


def _asked(solver, seed=3, **options):
    study = Study(Problem(PLANE, plane), solver, seed=seed, options=options, max_evaluations=30)
    study.optimize()
    return [t.params for t in study.trials]


# -- the directional model ----------------------------------------------------------------


def test_pairs_label_improvements_on_the_best_so_far():
    history = [({"a": 0.1, "b": 0, "c": 0}, 5.0), ({"a": 0.2, "b": 0, "c": 0}, 7.0),
               ({"a": 0.3, "b": 0, "c": 0}, 4.0), ({"a": 0.4, "b": 0, "c": 0}, None)]  # fmt: skip
    X, y = pairs(PLANE, history)
    assert y.tolist() == [0.0, 1.0, 0.0]
    np.testing.assert_allclose(X[2, :3], [0.4, 0, 0])  # the candidate
    np.testing.assert_allclose(X[2, 3:], [0.1, 0, 0])  # minus the best so far (a = 0.3)


def test_the_model_learns_a_planted_direction():
    histories = [_history(plane, seed) for seed in range(6)]
    model = train_directional_model(PLANE, histories, sources=["p"] * 6)
    rng = np.random.default_rng(0)
    right = 0
    for _ in range(200):
        best, (one, other) = rng.uniform(size=3), rng.uniform(size=(2, 3))
        scores = model.score(best, [one, other])
        right += (scores[0] > scores[1]) == (one[0] > other[0])
    assert right / 200 > 0.85  # chance is 0.5


def test_the_file_round_trips_and_damage_is_named(tmp_path):
    model = train_directional_model(PLANE, [_history(plane, 0)], sources=["x"], epochs=20)
    path = tmp_path / "m.exp"
    model.save(path)
    again = DirectionalModel.load(path)
    points = np.random.default_rng(1).uniform(size=(5, 3))
    np.testing.assert_array_equal(again.score(points[0], points), model.score(points[0], points))
    assert again.datasets == ["x"] and again.space == PLANE
    with pytest.raises(OlmpError, match="already exists"):
        model.save(path)
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF  # a weight's byte
    path.write_bytes(bytes(data))
    with pytest.raises(OlmpError, match=r"m\.exp is damaged"):
        DirectionalModel.load(path)
    path.write_bytes(b"not a model")
    with pytest.raises(OlmpError, match=r"m\.exp"):
        DirectionalModel.load(path)


def test_one_network_per_source_dataset_and_the_score_is_their_mean():
    def low_b(params):
        return params["b"]

    a_up = [_history(plane, seed) for seed in range(3)]
    b_down = [_history(low_b, seed) for seed in range(3, 6)]
    never = [[({"a": 0.5, "b": 0.5, "c": 0.5}, 1.0), ({"a": 0.1, "b": 0.2, "c": 0.3}, 2.0)]]
    both = train_directional_model(PLANE, [*a_up, *b_down, *never], epochs=30,
                                   sources=["a"] * 3 + ["b"] * 3 + ["flat"])  # fmt: skip
    assert both.networks == 2 and both.datasets == ["a", "b", "flat"]
    training = both.info["training"]
    assert [n["dataset"] for n in training["networks"]] == ["a", "b"]
    assert training["untaught"] == ["flat"] and training["examples"] == 3 * 39 + 3 * 39 + 1
    # each network is what training on its dataset alone gives, seeded by its place
    only_a = train_directional_model(PLANE, a_up, sources=["a"] * 3, epochs=30, seed=0)
    only_b = train_directional_model(PLANE, b_down, sources=["b"] * 3, epochs=30, seed=1)
    points = np.random.default_rng(2).uniform(size=(6, 3))
    mean = (only_a.score(points[0], points) + only_b.score(points[0], points)) / 2
    np.testing.assert_allclose(both.score(points[0], points), mean)
    with pytest.raises(OlmpError, match="no source has both"):
        train_directional_model(PLANE, never, sources=["flat"])


def test_a_version_1_file_loads_and_a_newer_one_is_refused(tmp_path):
    import torch

    from olmp.files import save_checkpoint

    model = _planted_model()
    one = {name: torch.as_tensor(model.weights[name][0]) for name in model.weights}
    record = {"format": "olmp-experience", "space": PLANE.to_json(), "sources": []}
    save_checkpoint(tmp_path / "v1.exp", one, {**record, "version": 1})
    again = DirectionalModel.load(tmp_path / "v1.exp")
    points = np.random.default_rng(3).uniform(size=(4, 3))
    np.testing.assert_allclose(again.score(points[0], points), model.score(points[0], points))
    save_checkpoint(tmp_path / "v9.exp", one, {**record, "version": 9})
    with pytest.raises(OlmpError, match=r"v9\.exp is an experience file of version 9"):
        DirectionalModel.load(tmp_path / "v9.exp")


def test_another_space_is_named():
    other = Space([Real("a", 0.0, 1.0), Real("b", 0.0, 2.0), Real("d", 0.0, 1.0)])
    with pytest.raises(OlmpError, match=r"only in the experience's: c; .*: d; .*otherwise: b \("):
        _planted_model().check_space(other)
    # each variable with what differs in it: a condition is not a range
    a = Space([Categorical("n", [1, 2]), Real("x", 0.0, 1.0, when={"n": (2,)})])
    b = Space([Categorical("n", [1, 2]), Real("x", 0.0, 1.0)])
    assert space_difference(a, b) == "variables set up otherwise: x (when)"
    c = Space([Categorical("n", [1, 2, 3]), Real("x", 0.0, 1.0, when={"n": (2,)})])
    assert space_difference(a, c) == "variables set up otherwise: n (choices)"


# -- expsracos ---------------------------------------------------------------------------------


def test_without_a_model_it_asks_what_sracos_asks():
    assert _asked("expsracos") == _asked("sracos")
    assert _asked("expsracos", k=7) == _asked("sracos")
    assert _asked("expsracos", k=1, experience=_planted_model()) == _asked("sracos")


def test_the_model_picks_the_candidate_it_rates_best():
    def late_a(params):  # the trials after SRacos's initial samples
        return np.mean([p["a"] for p in params[4:]])

    plain = np.mean([late_a(_asked("sracos", seed=s)) for s in range(3)])
    guided = np.mean([late_a(_asked("expsracos", seed=s, experience=_planted_model()))
                      for s in range(3)])  # fmt: skip
    wrong = np.mean([late_a(_asked("expsracos", seed=s, experience=_planted_model(coordinate=1)))
                     for s in range(3)])  # fmt: skip
    assert guided > plain + 0.1 and guided > wrong + 0.1
    ablation = _asked("expsracos", select="random")
    assert ablation != _asked("sracos") and len(ablation) == 30


def test_with_a_model_it_never_proposes_settings_it_proposed_before():
    # Few integer and categorical settings: SRacos's resampled coordinate often lands in
    # the cell it left. A study spends no trial on them either way (the sampler answers
    # them from memory, olmp.dfo.sampler); asked directly, plain SRacos proposes them and
    # expsracos, choosing among its k candidates, does not.
    space = Space([Integer("n", 1, 4), Categorical("kind", ["x", "y", "z"]), Real("r", 0.0, 1.0)])
    model = _planted_model(space, coordinate=2)

    def distinct(solver, seed, **options):
        box = make_solver(solver, np.zeros(space.dim), np.ones(space.dim), seed=seed,
                          max_evaluations=30, **options)  # fmt: skip
        seen = set()
        for _ in range(30):
            row = box.ask()[0]
            params = space.from_unit(row)
            seen.add(tuple(sorted(params.items())))
            box.tell(row[None], [abs(params["n"] - 3) + (params["kind"] != "y") + params["r"]])
        return len(seen)

    assert min(distinct("sracos", s) for s in range(3)) < 30
    for select in ("model", "random"):
        assert [distinct("expsracos", s, experience=model, select=select) for s in range(3)] == [
            30
        ] * 3


def test_reliability_weighs_the_networks_that_predict_the_search():
    reliability = Reliability(2)
    np.testing.assert_allclose(reliability.weights, [Reliability.FLOOR] * 2)  # nothing told
    for improved in (True, False, False, True, False):
        # network 0 says 0.9 when the trial improves and 0.1 when not; network 1 says 0.5
        reliability.observe(np.array([0.9 if improved else 0.1, 0.5]), improved)
    right, chance = reliability.weights
    assert chance == Reliability.FLOOR and right > 0.25


def test_expsracos_weighs_its_networks_by_the_search_itself():
    # Networks reading the candidate's step from the best (feature dim + i): a's step is
    # what decides an improvement on the plane, b's step is noise.
    right = _planted_model(coordinate=3, sharpness=50)
    noise = _planted_model(coordinate=4, sharpness=50)
    both = DirectionalModel(
        PLANE,
        {k: np.stack([right.weights[k][0], noise.weights[k][0]]) for k in right.weights},
        {"sources": [{"dataset": "right"}, {"dataset": "noise"}]},
    )
    solver = make_solver("expsracos", [0.0] * 3, [1.0] * 3, experience=both, seed=0)
    solver.minimize(lambda rows: -rows[:, 0], 30)  # plane: larger a is better
    weight_right, weight_noise = solver.reliability.weights
    assert weight_right > 2 * weight_noise
    # with equal weights the score is the plain mean; the weights change it
    points = np.random.default_rng(4).uniform(size=(5, 3))
    mean = (right.score(points[0], points) + noise.score(points[0], points)) / 2
    np.testing.assert_allclose(both.score(points[0], points), mean)
    weighted = both.score(points[0], points, solver.reliability.weights)
    assert np.abs(weighted - right.score(points[0], points)).max() < np.abs(mean - right.score(
        points[0], points)).max()  # fmt: skip


def test_bad_k_and_a_model_of_another_width_are_refused():
    with pytest.raises(OlmpError, match=r"k must be an integer in \[1, 1000\], got 0"):
        make_solver("expsracos", [0.0], [1.0], k=0)
    with pytest.raises(OlmpError, match="got 1000000000"):
        make_solver("expsracos", [0.0], [1.0], k=10**9)
    with pytest.raises(OlmpError, match="k must be an integer in"):
        Study(Problem(PLANE, plane), "expsracos", options={"k": 0}, max_evaluations=5)
    with pytest.raises(OlmpError, match="experience must be"):
        make_solver("expsracos", [0.0], [1.0], experience=3)
    solver = make_solver("expsracos", [0.0] * 4, [1.0] * 4, experience=_planted_model())
    with pytest.raises(OlmpError, match="3 coordinates but this search's box has 4"):
        solver.ask()


# -- olmp experience build and olmp tune --task ensemble ---------------------------------------


@pytest.fixture(scope="module")
def ensemble_runs(tmp_path_factory):
    """Small recorded searches of the ensemble task on wine and iris."""
    root = tmp_path_factory.mktemp("runs")
    for dataset in ("wine", "iris"):
        summary = tune(dataset, root / dataset, task="ensemble", solver="sracos", budget=8)
        assert summary["trials"] == 8 and 0 < summary["test_accuracy"] <= 1
    return root


def _err_line(capsys):
    err = capsys.readouterr().err.strip()
    prefixes = ("olmp experience build: error:", "olmp tune: error:")
    assert err.count("\n") == 0 and err.startswith(prefixes), err
    return err


def test_build_then_tune_with_the_experience(ensemble_runs, tmp_path, capsys, monkeypatch):
    assert command_record_in(ensemble_runs / "wine") == ("tune.json", "olmp tune search")
    model_file = tmp_path / "e.exp"
    assert main(["experience", "build", "--from", str(ensemble_runs / "wine"),
                 str(ensemble_runs / "iris"), "--out", str(model_file), "--json"]) == 0  # fmt: skip
    built = json.loads(capsys.readouterr().out)
    assert built["datasets"] == ["iris", "wine"] and built["examples"] == 14
    assert built["networks"] == 1 and built["untaught"] == ["wine"]  # its 8 trials: no gain
    assert main(["experience", "build", "--from", str(ensemble_runs / "wine"),
                 str(ensemble_runs / "iris"), "--out", str(tmp_path / "t.exp")]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "no trial improved on its best in the studies of: wine" in printed
    assert "learned from 2 studies (14 examples, " in printed and "1 network," in printed
    positives = built["improvements"]  # 8-trial searches teach few
    assert positives < 10 and f"only {positives} improvement" in printed
    out = tmp_path / "bc"
    assert main(["tune", "--task", "ensemble", "--dataset", "breast-cancer", "--solver",
                 "expsracos", "--experience", str(model_file), "--budget", "8", "--out",
                 str(out), "--json"]) == 0  # fmt: skip
    summary = json.loads(capsys.readouterr().out)
    assert summary["trials"] == 8 and summary["test_accuracy"] > 0.8
    assert list(summary["experience_weights"]) == ["iris"]  # wine taught no network
    assert summary["experience_weights"]["iris"] == pytest.approx(1.0)
    # the records name the experience by its content, not by where its file lies
    fingerprint = DirectionalModel.load(model_file).fingerprint
    assert fingerprint.startswith("sha256:") and len(fingerprint) == 7 + 64
    record = json.loads((out / "study.json").read_text())
    assert record["solver"] == "expsracos" and record["options"]["experience"] == fingerprint
    tune_record = json.loads((out / "tune.json").read_text())
    assert tune_record["solver_options"]["experience"] == fingerprint
    assert tune_record["experience"] == {"file": str(model_file), "datasets": ["iris", "wine"]}
    # the held-out dataset: refused, unless --force
    held = ["tune", "--task", "ensemble", "--dataset", "wine", "--solver", "expsracos",
            "--experience", str(model_file), "--budget", "2",
            "--out", str(tmp_path / "w")]  # fmt: skip
    assert main(held) == 2
    assert "learned on dataset 'wine'" in _err_line(capsys) and not (tmp_path / "w").exists()
    twice = [*held, "--solver-option", f"experience={tmp_path / 't.exp'}"]  # which one?
    assert main(twice) == 2
    assert "experience is given twice" in _err_line(capsys) and not (tmp_path / "w").exists()
    assert main([*held, "--force", "--json"]) == 0
    capsys.readouterr()
    # a resume (longer budget) continues with the experience it began with, wherever its
    # file lies now, and with no other
    moved = tmp_path / "moved" / "e.exp"
    moved.parent.mkdir()
    moved.write_bytes(model_file.read_bytes())
    longer = ["tune", "--task", "ensemble", "--dataset", "wine", "--solver", "expsracos",
              "--experience", str(moved), "--budget", "4",
              "--out", str(tmp_path / "w")]  # fmt: skip
    assert main([*longer, "--resume", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["trials"] == 4
    # left out, the task, solver and experience are the search's own: its file found from
    # any folder (the record holds where it was, not the path as typed)
    short = ["tune", "--dataset", "wine", "--budget", "5", "--out", str(tmp_path / "w")]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main([*short, "--resume", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["trials"] == 5
    monkeypatch.chdir(tmp_path)
    relative = ["tune", "--task", "ensemble", "--dataset", "breast-cancer", "--solver",
                "expsracos", "--experience", "e.exp", "--budget", "1", "--out", "rel"]  # fmt: skip
    assert main(relative) == 0
    capsys.readouterr()
    recorded = json.loads((tmp_path / "rel" / "tune.json").read_text())["experience"]["file"]
    assert recorded == str(model_file.resolve())
    build_experience([ensemble_runs / "iris"], moved, force=True)  # another model, same path
    assert main([*longer[:-3], "6", "--out", str(tmp_path / "w"), "--resume"]) == 2
    assert "another --experience ('sha256:" in _err_line(capsys)  # the option as typed
    # an existing file is not overwritten
    again = ["experience", "build", "--from", str(ensemble_runs / "wine"), "--out",
             str(model_file)]  # fmt: skip
    assert main(again) == 2 and "already exists" in _err_line(capsys)


def test_an_experience_file_given_as_weights_is_named_as_such(ensemble_runs, tmp_path, capsys):
    build_experience([ensemble_runs / "wine", ensemble_runs / "iris"], tmp_path / "a.exp")
    assert main(["evaluate", "--weights", str(tmp_path / "a.exp")]) == 2
    assert "a.exp is an olmp experience file (olmp experience build), not a network" in (
        capsys.readouterr().err
    )


def test_two_builds_of_one_model_have_one_fingerprint(ensemble_runs, tmp_path, monkeypatch):
    studies = [ensemble_runs / "wine", ensemble_runs / "iris"]
    first = build_experience(studies, tmp_path / "a.exp")
    clock = iter([0.0, 7.0])  # the second build's wall time: surely not the first's
    monkeypatch.setattr(directional, "time", SimpleNamespace(perf_counter=lambda: next(clock)))
    build_experience(studies, tmp_path / "b.exp")
    monkeypatch.undo()
    again = DirectionalModel.load(tmp_path / "b.exp")
    assert again.info["training"]["seconds"] == 7.0 != first.info["training"]["seconds"]
    for name, weights in first.weights.items():
        assert np.array_equal(weights, again.weights[name])
    hashes = []
    for file in ("a.exp", "b.exp"):
        with safe_open(tmp_path / file, "np") as written:
            hashes.append(json.loads(written.metadata()[METADATA_KEY])[HASH_KEY])
    assert hashes[0] != hashes[1]  # the files differ, in their wall time only
    assert again.fingerprint == first.fingerprint
    assert DirectionalModel.load(tmp_path / "a.exp").fingerprint == first.fingerprint
    # nor do the paths the studies were given by (./runs/wine or runs/wine)
    monkeypatch.chdir(ensemble_runs)
    typed = build_experience([Path("./wine"), Path("iris")])
    assert typed.info["sources"][0]["study"] == str((ensemble_runs / "wine/study.json").resolve())
    assert typed.fingerprint == first.fingerprint
    # so a search begun with one resumes with the other (force: it learned on wine)
    for file, budget, again in (("a.exp", 2, False), ("b.exp", 3, True)):
        summary = tune("wine", tmp_path / "w", task="ensemble", solver="expsracos",
                       budget=budget, solver_options={"experience": str(tmp_path / file)},
                       force=not again, resume=again)  # fmt: skip
    assert summary["trials"] == 3


def test_a_search_reads_its_experience_file_once_and_takes_a_model_too(
    ensemble_runs, tmp_path, monkeypatch
):
    model_file = tmp_path / "e.exp"
    model = build_experience(str(ensemble_runs / "iris"), model_file)  # one study, no list
    assert [Path(s["study"]).parent.name for s in model.info["sources"]] == ["iris"]
    reads = []
    load = DirectionalModel.load
    monkeypatch.setattr(DirectionalModel, "load", lambda path: reads.append(path) or load(path))
    options = {"experience": str(model_file), "k": 3}
    tune("wine", tmp_path / "a", task="ensemble", solver="expsracos", budget=3,
         solver_options=options)  # fmt: skip
    assert reads == [model_file]
    # the Python API takes the model itself; a resume may name its file instead
    tune("wine", tmp_path / "b", task="ensemble", solver="expsracos", budget=2,
         solver_options={**options, "experience": model})  # fmt: skip
    summary = tune("wine", tmp_path / "b", task="ensemble", solver="expsracos", budget=3,
                   solver_options=options, resume=True)  # fmt: skip
    assert summary["trials"] == 3
    record = json.loads((tmp_path / "b" / "tune.json").read_text())
    assert record["experience"] == {"file": None, "datasets": ["iris"]}
    assert record["solver_options"] == {"experience": model.fingerprint, "k": 3}


def test_bad_input_exits_2_with_one_line(ensemble_runs, tmp_path, capsys):
    other = tmp_path / "other" / "study.json"
    Study(Problem(PLANE, plane), "random", max_evaluations=3, path=other).optimize()
    mixed = ["experience", "build", "--from", str(ensemble_runs / "wine"), str(other.parent),
             "--out", str(tmp_path / "m.exp")]  # fmt: skip
    assert main(mixed) == 2
    assert "searched different spaces (only in" in _err_line(capsys)
    assert not (tmp_path / "m.exp").exists()
    assert main(["experience", "build", "--from", str(tmp_path / "none"), "--out",
                 str(tmp_path / "m.exp")]) == 2  # fmt: skip
    assert "holds no study" in _err_line(capsys)
    wine = ensemble_runs / "wine"
    twice = ["experience", "build", "--from", str(wine), str(wine / "study.json"),
             "--out", str(tmp_path / "m.exp")]  # fmt: skip
    assert main(twice) == 2
    assert "study.json is given twice" in _err_line(capsys)
    assert main(["experience", "build", "--from", str(ensemble_runs / "wine"), "--out",
                 str(tmp_path), "--force"]) == 2  # fmt: skip
    assert f"--out {tmp_path} is a folder" in _err_line(capsys)
    (tmp_path / "mads").mkdir()
    (tmp_path / "mads" / "mads.json").write_text("{}")
    assert main(["experience", "build", "--from", str(tmp_path / "mads"), "--out",
                 str(tmp_path / "m.exp")]) == 2  # fmt: skip
    assert "is a search of solver mads, which records no study" in _err_line(capsys)
    plane_model = tmp_path / "plane.exp"
    build_experience([other.parent], plane_model)
    base = ["tune", "--task", "ensemble", "--dataset", "digits", "--budget", "2",
            "--solver", "expsracos", "--out", str(tmp_path / "o")]  # fmt: skip
    assert main([*base, "--experience", str(plane_model)]) == 2
    assert "another space" in _err_line(capsys)
    damaged = tmp_path / "damaged.exp"
    damaged.write_bytes(plane_model.read_bytes()[:-8])
    assert main([*base, "--experience", str(damaged)]) == 2
    assert "damaged.exp" in _err_line(capsys)
    assert main([*base, "--solver-option", "k=0"]) == 2
    assert "k must be an integer in [1, 1000], got 0" in _err_line(capsys)
    assert main([*base[:-4], "--solver", "random", "--experience", str(plane_model),
                 "--out", str(tmp_path / "o")]) == 2  # fmt: skip
    assert "--experience is for --solver expsracos" in _err_line(capsys)
    assert main(["tune", "--task", "ensemble", "--dataset", "cifar", "--budget", "2",
                 "--out", str(tmp_path / "o")]) == 2  # fmt: skip
    assert "unknown dataset of the ensemble task 'cifar'" in _err_line(capsys)
    assert main([*base[:-4], "--solver", "random", "--trial-time-limit", "5", "--out",
                 str(tmp_path / "o")]) == 2  # fmt: skip
    assert "--trial-time-limit is a setting of --task cnn" in _err_line(capsys)
    assert not (tmp_path / "o").exists()


def test_loose_study_files_are_named_by_their_file_and_held_out_checks_them(
    ensemble_runs, tmp_path, capsys
):
    loose = tmp_path / "studies"
    loose.mkdir()
    for dataset in ("iris", "wine"):
        shutil.copy(ensemble_runs / dataset / "study.json", loose / f"{dataset}.json")
    model = build_experience([loose / "iris.json", loose / "wine.json"], tmp_path / "e.exp")
    assert model.datasets == ["iris", "wine"]  # not one dataset, "studies"
    code = main(["tune", "--task", "ensemble", "--dataset", "iris", "--solver", "expsracos",
                 "--experience", str(tmp_path / "e.exp"), "--budget", "2",
                 "--out", str(tmp_path / "o")])  # fmt: skip
    assert code == 2 and "iris" in _err_line(capsys)
    for seed in (1.5, "a", -1):
        with pytest.raises(OlmpError, match=r"seed must be an integer >= 0"):
            build_experience([ensemble_runs / "iris"], None, seed=seed)


def test_a_dataset_that_is_not_installed_stops_the_search_before_it_starts(
    monkeypatch, tmp_path, capsys
):
    def missing(data_dir):
        raise OlmpError("wine files not found. Put wine.csv in one of: ...")

    described = ensemble.ENSEMBLE_DATASETS["wine"][0]
    monkeypatch.setitem(ensemble.ENSEMBLE_DATASETS, "wine", (described, missing))
    load_table.cache_clear()  # a table loaded by an earlier test would hide the loader
    out = tmp_path / "o"
    assert main(["tune", "--task", "ensemble", "--dataset", "wine", "--budget", "3",
                 "--out", str(out)]) == 2  # fmt: skip
    assert "wine files not found" in _err_line(capsys)
    assert not out.exists()


def test_solvers_json_lists_expsracos(capsys):
    assert main(["solvers", "--json"]) == 0
    records = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert {"experience", "k", "select"} <= set(records["expsracos"]["options"])
    assert records["expsracos"]["native"]["constraints"] == "penalty"


@pytest.mark.skipif(not FAIRNESS.is_dir(), reason=f"needs the shared data at {FAIRNESS}")
def test_the_ensemble_task_reads_a_tabular_set_with_disjoint_splits():
    table = load_table("german", 0, str(FAIRNESS))
    sizes = [len(part[1]) for part in (table.train, table.val, table.test)]
    assert sizes == [500, 250, 250] and table.classes.tolist() == [0, 1]
    rows = [{tuple(r) for r in part[0].round(6)} for part in (table.train, table.val, table.test)]
    assert not (rows[0] & rows[1]) and not (rows[0] & rows[2]) and not (rows[1] & rows[2])
    other = load_table("german", 1, str(FAIRNESS))
    np.testing.assert_array_equal(np.sort(other.test[1]), np.sort(table.test[1]))  # fixed test
    assert not np.array_equal(other.val[1], table.val[1])  # the split seed moves val


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda r: r["log"].append(["t", 99]), "no 99"),
        (lambda r: r["trials"][0].pop("params"), "missing 1 required positional argument"),
        (lambda r: r["trials"][0].update(value="abc"), "trial 0 has a field of the wrong type"),
        (lambda r: r["trials"][0].update(params={"x": 1}), "unknown variable 'x'"),
        (lambda r: r["trials"][0].update(params="x"), "trial 0 has state 'complete' or bad params"),
        (lambda r: r["log"].append(["t", 0]), "a trial is told twice"),
    ],
)
def test_a_damaged_trial_of_a_study_is_named(tmp_path, capsys, damage, message):
    path = tmp_path / "run" / "study.json"
    Study(Problem(PLANE, plane), "random", max_evaluations=4, path=path).optimize()
    record = json.loads(path.read_text())
    damage(record)
    path.write_text(json.dumps(record))
    out = tmp_path / "m.exp"
    assert main(["experience", "build", "--from", str(path.parent), "--out", str(out)]) == 2
    err = _err_line(capsys)
    assert f"study {path} is damaged" in err and message in err, err
    assert not out.exists()


def test_an_infeasible_trial_improves_on_nothing(tmp_path):
    path = tmp_path / "run" / "study.json"
    problem = Problem(PLANE, lambda p: {"value": plane(p), "constraints": [1.0]}, n_constraints=1)
    Study(problem, "random", max_evaluations=5, path=path).optimize()
    _, history, _ = read_study(path)  # every trial infeasible: none better than another
    assert len(history) == 5 and all(value == math.inf for _, value in history)


def test_a_tune_record_that_is_not_an_object_is_named(tmp_path):
    path = tmp_path / "run" / "study.json"
    Study(Problem(PLANE, plane), "random", max_evaluations=4, path=path).optimize()
    (path.parent / "tune.json").write_text("[1]")
    with pytest.raises(OlmpError, match=r"tune\.json is damaged"):
        build_experience([path.parent])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t, r: r.pop("sources"), r"\('sources'\)"),  # else no dataset refused
        (lambda t, r: r.update(sources=5), "sources is not a list"),
        (lambda t, r: r.update(sources=["iris"]), "has no attribute 'get'"),
        (lambda t, r: r.update(training=[1]), "has no attribute 'get'"),
        (lambda t, r: t["b2"].fill_(float("nan")), "b2 holds NaN or inf"),
        (lambda t, r: t.update(b1=t["b1"][..., None]), r"b1 has shape \(\d+, \d+, 1\)"),
    ],
)
def test_an_experience_file_with_wrong_fields_is_named(tmp_path, change, message):
    from olmp.files import load_checkpoint, save_checkpoint

    path = tmp_path / "m.exp"
    train_directional_model(PLANE, [_history(plane, 0)], sources=["x"], epochs=5).save(path)
    tensors, record = load_checkpoint(path)
    change(tensors, record)
    save_checkpoint(tmp_path / "bad.exp", tensors, record)  # intact, but wrong inside
    with pytest.raises(OlmpError, match=r"experience file .*bad\.exp is damaged.*" + message):
        DirectionalModel.load(tmp_path / "bad.exp")
