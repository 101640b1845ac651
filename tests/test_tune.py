"""olmp tune: the space, the blackbox, the solvers, the record and the CLI (digits, tiny)."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

import olmp
from olmp.cli import main
from olmp.data.registry import Split
from olmp.dfo import Problem
from olmp.errors import OlmpError
from olmp.models import build_model
from olmp.models.tuned import feature_shapes
from olmp.tune import TuneObjective, TuneSpace, tune
from olmp.tune.blackbox import train_network
from olmp.tune.mads import neighbours

# Small networks, big batches, a 300-image train subset: a trial takes well under a second.
SMALL = {
    "conv_layers": [0, 2],
    "conv_channels": [2, 8],
    "conv_kernel": [1, 3],
    "fc_layers": [0, 1],
    "fc_size": [8, 32],
    "batch_size": [64, 256],
}
FAST = dict(space=SMALL, epochs=1, train_size=300, threads=1)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def cli(tmp_path, *args):
    space = tmp_path / "small.json"
    space.write_text(json.dumps(SMALL))
    return main(["tune", "--dataset", "digits", "--space", str(space), "--train-size", "300",
                 *args])  # fmt: skip


# -- the space -----------------------------------------------------------------------------


def test_per_layer_variables_exist_only_for_layers_that_exist():
    space = TuneSpace(SMALL)
    for params in space.space.sample(rng=0, n=30):
        space.space.validate(params)
        full = space.complete(params)
        conv = {k for k in full if k.startswith("conv") and k[4].isdigit()}
        assert {int(k[4]) for k in conv} == set(range(1, full["conv_layers"] + 1))
        assert ("momentum" in full) == (full["optimizer"] in ("sgd", "rmsprop"))
        assert ("beta1" in full) == (full["optimizer"] == "adam")
    assert space.space["lr"].log and space.space["conv2_channels"].when == {"conv_layers": (2,)}


def test_fixed_and_narrowed_families():
    space = TuneSpace({"optimizer": "adam", "conv_layers": 1, "activation": ["tanh"]})
    assert space.fixed == {"optimizer": "adam", "conv_layers": 1, "activation": "tanh"}
    names = space.space.names
    assert "optimizer" not in names and "conv1_channels" in names and "conv2_channels" not in names
    assert "beta1" in names and "momentum" not in names
    full = space.complete(space.space.sample(rng=1))
    assert full["optimizer"] == "adam" and full["activation"] == "tanh"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"conv_layer": 2}, "unknown space key 'conv_layer'"),
        ({"lr": [1e-9, 0.1]}, "outside its limits"),
        ({"activation": []}, "empty choice list"),
        ({"batch_size": 10_000}, "outside its limits"),
        ({"optimizer": "lbfgs"}, "not a choice"),
        ({"dropout": [0.5, 0.1]}, "low > high"),
    ],
)
def test_bad_space(overrides, message):
    with pytest.raises(OlmpError, match=message):
        TuneSpace(overrides)


def test_space_file_toml(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('conv_layers = [1, 2]\nactivation = ["relu", "tanh"]\nbatch_size = 128\n')
    space = TuneSpace.from_file(path)
    assert space.ranges["conv_layers"] == (1, 2) and space.fixed["batch_size"] == 128


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_space_file_that_is_not_text_is_named(tmp_path, suffix):
    path = tmp_path / f"s{suffix}"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff")
    kind = "TOML" if suffix == ".toml" else "JSON"
    with pytest.raises(OlmpError, match=f"space file {path} is not valid {kind}: .*utf-8"):
        TuneSpace.from_file(path)


# -- the network and the blackbox ----------------------------------------------------------


def test_unbuildable_network_is_a_recorded_failure_with_the_reason():
    space = TuneSpace({**SMALL, "conv_kernel": 3, "conv_padding": 0, "conv_pool": True})
    objective = TuneObjective(space, "digits", 1, train_size=100)
    params = space.project({"conv_layers": 2, "fc_layers": 0, "optimizer": "sgd"})
    result = Problem(space.space, objective).evaluate(params)
    assert result.error is not None and "below 1x1" in result.error and "conv2" in result.error


def test_a_trial_leaves_the_callers_thread_count_and_threads_are_checked(tmp_path):
    space = TuneSpace(SMALL)
    objective = TuneObjective(space, "digits", 1, train_size=50, threads=2)
    objective(space.project({"conv_layers": 1, "fc_layers": 0}))
    assert torch.get_num_threads() == 1  # as the fixture set it, not the trial's 2
    with pytest.raises(OlmpError, match="threads must be an integer >= 1, got 0"):
        tune("digits", tmp_path / "t", **{**FAST, "threads": 0})
    assert not (tmp_path / "t").exists()


def test_divergence_and_time_cap_end_a_trial():
    model = torch.nn.Linear(4, 2)
    data = Split(torch.randn(64, 4) * 1e20, torch.randint(0, 2, (64,)))
    recipe = {"optimizer": "sgd", "lr": 10.0, "momentum": 0.9, "weight_decay": 0, "batch_size": 8}
    with pytest.raises(Exception, match="diverged"):
        train_network(model, data, recipe, 5, seed=0)
    data = Split(torch.randn(64, 4), torch.randint(0, 2, (64,)))
    with pytest.raises(Exception, match="time cap"):
        train_network(model, data, recipe | {"lr": 0.01}, 10_000, seed=0, time_cap=0.05)


def test_cosine_decays_the_rate_after_the_first_step():
    data = Split(torch.randn(32, 4), torch.randint(0, 2, (32,)))
    recipe = {"optimizer": "sgd", "lr": 0.5, "momentum": 0.0, "weight_decay": 0, "batch_size": 32}

    def weights(epochs, cosine):  # one step per epoch
        torch.manual_seed(0)
        model = torch.nn.Linear(4, 2)
        train_network(model, data, recipe, epochs, seed=0, cosine=cosine)
        return model.weight.detach()

    assert torch.equal(weights(1, True), weights(1, False))  # the first step at the full rate
    assert not torch.allclose(weights(2, True), weights(2, False))  # the second at half


def test_tuned_cnn_spec_round_trip_and_errors():
    spec = {"conv": [{"channels": 4, "kernel": 3, "stride": 1, "padding": 1, "pool": True}],
            "fc": [16], "dropout": 0.1, "activation": "tanh"}  # fmt: skip
    net = build_model("tuned-cnn", (1, 8, 8), 10, {"spec": spec})
    assert net(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    assert feature_shapes(spec, (1, 8, 8)) == [(4, 4, 4)]
    with pytest.raises(OlmpError, match="needs an architecture spec"):
        build_model("tuned-cnn", (1, 8, 8), 10, {"spec": [1, 2]})
    assert build_model("tuned-cnn", (1, 28, 28), 10)(torch.zeros(1, 1, 28, 28)).shape == (1, 10)
    with pytest.raises(OlmpError, match="takes no option"):
        build_model("lenet-5", (1, 28, 28), 10, {"spec": spec})
    with pytest.raises(OlmpError, match="activation"):
        build_model("tuned-cnn", (1, 8, 8), 10, {"spec": {**spec, "activation": "gelu"}})


# -- the search ----------------------------------------------------------------------------


def test_cli_check_random_and_tpe(tmp_path, capsys):
    for solver in ("random", "tpe"):
        out = tmp_path / solver
        code = cli(tmp_path, "--solver", solver, "--budget", "6", "--epochs", "1", "--seed", "0",
                   "--out", str(out), "--json")  # fmt: skip
        assert code == 0
        summary = json.loads(capsys.readouterr().out)
        assert summary["trials"] == 6 and 0 < summary["best_val_accuracy"] <= 1
        assert summary["best_checkpoint"] == str(out / "best.safetensors")
        record = json.loads((out / "study.json").read_text())
        assert record["solver"] == solver and len(record["trials"]) == 6
        trials = json.loads((out / "trials.json").read_text())
        assert {"settings", "val_accuracy", "state", "seconds", "error"} <= set(trials[0])
        # every solver starts from the default network, as MADS does
        assert trials[0]["settings"] == TuneSpace(SMALL).complete(TuneSpace(SMALL).start())
        assert (out / "best_val.png").stat().st_size > 0
        # the best network loads through the registry, as olmp compress loads it
        net, splits, meta = olmp.load_weights(summary["best_checkpoint"])
        assert (
            meta["model"] == "tuned-cnn" and meta["model_options"]["spec"] == summary["best_spec"]
        )
        assert olmp.training.accuracy(net, splits.val) == pytest.approx(
            summary["best_val_accuracy"]
        )
        assert meta["test_accuracy"] == summary["test_accuracy"]


def test_mads_extended_poll_changes_structure_and_resumes(tmp_path):
    out = tmp_path / "m"
    first = tune("digits", out, solver="mads", budget=9, **FAST)
    trials = json.loads((out / "trials.json").read_text())
    assert first["trials"] == 9 and len({json.dumps(t["settings"]) for t in trials}) == 9
    kinds = [t["kind"] for t in trials]
    assert kinds[:6] == ["mads"] * 6 and "extended-poll" in kinds
    structures = {(t["settings"]["conv_layers"], t["settings"]["fc_layers"],
                   t["settings"]["optimizer"]) for t in trials}  # fmt: skip
    assert len(structures) >= 3
    # resume with a larger budget: the first 9 are replayed from the record, not retrained
    again = tune("digits", out, solver="mads", budget=12, resume=True, **FAST)
    more = json.loads((out / "trials.json").read_text())
    assert again["trials"] == 12 and more[:9] == trials


def test_mads_in_parallel_keeps_to_the_budget(tmp_path):
    # A phase's trials out count against its cost limit: two at a time used to run a fifth.
    summary = tune("digits", tmp_path / "m", solver="mads", budget=4, n_jobs=2, **FAST)
    assert summary["trials"] == 4 and summary["stop_reason"] == "max_evaluations"


def test_extended_poll_neighbours_copy_the_last_layer():
    space = TuneSpace(SMALL)
    full = space.complete(space.start())
    found = {
        json.dumps(pin, sort_keys=True): space.complete(p, pin)
        for pin, p in neighbours(space, full)
    }
    deeper = [f for f in found.values() if f["conv_layers"] == full["conv_layers"] + 1]
    assert not deeper  # conv_layers is at its upper limit (2)
    fewer = next(f for f in found.values() if f["conv_layers"] == 1)
    assert "conv2_channels" not in fewer
    other = next(f for f in found.values() if f["optimizer"] == "adam")
    assert other["lr"] == full["lr"] and "momentum" not in other and "beta1" in other


def test_resume_engine_study_and_refuse_other_space(tmp_path, capsys):
    out = tmp_path / "r"
    first = tune("digits", out, solver="random", budget=3, **FAST)
    finished = (out / "result.json").read_bytes()
    # Nothing left to do: the finished search's files stay as they were, its time too.
    assert tune("digits", out, solver="random", budget=3, resume=True, **FAST) == first
    assert (out / "result.json").read_bytes() == finished
    summary = tune("digits", out, solver="random", budget=5, resume=True, **FAST)
    assert summary["trials"] == 5
    assert summary["seconds"] > first["seconds"]  # both sessions' time, not the last one's
    code = cli(tmp_path, "--solver", "random", "--budget", "6", "--out", str(out), "--epochs",
               "1", "--resume")  # fmt: skip
    assert code == 0 and len(json.loads((out / "trials.json").read_text())) == 6
    # Options left out are the search's own (its space, size, epochs), not the defaults.
    assert main(["tune", "--dataset", "digits", "--budget", "7", "--out", str(out), "--resume"]) == 0  # fmt: skip  # noqa: E501
    assert len(json.loads((out / "trials.json").read_text())) == 7
    before = (out / "study.json").read_text()
    other = tmp_path / "other.json"
    other.write_text(json.dumps({**SMALL, "fc_layers": 1}))
    capsys.readouterr()
    assert main(["tune", "--dataset", "digits", "--space", str(other), "--train-size", "300",
                 "--epochs", "1", "--budget", "6", "--out", str(out), "--resume"]) == 2  # fmt: skip
    assert "another --space;" in capsys.readouterr().err
    assert (out / "study.json").read_text() == before


@pytest.mark.parametrize(
    ("space", "extra", "message"),
    [
        ({"conv_layer": 1}, [], "unknown space key"),
        ({"lr": [1e-4, 100]}, [], "outside its limits"),
        ({"optimizer": []}, [], "empty choice list"),
        ({"conv_stride": 9}, [], "outside its limits"),
        ({"conv_layers": 3, "conv_kernel": 5, "conv_padding": 0}, [], "dataset 'digits'"),
        ({}, ["--budget", "0"], "must be at least 1"),
        ({}, ["--solver", "gradient"], "unknown solver"),
        ({}, ["--train-size", "99999"], "--train-size must be at most 1077"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(tmp_path, capsys, space, extra, message):
    path = tmp_path / "space.json"
    path.write_text(json.dumps(space))
    out = tmp_path / "out"
    args = ["tune", "--dataset", "digits", "--space", str(path), "--out", str(out)]
    args += extra if "--budget" in extra else ["--budget", "2", *extra]
    with pytest.raises(SystemExit) as stop:
        raise SystemExit(main(args))
    assert stop.value.code == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_existing_out_is_not_overwritten(tmp_path, capsys):
    out = tmp_path / "o"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert cli(tmp_path, "--budget", "1", "--out", str(out)) == 2
    said = capsys.readouterr().err  # nothing to resume there: only --force is offered
    assert "holds files but no search (no tune.json); pass --force" in said
    assert "--resume" not in said and (out / "keep.txt").read_text() == "mine"


def test_a_search_with_no_complete_trial_exits_1(tmp_path, capsys, monkeypatch):
    def fail(self, params):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(TuneObjective, "__call__", fail)
    out = tmp_path / "o"
    said = f"olmp tune: error: no trial of 2 completed; see {out / 'trials.json'}"
    assert cli(tmp_path, "--budget", "2", "--out", str(out)) == 1
    captured = capsys.readouterr()
    assert said in " ".join(captured.err.split()) and said not in captured.out
    assert cli(tmp_path, "--budget", "2", "--out", str(out), "--resume", "--json") == 1
    captured = capsys.readouterr()  # stdout: the summary only; the failure on stderr
    assert json.loads(captured.out)["best_val_accuracy"] is None
    assert said in " ".join(captured.err.split())


def test_a_resume_with_a_smaller_budget_says_it_ran_nothing(tmp_path, capsys):
    out = tmp_path / "o"
    assert cli(tmp_path, "--budget", "2", "--epochs", "1", "--out", str(out)) == 0
    capsys.readouterr()
    assert cli(tmp_path, "--budget", "1", "--epochs", "1", "--out", str(out), "--resume") == 0
    err = capsys.readouterr().err
    assert "already had 2 trials, more than --budget 1: no trial was run" in err


def test_a_python_resume_takes_the_searchs_own_settings(tmp_path):
    out = tmp_path / "wine"
    first = tune("wine", out, task="ensemble", solver="sracos", budget=2, seed=3)
    assert first["trials"] == 2
    # Settings left out are the search's (not the defaults: another solver, 20 trials).
    again = tune("wine", out, resume=True)
    assert again["trials"] == 2 and again["best_val_accuracy"] == first["best_val_accuracy"]
    assert tune("wine", out, resume=True, budget=3)["trials"] == 3
    record = json.loads((out / "tune.json").read_text())
    assert (record["solver"], record["seed"], record["budget"]) == ("sracos", 3, 3)
    with pytest.raises(OlmpError, match=r"another --solver \('sracos', here 'random'\)"):
        tune("wine", out, resume=True, solver="random")


def _files(folder):
    """Every file under ``folder`` with its bytes: what a refused run must leave alone."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_a_search_recorded_with_a_train_size_above_the_split_resumes(tmp_path):
    out = tmp_path / "old"
    tune("digits", out, solver="random", budget=1, **FAST)
    record = json.loads((out / "tune.json").read_text())  # as earlier versions wrote it,
    (out / "tune.json").write_text(json.dumps({**record, "train_size": 5000}))  # for "all"
    summary = tune("digits", out, solver="random", budget=2, resume=True,
                   **{**FAST, "train_size": 5000})  # fmt: skip
    assert summary["trials"] == 2


def test_force_leaves_another_commands_folder_alone(tmp_path, capsys):
    run = tmp_path / "run"  # an olmp compress run: its result.json, no tune.json
    run.mkdir()
    for name in ("state.json", "result.json"):
        (run / name).write_text("{}")
    before = _files(run)
    assert cli(tmp_path, "--budget", "1", "--out", str(run), "--force") == 2
    assert "holds state.json, the record of an olmp compress run" in capsys.readouterr().err
    assert _files(run) == before
    fair = tmp_path / "fair"  # olmp fair train's: no file name in common with a search
    (fair / "eps-0.05").mkdir(parents=True)
    (fair / "fair.json").write_text("{}")
    before = _files(fair)
    assert cli(tmp_path, "--budget", "1", "--out", str(fair), "--force") == 2
    assert "holds fair.json, the record of an olmp fair train run" in capsys.readouterr().err
    assert _files(fair) == before
    (run / "state.json").unlink()  # files of a search's names, without its record
    assert cli(tmp_path, "--budget", "1", "--out", str(run), "--force") == 2
    assert "holds result.json but no tune.json" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("solver", "option"),
    [("mads", "popsize=x"), ("mads", "foo=1"), ("ncs", "popsize=1"), ("cmaes", "popsize=1")],
)
def test_bad_solver_options_are_refused_before_the_folder_is_touched(
    tmp_path, capsys, solver, option
):
    done = tmp_path / "done"  # a finished search's files, which --force would replace
    for name in ("tune.json", "study.json", "trials.json", "result.json", "weights/a.bin"):
        (done / name).parent.mkdir(parents=True, exist_ok=True)
        (done / name).write_text(name)
    before = _files(done)
    bad = ["--solver", solver, "--solver-option", option, "--budget", "1"]
    assert cli(tmp_path, *bad, "--out", str(done), "--force") == 2
    assert option.split("=")[0] in capsys.readouterr().err
    assert _files(done) == before
    assert cli(tmp_path, *bad, "--out", str(tmp_path / "new")) == 2
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("text", ["[]", "null", "{}", '{"dataset": "digits"}'])
def test_resume_of_a_record_that_is_not_a_search_is_refused(tmp_path, capsys, text):
    out = tmp_path / "r"
    out.mkdir()
    (out / "tune.json").write_text(text)
    assert cli(tmp_path, "--budget", "1", "--out", str(out), "--resume") == 2
    err = capsys.readouterr().err
    assert f"{out / 'tune.json'} is not an olmp search record" in err and "\n" not in err.strip()
    assert _files(out) == {"tune.json": text.encode()}


def test_out_under_a_file_is_named_and_nothing_is_written(tmp_path, capsys):
    blocker = tmp_path / "afile"
    blocker.write_text("mine")
    assert cli(tmp_path, "--budget", "1", "--out", str(blocker / "sub")) == 2
    err = capsys.readouterr().err
    assert f"cannot write --out {blocker / 'sub'}: {blocker} is a file, not a folder" in err
    assert blocker.read_text() == "mine"


def test_errors_name_the_options_as_typed(tmp_path, capsys):
    out = tmp_path / "r"
    tune("digits", out, solver="random", budget=1, **FAST)
    before = _files(out)
    base = ["--budget", "2", "--epochs", "1", "--out", str(out), "--resume"]
    for extra, message in [
        (["--time-limit", "0"], "--time-limit must be a number of seconds > 0, got 0.0"),
        (["--split-seed", "3"], "another --split-seed (0, here 3);"),
        (["--seed", "3"], "another --seed (0, here 3);"),
        (["--train-size", "100"], "another --train-size (300, here 100);"),  # after cli()'s
    ]:
        assert cli(tmp_path, *base, *extra) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    # another task: the task is named, not the first setting the tasks differ in
    ensemble = ["tune", "--task", "ensemble", "--dataset", "digits", "--budget", "2"]
    assert main([*ensemble, "--out", str(out), "--resume"]) == 2
    assert "another --task ('cnn', here 'ensemble');" in capsys.readouterr().err
    assert main([*ensemble, "--epochs", "5", "--out", str(tmp_path / "e")]) == 2
    assert "--epochs is a setting of --task cnn" in capsys.readouterr().err
    assert _files(out) == before and not (tmp_path / "e").exists()


def test_two_workers(tmp_path):
    summary = tune("digits", tmp_path / "p", solver="random", budget=4, n_jobs=2, **FAST)
    assert summary["trials"] == 4 and summary["best_val_accuracy"] is not None


def test_compressed_and_exported_tuned_networks_keep_their_spec():
    from olmp.export import build_recorded_model, export_metadata

    spec = {"conv": [], "fc": [12], "dropout": 0.0, "activation": "relu"}
    run = {"model": "tuned-cnn", "input_shape": [1, 8, 8], "num_classes": 10,
           "model_options": {"spec": spec}}  # fmt: skip
    meta = export_metadata(run)
    assert meta["model_options"] == {"spec": spec}
    net = build_recorded_model(meta, "x.olmp.safetensors")
    assert net[1].out_features == 12


def test_cli_solver_options_reach_the_solver_and_bad_ones_are_named(tmp_path, capsys):
    out = tmp_path / "ncs"
    code = cli(tmp_path, "--solver", "ncs", "--solver-option", "popsize=2", "--budget", "2",
               "--epochs", "1", "--out", str(out), "--json")  # fmt: skip
    assert code == 0
    assert json.loads((out / "tune.json").read_text())["solver_options"] == {"popsize": 2}
    capsys.readouterr()
    code = cli(tmp_path, "--solver", "ncs", "--solver-option", "n", "--budget", "2",
               "--out", str(tmp_path / "bad"))  # fmt: skip
    assert code == 2
    assert "NAME=VALUE" in capsys.readouterr().err
    code = cli(tmp_path, "--solver", "ncs", "--solver-option", "r=0.8", "--solver-option",
               "r=0.9", "--budget", "2", "--out", str(tmp_path / "bad"))  # fmt: skip
    assert code == 2
    assert "option r is given twice" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_help_shows_the_defaults_and_what_is_cnn_only(capsys):
    with pytest.raises(SystemExit):
        main(["tune", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # the same, however wide the terminal
    for shown in [
        "--seed SEED solver and training seed (default: 0)",
        "--split-seed SPLIT_SEED seed of the tune/val carve (default: 0)",
        "popsize=N; default: 1)",
        "--train-size TRAIN_SIZE cnn: train each trial on this many images (default: all",
        "--time-limit TIME_LIMIT wall-time budget of the search, in seconds (default: none)",
        "--trial-time-limit TRIAL_TIME_LIMIT cnn: a trial that runs longer than this many "
        "seconds fails (default: none)",
        "--space SPACE cnn: JSON or TOML file fixing or narrowing families of the space "
        "(default: the whole space)",
        "(default: random)",
    ]:
        assert shown in text


def test_the_budget_is_not_a_solver_option(tmp_path, capsys):
    out = tmp_path / "t"
    code = main(["tune", "--task", "ensemble", "--dataset", "wine", "--solver", "ncs",
                 "--solver-option", "max_evaluations=2", "--budget", "4",
                 "--out", str(out)])  # fmt: skip
    assert code == 2
    said = "max_evaluations sets how long the solver runs in each round of olmp compress; "
    said += "the length of a search is its trials: give --budget instead"
    assert said in capsys.readouterr().err
    assert not out.exists()


def test_a_resume_without_the_weights_folder_finishes_from_best_safetensors(tmp_path, capsys):
    out = tmp_path / "t"
    args = ["--solver", "random", "--budget", "2", "--epochs", "1", "--out", str(out), "--json"]
    assert cli(tmp_path, *args) == 0
    first = json.loads(capsys.readouterr().out)
    shutil.rmtree(out / "weights")  # to save space, say
    assert cli(tmp_path, *args, "--resume") == 0
    again = json.loads(capsys.readouterr().out)
    assert again["best_trial"] == first["best_trial"]
    assert again["best_val_accuracy"] == first["best_val_accuracy"]


def test_the_summary_has_every_field_when_no_trial_completes(tmp_path, capsys):
    out = tmp_path / "t"
    args = ["--budget", "1", "--epochs", "1", "--trial-time-limit", "0.0001", "--json"]
    assert cli(tmp_path, *args, "--out", str(out)) == 1  # no trial completed
    summary = json.loads(capsys.readouterr().out)
    assert summary["failed"] == 1
    for field in ("best_trial", "best_checkpoint", "best_spec", "best_recipe", "test_accuracy"):
        assert field in summary and summary[field] is None


def test_an_option_given_at_its_default_resumes_the_same_search(tmp_path, capsys):
    out = tmp_path / "t"
    argv = ["tune", "--task", "ensemble", "--dataset", "wine", "--solver", "sracos",
            "--out", str(out)]  # fmt: skip
    assert main([*argv, "--solver-option", "exploration_rate=0.01", "--budget", "2"]) == 0
    assert main([*argv, "--budget", "3", "--resume"]) == 0  # 0.01 is the default
    assert len(json.loads((out / "trials.json").read_text())) == 3
    capsys.readouterr()
    assert (
        main([*argv, "--solver-option", "exploration_rate=0.2", "--budget", "3", "--resume"]) == 2
    )
    assert "exploration_rate 0.01, here 0.2" in capsys.readouterr().err
    # A difference names only the options that differ, not those given at their default.
    assert main([*argv, "--solver-option", "train_size=5", "--budget", "3", "--resume"]) == 2
    assert "--solver-option (train_size None, here 5);" in capsys.readouterr().err
    # One typed of a search's two is read over its own, not instead of them.
    two = tmp_path / "two"
    argv = [*argv[:-1], str(two), "--solver-option", "train_size=5"]
    assert main([*argv, "--solver-option", "exploration_rate=0.2", "--budget", "1"]) == 0
    assert main([*argv, "--budget", "2", "--resume"]) == 0
    assert len(json.loads((two / "trials.json").read_text())) == 2


def test_cli_refuses_a_tabular_dataset_for_the_cnn_task(tmp_path, capsys):
    code = main(["tune", "--dataset", "adult", "--budget", "1", "--out", str(tmp_path / "t")])
    assert code == 2
    assert "--task ensemble" in capsys.readouterr().err
    assert not (tmp_path / "t").exists()
    # an unknown one: the choices are the cnn task's, without the tabular ones it refuses
    code = main(["tune", "--dataset", "nope", "--budget", "1", "--out", str(tmp_path / "t")])
    err = capsys.readouterr().err
    assert code == 2 and "unknown dataset of the cnn task 'nope'" in err
    assert "digits" in err and "adult" not in err and not (tmp_path / "t").exists()


def test_trial_times_leave_out_the_time_a_search_was_stopped(tmp_path):
    from olmp.tune.records import add_elapsed

    # The engine's study records the search's own time at each tell, over its sessions.
    out = tmp_path / "r"
    tune("digits", out, solver="random", budget=2, **FAST)
    tune("digits", out, solver="random", budget=3, resume=True, **FAST)
    trials = json.loads((out / "trials.json").read_text())
    told = {t["id"]: t["elapsed"] for t in json.loads((out / "study.json").read_text())["trials"]}
    elapsed = [t["elapsed"] for t in trials]
    assert elapsed == [told[t["id"]] for t in trials] and None not in elapsed
    assert elapsed == sorted(elapsed)
    assert json.loads((out / "result.json").read_text())["seconds"] >= elapsed[-1] - 0.01
    # Records written before it was kept: from the trials' own times (Unix times here).
    t0 = 1.7e9
    records = [
        {"started": t0, "finished": t0 + 10, "seconds": 10.0},
        {"started": t0 + 2, "finished": t0 + 12, "seconds": 10.0},  # ran beside the first
        {"started": t0 + 5, "finished": t0 + 1010, "seconds": 9.0},  # asked, stopped, run later
        {"started": None, "finished": t0 + 2004, "seconds": 4.0},  # resumed again, told by hand
        {"started": t0 + 2004.5, "finished": None, "seconds": None},  # failed before its end
    ]
    add_elapsed(records)
    assert [r["elapsed"] for r in records] == [10.0, 12.0, 21.0, 25.0, None]
