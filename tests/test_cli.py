import json
import os
import subprocess
import sys

import pytest
import torch

from olmp.cli import main
from olmp.errors import OlmpError
from olmp.files import load_checkpoint, save_checkpoint
from olmp.models import build_model
from olmp.solvers import SOLVERS


@pytest.fixture(scope="module")
def digits_checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("ckpt") / "ref.safetensors"
    status = main(
        [
            "train",
            "--model",
            "lenet-300-100",
            "--dataset",
            "digits",
            "--out",
            str(out),
            "--epochs",
            "3",
        ]
    )
    assert status == 0
    return out


def test_train_saves_weights_and_metadata(digits_checkpoint):
    state, meta = load_checkpoint(digits_checkpoint)
    assert set(state) == set(build_model("lenet-300-100", (1, 8, 8), 10).state_dict())
    assert meta["model"] == "lenet-300-100" and meta["dataset"] == "digits"
    assert meta["split_seed"] == 0 and meta["recipe"]["epochs"] == 3
    assert 0.85 < meta["val_accuracy"] <= 1 and 0.85 < meta["test_accuracy"] <= 1
    assert meta["torch_threads"] == torch.get_num_threads() >= 1


def test_train_reports_training_time_and_time_with_loading_the_data(tmp_path, capsys):
    out = tmp_path / "ref.safetensors"
    argv = ["train", "--model", "lenet-300-100", "--dataset", "digits", "--out", str(out)]
    assert main([*argv, "--epochs", "1"]) == 0
    line = capsys.readouterr().err  # a message, not a result
    _, meta = load_checkpoint(out)
    # The recorded time, then the wall time the progress line counts (data loading included).
    assert f": {meta['train_time_s']:.1f} s of training (" in line
    assert "s in all, loading, scoring and saving); val accuracy" in line
    # --json: one object on stdout, the file's scores as olmp evaluate --json gives them.
    assert main([*argv, "--epochs", "1", "--force", "--json"]) == 0
    trained = json.loads(capsys.readouterr().out)
    assert main(["evaluate", "--weights", str(out), "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert {k: trained[k] for k in evaluated} == evaluated
    assert trained["recipe"]["epochs"] == 1 and trained["train_time_s"] > 0


def test_train_that_diverges_says_so_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "ref.safetensors"
    argv = ["train", "--model", "lenet-300-100", "--dataset", "digits", "--out", str(out)]
    assert main([*argv, "--epochs", "2", "--lr", "1e6"]) == 2
    err = capsys.readouterr().err
    assert "training diverged" in err and "smaller learning rate than 1000000.0" in err
    assert not out.exists() and not list(tmp_path.iterdir())


def test_only_a_value_the_user_typed_is_named_by_its_flag():
    from olmp.cli import as_typed
    from olmp.cli.parser import build_parser
    from olmp.errors import OptionError

    commands = build_parser(commands=["attack"])._subparsers._group_actions[0].choices
    error = OptionError("eps", "must be in (0, 1], got 2")
    assert str(as_typed(error, commands["attack"], ["--eps=2"])) == "--eps must be in (0, 1], got 2"
    # read from a run's config.json on --resume: not something the user typed
    resumed = ["--resume", "--out", "runs/a"]
    assert str(as_typed(error, commands["attack"], resumed)) == "eps must be in (0, 1], got 2"


def test_a_bad_value_found_past_the_parser_is_named_as_typed(tmp_path, capsys):
    """The check is the Python function's (TrainConfig's lr): the line names --lr."""
    out = tmp_path / "ref.safetensors"
    argv = ["train", "--model", "lenet-300-100", "--dataset", "digits", "--out", str(out)]
    assert main([*argv, "--lr", "-1"]) == 2
    assert capsys.readouterr().err.startswith("olmp train: error: --lr (learning rate) must be")
    assert not out.exists()


def test_train_names_a_model_the_data_does_not_fit_before_training(tmp_path, capsys):
    out = tmp_path / "ref.safetensors"
    # custom_models:fixed_digits_mlp takes 8x8 digits; mnist-5k's images are 28x28.
    argv = ["train", "--model", "custom_models:fixed_digits_mlp", "--dataset", "mnist-5k"]
    assert main([*argv, "--epochs", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "dataset 'mnist-5k' (input shape (1, 28, 28)) does not fit model" in err
    assert not out.exists()


def test_train_checks_the_data_fit_without_freezing_a_lazy_layer():
    from olmp.data import load_dataset
    from olmp.reference import train_new
    from olmp.training import TrainConfig

    splits = load_dataset("digits", seed=0)
    net = train_new("custom_models:lazy_mlp", splits, TrainConfig(epochs=1, batch_size=32))
    # Made by the probe under inference_mode, the lazy layer's weights could not train.
    assert not net[1].weight.is_inference() and net[1].weight.requires_grad


def test_evaluate_json_matches_training_metadata(digits_checkpoint, capsys):
    assert (
        main(
            [
                "evaluate",
                "--weights",
                str(digits_checkpoint),
                "--model",
                "lenet-300-100",
                "--dataset",
                "digits",
                "--json",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    _, meta = load_checkpoint(digits_checkpoint)
    assert result["val_accuracy"] == meta["val_accuracy"]
    assert result["test_accuracy"] == meta["test_accuracy"]


def test_evaluate_plain_text(digits_checkpoint, capsys):
    assert main(["evaluate", "--weights", str(digits_checkpoint)]) == 0
    assert "test accuracy" in capsys.readouterr().out


def test_evaluate_warns_when_the_data_is_not_what_the_file_was_made_on(digits_checkpoint, capsys):
    _, meta = load_checkpoint(digits_checkpoint)
    other_seed = str(int(meta["split_seed"]) + 1)
    assert main(["evaluate", "--weights", str(digits_checkpoint), "--split-seed", other_seed]) == 0
    err = capsys.readouterr().err
    assert f"was made on split seed {meta['split_seed']}; split seed {other_seed}'s val" in err
    assert "(and test, where the seed draws it: not an official or held-out test split)" in err
    argv = ["evaluate", "--weights", str(digits_checkpoint), "--dataset", "digits"]
    assert main([*argv, "--split-seed", str(meta["split_seed"])]) == 0
    assert "warning" not in capsys.readouterr().err


def test_existing_output_is_not_overwritten(digits_checkpoint, capsys):
    before = digits_checkpoint.read_bytes()
    args = [
        "train",
        "--model",
        "lenet-300-100",
        "--dataset",
        "digits",
        "--out",
        str(digits_checkpoint),
        "--epochs",
        "1",
    ]
    assert main(args) == 2
    assert "already exists" in capsys.readouterr().err
    assert digits_checkpoint.read_bytes() == before


@pytest.mark.parametrize(
    "command",
    [
        ["fair", "train", "--out", "o", "--dataset", "adult", "--protected", "sex"],
        ["experience", "build", "--from", "s", "--out", "e"],
    ],
)
def test_an_argument_a_subcommand_does_not_take_points_to_its_own_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([*command, "--bogus"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"unrecognized arguments: --bogus (see olmp {' '.join(command[:2])} --help)" in err


def test_an_argument_a_command_does_not_take_points_to_that_commands_help(tmp_path, capsys):
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as exc:
        main(["tune", "--dataset", "digits", "--out", str(out), "--budget", "2", "--bogus"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "unrecognized arguments: --bogus" in err and "see olmp tune --help" in err
    assert not out.exists()


def test_force_overwrites(tmp_path):
    out = tmp_path / "ref.safetensors"
    out.write_text("old")
    args = [
        "train",
        "--model",
        "lenet-300-100",
        "--dataset",
        "digits",
        "--out",
        str(out),
        "--epochs",
        "1",
        "--force",
    ]
    assert main(args) == 0
    assert load_checkpoint(out)[1]["recipe"]["epochs"] == 1


@pytest.mark.parametrize("record", ["state.json", "tune.json", "fair.json", "config.json"])
def test_force_replaces_no_file_in_another_commands_run_folder(tmp_path, capsys, record):
    """A compress run's pruned.safetensors replaced by `olmp train --force` broke the run
    (its export refused the replaced file): a single-file command leaves run folders be,
    and their subfolders (rounds/, eps-0.05/), but not a project's own config.json."""
    from olmp.files import RECORD_FIELDS

    run = tmp_path / "run"
    (run / "rounds").mkdir(parents=True)
    (run / record).write_text(json.dumps(dict.fromkeys(RECORD_FIELDS[record], 1)))
    args = ["train", "--model", "lenet-300-100", "--dataset", "digits", "--epochs", "1"]
    for kept in (run / "pruned.safetensors", run / "rounds" / "round-003.safetensors"):
        kept.write_text("the run's")
        for force in ([], ["--force"]):  # not "pass --force", when --force cannot help
            assert main([*args, "--out", str(kept), *force]) == 2
            err = capsys.readouterr().err
            assert "belongs to the olmp " in err and f"(it holds {record})" in err, err
            assert kept.read_text() == "the run's"
    assert main([*args, "--out", str(run / "mine.safetensors")]) == 0  # a new file: allowed
    (run / record).write_text('{"name": "my project"}')  # a file of that name, not olmp's
    assert main([*args, "--out", str(run / "pruned.safetensors"), "--force"]) == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "vgg", "--dataset", "digits"], "unknown model 'vgg'; choose one of"),
        (["--model", "lenet-5", "--dataset", "cifar"], "unknown dataset 'cifar'; choose one of"),
        (["--model", "lenet-5", "--dataset", "digits"], "lenet-5 needs images of at least"),
    ],
)
def test_bad_names_exit_2_without_traceback(tmp_path, args, message):
    out = tmp_path / "x.safetensors"
    proc = subprocess.run(
        [sys.executable, "-m", "olmp", "train", *args, "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists()


def test_text_in_square_brackets_is_printed_as_it_is(tmp_path, capsys):
    # rich would read "[/x]" as markup (and fail) and drop "[bobyqa]" as an unknown tag.
    out = tmp_path / "t"
    assert main(["tune", "--task", "ensemble", "--dataset", "[/x]", "--budget", "2", "--out",
                 str(out)]) == 2  # fmt: skip
    assert "unknown dataset of the ensemble task '[/x]'" in capsys.readouterr().err
    assert main(["solvers"]) == 0
    if not SOLVERS["bobyqa"].available():
        assert "'olmp[bobyqa]'" in capsys.readouterr().out


def test_solvers_check_settings_without_check_are_refused(capsys):
    assert main(["solvers", "--dim", "3", "--seed", "1"]) == 2
    assert "--dim, --seed apply to --check only" in capsys.readouterr().err


def test_weights_that_do_not_fit_the_model(tmp_path, capsys):
    path = tmp_path / "w.safetensors"
    save_checkpoint(path, build_model("lenet-300-100", (1, 28, 28), 10).state_dict(), {})
    assert (
        main(
            ["evaluate", "--weights", str(path), "--model", "lenet-300-100", "--dataset", "digits"]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "do not fit model 'lenet-300-100'" in err and "1.weight" in err


def test_nan_weights_are_refused(tmp_path, capsys):
    state = build_model("lenet-300-100", (1, 8, 8), 10).state_dict()
    state["3.weight"][0, 0] = float("nan")
    path = tmp_path / "w.safetensors"
    save_checkpoint(path, state, {"model": "lenet-300-100", "dataset": "digits"})
    assert main(["evaluate", "--weights", str(path)]) == 2
    assert "NaN or infinite values in: 3.weight" in capsys.readouterr().err


def test_not_a_checkpoint(tmp_path, capsys):
    path = tmp_path / "w.safetensors"
    path.write_bytes(b"garbage")
    assert (
        main(["evaluate", "--weights", str(path), "--model", "lenet-5", "--dataset", "digits"]) == 2
    )
    assert "not a readable safetensors checkpoint" in capsys.readouterr().err
    assert main(["evaluate", "--weights", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_checkpoint_without_metadata_needs_names(tmp_path, capsys):
    path = tmp_path / "w.safetensors"
    save_checkpoint(path, {"w": torch.zeros(1)}, {})
    assert main(["evaluate", "--weights", str(path)]) == 2
    assert "(model=, dataset=; --model, --dataset)" in capsys.readouterr().err


def test_corrupted_dataset_file_via_cli(tmp_path, capsys, isolated_data):
    from conftest import write_fake_mnist

    folder = write_fake_mnist(tmp_path / "data" / "mnist", n_train=10010, compress=False)
    (folder / "t10k-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03\x00")
    assert (
        main(
            [
                "train",
                "--model",
                "lenet-300-100",
                "--dataset",
                "mnist",
                "--out",
                str(tmp_path / "o.safetensors"),
                "--data-dir",
                str(tmp_path / "data"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "t10k-images-idx3-ubyte" in err and "truncated" in err


@pytest.mark.parametrize(
    "command", ["train", "evaluate", "compress", "demo", "list", "export", "report", "inspect"]
)
def test_every_subcommand_help_has_an_example(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert f"olmp {command}" in capsys.readouterr().out


def test_main_help_lists_commands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert all(c in out for c in ("train", "evaluate", "demo", "fair", "examples:"))


def test_main_help_and_a_mistyped_command_load_no_command():
    # torch takes seconds to import: olmp --help, olmp alone and olmp with a mistyped command
    # answer without it (only the command run loads its module).
    code = (
        "import sys\nfrom olmp.cli import main\n"
        "for argv in (['--help'], ['bogus'], [], ['--version']):\n"
        "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
        "print(sorted(m for m in ('torch', 'numpy', 'olmp.cli.compress') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"
    assert "invalid choice: 'bogus'" in proc.stderr


def test_the_commands_are_built_as_declared():
    # Each command's module builds it with its declared summary, in the declared order; the
    # parser of olmp --help (no module imported) lists the same.
    from olmp.cli.parser import COMMANDS, build_parser

    def listed(parser):
        return [(a.dest, a.help) for a in parser._subparsers._group_actions[0]._choices_actions]

    declared = [(c.name, c.summary) for c in COMMANDS]
    assert listed(build_parser()) == listed(build_parser(commands=[])) == declared
    assert listed(build_parser(commands=["inspect"])) == declared  # built with export


def test_the_packages_names_load_on_first_use_as_declared():
    import ast
    from pathlib import Path

    import olmp

    # The imports that type checkers read (under TYPE_CHECKING) name what olmp loads.
    tree = ast.parse(Path(olmp.__file__).read_text())
    [block] = [n for n in tree.body if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.dump(n)]
    typed = {a.name: node.module for node in block.body for a in node.names}
    assert typed == olmp._HOMES
    assert all(getattr(olmp, name) is not None for name in olmp.__all__)
    assert olmp.compress is olmp.compression.compress  # a submodule too, on first use
    assert olmp.data.DATASETS is olmp.DATASETS and "compress" in dir(olmp)
    with pytest.raises(AttributeError, match="no attribute 'compres'"):
        olmp.compres  # noqa: B018
    # Only the package's own modules, by plain name: olmp.__main__ would run the CLI.
    assert not hasattr(olmp, "__main__") and getattr(olmp, "cli.parser", None) is None
    assert "data" in dir(olmp) and "__file__" in dir(olmp) and "TYPE_CHECKING" not in dir(olmp)


def test_train_help_names_the_tabular_datasets_it_takes(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "tabular: adult, compas" in " ".join(capsys.readouterr().out.split())


def test_list_shows_models_and_datasets(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "lenet-300-100" in out and "fashion-mnist" in out
    assert "compas" in out and "mlp" in out
    assert "olmp tune --task ensemble" in out and "fashion-mnist-shoes" in out and "iris" in out
    assert "sex, race" in out  # adult's protected attributes
    assert main(["list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert "lenet-300-100" in [m["name"] for m in listed["models"]]
    assert {d["name"] for d in listed["datasets"]} >= {"digits", "mnist-5k", "fashion-mnist"}
    adult = next(t for t in listed["tabular_datasets"] if t["name"] == "adult")
    assert adult["protected"] == ["sex", "race"]
    assert "iris" in [d["name"] for d in listed["ensemble_datasets"]]


TINY = [
    "--max-rounds",
    "1",
    "--evaluations-per-round",
    "20",
    "--adjust-steps",
    "10",
    "--final-steps",
    "10",
    "--tolerance",
    "0.05",
]


def test_compress_cli_writes_a_run_and_refuses_to_overwrite(digits_checkpoint, tmp_path, capsys):
    run_dir = tmp_path / "run"
    args = ["compress", "--weights", str(digits_checkpoint), "--out", str(run_dir), *TINY]
    assert main(args) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert "keep %" in out and "total" in out  # the per-layer table
    # The next steps, one pasteable command a line; the export lands beside the run.
    report, export = [line.split("   #")[0].split() for line in captured.err.splitlines()
                      if line.startswith("  olmp ")]  # fmt: skip
    assert report == ["olmp", "report", str(run_dir)]
    assert export == ["olmp", "export", str(run_dir), "--out", f"{run_dir}.olmp.safetensors"]
    assert "x weights" in out and "(ref " in out  # the one-line summary
    assert "test change " in out and " points, paired standard error " in out
    result = json.loads((run_dir / "result.json").read_text())
    assert result["model"] == "lenet-300-100" and result["dataset"] == "digits"
    assert result["compression_ratio"] > 1  # TINY still prunes
    assert result["config"]["augment_shift"] == 0  # the digits recipe has no shift

    assert main(["evaluate", "--weights", str(run_dir / "pruned.safetensors"), "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["test_accuracy"] == result["test_accuracy"]
    assert evaluated["val_accuracy"] == result["val_accuracy"]

    before = (run_dir / "result.json").read_bytes()
    assert main(args) == 2
    assert "already holds a compress run" in capsys.readouterr().err
    assert (run_dir / "result.json").read_bytes() == before
    assert main([*args, "--resume"]) == 0  # a finished run just reports again
    assert (run_dir / "result.json").read_bytes() == before

    other = tmp_path / "options"
    extra = ["--racing-z", "2.5", "--adjust-lr", "0.02", "--batch-size", "16"]
    extra += ["--time-limit", "600", "--solver-option", "r=0.8", "--solver-option", "epoch=2"]
    assert (
        main(["compress", "--weights", str(digits_checkpoint), "--out", str(other), *TINY, *extra])
        == 0
    )
    config = json.loads((other / "result.json").read_text())["config"]
    assert config["racing_z"] == 2.5 and config["adjust_lr"] == 0.02
    assert config["batch_size"] == 16 and config["time_limit"] == 600
    assert config["solver_options"] == {"r": 0.8, "epoch": 2}
    capsys.readouterr()
    assert main(["report", str(other)]) == 0
    assert "ncs, epoch=2, r=0.8, seed 0: best of" in capsys.readouterr().out
    exact = tmp_path / "exact"
    assert (
        main(
            [
                "compress",
                "--weights",
                str(digits_checkpoint),
                "--out",
                str(exact),
                *TINY,
                "--racing-z",
                "0",
            ]
        )
        == 0
    )
    exact_config = json.loads((exact / "result.json").read_text())["config"]
    assert exact_config["racing_z"] is None


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--tolerance", "-0.5"], "tolerance must be in [0, 1), got -0.5"),
        (["--tolerance", "1"], "--tolerance must be in [0, 1), got 1.0"),
        (["--solver", "sgd"], "unknown solver 'sgd'; choose one of: " + ", ".join(sorted(SOLVERS))),
        (["--resume"], "nothing to resume: "),
        # None cannot be typed: leaving an option out is how, so errors do not offer it
        (["--racing-z", "-1"], "--racing-z must be positive, or 0 for exact decisions, got -1.0"),
        (["--time-limit", "-1"], "--time-limit must be a positive number of seconds, got -1.0"),
        (["--max-evaluations", "0"], "--max-evaluations must be at least 1, got 0"),
        (["--tolerance", "-1e-3"], "--tolerance must be in [0, 1), got -0.001"),  # not an option
        (["--min-keep", "2"], "--min-keep must be in (0, 1), got 2.0"),
        (["--min-keep", "1"], "--min-keep must be in (0, 1), got 1.0"),  # once mid-run
        (["--augment-shift", "8"], "a shift of 8 pixels (--augment-shift, augment_shift=) would"),
        (["--solver-option", "sigma=2"], "solver 'ncs' has no option 'sigma'; its options are"),
        (
            ["--solver-option", "popsize=5"],
            "solver option 'popsize': the population size and step size are this config's "
            "popsize and search_step (--popsize, --search-step)",
        ),
        (["--solver-option", "r"], "a solver option is NAME=VALUE (e.g. r=0.8), got 'r'"),
        (["--model", "lenet-5"], "lenet-5 needs images of at least 16x16"),
        (
            ["--dataset", "mnist-5k"],
            "dataset 'mnist-5k' (1x28x28 inputs, 10 classes) does not fit the weights in",
        ),
    ],
)
def test_compress_cli_bad_input_writes_nothing(digits_checkpoint, tmp_path, capsys, extra, message):
    run_dir = tmp_path / "run"
    args = ["compress", "--weights", str(digits_checkpoint), "--out", str(run_dir), *extra]
    assert main(args) == 2
    said = capsys.readouterr().err
    assert message in said and len(said.strip().splitlines()) == 1, said  # no warning before it
    assert not run_dir.exists()


@pytest.mark.parametrize("extra", [[], ["--force"], ["--resume"]])
def test_compress_refuses_a_file_as_its_run_folder(digits_checkpoint, tmp_path, capsys, extra):
    target = tmp_path / "notes.txt"
    target.write_text("keep me")
    args = ["compress", "--weights", str(digits_checkpoint), "--out", str(target), *extra]
    assert main(args) == 2
    assert "notes.txt is a file, not a folder" in capsys.readouterr().err
    assert target.read_text() == "keep me"


def test_demo_trains_compresses_and_never_reuses_a_folder(tmp_path, capsys, monkeypatch):
    import functools

    from conftest import FAST_COMPRESS

    import olmp.cli.demo

    # The demo's own defaults take minutes; the same path with a tiny search budget.
    tiny = functools.partial(olmp.cli.demo.CompressConfig, **FAST_COMPRESS)
    monkeypatch.setattr(olmp.cli.demo, "CompressConfig", tiny)
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    assert "keep %" in capsys.readouterr().out  # ends with the per-layer table
    result = json.loads((out / "compression" / "result.json").read_text())
    assert (result["model"], result["dataset"]) == ("lenet-300-100", "mnist-5k")
    assert result["config"]["augment_shift"] == 2  # the mnist-5k recipe's shift
    assert result["reference_test_accuracy"] > 0.9  # a real reference was trained
    assert (out / "reference.safetensors").is_file()
    assert main(["demo", "--out", str(out)]) == 0  # a second demo goes next to the first
    assert (out.parent / "demo-2" / "compression" / "result.json").is_file()
    assert json.loads((out / "compression" / "result.json").read_text()) == result


def test_an_interrupted_demo_leaves_no_empty_folder_and_says_how_to_continue(
    tmp_path, capsys, monkeypatch
):
    import olmp.cli.demo

    out = tmp_path / "demo"
    monkeypatch.setattr(olmp.cli.demo, "train_reference", _interrupt)
    assert main(["demo", "--out", str(out)]) == 130
    assert not out.exists()  # interrupted before anything was saved
    monkeypatch.undo()
    monkeypatch.setattr(olmp.cli.demo, "run_compression", _interrupt)
    assert main(["demo", "--out", str(out)]) == 130  # before the first round was saved
    captured = capsys.readouterr()
    printed = " ".join((captured.out + captured.err).split())
    assert f"the reference is saved as {out / 'reference.safetensors'}" in printed
    assert "--resume" not in printed

    def a_round_then_ctrl_c(net, splits, config, run_dir, *args, **kwargs):
        (run_dir / "rounds").mkdir(parents=True)
        (run_dir / "state.json").write_text("{}")
        (run_dir / "rounds" / "round-000.safetensors").write_text("")  # the reference
        if rounds:
            (run_dir / "rounds" / "round-001.safetensors").write_text("")
        raise KeyboardInterrupt

    rounds = 0  # the reference scored, no round finished: nothing worth resuming
    monkeypatch.setattr(olmp.cli.demo, "run_compression", a_round_then_ctrl_c)
    assert main(["demo", "--out", str(out)]) == 130
    assert "--resume" not in capsys.readouterr().out
    rounds = 1
    assert main(["demo", "--out", str(out)]) == 130
    captured = capsys.readouterr()
    printed = " ".join((captured.out + captured.err).split())
    again = out.parent / "demo-3"
    weights, run = again / "reference.safetensors", again / "compression"
    assert f"continue with: olmp compress --weights {weights} --out {run} --resume" in printed


def test_a_tolerance_given_in_points_gets_a_note_on_its_units(capsys):
    from olmp.cli.compress import _note_large_tolerance

    _note_large_tolerance(0.5)
    err = " ".join(capsys.readouterr().err.split())  # as one line, however rich wrapped it
    assert "drop by 50 percentage points" in err and "half a point is 0.005" in err
    _note_large_tolerance(0.05)  # 5 points may well be meant
    assert capsys.readouterr().err == ""


def test_compress_explains_a_strict_val_rule(capsys):
    from olmp.cli.compress import _explain_selection

    result = {
        "compression_ratio": 10.0,
        "reference_val_accuracy": 0.97,
        "history": [
            {"round": 1, "compression_ratio": 10.0, "val_accuracy": 0.97},
            {"round": 2, "compression_ratio": 150.0, "val_accuracy": 0.955},
        ],
    }
    _explain_selection(result)
    err = capsys.readouterr().err
    assert "round 2 reached 150.0x" in err and "--tolerance 0.015" in err
    assert "standard error" not in err  # the record has no per-example outcomes
    result["paired_change"] = {"val": {"standard_error": 0.0052}, "test": {}}
    _explain_selection(result)
    err = capsys.readouterr().err
    assert "--tolerance 0.015" in err and "standard error of 0.005 (0.52 points)." in err
    result["paired_change"]["val"]["standard_error"] = 0.0  # the reference itself was kept
    _explain_selection(result)
    err = capsys.readouterr().err
    assert "--tolerance 0.015" in err and "standard error" not in err
    # 2 of 180 val images lost: 0.0111..., which 0.011 would not accept
    result["history"][1]["val_accuracy"] = 0.97 - 2 / 180
    _explain_selection(result)
    assert "--tolerance 0.012 or more" in capsys.readouterr().err
    result["history"].pop()
    _explain_selection(result)
    assert capsys.readouterr().err == ""


def test_cli_and_python_api_make_the_same_run(digits_checkpoint, tmp_path):
    """The CLI's defaults take the checkpoint's training recipe (digits: batch 32); the
    Python API given the same recipe makes the same run, number for number."""
    import olmp

    fast = {"max_rounds": 2, "evaluations_per_round": 20, "adjust_steps": 10, "final_steps": 10}
    flags = ["--max-rounds", "2", "--evaluations-per-round", "20", "--adjust-steps", "10"]
    flags += ["--final-steps", "10"]
    cli_dir = tmp_path / "cli"
    assert (
        main(["compress", "--weights", str(digits_checkpoint), "--out", str(cli_dir), *flags]) == 0
    )
    from_cli = json.loads((cli_dir / "result.json").read_text())

    model, splits, meta = olmp.load_weights(digits_checkpoint)
    config = olmp.CompressConfig(**fast)
    _, from_api = olmp.compress(model, splits, config, recipe=meta["recipe"])
    assert from_cli["config"]["batch_size"] == meta["recipe"]["batch_size"] == 32
    assert from_api["config"] == from_cli["config"]
    for key in ("compression_ratio", "val_accuracy", "test_accuracy", "layers"):
        assert from_api[key] == from_cli[key], key

    def untimed(history):
        return [{k: v for k, v in h.items() if k != "elapsed_s"} for h in history]

    assert untimed(from_api["history"]) == untimed(from_cli["history"])

    # The checkpoint's path alone: its model, splits, recipe and record, as the CLI's.
    path_dir = tmp_path / "path"
    _, from_path = olmp.compress(digits_checkpoint, config=config, run_dir=path_dir)
    assert from_path["config"] == from_cli["config"]
    assert untimed(from_path["history"]) == untimed(from_cli["history"])
    for key in ("compression_ratio", "val_accuracy", "test_accuracy", "model", "dataset"):
        assert from_path[key] == from_cli[key], key
    assert from_path["weights"] == from_cli["weights"] == str(digits_checkpoint)
    exported = olmp.export_run(path_dir, tmp_path / "path.olmp.safetensors")  # model recorded
    assert exported["test_accuracy"] == from_cli["test_accuracy"]

    model, splits, _ = olmp.load_weights(digits_checkpoint)
    _, without = olmp.compress(model, splits, config)  # no recipe: batch 64, no shift
    assert without["config"]["batch_size"] == 64


def test_load_weights_gives_a_model_in_eval_mode(tmp_path):
    """As load_compressed does: with dropout, a model in training mode answers one input
    differently at each call."""
    import olmp

    path = tmp_path / "conv.safetensors"
    olmp.train_reference("conv-small", "digits", path, config=olmp.TrainConfig(epochs=1))
    model, splits, _ = olmp.load_weights(path)
    assert not model.training
    x = splits.val.x[:16]
    with torch.no_grad():
        assert torch.equal(model(x), model(x))


def test_a_checkpoint_path_brings_its_own_data(digits_checkpoint, tmp_path):
    import olmp

    _, splits, _ = olmp.load_weights(digits_checkpoint)
    with pytest.raises(OlmpError, match=r"brings its own data: .* olmp\.load_weights"):
        olmp.compress(digits_checkpoint, splits, run_dir=tmp_path / "r")
    with pytest.raises(OlmpError, match="brings its own data"):
        olmp.compress(str(digits_checkpoint), evaluate=lambda model, split: 1.0)
    with pytest.raises(OlmpError, match=r"model '.*missing\.safetensors' is no checkpoint file"):
        olmp.compress(tmp_path / "missing.safetensors", run_dir=tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_a_reader_that_goes_away_is_no_error():
    """``olmp solvers --json | head -c 1``: stdout closed before olmp writes to it."""
    command = [sys.executable, "-m", "olmp", "solvers", "--json"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()
    err = process.stderr.read().decode()
    process.stderr.close()
    assert process.wait() == 1
    assert "error" not in err and "Traceback" not in err


def test_every_error_names_the_command_as_argparse_does(tmp_path, capsys):
    """A bad value found by the command and an option argparse does not know: both lines
    start with the command's name, so one pattern finds either in a log."""
    args = ["compress", "--weights", str(tmp_path / "missing.safetensors"), "--out", "r"]
    assert main(args) == 2
    ours = capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*args, "--no-such-option"])
    argparse_said = capsys.readouterr().err
    assert ours.startswith("olmp compress: error: ") and "missing.safetensors" in ours, ours
    assert argparse_said.startswith("olmp compress: error: unrecognized"), argparse_said


def test_a_negative_infinity_is_a_value_not_an_option(digits_checkpoint, tmp_path, capsys):
    args = ["compress", "--weights", str(digits_checkpoint), "--out", str(tmp_path / "r")]
    with pytest.raises(SystemExit) as stop:
        main([*args, "--tolerance", "-inf"])
    assert stop.value.code == 2
    assert "--tolerance: must be a finite number, got '-inf'" in capsys.readouterr().err


def test_the_cli_starts_without_the_solvers_heavy_libraries():
    # pycma (with scipy.stats and matplotlib), optuna and zoopt cost seconds to import;
    # a command loads them only when the solver or plot it runs needs them.
    heavy = ("cma", "scipy.stats", "matplotlib.pyplot", "optuna", "zoopt")
    code = "import sys; from olmp.cli.parser import build_parser; build_parser(); "
    code += f"print([m for m in {heavy!r} if m in sys.modules])"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_each_commands_record_is_named_once_where_commands_read_it():
    from olmp.attack.folder import CONFIG
    from olmp.compression import STATE_JSON
    from olmp.files import COMMAND_RECORDS

    assert COMMAND_RECORDS["compress"][0] == STATE_JSON
    assert COMMAND_RECORDS["attack"][0] == CONFIG
    # Each command that says what it kept when interrupted has a record --resume reads.
    from olmp.cli.parser import build_parser

    commands = build_parser()._subparsers._group_actions[0].choices
    saying = {name for name, parser in commands.items() if parser.get_default("kept")}
    fair = commands["fair"]._subparsers._group_actions[0].choices["train"]
    assert fair.get_default("kept")
    assert saying | {"fair"} == set(COMMAND_RECORDS)


def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


def _two_trials(out):
    trials = [{"state": "complete"}, {"state": "failed"}, {"state": "running"}]
    (out / "study.json").write_text(json.dumps({"trials": trials}))


def _two_pairs(out):
    (out / "records.jsonl").write_text('{"a": 1}\n{"a": 2}\n{"cut')


def _two_epsilons(out):
    for eps in ("0.01", "0.1"):
        (out / f"eps-{eps}").mkdir()
        (out / f"eps-{eps}" / "result.json").write_text("{}")


def _two_rounds(out):
    (out / "rounds").mkdir()
    for r in range(3):  # round 0 is the reference
        (out / "rounds" / f"round-{r:03d}.safetensors").write_text("")


@pytest.mark.parametrize(
    ("module", "name", "argv", "unit", "record", "two"),
    [
        ("olmp.cli.tune", "tune", ["tune", "--dataset", "digits", "--budget", "2"], "trial",
         "tune.json", _two_trials),
        ("olmp.cli.attack", "run_attack", ["attack", "--weights", "w", "--method", "square",
                                           "--eps", "0.1"], "pair", "config.json", _two_pairs),
        ("olmp.cli.fair", "fair_train", ["fair", "train", "--dataset", "adult", "--protected",
                                         "sex"], "epsilon", "fair.json", _two_epsilons),
    ],
)  # fmt: skip
def test_ctrl_c_says_what_was_kept_and_how_to_resume(
    monkeypatch, tmp_path, capsys, module, name, argv, unit, record, two
):
    import importlib

    out = tmp_path / "out"

    def record_then_ctrl_c(*args, **kwargs):
        out.mkdir()
        (out / record).write_text("{}")
        raise KeyboardInterrupt

    def two_then_ctrl_c(*args, **kwargs):
        out.mkdir(exist_ok=True)
        (out / record).write_text("{}")
        two(out)
        raise KeyboardInterrupt

    def said(*argv):
        assert main([*argv, "--out", str(out)]) == 130
        captured = capsys.readouterr()
        return " ".join((captured.out + captured.err).split())  # rich wraps long lines

    command = importlib.import_module(module)
    monkeypatch.setattr(command, name, _interrupt)  # stopped before anything was saved
    printed = said(*argv)
    assert "olmp: interrupted" in printed and "--resume" not in printed
    monkeypatch.setattr(command, name, record_then_ctrl_c)  # in the first unit
    assert (
        f"olmp: interrupted; no {unit} had finished: run the same command with --resume "
        f"instead of --force to start again in {out}" in said(*argv, "--force")
    )
    monkeypatch.setattr(command, name, two_then_ctrl_c)
    assert (
        f"olmp: interrupted; 2 finished {unit}s are saved in {out}: run the same "
        "command with --resume instead of --force" in said(*argv, "--force")
    )
    # --force stopped before it replaced the old run: a resume would continue the old one
    os.utime(out / record, (0, 0))
    monkeypatch.setattr(command, name, _interrupt)
    printed = said(*argv, "--force")
    assert "olmp: interrupted" in printed and "--resume" not in printed


def test_an_interrupted_compress_counts_its_rounds_not_the_reference(tmp_path):
    from olmp.cli.parser import build_parser

    commands = build_parser(commands=["compress"])._subparsers._group_actions[0].choices
    unit, count = commands["compress"].get_default("kept")
    _two_rounds(tmp_path)
    assert (unit, count(tmp_path)) == ("round", 2)
    (tmp_path / "rounds" / "round-002.safetensors").unlink()
    (tmp_path / "rounds" / "round-001.safetensors").unlink()
    assert count(tmp_path) == 0 and count(tmp_path / "nothing") == 0


def test_sigterm_stops_a_command_as_ctrl_c_does_with_its_own_status(monkeypatch, tmp_path, capsys):
    import os
    import signal

    out = tmp_path / "out"

    def record_then_sigterm(*args, **kwargs):
        out.mkdir()
        (out / "tune.json").write_text("{}")
        os.kill(os.getpid(), signal.SIGTERM)  # a batch system's time limit, say
        raise AssertionError("SIGTERM did not stop the command")

    def unhandled(signum, frame):  # Python's own default would end pytest itself
        raise AssertionError("olmp left SIGTERM to its caller's handler")

    monkeypatch.setattr("olmp.cli.tune.tune", record_then_sigterm)
    before = signal.signal(signal.SIGTERM, unhandled)
    try:
        assert main(["tune", "--dataset", "digits", "--budget", "2", "--out", str(out)]) == 143
        assert signal.getsignal(signal.SIGTERM) is unhandled  # the caller's handler is back
    finally:
        signal.signal(signal.SIGTERM, before)
    captured = capsys.readouterr()
    printed = " ".join((captured.out + captured.err).split())  # rich wraps long lines
    assert "olmp: terminated; no trial had finished: run the same command with --resume" in printed


def test_a_finished_command_ignores_ctrl_c_while_python_shuts_down(monkeypatch):
    import signal

    import olmp.cli

    monkeypatch.setattr(olmp.cli, "main", lambda: 0)  # a command that has done its work
    before = {stop: signal.getsignal(stop) for stop in (signal.SIGINT, signal.SIGTERM)}
    try:
        with pytest.raises(SystemExit) as exit_:
            olmp.cli.run()
        assert exit_.value.code == 0
        assert all(signal.getsignal(stop) == signal.SIG_IGN for stop in before)
    finally:
        for stop, handler in before.items():
            signal.signal(stop, handler)


def test_ctrl_c_while_olmp_is_imported_says_so_in_one_line(monkeypatch, capsys):
    import builtins

    import _olmp_launch

    real_import = builtins.__import__

    def slow_torch(name, *args, **kwargs):  # Ctrl-C while olmp.cli is imported
        if name == "olmp.cli":
            raise KeyboardInterrupt
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", slow_torch)
    with pytest.raises(SystemExit) as exit_:
        _olmp_launch.run()
    assert exit_.value.code == 130
    assert capsys.readouterr().err == "olmp: interrupted\n"
