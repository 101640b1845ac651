"""The sparse export format, loading it back, `olmp export / inspect / report`."""

import json
import warnings

import pytest
import torch
from conftest import FAST_COMPRESS, fresh_model
from torch import nn

import olmp
from olmp.cli import main
from olmp.compression import PRUNED_CHECKPOINT, RESULT_JSON, CompressConfig, compress
from olmp.errors import OlmpError
from olmp.export import (
    decode_tensor,
    encode_tensor,
    export_run,
    inspect_export,
    load_compressed,
    read_export,
    write_export,
)
from olmp.files import load_checkpoint, save_checkpoint
from olmp.models import build_model
from olmp.reference import load_weights
from olmp.report import change_line


def _sparse(shape, density, seed=0):
    generator = torch.Generator().manual_seed(seed)
    values = torch.randn(shape, generator=generator)
    keep = torch.rand(shape, generator=generator) < density
    return values * keep


@pytest.mark.parametrize(
    ("shape", "density", "encoding"),
    [
        ((30, 20), 1.0, "dense"),  # bitmask wins up to ~97 % density
        ((300, 784), 0.2, "bitmask"),
        ((300, 784), 0.01, "indices"),  # 235,200 entries: four index blocks
        ((1000,), 0.0, "indices"),  # nothing kept: values and offsets are empty
    ],
)
def test_each_encoding_round_trips_exactly(shape, density, encoding):
    tensor = _sparse(shape, density)
    chosen, parts, nonzero = encode_tensor("w", tensor, torch.float32)
    assert chosen == encoding
    assert nonzero == int(torch.count_nonzero(tensor))
    entry = {"shape": list(shape), "dtype": "float32", "encoding": chosen}
    assert torch.equal(decode_tensor("w", entry, parts, "test"), tensor)


def test_the_smallest_encoding_wins():
    tensor = _sparse((300, 784), 0.01)
    _, parts, nonzero = encode_tensor("w", tensor, torch.float32)
    stored = sum(p.numel() * p.element_size() for p in parts.values())
    assert stored < nonzero * 4 + tensor.numel() / 8  # less than bitmask + values
    assert stored <= nonzero * 6 + 4 * 4  # 2-byte offsets, four int32 block counts


def test_float16_values_and_integer_buffers():
    tensor = _sparse((100, 100), 0.05)
    _, parts, _ = encode_tensor("w", tensor, torch.float16)
    entry = {"shape": [100, 100], "dtype": "float32", "encoding": "indices"}
    assert torch.equal(decode_tensor("w", entry, parts, "t"), tensor.half().float())
    steps = torch.tensor(12, dtype=torch.int64)
    encoding, parts, _ = encode_tensor("bn.num_batches_tracked", steps, torch.float16)
    assert encoding == "dense" and parts["bn.num_batches_tracked"].dtype == torch.int64


def _pruned_lenet5(density=0.05):
    torch.manual_seed(0)
    model = build_model("lenet-5", (1, 28, 28), 10).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Linear | nn.Conv2d):
                module.weight.mul_(torch.rand_like(module.weight) < density)
    return model


def _metadata():
    return {"model": "lenet-5", "input_shape": [1, 28, 28], "num_classes": 10}


def test_load_compressed_gives_identical_outputs(tmp_path):
    model = _pruned_lenet5()
    path = tmp_path / "l5.safetensors"
    sizes = write_export(path, model.state_dict(), _metadata())
    x = torch.randn(8, 1, 28, 28)
    loaded = olmp.load_compressed(path)
    with torch.inference_mode():
        assert torch.equal(loaded(x), model(x))
    kept = sum(int(torch.count_nonzero(t)) for t in model.state_dict().values())
    assert sizes["kept_values"] == kept
    assert sizes["file_bytes"] == path.stat().st_size
    assert sizes["file_bytes"] <= 2.5 * 4 * kept
    assert sizes["dense_float32_bytes"] == 4 * sum(p.numel() for p in model.parameters())

    # into an instance the caller builds (how a model without a registry name loads)
    into = load_compressed(path, model=build_model("lenet-5", (1, 28, 28), 10))
    with torch.inference_mode():
        assert torch.equal(into(x), model(x))


def test_exports_refuse_overwriting_and_bad_dtypes(tmp_path):
    model = _pruned_lenet5()
    path = tmp_path / "l5.safetensors"
    write_export(path, model.state_dict(), _metadata())
    before = path.read_bytes()
    with pytest.raises(OlmpError, match="already exists"):
        write_export(path, model.state_dict(), _metadata())
    with pytest.raises(OlmpError, match="unknown dtype 'int8'; choose one of: float16, float32"):
        write_export(tmp_path / "x.safetensors", model.state_dict(), _metadata(), dtype="int8")
    assert path.read_bytes() == before and not (tmp_path / "x.safetensors").exists()


def test_bad_files_give_clear_errors(tmp_path):
    model = _pruned_lenet5()
    path = tmp_path / "l5.safetensors"
    write_export(path, model.state_dict(), _metadata())

    plain = tmp_path / "plain.safetensors"
    save_checkpoint(plain, model.state_dict(), {"model": "lenet-5"})
    with pytest.raises(OlmpError, match="is not an olmp export"):
        load_compressed(plain)

    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(OlmpError, match="not a readable safetensors"):
        load_compressed(truncated)

    with pytest.raises(OlmpError, match="do not fit model 'lenet-5'"):
        load_compressed(path, model=build_model("lenet-300-100", (1, 28, 28), 10))
    with pytest.raises(OlmpError, match="device 'tpu'; use cpu, cuda or cuda:N"):
        load_compressed(path, device="tpu")

    stored, meta = load_checkpoint(path)
    missing = tmp_path / "missing.safetensors"
    save_checkpoint(missing, {k: v for k, v in stored.items() if "values" not in k}, meta)
    with pytest.raises(OlmpError, match=r"is damaged: tensor .*::values is missing"):
        load_compressed(missing)

    unnamed = tmp_path / "unnamed.safetensors"
    write_export(unnamed, model.state_dict(), {"model": "MyNet"})
    with pytest.raises(OlmpError, match=r"load_compressed\(FILE, model=MyNet\(\)\)"):
        load_compressed(unnamed)


# ---------------------------------------------------------------------------------------
# From a run


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, digits_reference):
    run_dir = tmp_path_factory.mktemp("run") / "run"
    metadata = {"model": "lenet-300-100"}  # as the README's example: the dataset from splits
    model, splits = fresh_model(digits_reference), digits_reference[1]
    compress(model, splits, CompressConfig(**FAST_COMPRESS), run_dir=run_dir, metadata=metadata)
    return run_dir


def test_export_run_matches_the_run(finished_run, tmp_path):
    result = json.loads((finished_run / RESULT_JSON).read_text())
    out = tmp_path / "run.olmp.safetensors"
    record = export_run(finished_run, out)
    assert record["test_accuracy"] == result["test_accuracy"]
    assert record["val_accuracy"] == result["val_accuracy"]
    assert record["file_bytes"] == out.stat().st_size

    # On the CPU both, as the test images are (a CUDA machine would load to the GPU).
    pruned, splits, _ = load_weights(finished_run / PRUNED_CHECKPOINT, device="cpu")
    loaded = load_compressed(out, device="cpu")
    with torch.inference_mode():
        assert torch.equal(loaded(splits.test.x), pruned.eval()(splits.test.x))
    state, meta = read_export(out)
    assert meta["dataset"] == "digits" and meta["compression_ratio"] == result["compression_ratio"]
    kept_weights = sum(row["kept_weights"] for row in result["layers"])
    weights = sum(int(torch.count_nonzero(state[f"{r['name']}.weight"])) for r in result["layers"])
    assert weights <= kept_weights

    half = export_run(finished_run, tmp_path / "half.safetensors", dtype="float16")
    assert half["value_dtype"] == "float16"
    assert half["file_bytes"] < record["file_bytes"]
    assert abs(half["test_accuracy"] - result["test_accuracy"]) <= 0.02


def test_a_run_without_a_model_name_warns_that_export_will_need_it(digits_reference, tmp_path):
    model, splits = fresh_model(digits_reference), digits_reference[1]
    config = CompressConfig(**{**FAST_COMPRESS, "max_rounds": 1})
    with pytest.warns(UserWarning, match=r"pass metadata=\{'model': NAME\}"):
        _, result = compress(model, splits, config, run_dir=tmp_path / "run")
    assert result["dataset"] == "digits" and "model" not in result
    with warnings.catch_warnings():  # refused: no warning about the record it never writes
        warnings.simplefilter("error")
        with pytest.raises(OlmpError, match="exactly one of"):
            compress(model, splits, config, task=olmp.SplitsTask(splits), run_dir=tmp_path / "b")
        with pytest.raises(OlmpError, match="already holds a compress run"):
            compress(model, splits, config, run_dir=tmp_path / "run")


def test_export_run_bad_input_writes_nothing(finished_run, tmp_path):
    with pytest.raises(OlmpError, match="nothing to export to"):
        export_run(finished_run)
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "state.json").write_text("{}")
    with pytest.raises(OlmpError, match=r"no finished olmp run.*--resume"):
        export_run(unfinished, tmp_path / "x.safetensors")
    with pytest.raises(OlmpError, match="does not exist"):
        export_run(tmp_path / "nowhere", tmp_path / "x.safetensors")
    assert not (tmp_path / "x.safetensors").exists()
    # Another command's result.json is not taken for a run's.
    other = tmp_path / "other"
    other.mkdir()
    (other / "result.json").write_text('{"pairs": 3}')
    with pytest.raises(OlmpError, match=r"not the record of an olmp compress run \(it lacks con"):
        export_run(other, tmp_path / "x.safetensors")
    assert not (tmp_path / "x.safetensors").exists()
    # A folder is not a file to write, even with force.
    with pytest.raises(OlmpError, match="other is a folder; give the path of a file"):
        export_run(finished_run, other, force=True)
    # Nor is a file of the run itself: the export would replace its own input.
    pruned = finished_run / PRUNED_CHECKPOINT
    before = pruned.read_bytes()
    for target in (pruned, finished_run / "sub" / ".." / RESULT_JSON):
        with pytest.raises(OlmpError, match="is a file of the run being exported"):
            export_run(finished_run, target, force=True)
    assert pruned.read_bytes() == before
    # One file for both outputs: one would overwrite the other (and a refusal wrote it).
    same = tmp_path / "same.x"
    for force in (False, True):
        with pytest.raises(OlmpError, match=r"same\.x is given as both outputs"):
            export_run(finished_run, same, onnx=tmp_path / "." / "same.x", force=force)
    # float16 is the sparse file's: ONNX alone would ignore it.
    with pytest.raises(OlmpError, match=r"dtype float16 sets the sparse file's values"):
        export_run(finished_run, onnx=tmp_path / "half.onnx", dtype="float16")
    assert not same.exists() and not (tmp_path / "half.onnx").exists()
    # A model the user names must fit before the file is written (not a note after it).
    with pytest.raises(OlmpError, match="do not fit model 'mlp'"):
        export_run(finished_run, tmp_path / "mlp.safetensors", model="mlp")
    assert not (tmp_path / "mlp.safetensors").exists()


def test_the_size_line_says_which_is_larger():
    from olmp.export import summarise_sizes

    sizes = {"file_bytes": 1000, "value_dtype": "float32", "kept_values": 240}
    sizes |= {"kept_value_bytes": 960}
    assert "4,000 bytes, 4.0x larger" in summarise_sizes(sizes | {"dense_float32_bytes": 4000})
    assert "990 bytes, smaller than the file" in summarise_sizes(
        sizes | {"dense_float32_bytes": 990}
    )


def test_onnx_export_is_checked_with_onnxruntime(finished_run, tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    out = tmp_path / "run.onnx"
    record = export_run(finished_run, onnx=out)
    assert out.is_file() and record["onnx_bytes"] == out.stat().st_size
    assert record["prediction_agreement"] == 1.0
    assert record["checked_inputs"] == 360  # digits' test split

    # A file that fails the check is not written.
    import olmp.onnx_export

    monkeypatch.setattr(olmp.onnx_export, "RELATIVE_TOLERANCE", -1.0)
    with pytest.raises(OlmpError, match=r"disagrees with PyTorch.*nothing written"):
        export_run(finished_run, onnx=tmp_path / "bad.onnx")
    assert not (tmp_path / "bad.onnx").exists()
    assert list(tmp_path.iterdir()) == [out]  # no temporary file left behind


def test_cli_export_inspect_evaluate(finished_run, tmp_path, capsys):
    result = json.loads((finished_run / RESULT_JSON).read_text())
    out = tmp_path / "run.olmp.safetensors"
    assert main(["export", str(finished_run), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"{out.stat().st_size:,} bytes" in printed and "dense float32" in printed
    assert "+0.00 points" in printed

    assert main(["evaluate", "--weights", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["test_accuracy"] == result["test_accuracy"]

    assert main(["inspect", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "lenet-300-100" in printed and "encoding" in printed
    assert main(["inspect", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info == json.loads(json.dumps(inspect_export(out)))

    before = out.read_bytes()
    assert main(["export", str(finished_run), "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert out.read_bytes() == before
    assert main(["inspect", str(finished_run / PRUNED_CHECKPOINT)]) == 2
    assert "is not an olmp export" in capsys.readouterr().err


def test_report_plots_tick_rounds_as_whole_numbers(finished_run):
    from olmp.plots import pyplot
    from olmp.report import REPORT_PLOTS

    result = json.loads((finished_run / RESULT_JSON).read_text())
    assert len(result["history"]) == 2  # a short run: matplotlib would tick 1.0, 1.2, ...
    for name in ("compression.png", "accuracy.png"):
        fig, ax = pyplot().subplots()
        REPORT_PLOTS[name](ax, result)
        fig.canvas.draw()
        low, high = ax.get_xlim()
        ticks = [t for t in ax.get_xticks() if low <= t <= high]
        assert ticks and all(float(t).is_integer() for t in ticks), (name, ticks)
        pyplot().close(fig)


def test_cli_report(finished_run, tmp_path, capsys):
    result = json.loads((finished_run / RESULT_JSON).read_text())
    plots = tmp_path / "plots"
    assert main(["report", str(finished_run), "--plots", str(plots)]) == 0
    captured = capsys.readouterr()
    assert "threshold" in captured.out and "keep %" in captured.out
    assert f"{result['compression_ratio']:.1f}x weights" in captured.out
    test_change = result["paired_change"]["test"]
    assert f"test change {100 * test_change['change']:+.2f} points" in captured.out
    for name in ("compression.png", "accuracy.png", "layers.png"):
        assert (plots / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Plots already in a folder of the user's are replaced only with --force.
    before = (plots / "layers.png").stat().st_mtime_ns
    assert main(["report", str(finished_run), "--json", "--plots", str(plots)]) == 2
    assert "already holds compression.png, accuracy.png, layers.png" in capsys.readouterr().err
    assert (plots / "layers.png").stat().st_mtime_ns == before
    assert main(["report", str(finished_run), "--json", "--plots", str(plots), "--force"]) == 0
    assert json.loads(capsys.readouterr().out) == result
    assert all(row["threshold"] >= 0 for row in result["layers"])
    # --json alone prints the record and writes no plot
    assert main(["report", str(finished_run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == result
    assert not (finished_run / "report").exists()
    assert main(["report", str(finished_run), "--plots", str(plots / "layers.png")]) == 2
    assert "is a file; give a folder" in capsys.readouterr().err

    assert main(["report", str(tmp_path)]) == 2
    assert "holds no finished olmp run" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("field", "value", "said"),
    [
        ("history", None, "history must be a list of rounds"),
        ("history", [{"round": 1}], "history must be a list of rounds"),
        ("compression_ratio", "big", 'compression_ratio must be a finite number, got "big"'),
        ("val_accuracy", float("nan"), "val_accuracy must be a finite number, got NaN"),
        ("test_accuracy", None, "test_accuracy must be a finite number, got null"),
        ("layers", None, "it lacks layers"),
        ("layers", [], "layers must be a non-empty list of layers"),
        ("layers", [{"name": "0", "total_weights": 9}], "layers must be a non-empty list"),
        ("solver", 3, "solver must be a solver's name"),
        ("compression_ratio_with_biases", None, "compression_ratio_with_biases must be a"),
        ("config", {"tolerance": "x"}, "config must be an object (with a numeric tolerance)"),
        ("history", [{"compression_ratio": 2.0, "val_accuracy": 0.9, "size": 0.5}], "history"),
    ],
)
def test_report_names_a_damaged_record_and_writes_nothing(
    finished_run, tmp_path, capsys, field, value, said
):
    run = tmp_path / "run"
    run.mkdir()
    record = json.loads((finished_run / RESULT_JSON).read_text())
    if value is None and field == "layers":
        del record[field]
    else:
        record[field] = value
    (run / RESULT_JSON).write_text(json.dumps(record))
    assert main(["report", str(run)]) == 2
    err = capsys.readouterr().err
    assert said in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in run.iterdir()) == [RESULT_JSON]


def test_change_line_speaks_the_metric_and_needs_outcomes():
    change = {"change": -0.25, "standard_error": 0.125, "examples": 1200, "better": 3, "worse": 9}
    record = {"metric": "score", "paired_change": {"val": change, "test": change}}
    assert change_line(record) == (
        "test change -0.25, paired standard error 0.12 (1,200 examples: 9 worse, 3 better)"
    )
    assert "-25.00 points" in change_line(record | {"metric": "accuracy"})
    assert "9 now wrong, 3 now right" in change_line(record | {"metric": "accuracy"})
    assert change_line(record | {"paired_change": None}) is None
    assert change_line({"metric": "accuracy"}) is None  # a record from before the field


class _Residual(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(channels)

    def forward(self, x):
        return torch.relu(x + self.bn(self.conv(x)))


def _small_resnet(input_shape, num_classes):
    """BatchNorm, a residual connection, dropout and LayerNorm: what LeNets lack."""
    c = 8
    return nn.Sequential(
        nn.Conv2d(input_shape[0], c, 3, padding=1),
        nn.BatchNorm2d(c),
        nn.ReLU(),
        _Residual(c),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(0.1),
        nn.LayerNorm(c),
        nn.Linear(c, num_classes),
    )


def test_any_module_compresses_exports_and_loads_back(digits_reference, tmp_path):
    from olmp.training import TrainConfig, train

    splits = digits_reference[1]
    torch.manual_seed(0)
    model = train(_small_resnet(splits.input_shape, 10), splits.train, TrainConfig(epochs=3))
    config = CompressConfig(**(FAST_COMPRESS | {"tolerance": 0.05}))
    run_dir = tmp_path / "run"
    pruned, result = compress(model, splits, config, run_dir=run_dir, metadata={"model": "mine"})
    assert result["compression_ratio"] > 1.0
    names = [row["name"] for row in result["layers"]]
    assert names == ["0", "3.conv", "8"]  # convolutions and the Linear; no norm layers
    record = export_run(run_dir, tmp_path / "mine.olmp.safetensors")
    assert "accuracy_note" in record  # "mine" is no registry model: not rebuilt
    loaded = load_compressed(
        tmp_path / "mine.olmp.safetensors", model=_small_resnet(splits.input_shape, 10)
    )
    x = splits.test.x[:64]
    with torch.inference_mode():
        assert torch.equal(loaded(x), pruned.eval()(x))


def test_a_pruned_file_replaced_after_the_run_is_not_exported_as_the_runs(
    finished_run, digits_reference, tmp_path
):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    dense = fresh_model(digits_reference)  # what olmp train --out RUN/pruned... --force leaves
    save_checkpoint(run / PRUNED_CHECKPOINT, dense.state_dict(), {"model": "lenet-300-100"})
    with pytest.raises(OlmpError, match=r"pruned.safetensors is not the pruned network of the run"):
        export_run(run, tmp_path / "x.olmp.safetensors")
    tensors, metadata = load_checkpoint(finished_run / PRUNED_CHECKPOINT)
    save_checkpoint(run / PRUNED_CHECKPOINT, tensors, {**metadata, "compression_ratio": 2.0 / 3})
    with pytest.raises(OlmpError, match=r" \(it records 0\.67x, the run \d+\.\d\dx\): it was"):
        export_run(run, tmp_path / "x.olmp.safetensors")
    assert not (tmp_path / "x.olmp.safetensors").exists()


def test_a_run_scored_by_your_own_evaluate_exports_without_measuring(digits_reference, tmp_path):
    model, splits = fresh_model(digits_reference), digits_reference[1]
    data = {"tune": splits.tune, "val": splits.val, "test": splits.test}

    def evaluate(m, split):
        return olmp.accuracy(m, data[split])

    config = CompressConfig(**{**FAST_COMPRESS, "max_rounds": 1})
    metadata = {"model": "lenet-300-100"}
    compress(model, evaluate=evaluate, config=config, run_dir=tmp_path / "run", metadata=metadata)
    record = export_run(tmp_path / "run", tmp_path / "x.olmp.safetensors")
    assert record["accuracy_note"].endswith(
        "the run records no dataset olmp could load (it was scored by your own evaluate() or task)"
    )
    assert record["file_bytes"] == (tmp_path / "x.olmp.safetensors").stat().st_size
    assert record["run_val_accuracy"] is None  # its scores are a "score", no accuracy

    # Its scores are not written into the pruned file as accuracies: olmp evaluate would
    # report the file as not reproducing them.
    shifted = {"model": "lenet-300-100", "dataset": "digits", "split_seed": 0}
    model = fresh_model(digits_reference)
    compress(model, evaluate=lambda m, s: evaluate(m, s) - 0.1, config=config, run_dir=tmp_path / "r2", metadata=shifted)  # fmt: skip  # noqa: E501
    assert "recorded_note" not in olmp.evaluate_weights(tmp_path / "r2" / PRUNED_CHECKPOINT)


def test_cli_report_of_several_runs_puts_them_side_by_side(
    finished_run, digits_reference, tmp_path, capsys
):
    other = tmp_path / "seed-1"
    config = CompressConfig(**{**FAST_COMPRESS, "seed": 1})
    model, splits = fresh_model(digits_reference), digits_reference[1]
    compress(model, splits, config, run_dir=other, metadata={"model": "lenet-300-100"})
    records = [json.loads((d / RESULT_JSON).read_text()) for d in (finished_run, other)]
    assert main(["report", str(finished_run), str(other), "--json"]) == 0
    comparison = json.loads(capsys.readouterr().out)
    rows = comparison["runs"]
    assert [row["run"] for row in rows] == [str(finished_run), str(other)]
    for row, record in zip(rows, records, strict=True):
        assert row["compression_ratio"] == record["compression_ratio"]
        assert row["test_accuracy"] == record["test_accuracy"]
        change = record["paired_change"]["test"]
        assert row["test_change_standard_error"] == change["standard_error"]
        assert row["differs"] == {"seed": record["config"]["seed"]}  # all else alike
    ratios = [record["compression_ratio"] for record in records]
    assert comparison["median"]["compression_ratio"] == pytest.approx(sum(ratios) / 2)
    assert main(["report", str(finished_run), str(other)]) == 0
    out = capsys.readouterr().out
    assert "median" in out and "seed 1" in out and f"{ratios[1]:.1f}x" in out
    # One folder twice, or plots of several runs: one line, exit 2, nothing written.
    assert main(["report", str(other), str(other)]) == 2
    assert "is given twice" in capsys.readouterr().err
    assert main(["report", str(finished_run), str(other), "--plots", str(tmp_path / "p")]) == 2
    assert "give one RUN_DIR" in capsys.readouterr().err and not (tmp_path / "p").exists()
    # From Python: one folder is one run (not its characters); none is an error.
    assert olmp.compare_runs(str(other))["runs"][0]["run"] == str(other)
    with pytest.raises(OlmpError, match="give at least one run folder"):
        olmp.compare_runs([])
