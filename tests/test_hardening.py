"""Files from others are data, not code; integrity; budgets; one-line errors (issue 19).

Each test reproduces one finding of a hostile user's session on b1ee058 and fails there.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import struct
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import FAIRNESS, FAST_COMPRESS, fresh_model, write_fake_mnist
from rich.console import Console
from rich.table import Table
from safetensors.torch import save_file
from torch import nn

import olmp
from olmp.cli import main
from olmp.compression import STATE_JSON, CompressConfig, compress, snapshot_path
from olmp.console import print_table
from olmp.data import load_dataset, splits_from_tensors
from olmp.data.tabular import GroupedSplit
from olmp.errors import OlmpError
from olmp.export import read_export, write_export
from olmp.files import load_checkpoint, prepare_output_folder, save_checkpoint
from olmp.models import build_model
from olmp.reference import evaluate_weights, load_weights
from olmp.tune import tune

# ---------------------------------------------------------------------------------------
# Helpers


def _pruned_lenet5(density: float = 0.05) -> nn.Module:
    torch.manual_seed(0)
    model = build_model("lenet-5", (1, 28, 28), 10).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Linear | nn.Conv2d):
                module.weight.mul_(torch.rand_like(module.weight) < density)
    return model


def _export(path: Path, model_name: str = "lenet-5", **extra) -> dict[str, torch.Tensor]:
    """Write an export of a pruned LeNet-5 recorded as ``model_name``; returns its tensors."""
    state = _pruned_lenet5().state_dict()
    metadata = {"model": model_name, "input_shape": [1, 28, 28], "num_classes": 10, **extra}
    write_export(path, state, metadata)
    return state


def _tensor_bytes(path: Path, name: str) -> tuple[int, int]:
    """Absolute ``[start, end)`` of tensor ``name``'s bytes in the safetensors file."""
    raw = path.read_bytes()
    header_len = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + header_len])
    start, end = header[name]["data_offsets"]
    return 8 + header_len + start, 8 + header_len + end


def _flip(path: Path, positions) -> None:
    data = bytearray(path.read_bytes())
    for p in positions:
        data[p] ^= 0xFF
    path.write_bytes(bytes(data))


def _err_lines(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def digits_ref(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "ref.safetensors"
    args = ["train", "--model", "lenet-300-100", "--dataset", "digits", "--out", str(out)]
    assert main([*args, "--epochs", "3"]) == 0
    return out


# ---------------------------------------------------------------------------------------
# Security: a file's metadata never chooses code to run


def test_an_export_naming_os_abort_is_refused_without_importing(tmp_path, capsys):
    path = tmp_path / "evil.olmp.safetensors"
    _export(path, "os:abort", dataset="digits", split_seed=0)
    # If os.abort were called, this test process would die here.
    assert main(["evaluate", "--weights", str(path)]) == 2
    err = capsys.readouterr().err
    assert "'os:abort'" in err and "--trust-model-code" in err and "Traceback" not in err
    with pytest.raises(OlmpError, match="would import and run code named by the file"):
        olmp.load_compressed(path)
    # compress(path) has no trust_model_code: its error says where the load options are
    with pytest.raises(OlmpError, match=r"run code .*olmp\.load_for_compression\(path, \.\.\.\)"):
        olmp.compress(path)
    with pytest.raises(OlmpError, match="would import and run code"):
        load_weights(path)


@pytest.mark.parametrize("dtype", ["load", "float32x", "__class__", ["float32"], {}, None])
def test_an_export_tensor_dtype_is_looked_up_in_a_fixed_list(dtype):
    # A name read from the file picks no attribute of torch (torch.load is a function).
    from olmp.export import decode_tensor

    entry = {"shape": [2], "encoding": "dense"} | ({} if dtype is None else {"dtype": dtype})
    with pytest.raises(OlmpError, match=r"x is damaged: tensor w records dtype .*, not one of"):
        decode_tensor("w", entry, {"w": torch.zeros(2)}, "x")


def test_a_module_with_an_import_side_effect_is_not_imported(tmp_path, monkeypatch):
    marker = tmp_path / "imported.txt"
    (tmp_path / "olmp_side_effect_mod.py").write_text(
        f"open({str(marker)!r}, 'w').write('ran')\n"
        "from olmp.models import build_model\n"
        "def factory(input_shape, num_classes):\n"
        "    return build_model('lenet-5', input_shape, num_classes)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    path = tmp_path / "side.olmp.safetensors"
    state = _export(path, "olmp_side_effect_mod:factory")
    with pytest.raises(OlmpError, match="trust_model_code=True"):
        olmp.load_compressed(path)
    assert not marker.exists() and "olmp_side_effect_mod" not in sys.modules
    # Trusted explicitly, the file's factory is used (and its import runs).
    net = olmp.load_compressed(path, trust_model_code=True)
    assert marker.exists()
    assert all(torch.equal(net.state_dict()[k], v) for k, v in state.items())
    sys.modules.pop("olmp_side_effect_mod", None)


def test_a_run_naming_code_is_exported_but_not_rebuilt_untrusted(tmp_path, digits_reference):
    run_dir = tmp_path / "run"
    model, splits = fresh_model(digits_reference), digits_reference[1]
    metadata = {"model": "os:abort", "dataset": "digits"}
    config = CompressConfig(**FAST_COMPRESS)
    compress(model, splits, config, run_dir=run_dir, metadata=metadata)
    record = olmp.export_run(run_dir, tmp_path / "x.olmp.safetensors")
    assert "--trust-model-code" in record["accuracy_note"]
    assert "test_accuracy" not in record
    # Named by the user, as the note suggests, the model is rebuilt and the file measured.
    out = tmp_path / "y.olmp.safetensors"
    assert main(["export", str(run_dir), "--out", str(out), "--model", "lenet-300-100"]) == 0
    for wrong in (":x", "no-such-model"):  # a name the user gives must name a model
        with pytest.raises(OlmpError):
            olmp.export_run(run_dir, tmp_path / "w.olmp.safetensors", model=wrong)
    assert not (tmp_path / "w.olmp.safetensors").exists()
    record = olmp.export_run(run_dir, tmp_path / "z.olmp.safetensors", model="lenet-300-100")
    assert (
        record["test_accuracy"]
        == json.loads((run_dir / "result.json").read_text())["test_accuracy"]
    )


# ---------------------------------------------------------------------------------------
# Integrity


def test_flipped_values_in_an_export_are_refused(tmp_path, capsys):
    path = tmp_path / "l5.olmp.safetensors"
    _export(path, dataset="digits", split_seed=0)
    start, _ = _tensor_bytes(path, "5.weight::values")
    _flip(path, range(start + 8, start + 12))  # 4 bytes inside the kept values
    assert main(["evaluate", "--weights", str(path), "--model", "lenet-5"]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "is damaged" in err and "hash" in err


def test_flipped_block_offsets_in_an_export_are_refused(tmp_path):
    path = tmp_path / "l5.olmp.safetensors"
    _export(path)
    assert read_export(path)[1]["tensors"]["5.weight"]["encoding"] == "indices"
    start, _ = _tensor_bytes(path, "5.weight::offsets")
    _flip(path, [start + 2])
    with pytest.raises(OlmpError, match="is damaged: its content does not match"):
        olmp.load_compressed(path)


def _mutations(path: Path, count: int, seed: int):
    original = path.read_bytes()
    rng = np.random.default_rng(seed)
    for _ in range(count):
        data = bytearray(original)
        for p in rng.integers(0, len(data), size=int(rng.integers(1, 5))):
            data[p] = int(rng.integers(0, 256))
        yield bytes(data)


@pytest.mark.parametrize("kind", ["export", "checkpoint"])
def test_fuzzed_files_fail_cleanly_or_load_bit_for_bit(tmp_path, kind):
    """200 random byte mutations: every load fails with an OlmpError naming the file or
    returns the original tensors bit for bit."""
    path = tmp_path / f"{kind}.safetensors"
    if kind == "export":
        original = _export(path)
        load = read_export
    else:
        torch.manual_seed(1)
        original = build_model("lenet-5", (1, 28, 28), 10).state_dict()
        save_checkpoint(path, original, {"model": "lenet-5", "dataset": "digits"})
        load = load_checkpoint
    bad = tmp_path / f"mutated-{kind}.safetensors"
    refused = 0
    for data in _mutations(path, 200, seed=7):
        bad.write_bytes(data)
        try:
            tensors, _ = load(bad)
        except OlmpError as error:
            assert str(bad) in str(error)
            refused += 1
            continue
        assert tensors.keys() == original.keys()
        for name, tensor in original.items():
            assert tensors[name].dtype == tensor.dtype and torch.equal(tensors[name], tensor)
    assert refused > 150  # nearly every byte matters; the rest changed nothing loaded


def test_evaluate_says_when_a_file_does_not_reproduce_its_accuracy(digits_ref, tmp_path, capsys):
    tensors, metadata = load_checkpoint(digits_ref)
    forged = tmp_path / "forged.safetensors"
    save_checkpoint(forged, tensors, metadata | {"test_accuracy": 0.5})
    record = evaluate_weights(forged)
    assert "test 50.00% recorded" in record["recorded_note"]
    assert "recorded_note" not in evaluate_weights(digits_ref)
    assert main(["evaluate", "--weights", str(forged)]) == 0
    assert "does not reproduce the accuracy it records" in capsys.readouterr().err


def test_malformed_metadata_json_is_a_clear_error(tmp_path, capsys):
    path = tmp_path / "bad-meta.safetensors"
    state = build_model("lenet-300-100", (1, 8, 8), 10).state_dict()
    save_file({k: v.contiguous() for k, v in state.items()}, str(path), {"olmp": '{"model": '})
    assert main(["evaluate", "--weights", str(path)]) == 2
    lines = _err_lines(capsys)
    assert len(lines) == 1 and "olmp metadata is not valid JSON" in lines[0]


@pytest.fixture
def finished_run(tmp_path, digits_reference):
    run_dir = tmp_path / "run"
    model, splits = fresh_model(digits_reference), digits_reference[1]
    config = CompressConfig(**FAST_COMPRESS)
    _, result = compress(model, splits, config, run_dir=run_dir)
    return run_dir, config, result


def _resume(run_dir, config, digits_reference):
    model, splits = fresh_model(digits_reference), digits_reference[1]
    return compress(model, splits, config, run_dir=run_dir, resume=True)[1]


def test_a_truncated_state_resumes_from_the_last_intact_round(finished_run, digits_reference):
    run_dir, config, result = finished_run
    state = run_dir / STATE_JSON
    damaged = state.read_text()[:100]
    state.write_text(damaged)
    with pytest.warns(UserWarning, match=rf"{state}.*resuming .* from round 2.*state.json.damaged"):
        resumed = _resume(run_dir, config, digits_reference)
    for key in ("compression_ratio", "val_accuracy", "test_accuracy", "best_round"):
        assert resumed[key] == result[key]
    assert (run_dir / "state.json.damaged").read_text() == damaged  # kept, not overwritten


def test_a_state_whose_history_lacks_what_the_run_reads_is_set_aside(
    finished_run, digits_reference
):
    run_dir, config, result = finished_run
    state = run_dir / STATE_JSON
    record = json.loads(state.read_text())
    del record["state"]["history"][1]["size"]  # the final phase reads it
    state.write_text(json.dumps(record))
    with pytest.warns(UserWarning, match=r"state.json.damaged"):
        resumed = _resume(run_dir, config, digits_reference)
    for key in ("compression_ratio", "val_accuracy", "test_accuracy", "best_round"):
        assert resumed[key] == result[key]


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda r: r["reference"].update(val_accuracy=0.5), "reference"),
        (lambda r: r["state"]["history"].pop(), "state's history"),
        (lambda r: r["state"]["best"].update(val_accuracy=1.0), "state's best"),
        (lambda r: r["config"].update(tolerance=0.2), "config"),
    ],
)
def test_a_well_formed_but_edited_state_is_told_by_the_snapshots(
    finished_run, digits_reference, edit, named
):
    """state.json has no content hash; the run state each snapshot carries has. A state.json
    that disagrees with its round's snapshot (or the final one's) is damaged: the run
    resumes from the snapshots and ends as it did."""
    run_dir, config, result = finished_run
    state = run_dir / STATE_JSON
    record = json.loads(state.read_text())
    edit(record)
    state.write_text(json.dumps(record))
    message = rf"state.json is damaged \(its {named}"
    with pytest.warns(UserWarning, match=message):
        resumed = _resume(run_dir, config, digits_reference)
    for key in ("compression_ratio", "val_accuracy", "test_accuracy", "best_round"):
        assert resumed[key] == result[key]
    assert json.loads((run_dir / "state.json.damaged").read_text()) == record


def test_a_runs_record_is_told_by_its_fields(finished_run):
    from olmp.files import command_record_in

    assert command_record_in(finished_run[0]) == ("state.json", "olmp compress run")


def test_force_removes_the_old_runs_files_only(finished_run, digits_reference):
    """--force starts anew: the old run's snapshots and olmp report's plots go (they would
    show the old run), a user's file in rounds/ stays."""
    from olmp.report import report_run

    run_dir, _, _ = finished_run
    _, plots = report_run(run_dir)
    mine = run_dir / "rounds" / "mine.txt"
    mine.write_text("x")
    (run_dir / "rounds" / "round-009.safetensors.damaged").write_text("x")
    model, splits = fresh_model(digits_reference), digits_reference[1]
    config = CompressConfig(**{**FAST_COMPRESS, "max_rounds": 1})
    compress(model, splits, config, run_dir=run_dir, force=True)
    assert mine.read_text() == "x" and not any(path.exists() for path in plots)
    left = {path.name for path in (run_dir / "rounds").iterdir()} - {"final.safetensors"}
    assert left == {"mine.txt", "round-000.safetensors", "round-001.safetensors"}
    theirs = run_dir.parent / "theirs"  # no run's folder: --force leaves its plots alone
    (theirs / "report").mkdir(parents=True)
    (theirs / "report" / "accuracy.png").write_text("x")
    compress(fresh_model(digits_reference), splits, config, run_dir=theirs, force=True)
    assert (theirs / "report" / "accuracy.png").read_text() == "x"


@pytest.mark.parametrize("edit", ["none", "metadata", "old snapshots"])
def test_a_state_agreeing_with_its_snapshots_resumes_as_it_is(finished_run, digits_reference, edit):
    """Not compared: the metadata (a resume may name the weights by another path, and the
    process finishing an interrupted run writes its own), and snapshots from before they
    carried the run state."""
    run_dir, config, result = finished_run
    if edit == "metadata":
        record = json.loads((run_dir / STATE_JSON).read_text())
        record["metadata"] = {"weights": "./elsewhere/ref.safetensors"}
        (run_dir / STATE_JSON).write_text(json.dumps(record))
    if edit == "old snapshots":
        for snapshot in (run_dir / "rounds").glob("*.safetensors"):
            tensors, _ = load_checkpoint(snapshot)
            save_file({k: v.contiguous() for k, v in tensors.items()}, str(snapshot))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        resumed = _resume(run_dir, config, digits_reference)
    assert not [w for w in caught if "damaged" in str(w.message)]
    assert resumed["compression_ratio"] == result["compression_ratio"]


def test_a_damaged_round_resumes_from_the_round_before(finished_run, digits_reference):
    run_dir, config, result = finished_run
    damaged = snapshot_path(run_dir, 2)
    cut = damaged.read_bytes()[:-50]
    damaged.write_bytes(cut)
    (aside := damaged.with_name(damaged.name + ".damaged")).write_text("an earlier one")
    with pytest.warns(UserWarning, match=rf"{damaged}.*from round 1.*kept as .*\.damaged-2"):
        resumed = _resume(run_dir, config, digits_reference)
    assert resumed["rounds"] == result["rounds"]
    assert resumed["compression_ratio"] == result["compression_ratio"]
    assert aside.read_text() == "an earlier one"
    assert damaged.with_name(damaged.name + ".damaged-2").read_bytes() == cut


def test_a_round_with_a_changed_byte_is_set_aside_without_contrary_advice(
    finished_run, digits_reference
):
    run_dir, config, result = finished_run
    damaged = snapshot_path(run_dir, 2)
    raw = damaged.read_bytes()
    header = json.loads(raw[8 : 8 + struct.unpack("<Q", raw[:8])[0]])
    name = next(k for k in header if k != "__metadata__")
    _flip(damaged, [_tensor_bytes(damaged, name)[0]])  # a readable file, another content
    with pytest.warns(UserWarning) as caught:
        resumed = _resume(run_dir, config, digits_reference)
    [said] = [str(w.message) for w in caught if "damaged" in str(w.message)]
    assert f"{damaged} is damaged: its content does not match the hash" in said
    assert "from round 1" in said and "use an intact copy" not in said  # it goes on
    assert resumed["compression_ratio"] == result["compression_ratio"]


def test_an_existing_run_folder_is_refused_in_the_words_of_both_entry_points(
    finished_run, digits_reference
):
    run_dir, config, _ = finished_run
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    model, splits = fresh_model(digits_reference), digits_reference[1]
    with pytest.raises(OlmpError, match=r"pass --resume \(resume=True\) .* --force \(force=True\)"):
        compress(model, splits, config, run_dir=run_dir)
    assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == before


def test_a_folder_of_the_users_files_is_not_offered_a_resume(tmp_path, digits_reference):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("mine")
    model, splits = fresh_model(digits_reference), digits_reference[1]
    with pytest.raises(
        OlmpError, match=r"holds files but no compress run \(no state.json\); pass --force"
    ) as said:
        compress(model, splits, CompressConfig(max_rounds=1), run_dir=notes)
    assert "--resume" not in str(said.value)
    with pytest.raises(
        OlmpError, match=r"holds files but no search \(no tune.json\); pass --force"
    ):
        tune("digits", notes, budget=1)
    assert [p.name for p in notes.iterdir()] == ["todo.txt"]


def test_a_damaged_state_and_round_are_both_named_and_kept(finished_run, digits_reference):
    run_dir, config, result = finished_run
    (run_dir / STATE_JSON).write_text("{")
    round_2 = snapshot_path(run_dir, 2)
    cut = round_2.read_bytes()[:-50]
    round_2.write_bytes(cut)
    with pytest.warns(UserWarning) as caught:
        resumed = _resume(run_dir, config, digits_reference)
    said = [str(w.message) for w in caught if "damaged" in str(w.message)]
    assert len(said) == 1, said
    assert "state.json is damaged" in said[0] and str(round_2) in said[0]
    assert "from round 1" in said[0]
    assert "kept as state.json.damaged, round-002.safetensors.damaged" in said[0]
    assert round_2.with_name(round_2.name + ".damaged").read_bytes() == cut
    assert resumed["compression_ratio"] == result["compression_ratio"]


def test_a_refused_resume_of_a_damaged_run_moves_nothing(finished_run, digits_reference):
    # Another config: the resume is refused, and the damaged files stay where they were,
    # so that the right command can still resume the run.
    run_dir, config, result = finished_run
    (run_dir / STATE_JSON).write_text("{")
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    other = dataclasses.replace(config, tolerance=config.tolerance + 0.01)
    with pytest.raises(OlmpError, match="config differs"):
        _resume(run_dir, other, digits_reference)
    assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == before
    with pytest.warns(UserWarning, match="kept as state.json.damaged"):
        resumed = _resume(run_dir, config, digits_reference)
    assert resumed["compression_ratio"] == result["compression_ratio"]


def test_no_intact_round_names_the_file_and_changes_nothing(finished_run, digits_reference):
    run_dir, config, _ = finished_run
    (run_dir / STATE_JSON).write_text("{")
    first = snapshot_path(run_dir, 0)
    first.write_bytes(first.read_bytes()[:200])
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    with pytest.raises(OlmpError, match=rf"{STATE_JSON} is damaged.*--force"):
        _resume(run_dir, config, digits_reference)
    assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == before


def _set(record, path, value):
    *parents, last = path
    for key in parents:
        record = record[key]
    record[last] = value


@pytest.mark.parametrize(
    ("path", "value", "problem"),
    [
        (("config", "popsize"), "10", "its config's popsize must be an integer, got '10'"),
        (("config", "include"), "*", "its config's include must be a tuple of strings"),
        (("config",), None, "its config must be an object, got null"),
        (("state", "round"), "2", "its state's round must be an integer, got '2'"),
        (("state", "round"), -1, "its state's round must be at least 0"),
        (("state", "history"), 5, "its state's history must be a list"),
        (("state", "best"), {"round": 9}, "its state's best must name a round up to 2"),
        (("reference",), None, "its reference must be an object"),
        (("task",), None, "its task must be an object"),
    ],
)
def test_a_state_of_the_wrong_shape_is_named_and_resumes_from_the_last_intact_round(
    finished_run, digits_reference, path, value, problem
):
    run_dir, config, result = finished_run
    state = run_dir / STATE_JSON
    record = json.loads(state.read_text())
    _set(record, path, value)
    state.write_text(json.dumps(record))
    with pytest.warns(UserWarning, match=rf"{state} is damaged \({re.escape(problem)}.*round 2"):
        resumed = _resume(run_dir, config, digits_reference)
    assert resumed["compression_ratio"] == result["compression_ratio"]


def test_a_wrong_typed_state_with_no_intact_round_is_named_and_left_alone(
    finished_run, digits_reference
):
    run_dir, config, _ = finished_run
    state = run_dir / STATE_JSON
    record = json.loads(state.read_text())
    record["config"]["tolerance"] = "0.02"
    state.write_text(json.dumps(record))
    snapshot_path(run_dir, 0).unlink()
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    with pytest.raises(OlmpError, match=r"tolerance must be a number, got '0.02'.*--force"):
        _resume(run_dir, config, digits_reference)
    assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == before


def test_resume_with_other_weights_is_refused(digits_ref, tmp_path, capsys):
    # Trained with another batch size, which the compressor's retraining takes from the
    # checkpoint: the weights must be named, not the batch size that follows from them.
    other = tmp_path / "other.safetensors"
    args = ["train", "--model", "lenet-300-100", "--dataset", "digits", "--out", str(other)]
    assert main([*args, "--epochs", "1", "--seed", "3", "--batch-size", "16"]) == 0
    run_dir = tmp_path / "run"
    fast = ["--max-rounds", "1", "--evaluations-per-round", "10", "--adjust-steps", "5"]
    fast += ["--final-steps", "5", "--tolerance", "0.02"]
    assert main(["compress", "--weights", str(digits_ref), "--out", str(run_dir), *fast]) == 0
    capsys.readouterr()
    before = (run_dir / "result.json").read_bytes()
    args = ["compress", "--weights", str(other), "--out", str(run_dir), *fast, "--resume"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert str(digits_ref) in err and str(other) in err and "different" in err
    assert "batch_size" not in err
    assert (run_dir / "result.json").read_bytes() == before


def test_a_resume_takes_the_options_left_out_from_the_run(digits_ref, tmp_path, capsys):
    # The options typed at the start need not be typed again; a budget left out is the
    # run's own, not the default (60 rounds would reopen a finished 1-round run).
    run_dir = tmp_path / "run"
    fast = ["--max-rounds", "1", "--evaluations-per-round", "10", "--adjust-steps", "5"]
    fast += ["--final-steps", "5", "--tolerance", "0.02"]
    assert main(["compress", "--weights", str(digits_ref), "--out", str(run_dir), *fast]) == 0
    before = json.loads((run_dir / "result.json").read_text())
    resume = ["compress", "--weights", str(digits_ref), "--out", str(run_dir), "--resume"]
    assert main(resume) == 0
    after = json.loads((run_dir / "result.json").read_text())
    assert after["config"] == before["config"] and after["history"] == before["history"]
    capsys.readouterr()
    assert main([*resume, "--tolerance", "0.05"]) == 2  # one typed otherwise is refused
    assert "--tolerance (0.02, here 0.05)" in capsys.readouterr().err
    assert main([*resume, "--max-rounds", "2"]) == 0  # a budget typed extends the run
    assert len(json.loads((run_dir / "result.json").read_text())["history"]) == 2
    # Typed alike, a solver's option is checked against the run's solver, not the default
    # one; another solver is named as such (not by an option it does not take).
    other = tmp_path / "sracos"
    start = ["compress", "--weights", str(digits_ref), "--out", str(other), "--split-seed", "3"]
    sracos = ["--solver", "sracos", "--solver-option", "exploration_rate=0.2"]
    assert main([*start, *fast, *sracos, "--solver-option", "train_size=5"]) == 0
    resume = ["compress", "--weights", str(digits_ref), "--out", str(other), "--resume"]
    # One of its two options typed is read over the run's own (its split seed too is the
    # run's, not the file's).
    assert main([*resume, *sracos[2:]]) == 0
    capsys.readouterr()
    assert main([*resume, "--solver-option", "exploration_rate=0.3"]) == 2
    assert "exploration_rate" in capsys.readouterr().err
    assert main([*resume, "--solver", "cmaes"]) == 2
    assert "--solver ('sracos', here 'cmaes')" in capsys.readouterr().err
    assert main([*resume, "--dataset", "mnist"]) == 2  # said before mnist is looked for
    assert "it ran on dataset 'digits', and this run names 'mnist'" in capsys.readouterr().err


def test_a_search_or_fair_run_resumes_from_its_folder_alone(tmp_path, capsys):
    # What a new run must be told (tune: --dataset, --budget; fair: --dataset, --protected)
    # a resume takes from the record: the budget is the last one asked for.
    out = tmp_path / "search"
    tune = ["tune", "--task", "ensemble", "--out", str(out)]
    assert main([*tune, "--dataset", "iris"]) == 2
    assert "--budget is required (a --resume takes the run's own)" in capsys.readouterr().err
    assert not out.exists()
    assert main([*tune, "--dataset", "iris", "--budget", "1"]) == 0
    assert main(["tune", "--out", str(out), "--resume", "--budget", "2"]) == 0
    assert json.loads((out / "tune.json").read_text())["budget"] == 2
    trials = (out / "trials.json").read_text()
    capsys.readouterr()
    assert main(["tune", "--out", str(out), "--resume", "--json"]) == 0  # runs to 2: nothing
    assert json.loads(capsys.readouterr().out)["trials"] == 2
    assert (out / "trials.json").read_text() == trials
    assert main(["tune", "--out", str(out), "--resume", "--budget", "1"]) == 0  # runs nothing
    assert main(["tune", "--out", str(out), "--resume"]) == 0  # the budget recorded, not typed
    assert "more than its recorded budget 1" in capsys.readouterr().err
    assert main(["tune", "--out", str(out), "--resume", "--task", "cnn"]) == 2  # not iris's
    assert "another --task ('ensemble', here 'cnn')" in capsys.readouterr().err
    record = json.loads((out / "tune.json").read_text())
    del record["budget"]  # as an older olmp wrote it
    (out / "tune.json").write_text(json.dumps(record))
    assert main(["tune", "--out", str(out), "--resume"]) == 2
    assert "records no budget (an older olmp wrote it): give --budget" in capsys.readouterr().err
    fair_out = tmp_path / "fair"
    fair = ["fair", "train", "--data-dir", str(FAIRNESS), "--out", str(fair_out)]
    assert main([*fair, "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert "--dataset and --protected are required" in err and not fair_out.exists()
    assert main([*fair, "--dataset", "german", "--protected", "sex", "--epochs", "1"]) == 0
    first = (fair_out / "results.json").read_text()
    assert main([*fair, "--resume"]) == 0
    assert (fair_out / "results.json").read_text() == first
    assert main([*fair, "--resume", "--protected", "age"]) == 2  # typed otherwise: refused
    assert "another --protected ('sex', here 'age')" in capsys.readouterr().err
    assert main([*fair, "--resume", "--dataset", "adult"]) == 2  # not by adult's attributes
    assert "another --dataset ('german', here 'adult')" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("record", "edit", "message"),
    [
        ("tune.json", lambda r: {**r, "split_seed": 1.5}, "its split_seed is 1.5"),
        ("tune.json", lambda r: {**r, "solver": 5}, "its solver is 5"),
        ("tune.json", lambda r: {**r, "budget": "x"}, 'its budget is "x"'),
        ("tune.json", lambda r: {**r, "budget": 0}, "its budget is 0"),
        ("tune.json", lambda r: {**r, "dataset": "/etc/x"}, 'its dataset is "/etc/x", which'),
        ("tune.json", lambda r: {**r, "task": "bogus"}, 'its task is "bogus", which olmp'),
        ("tune.json", lambda r: {**r, "solver": "bogus"}, 'its solver is "bogus", which'),
        ("tune.json", lambda r: {**r, "seed": -1}, "its seed is -1, which olmp"),
        ("fair.json", lambda r: {**r, "dataset": "../x"}, 'its dataset is "../x", which'),
        ("fair.json", lambda r: {**r, "protected": "race"}, 'its protected is "race", which'),
        ("fair.json", lambda r: {**r, "constraints": ["zz"]}, 'its constraints is ["zz"]'),
        ("fair.json", lambda r: {**r, "epsilons": [5]}, "its epsilons is [5], which"),
        ("fair.json", lambda r: {**r, "epsilons": []}, "its epsilons is [], which"),
        ("fair.json", lambda r: {**r, "settings": {"epochs": 0}}, "settings.epochs is 0, which"),
        ("fair.json", lambda r: {**r, "model": "nonesuch"}, 'its model is "nonesuch", which'),
        ("tune.json", lambda r: "{", "tune.json is damaged"),
        ("fair.json", lambda r: {**r, "epsilons": 0.1}, "its epsilons is 0.1"),
        ("fair.json", lambda r: {**r, "constraints": "eo"}, 'its constraints is "eo"'),
        ("fair.json", lambda r: {**r, "settings": "x"}, 'its settings is "x"'),
        ("fair.json", lambda r: {**r, "model": "os:abort"}, "would import and run code"),
        ("tune.json", lambda r: {k: v for k, v in r.items() if k != "solver"}, "solver is missing"),
        ("fair.json", lambda r: {**r, "settings": {"epochs": "x"}}, 'settings.epochs is "x"'),
        ("config.json", lambda r: {**r, "eps": "x"}, 'its eps is "x"'),
        ("config.json", lambda r: {**r, "options": []}, "its options is []"),
        ("state.json", lambda r: r, "fairness_constraints is"),
    ],
)
def test_a_resume_reads_the_options_left_out_from_a_checked_record(
    tmp_path, capsys, record, edit, message
):
    # What a resume takes from a record is data: a value of the wrong kind, or a model
    # naming code, is one line and exit 2 (os.abort would end this process), nothing changed.
    out = tmp_path / "run"
    if record == "tune.json":
        start = ["tune", "--task", "ensemble", "--dataset", "iris", "--budget", "1"]
        resume = ["tune", "--dataset", "iris", "--budget", "2"]
    elif record == "fair.json":
        data = ["fair", "train", "--data-dir", str(FAIRNESS), "--dataset", "german"]
        start = resume = [*data, "--protected", "sex", "--epochs", "1"]
    elif record == "config.json":
        weights = tmp_path / "ref.safetensors"
        train = ["train", "--model", "lenet-300-100", "--dataset", "digits", "--epochs", "1"]
        assert main([*train, "--out", str(weights)]) == 0
        resume = ["attack", "--weights", str(weights)]
        start = [*resume, "--method", "square", "--images", "1", "--budget", "10"]
    else:  # a fair compression whose state.json records a constraint bound that is no number
        weights = tmp_path / "ref" / "eps-1" / "model.safetensors"
        data = ["--data-dir", str(FAIRNESS), "--dataset", "german", "--protected", "sex"]
        fair = ["fair", "train", *data, "--model", "lenet-300-100", "--epsilon", "1"]
        assert main([*fair, "--epochs", "1", "--out", str(tmp_path / "ref")]) == 0
        resume = ["compress", "--weights", str(weights), "--data-dir", str(FAIRNESS)]
        start = [*resume, "--max-rounds", "1", "--constraint", "dp<=1", "--protected", "sex"]
        edit = lambda r: {**r, "task": {**r["task"], "fairness_constraints": {"dp": "x"}}}  # noqa: E731
    assert main([*start, "--out", str(out)]) == 0
    first = json.loads((out / record).read_text())
    edited = edit(first)
    (out / record).write_text(edited if isinstance(edited, str) else json.dumps(edited))
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert main([*resume, "--out", str(out), "--resume"]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_an_attack_resume_without_a_readable_record_says_so(digits_ref, tmp_path, capsys):
    out = tmp_path / "atk"
    start = ["attack", "--weights", str(digits_ref), "--method", "square", "--images", "1"]
    assert main([*start, "--budget", "20", "--option", "p_init=0.1", "--out", str(out)]) == 0
    resume = ["attack", "--weights", str(digits_ref), "--out", str(out), "--resume"]
    capsys.readouterr()
    assert main([*resume, "--method", "genattack"]) == 2  # named, not by square's options
    assert "method ('square', here 'genattack')" in capsys.readouterr().err
    # An option typed as its default, or as the run had it, is the same run, recorded alike.
    assert main([*resume, "--option", "redraw=true"]) == 0
    assert main([*resume, "--option", "p_init=0.1", "--option", "redraw=true"]) == 0
    recorded = [json.loads((out / name).read_text()) for name in ("config.json", "result.json")]
    assert recorded[0]["options"] == recorded[1]["options"] == {"p_init": 0.1}
    capsys.readouterr()
    assert main([*resume, "--option", "p_init=0.2"]) == 2
    assert "p_init 0.1, here 0.2" in capsys.readouterr().err
    (out / "config.json").write_text("{")
    assert main(resume) == 2
    assert "not an attack run (no config.json" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------
# Budgets that hold


def test_the_time_limit_holds_inside_rounds_and_the_final_phase(digits_reference):
    model, splits = fresh_model(digits_reference), digits_reference[1]
    # Without the limit: 40 rounds of 20,000 retraining steps, minutes; checked between
    # rounds only (as before), one round and the final phase alone take far over 10 s.
    config = CompressConfig(
        max_rounds=40, adjust_steps=20_000, final_steps=20_000, tolerance=0.02, time_limit=3
    )
    started = time.perf_counter()
    _, result = compress(model, splits, config)
    took = time.perf_counter() - started
    assert result["stop_reason"] == "time_limit"
    # Beyond the limit come only the last step or candidate, the last val score and the
    # result's scores: well under a second on an idle machine; loose for a busy one.
    assert result["wall_time_s"] < 3 + 3, result["wall_time_s"]
    assert took < 3 + 6, took


@pytest.mark.parametrize("value", ["-5", "nan", "inf", "0"])
def test_a_time_limit_must_be_a_positive_number(value, digits_ref, tmp_path, capsys):
    run_dir = tmp_path / "run"
    args = ["compress", "--weights", str(digits_ref), "--out", str(run_dir)]
    assert _status([*args, "--time-limit", value]) == 2
    lines = _err_lines(capsys)
    assert len(lines) == 1 and "--time-limit" in lines[0] and "must be" in lines[0], lines
    assert not run_dir.exists()


# ---------------------------------------------------------------------------------------
# Every bad input: one line, exit 2, nothing left behind


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--split-seed", "-2"], "argument --split-seed: must be in [0, 2**31), got -2"),
        (["--seed", "-1"], "--seed must be in [0, 2**31), got -1"),
        (["--max-rounds", "0"], "--max-rounds must be at least 1, got 0"),
        (["--seed", "x"], "argument --seed: must be an integer, got 'x'"),
        (["--popsize", "1"], "--popsize must be an integer >= 2 for solver ncs, got 1"),
        (["--solver", "cmaes", "--popsize", "1"], "--popsize must be an integer >= 2 for solver"),
        (["--solver", "random", "--popsize", "0"], "--popsize must be an integer >= 1 for solver"),
    ],
)
def test_compress_bad_numbers_fail_before_anything_is_written(
    digits_ref, tmp_path, capsys, extra, message
):
    run_dir = tmp_path / "run"
    args = ["compress", "--weights", str(digits_ref), "--out", str(run_dir), *extra]
    assert _status(args) == 2
    lines = _err_lines(capsys)
    assert len(lines) == 1 and message in lines[0], lines
    assert not run_dir.exists()


def _status(args: list[str]) -> int:
    """The exit status of ``olmp ARGS``, whether main returns it or argparse exits."""
    try:
        return main(args)
    except SystemExit as exit_:
        return int(exit_.code)


def test_split_seed_is_checked_by_the_python_api_too():
    with pytest.raises(OlmpError, match=r"split seed must be an integer in \[0, 2\*\*32\)"):
        load_dataset("digits", seed=-2)


def test_an_unwritable_output_fails_before_training(tmp_path, capsys):
    out = Path("/proc/olmp-no-such-folder/ref.safetensors")  # not writable, even for root
    args = ["train", "--model", "lenet-300-100", "--dataset", "digits", "--out", str(out)]
    started = time.perf_counter()
    assert main(args) == 2
    assert time.perf_counter() - started < 2  # no training happened first
    lines = _err_lines(capsys)
    assert len(lines) == 1
    assert f"cannot write --out {out}: no file can be created in /proc" in lines[0]
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert main(["demo", "--out", str(blocker / "demo")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_run_folder_is_refused(digits_ref, tmp_path, capsys):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        args = ["compress", "--weights", str(digits_ref), "--out", str(folder / "run")]
        assert main(args) == 2
        assert f"no file can be created in {folder} (Permission denied)" in capsys.readouterr().err
    finally:
        folder.chmod(0o755)


def test_idx_labels_outside_the_classes_are_refused(isolated_data):
    folder = write_fake_mnist(isolated_data / "data" / "mnist", n_train=10010, compress=False)
    from olmp.data.idx import read_idx, write_idx

    labels_file = folder / "train-labels-idx1-ubyte"
    labels = read_idx(labels_file)
    labels[5] = 12
    write_idx(labels_file, labels, compress=False)
    with pytest.raises(OlmpError, match=r"train labels range over 0\.\.12, but mnist has classes"):
        load_dataset("mnist", data_dir=isolated_data / "data", download=False)


def test_an_idx_set_too_small_to_carve_is_refused(isolated_data):
    write_fake_mnist(isolated_data / "data" / "mnist", n_train=120, compress=False)
    with pytest.raises(OlmpError, match=r"mnist has 120 training .* more than 10000"):
        load_dataset("mnist", data_dir=isolated_data / "data", download=False)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_a_gpu_is_a_clear_error(digits_ref, tmp_path, capsys):
    out = tmp_path / "x.safetensors"
    args = ["train", "--model", "lenet-300-100", "--dataset", "digits", "--out", str(out)]
    assert main([*args, "--device", "cuda"]) == 2
    lines = _err_lines(capsys)
    assert len(lines) == 1 and "sees no CUDA GPU; use cpu" in lines[0]
    assert main(["evaluate", "--weights", str(digits_ref), "--device", "cuda:1"]) == 2
    assert not out.exists()


def test_paths_of_the_wrong_kind_are_named_as_such(digits_ref, tmp_path, capsys):
    assert main(["report", str(digits_ref)]) == 2
    assert f"{digits_ref} is a file; give the folder of an olmp compress run" in (
        capsys.readouterr().err
    )
    assert main(["evaluate", "--weights", str(tmp_path)]) == 2
    assert f"weights file {tmp_path} is a folder, not a file" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------
# What people expect of a long-running tool


def test_progress_lines_when_output_is_not_a_terminal(digits_ref, tmp_path, capsys):
    run_dir = tmp_path / "run"
    fast = ["--max-rounds", "2", "--evaluations-per-round", "10", "--adjust-steps", "5"]
    assert main(["compress", "--weights", str(digits_ref), "--out", str(run_dir), *fast]) == 0
    err = capsys.readouterr().err
    for r in (1, 2):
        assert f"round {r}/2: now " in err
    assert "left" in err


def test_long_paths_are_never_wrapped(tmp_path, capsys):
    deep = tmp_path / ("a-rather-long-folder-name-" * 6) / "weights.safetensors"
    assert main(["evaluate", "--weights", str(deep)]) == 2
    assert str(deep) in capsys.readouterr().err  # whole, on one line


def test_tables_are_readable_at_any_width():
    table = Table(title="layers")
    for column in ("layer", "shape", "kept"):
        table.add_column(column)
    table.add_row("features.0.weight", "20x1x5x5", "1,234")
    narrow = Console(width=20, force_terminal=True, record=True)
    print_table(table, narrow)
    text = narrow.export_text()
    assert "features.0.weight" in text and "  shape: 20x1x5x5" in text
    log = Console(width=20, force_terminal=False, record=True)
    print_table(table, log)  # a file keeps the rows whole
    assert any(
        "features.0.weight" in line and "1,234" in line for line in log.export_text().splitlines()
    )


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_files_honour_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        path = tmp_path / "c.safetensors"
        save_checkpoint(path, {"w": torch.zeros(2)}, {})
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == mode


def test_a_small_val_split_gets_a_warning(digits_reference):
    splits = digits_reference[1]
    parts = [(s.x, s.y) for s in (splits.train, splits.tune, splits.val, splits.test)]
    parts[2] = (splits.val.x[:57], splits.val.y[:57])
    small = splits_from_tensors(*parts, num_classes=10)
    model = fresh_model(digits_reference)
    config = CompressConfig(**(FAST_COMPRESS | {"max_rounds": 1, "tolerance": 0.0}))
    with pytest.warns(UserWarning, match=r"only 57 examples: .* standard error of about \d"):
        compress(model, small, config)
    with warnings.catch_warnings(record=True) as caught:  # full val is enough at 0.05
        warnings.simplefilter("always")
        config = CompressConfig(**(FAST_COMPRESS | {"max_rounds": 1, "tolerance": 0.05}))
        compress(fresh_model(digits_reference), splits, config)
    assert not [w for w in caught if "examples" in str(w.message)]


def test_compress_help_shows_every_default(capsys):
    with pytest.raises(SystemExit):
        main(["compress", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for text in (
        "most search-and-retrain rounds (default: 60)",
        "(default: ncs)",
        "(default: 0.0)",
        "glob patterns",
        "(default: none)",
    ):
        assert text in out, text


def test_a_force_killed_halfway_leaves_a_folder_the_next_force_still_takes(tmp_path, monkeypatch):
    out = tmp_path / "search"
    (out / "weights").mkdir(parents=True)
    for name in ("tune.json", "trials.json", "weights/a.safetensors"):
        (out / name).write_text("{}")
    ours = ("tune.json", "trials.json", "weights/*.safetensors")
    prepare = dict(what="search", resume=False, force=True)
    unlink = Path.unlink

    def killed(path, *args, **kwargs):
        if path.name == "a.safetensors":
            raise KeyboardInterrupt
        unlink(path, *args, **kwargs)

    monkeypatch.setattr(Path, "unlink", killed)
    with pytest.raises(KeyboardInterrupt):
        prepare_output_folder(out, "tune.json", {"format": "f"}, (), ours, **prepare)
    assert (out / "tune.json").exists()  # the record goes last
    monkeypatch.undo()
    prepare_output_folder(out, "tune.json", {"format": "f"}, (), ours, **prepare)
    assert sorted(p.name for p in out.iterdir()) == ["tune.json"]  # and the emptied folder


def test_force_keeps_the_users_files_inside_olmps_folders(tmp_path):
    """--force removes olmp's files from its subfolders (a search's trial weights), not
    the folders: notes the user put there stay, and so does their folder."""
    out = tmp_path / "search"
    for name in ("tune.json", "weights/a.safetensors", "weights/notes.txt", "weights/mine/x"):
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text("{}")
    from olmp.tune.run import OUR_FILES

    prepare_output_folder(out, "tune.json", {"format": "f"}, (), OUR_FILES, what="search",
                          resume=False, force=True)  # fmt: skip
    assert not (out / "weights" / "a.safetensors").exists()
    assert (out / "weights" / "notes.txt").exists() and (out / "weights" / "mine" / "x").exists()


def test_what_a_killed_write_left_goes_when_its_run_folder_is_taken_again(
    digits_reference, tmp_path
):
    """A SIGKILL mid-write leaves atomic_path's hidden temporary beside its target; a
    resume or a restart of that run's folder removes it, and nothing else."""

    class Stop(Exception):
        pass

    def stop(entry, state):
        raise Stop

    splits = digits_reference[1]
    config = CompressConfig(**{**FAST_COMPRESS, "max_rounds": 2})
    run = tmp_path / "run"
    with pytest.raises(Stop):
        compress(fresh_model(digits_reference), splits, config, run_dir=run, on_round=stop)
    killed = [
        run / ".result.json.ab12cd_x.tmp",
        run / "rounds" / ".round-002.safetensors.k3j2h10g.tmp",
    ]
    kept = [run / ".notes.tmp", run / "notes.abcdefgh.tmp"]  # not atomic_path's names
    kept.append(run / "rounds" / "mine" / ".a.json.abcdefgh.tmp")  # below olmp's folders
    kept[-1].parent.mkdir()
    for path in (*killed, *kept):
        path.write_text("x")
    compress(fresh_model(digits_reference), splits, config, run_dir=run, resume=True)
    assert not any(path.exists() for path in killed) and all(path.exists() for path in kept)
    killed[0].write_text("x")
    compress(fresh_model(digits_reference), splits, config, run_dir=run, force=True)
    assert not killed[0].exists()

    # tune and fair folders: on resume, and on --force where the folder holds the record
    out, killed = tmp_path / "search", tmp_path / "search" / ".trials.json.abcdefgh.tmp"

    def prepare(folder, **resume_or_force):
        ours = ("tune.json",)
        prepare_output_folder(
            folder, "tune.json", {"format": "f"}, (), ours, what="search", **resume_or_force
        )

    for resume, force in ((False, False), (True, False), (False, True)):
        prepare(out, resume=resume, force=force)
        assert not killed.exists()
        killed.write_text("x")
    other = tmp_path / "other"  # no run's folder: --force leaves its files as they are
    other.mkdir()
    (other / ".x.abcdefgh.tmp").write_text("x")
    prepare(other, resume=False, force=True)
    assert (other / ".x.abcdefgh.tmp").exists()


def test_resume_and_force_together_are_one_error_in_every_command(digits_reference, tmp_path):
    """compress, tune and fair train (attack has its own test) refuse resume and force
    together with the same words, before any work or file."""
    from olmp.fair import fair_train
    from olmp.tune import tune

    model, splits = fresh_model(digits_reference), digits_reference[1]
    calls = {
        "compress": lambda out: compress(model, splits, run_dir=out, resume=True, force=True),
        "tune": lambda out: tune("digits", out, budget=1, resume=True, force=True),
        "fair": lambda out: fair_train("adult", out, protected="sex", resume=True, force=True),
    }
    for name, call in calls.items():
        out = tmp_path / name
        with pytest.raises(OlmpError, match=r"^choose one of --resume and --force .*not both$"):
            call(out)
        assert not out.exists(), name
    with pytest.raises(OlmpError, match=r"^choose one of --resume and --force .*not both$"):
        compress(model, splits, resume=True, force=True)  # no folder at all: still both


def test_a_resume_with_nothing_to_resume_is_refused_everywhere(digits_reference, tmp_path):
    """A mistyped folder or file with resume=True must not silently start a fresh run."""
    from olmp.attack import run_attack
    from olmp.dfo import Problem, Real, Space, Study

    model, splits = fresh_model(digits_reference), digits_reference[1]
    with pytest.raises(OlmpError, match=r"resume=True continues a run folder: pass run_dir="):
        compress(model, splits, resume=True)
    missing = tmp_path / "missing"
    with pytest.raises(OlmpError, match=rf"nothing to resume: {re.escape(str(missing))} does"):
        run_attack(
            "unread.safetensors", method="square", eps=0.1, budget=5, out=missing, resume=True
        )
    with pytest.raises(OlmpError, match=r"resume=True continues an attack folder: pass out="):
        run_attack("unread.safetensors", method="square", eps=0.1, budget=5, resume=True)
    problem = Problem(Space([Real("x", 0, 1)]), lambda p: p["x"])
    with pytest.raises(OlmpError, match=r"nothing to resume: no study file at .*s\.json"):
        Study(problem, "random", path=tmp_path / "s.json", resume=True, max_evaluations=2)
    with pytest.raises(OlmpError, match=r"nothing to resume: resume=True needs path="):
        Study(problem, "random", resume=True, max_evaluations=2)
    assert not any(tmp_path.iterdir())
    # Another command's folder: the error says whose it is.
    search = tmp_path / "search"
    search.mkdir()
    (search / "tune.json").write_text("{}")
    with pytest.raises(OlmpError, match=r"state\.json does not exist; it is an olmp tune search's"):
        compress(model, splits, run_dir=search, resume=True)
    run = tmp_path / "run"
    run.mkdir()
    (run / "state.json").write_text("{}")
    with pytest.raises(OlmpError, match=r"tune\.json does not exist; it is an olmp compress run's"):
        olmp.tune.tune("digits", run, budget=1, resume=True)


def test_arguments_of_the_wrong_kind_are_named_at_the_call(digits_reference, tmp_path):
    """Not an AttributeError from deep inside: the argument, what it must be, what it got."""
    from olmp.attack import run_attack
    from olmp.export import load_compressed
    from olmp.training import TrainConfig, accuracy, train

    model, splits = fresh_model(digits_reference), digits_reference[1]
    calls = [
        (
            lambda: compress("lenet-300-100", splits),
            r"'lenet-300-100' is no checkpoint file: .*Module",
        ),
        (lambda: compress(model, task=splits), r"task must be an olmp\.task\.Task .*DatasetSplits"),
        (lambda: train(model, splits, TrainConfig()), r"data must be one split .*DatasetSplits"),
        (lambda: train(model, splits.train, {"epochs": 1}), r"config must be a TrainConfig"),
        (lambda: accuracy(model, splits), r"data must be one split .*got a DatasetSplits"),
        (
            lambda: olmp.train_reference("lenet-300-100", "digits", tmp_path / "r", config={}),
            r"config must be a TrainConfig .*got a dict",
        ),
        (
            lambda: run_attack(model, method="square", eps=0.1, budget=5),
            r"weights must be a checkpoint's path, got a Sequential",
        ),
        (
            lambda: load_compressed(tmp_path / "f", model="lenet-300-100"),
            r"model must be an nn\.Module to load into, or None, got a str",
        ),
    ]
    # A callback that is not a function is named at the call, not after the first round.
    calls += [
        (lambda: compress(model, splits, on_round=5), r"on_round must be a function, or None"),
        (lambda: olmp.tune.tune("digits", tmp_path / "t", progress=5), r"progress must be a func"),
        (lambda: train(model, splits.train, TrainConfig(), on_epoch=5), r"on_epoch must be a f"),
        (
            lambda: run_attack(tmp_path / "w", method="square", eps=0.1, budget=5, on_pair="x"),
            r"on_pair must be a function, or None; got 'x'",
        ),
        (lambda: TrainConfig(weight_decay=float("inf")), r"weight_decay must be a finite number"),
        (lambda: compress(model, splits, metadata=[1]), r"metadata must be a dict .*got a list"),
        (lambda: load_weights(tmp_path / "w", model=model), r"model must be a model's name .*Seq"),
    ]
    for call, message in calls:
        with pytest.raises(OlmpError, match=message):
            call()
    assert not any(tmp_path.iterdir())


def test_train_reference_refuses_an_out_it_cannot_write_before_training(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("")
    monkeypatch.setattr(olmp.reference, "train_new", lambda *a, **k: pytest.fail("trained"))
    with pytest.raises(OlmpError, match=r"cannot write out .*file is a file, not a folder"):
        olmp.train_reference("lenet-300-100", "digits", tmp_path / "file" / "ref.safetensors")


def test_seeds_and_sizes_are_checked_where_they_are_given(digits_reference):
    from olmp.attack import run_attack
    from olmp.fair import fair_train
    from olmp.fair.train import fit_fair

    digits = digits_reference[1].train
    split = GroupedSplit(digits.x.flatten(1), digits.y, {"sex": digits.y % 2})  # 64 features
    calls = [
        (lambda: run_attack("unread.safetensors", method="square", eps=0.1, budget=5, seed=-1),
         r"seed must be an integer >= 0, got -1"),
        (lambda: fit_fair(nn.Linear(64, 2), split, split, split, protected="sex", seed=-1),
         r"seed must be an integer >= 0, got -1"),
        (lambda: fit_fair(nn.Linear(64, 2), split, split, split, protected="sex",
                          settings={"epochs": 1}),
         r"settings must be a FairSettings .*got a dict"),
        (lambda: fair_train("german", "unused", protected="sex", settings={}),
         r"settings must be a FairSettings .*got a dict"),
        (lambda: build_model("lenet-300-100", (1, 28, 28), 0),
         r"num_classes must be an integer >= 1, got 0"),
        (lambda: fit_fair(nn.Linear(64, 2), digits_reference[1], split, split, protected="sex"),
         r"train must be one split with groups \(splits.train of a tabular dataset\), not all "
         r"of them, got a Dat"),
    ]  # fmt: skip
    for call, message in calls:
        with pytest.raises(OlmpError, match=message):
            call()
    # numpy's integers and floats are numbers, kept as Python's (a recipe is written as JSON)
    from olmp.dfo import Problem, Real, Space, Study
    from olmp.training import TrainConfig

    recipe = TrainConfig(epochs=np.int64(2), lr=np.float32(0.5), seed=np.uint8(3))
    assert json.loads(json.dumps(recipe.to_dict()))["epochs"] == 2 and type(recipe.lr) is float
    assert build_model("lenet-300-100", (1, 8, 8), np.int64(10))[-1].out_features == 10
    space = Space([Real("x", 0, 1)])
    study = Study(
        Problem(space, lambda p: p["x"]), "random", seed=np.int64(1), target=np.float32(0)
    )
    assert (study.seed, study.target) == (1, 0.0)
