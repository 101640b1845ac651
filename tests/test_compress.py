import dataclasses
import json
import math
import re
import warnings

import numpy as np
import pytest
import torch
from conftest import FAST_COMPRESS, fresh_model

import olmp.compression
from olmp.compression import RESULT_JSON, STATE_JSON, CompressConfig, compress
from olmp.data.registry import Split
from olmp.errors import OlmpError
from olmp.models import build_model
from olmp.task import paired_change
from olmp.training import TrainConfig, accuracy, correct, train

FAST = FAST_COMPRESS


@pytest.fixture
def reference(digits_reference):
    return digits_reference


def _model(reference):
    return fresh_model(reference)


@pytest.mark.parametrize("solver", ["ncs", "cmaes", "random"])
def test_compression_keeps_val_accuracy_and_shrinks(reference, solver):
    model = _model(reference)
    splits = reference[1]
    ref_val = accuracy(model, splits.val)
    pruned, result = compress(model, splits, CompressConfig(solver=solver, **FAST))
    assert result["compression_ratio"] > 2
    assert result["val_accuracy"] >= ref_val - 0.02
    assert result["val_accuracy"] == accuracy(pruned, splits.val)
    kept = sum(row["kept_weights"] for row in result["layers"])
    total = sum(row["total_weights"] for row in result["layers"])
    assert result["compression_ratio"] == pytest.approx(total / kept)
    nonzero = sum(int((m.weight != 0).sum()) for m in pruned if isinstance(m, torch.nn.Linear))
    assert nonzero <= kept
    assert len(result["history"]) == 2


def test_the_result_gives_the_paired_change_against_the_reference(reference):
    model, splits = _model(reference), reference[1]
    before = {split: correct(model, getattr(splits, split)) for split in ("val", "test")}
    pruned, result = compress(model, splits, CompressConfig(**FAST))
    for split, was_right in before.items():
        change, now_right = result["paired_change"][split], correct(pruned, getattr(splits, split))
        assert change["examples"] == len(now_right) == len(getattr(splits, split))
        assert change["better"] == int((now_right & ~was_right).sum())
        assert change["worse"] == int((was_right & ~now_right).sum())
        assert change["change"] == pytest.approx(
            result[f"{split}_accuracy"] - result[f"reference_{split}_accuracy"]
        )
        diff = now_right.double() - was_right.double()
        assert change["standard_error"] == pytest.approx(float(diff.std() / len(diff) ** 0.5))
    assert change["worse"] + change["better"] > 0  # the pruned network does differ


def test_paired_change_by_hand():
    change = paired_change(np.array([1.0, 1, 0, 0, 1]), np.array([1.0, 0, 1, 0, 1]))
    # differences 0, -1, 1, 0, 0: mean 0, sample variance 2/4, error sqrt(0.5 / 5)
    assert change == {
        "change": 0.0,
        "standard_error": pytest.approx(math.sqrt(0.1)),
        "examples": 5,
        "better": 1,
        "worse": 1,
    }
    assert paired_change([1.0], [0.0])["standard_error"] is None
    with pytest.raises(OlmpError, match=r"same examples; got shapes \(3,\) and \(2,\)"):
        paired_change(np.ones(3), np.ones(2))
    with pytest.raises(OlmpError, match=r"one score per example.*shapes \(\) and \(\)"):
        paired_change(np.float64(1.0), np.float64(0.0))


def test_no_paired_change_against_a_reference_the_run_did_not_score(reference, tmp_path):
    splits = reference[1]
    run_dir = tmp_path / "run"
    _, full = compress(_model(reference), splits, CompressConfig(**FAST), run_dir=run_dir)
    assert full["paired_change"] is not None
    relabelled = dataclasses.replace(splits, test=Split(splits.test.x, splits.test.y.roll(1)))
    with pytest.warns(UserWarning, match="recorded when the run started; the result gives no"):
        _, resumed = compress(
            _model(reference), relabelled, CompressConfig(**FAST), run_dir=run_dir, resume=True
        )
    assert resumed["paired_change"] is None


def test_run_dir_outputs_refusal_and_resume(reference, tmp_path):
    run_dir = tmp_path / "run"
    config = CompressConfig(**FAST)
    _, full = compress(_model(reference), reference[1], config, run_dir=run_dir)
    record = json.loads((run_dir / RESULT_JSON).read_text())
    for key in (
        "compression_ratio",
        "compression_ratio_with_biases",
        "reference_val_accuracy",
        "val_accuracy",
        "reference_test_accuracy",
        "test_accuracy",
        "seed",
        "solver",
        "wall_time_s",
        "layers",
    ):
        assert key in record
    # Reruns are bit-identical only at the same thread count, so the record names it.
    assert record["torch_threads"] == torch.get_num_threads()
    # ... and what else tells two machines apart: the kernels torch picks, numpy's version.
    assert record["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert record["numpy_version"] == np.__version__
    assert record["torch_version"] == torch.__version__
    assert (run_dir / "pruned.safetensors").is_file() and (run_dir / "progress.png").is_file()

    before = (run_dir / RESULT_JSON).read_bytes()
    with pytest.raises(OlmpError, match="already holds a compress run"):
        compress(_model(reference), reference[1], config, run_dir=run_dir)
    assert (run_dir / RESULT_JSON).read_bytes() == before

    # An interrupted run: stop after the first round, then resume.
    class Stop(Exception):
        pass

    def stop_after_first(entry, state):
        raise Stop

    other = tmp_path / "interrupted"
    given = _model(reference)
    before = {k: v.clone() for k, v in given.state_dict().items()}
    with pytest.raises(Stop):
        named = {"model": "lenet-300-100"}
        compress(given, reference[1], config, run_dir=other, on_round=stop_after_first, metadata=named)  # fmt: skip  # noqa: E501
    # The caller's model is given back as it came, not half-pruned and retrained.
    assert all(torch.equal(before[k], v) for k, v in given.state_dict().items())
    state = json.loads((other / STATE_JSON).read_text())
    assert state["state"]["round"] == 1 and not (other / RESULT_JSON).exists()
    _, resumed = compress(_model(reference), reference[1], config, run_dir=other, resume=True)
    assert resumed["compression_ratio"] == full["compression_ratio"]
    assert resumed["val_accuracy"] == full["val_accuracy"]
    assert resumed["paired_change"] == full["paired_change"]
    assert resumed["model"] == "lenet-300-100"  # resumed with no name: the one it started with

    # The model's name is the run's: another is refused.
    with pytest.raises(
        OlmpError, match=r"records model 'lenet-300-100', and the model named now is 'lenet-5'"
    ):
        compress(_model(reference), reference[1], config, run_dir=other, resume=True, metadata={"model": "lenet-5"})  # fmt: skip  # noqa: E501
    with pytest.raises(OlmpError, match=r"config differs from this one in --seed \(0, here 9\);"):
        compress(
            _model(reference),
            reference[1],
            CompressConfig(**{**FAST, "seed": 9}),
            run_dir=other,
            resume=True,
        )


def test_layers_left_out_are_counted_in_the_whole_networks_ratio(reference):
    from olmp.report import summary_line

    config = CompressConfig(**{**FAST, "include": ("5",), "tolerance": 0.05})
    pruned, result = compress(_model(reference), reference[1], config)
    (row,) = result["layers"]  # the ratios count the pruned layer only
    assert result["compression_ratio"] == row["total_weights"] / row["kept_weights"]
    whole = result["whole_network"]
    total = sum(pruned[i].weight.numel() for i in (1, 3, 5))
    dense = sum(pruned[i].weight.numel() for i in (1, 3))
    assert whole["compression_ratio"] == total / (dense + row["kept_weights"])
    assert whole["layers_left_dense"] == ["1", "3"]
    assert f"{whole['compression_ratio']:.2f}x in the whole network (1, 3 left" in summary_line(
        result
    )
    _, everything = compress(_model(reference), reference[1], CompressConfig(**FAST))
    assert "whole_network" not in everything and "whole" not in summary_line(everything)


@pytest.mark.parametrize("config", [{}, {"parametrisation": "mean-std"}])
def test_a_pruned_network_compressed_again_counts_its_zeros_as_pruned(reference, config):
    """Its zeros were kept (threshold 0 keeps |w| >= 0), counted as weights and regrown by
    retraining: compressing an exported network made it denser."""
    model = _model(reference)
    with torch.no_grad():
        for layer in (model[1], model[3]):
            layer.weight[layer.weight.abs() < layer.weight.abs().quantile(0.6)] = 0
    weights = [model[i].weight for i in (1, 3, 5)]
    given = sum(int((w != 0).sum()) for w in weights)
    total = sum(w.numel() for w in weights)
    pruned, result = compress(model, reference[1], CompressConfig(**{**FAST, **config}))
    kept = sum(row["kept_weights"] for row in result["layers"])
    assert kept <= given and result["compression_ratio"] >= total / given
    assert sum(int((pruned[i].weight != 0).sum()) for i in (1, 3, 5)) <= given  # not regrown


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"tolerance": -0.1}, r"tolerance must be in \[0, 1\), got -0.1"),
        ({"tolerance": 1.0}, r"tolerance must be in \[0, 1\), got 1.0"),
        ({"min_keep": 1.0}, r"min_keep must be in \(0, 1\), got 1.0"),  # failed mid-run
        ({"solver_options": {"sigma0": 0.1}}, r"'sigma0': .* popsize and search_step"),
        ({"solver": "adam"}, r"unknown solver 'adam'; choose one of: cmaes, ncs, random"),
        ({"time_limit": 0}, r"time_limit must be a positive number of seconds or None, got 0"),
        ({"final_steps": -1}, r"final_steps must be at least 0, got -1"),
        ({"tolerance": float("nan")}, r"tolerance must be in \[0, 1\), got nan"),
        ({"tolerance": "0.01"}, r"tolerance must be a number, got '0.01'"),
        ({"popsize": "10"}, r"popsize must be an integer, got '10'"),
        ({"max_rounds": 1.5}, r"max_rounds must be an integer, got 1.5"),
        ({"seed": True}, r"seed must be an integer, got True"),
        ({"adjust_steps": "5"}, r"adjust_steps must be an integer or None, got '5'"),
        ({"include": "fc1"}, r"include must be a tuple of strings, got 'fc1'"),
        ({"prune_biases": "no"}, r"prune_biases must be True or False, got 'no'"),
        ({"solver_options": None}, r"solver_options must be a mapping, got None"),
        (
            {"solver_options": {"rr": 0.9}},
            r"solver 'ncs' has no option 'rr'; its options are max_evaluations, epoch, r, "
            r"lambda_sigma",
        ),
        (
            {"solver": "cmaes", "solver_options": {"r": 0.9}},
            r"solver 'cmaes' has no option 'r'; its options are none",
        ),
        ({"solver_options": {"r": 1.5}}, r"solver 'ncs': r must be a number in \(0.0, 1.0\]"),
    ],
)
def test_bad_config(options, message):
    from olmp.solvers import SOLVERS

    # the solver list grows with the solver suite: every registered name is offered
    message = message.replace("cmaes, ncs, random", ", ".join(sorted(SOLVERS)))
    with pytest.raises(OlmpError, match=message):
        CompressConfig(**options)


def test_a_list_of_layer_patterns_is_taken_as_a_tuple():
    config = CompressConfig(include=["1", "3"], exclude=[])
    assert config.include == ("1", "3") and config.exclude == ()
    assert CompressConfig.from_dict(config.to_dict()) == config


def test_numpy_numbers_are_taken_as_python_numbers():
    config = CompressConfig(popsize=np.int64(4), tolerance=np.float32(0.5), adjust_lr=np.float64(1))
    assert (type(config.popsize), type(config.tolerance), type(config.adjust_lr)) == (
        int,
        float,
        float,
    )
    assert config.tolerance == 0.5 and json.loads(json.dumps(config.to_dict()))["popsize"] == 4


def test_bad_models_are_refused_before_anything_is_written(reference, tmp_path):
    splits = reference[1]
    with pytest.raises(OlmpError, match="no prunable layers"):
        no_layers = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.AdaptiveAvgPool1d(10))
        compress(no_layers, splits, run_dir=tmp_path / "a")
    model = _model(reference)
    with torch.no_grad():
        model[1].weight[0, 0] = float("inf")
    with pytest.raises(OlmpError, match=r"NaN or infinite values in 1\.weight"):
        compress(model, splits, run_dir=tmp_path / "b")
    wrong = build_model("lenet-300-100", (1, 28, 28), 10)
    with pytest.raises(OlmpError, match="does not fit model"):
        compress(wrong, splits, run_dir=tmp_path / "c")
    width = int(np.prod(splits.input_shape))
    nn = torch.nn
    tied = nn.Sequential(
        nn.Flatten(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
        nn.Linear(width, splits.num_classes),
    )  # fmt: skip
    tied[3].weight = tied[1].weight
    with pytest.raises(OlmpError, match=r"ties 1\.weight and 3\.weight"):
        compress(tied, splits, run_dir=tmp_path / "e")

    class Outputs(torch.nn.Module):  # returns a dict, as some libraries' models do
        def __init__(self):
            super().__init__()
            self.net = _model(reference)

        def forward(self, x):
            return {"logits": self.net(x)}

    with pytest.raises(OlmpError, match=r"returns a dict; it must return one tensor"):
        compress(Outputs(), splits, run_dir=tmp_path / "g")
    with pytest.raises(OlmpError, match=r"has float64 weights, .* with model.float\(\) first"):
        compress(_model(reference).double(), splits, run_dir=tmp_path / "h")
    frozen = _model(reference).requires_grad_(False)
    with pytest.raises(OlmpError, match=r"is frozen \(requires_grad=False\)"):
        compress(frozen, splits, run_dir=tmp_path / "f")
    # patterns that choose no layer: the error names them and the layers there are
    for patterns in (
        {"include": ("fc*",)},
        {"exclude": ("*",)},
        {"include": ("1",), "exclude": ("1",)},
    ):
        with pytest.raises(
            OlmpError, match=r"no prunable layers .*; its layers are named 1, 3, 5$"
        ):
            compress(_model(reference), splits, CompressConfig(**patterns), run_dir=tmp_path / "d")
    assert not any(tmp_path.iterdir())


def test_a_buffer_two_modules_share_is_no_tie_and_is_saved(reference, tmp_path):
    from olmp.files import load_checkpoint

    class Scaled(torch.nn.Module):
        def __init__(self, layer, scale):
            super().__init__()
            self.layer = layer
            self.register_buffer("scale", scale)

        def forward(self, x):
            return self.layer(x) * self.scale

    net = _model(reference)  # Flatten, Linear, ReLU, Linear, ReLU, Linear
    scale = torch.ones(1)
    net[1], net[3] = Scaled(net[1], scale), Scaled(net[3], scale)
    _, result = compress(net, reference[1], CompressConfig(**FAST), run_dir=tmp_path / "r")
    state, _ = load_checkpoint(tmp_path / "r" / "pruned.safetensors")
    assert torch.equal(state["1.scale"], state["3.scale"]) and result["compression_ratio"] > 1


def test_a_run_stopped_while_retraining_gives_the_model_back_unmasked(reference, monkeypatch):
    from olmp.task import SplitsTask

    def interrupted(self, model, **kwargs):
        raise KeyboardInterrupt  # Ctrl-C in a notebook, during a round's retraining

    monkeypatch.setattr(SplitsTask, "retrain", interrupted)
    given = _model(reference)
    before = {k: v.clone() for k, v in given.state_dict().items()}
    with pytest.raises(KeyboardInterrupt):
        compress(given, reference[1], CompressConfig(**FAST))
    assert given.state_dict().keys() == before.keys()  # no mask parametrization left on it
    assert all(torch.equal(before[k], v) for k, v in given.state_dict().items())


def test_custom_module_with_own_data_loaders(reference):
    from torch.utils.data import DataLoader, TensorDataset

    import olmp

    digits = reference[1]

    def loader(split):
        return DataLoader(TensorDataset(split.x.flatten(1), split.y), batch_size=100)

    splits = olmp.splits_from_loaders(
        loader(digits.train), loader(digits.tune), loader(digits.val), loader(digits.test)
    )
    assert splits.input_shape == (64,) and splits.num_classes == 10
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    train(model, splits.train, TrainConfig(epochs=10, batch_size=32))
    _, result = olmp.compress(model, splits, olmp.CompressConfig(**FAST))
    assert result["compression_ratio"] > 1.5
    assert [row["name"] for row in result["layers"]] == ["0", "2"]


def test_a_model_with_dropout_compresses_alike_whatever_ran_before(reference):
    digits = reference[1]
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Dropout(0.3),
        torch.nn.Linear(64, 10),
    )  # fmt: skip
    train(net, digits.train, TrainConfig(epochs=3, batch_size=32))
    state = {k: v.clone() for k, v in net.state_dict().items()}
    results = []
    for before in (1, 2):  # what else ran in the process moves torch's global generator
        torch.manual_seed(before)
        net.load_state_dict(state)
        pruned, _ = compress(net, digits, CompressConfig(**FAST))
        results.append([v.clone() for v in pruned.state_dict().values()])
    assert all(torch.equal(a, b) for a, b in zip(*results, strict=True))


class _AuxHeadOnlyInTraining(torch.nn.Module):
    def __init__(self, used_in_eval: bool) -> None:
        super().__init__()
        self.body = torch.nn.Linear(64, 10) if used_in_eval else None
        self.proj = torch.nn.Parameter(torch.randn(64, 10) * 0.1)
        self.aux = torch.nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        out = x @ self.proj if self.body is None else self.body(x)
        return out + self.aux(x) if self.training else out


class _HeadAppliedFunctionally(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body, self.head = torch.nn.Linear(64, 32), torch.nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.body(x.flatten(1)))
        return torch.nn.functional.linear(h, self.head.weight, self.head.bias)


def test_layers_pruning_cannot_change_are_named_before_anything_is_written(reference, tmp_path):
    digits = reference[1]
    config = CompressConfig(**FAST)
    with pytest.raises(OlmpError, match=r"zeroing any of model .* prunable layers \(aux\) leaves"):
        compress(_AuxHeadOnlyInTraining(False), digits, config, run_dir=tmp_path / "r")
    assert not (tmp_path / "r").exists()
    with pytest.warns(UserWarning, match=r"zeroing layers aux of model .* leaves its outputs"):
        compress(_AuxHeadOnlyInTraining(True), digits, config)
    # A layer whose weights the model uses without calling it (F.linear) is no idle layer.
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="zeroing layers")
        compress(_HeadAppliedFunctionally(), digits, config)


def test_own_tensors_are_validated():
    import olmp

    x, y = torch.zeros(4, 3), torch.zeros(4, dtype=torch.long)
    with pytest.raises(OlmpError, match="tune: inputs have 4 samples and labels 3"):
        olmp.splits_from_tensors((x, y), (x, y[:3]), (x, y), (x, y))
    with pytest.raises(OlmpError, match="labels must be a 1-d integer tensor"):
        olmp.splits_from_tensors((x, y), (x, y.float()), (x, y), (x, y))
    with pytest.raises(OlmpError, match="num_classes must be an integer >= 1, got 0"):
        olmp.splits_from_tensors((x, y), (x, y), (x, y), (x, y), num_classes=0)
    with pytest.raises(OlmpError, match=r"val must be an \(inputs, labels\) pair, got Tensor"):
        olmp.splits_from_tensors((x, y), (x, y), x, (x, y))
    bad = x.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(OlmpError, match="tune: inputs hold NaN or infinite values"):
        olmp.splits_from_tensors((x, y), (bad, y), (x, y), (x, y))


def test_own_loaders_may_give_samples_and_bad_batches_are_named():
    from torch.utils.data import TensorDataset

    import olmp

    x, y = torch.randn(6, 3), torch.arange(6) % 2
    dataset = TensorDataset(x, y)  # single samples, not batches
    splits = olmp.splits_from_loaders(dataset, dataset, dataset, dataset)
    assert torch.equal(splits.train.x, x) and torch.equal(splits.test.y, y)
    with pytest.raises(OlmpError, match=r"tune: each batch must be an \(inputs, labels\) pair"):
        olmp.splits_from_loaders(dataset, [{"x": x, "y": y}], dataset, dataset)
    with pytest.raises(OlmpError, match="val: the loader gave no batches"):
        olmp.splits_from_loaders(dataset, dataset, [], dataset)
    ragged = [(x[:2], y[:2]), (torch.randn(2, 4), y[:2])]
    with pytest.raises(
        OlmpError, match=r"test: the batches' input shapes differ: \[\(3,\), \(4,\)\]"
    ):
        olmp.splits_from_loaders(dataset, dataset, dataset, ragged)


def test_mean_std_parametrisation_with_pruned_biases(reference):
    config = CompressConfig(parametrisation="mean-std", prune_biases=True, **FAST)
    pruned, result = compress(_model(reference), reference[1], config)
    # From the whole network (c at the threshold 0), two short rounds: modest, but real.
    assert result["compression_ratio"] > 1.2
    kept_biases = sum(row["kept_biases"] for row in result["layers"])
    total_biases = sum(row["total_biases"] for row in result["layers"])
    assert kept_biases < total_biases  # biases were masked with their layer's threshold
    zero_biases = sum(int((m.bias == 0).sum()) for m in pruned if isinstance(m, torch.nn.Linear))
    assert zero_biases >= total_biases - kept_biases


def test_compress_with_user_callables(reference):
    """A model with its own evaluation and training loop: no splits, no registry entry."""
    splits = reference[1]
    model = _model(reference)
    calls = {"train": 0, "steps": 0}

    def evaluate(net, split):
        assert not net.training  # olmp puts the network in eval mode to score it
        return accuracy(net, getattr(splits, split))

    def train_steps(net, *, steps, lr, seed, on_step):
        calls["train"] += 1
        optimiser = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)
        generator = torch.Generator().manual_seed(seed)
        net.train()
        for step in range(1, steps + 1):
            index = torch.randint(len(splits.train), (32,), generator=generator)
            loss = torch.nn.functional.cross_entropy(
                net(splits.train.x[index]), splits.train.y[index]
            )
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            calls["steps"] += 1
            if on_step is not None:
                on_step(step)

    config = CompressConfig(**FAST)
    pruned, result = compress(model, config=config, evaluate=evaluate, train=train_steps)
    assert calls["train"] >= 2 and calls["steps"] == calls["train"] * 20
    assert result["compression_ratio"] > 2
    assert result["val_accuracy"] == accuracy(pruned, splits.val)
    assert result["val_accuracy"] >= result["reference_val_accuracy"] - 0.02
    assert "split_seed" not in result and result["metric"] == "score"
    assert result["paired_change"] is None  # evaluate() gives no per-example outcomes

    # the same run scored by the default one-candidate-at-a-time path picks the same
    # thresholds as the batched SplitsTask path: both compute tune accuracy
    _, batched = compress(_model(reference), splits, config)
    assert batched["history"][0]["thresholds"] == result["history"][0]["thresholds"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "exactly one of splits=, evaluate= (with optional train=) or task=; got none"),
        ({"splits": "S", "evaluate": len}, "got splits, evaluate"),
        ({"train": len, "task": "T"}, "train= needs evaluate= beside it"),
        ({"task": object()}, "task must be an olmp.task.Task (or pass splits=), got an object"),
        ({"splits": "digits"}, "splits must be a DatasetSplits (olmp.load_dataset"),
        (
            {"splits": "S", "config": {"tolerance": 0.01}},
            "config must be a CompressConfig, got a dict",
        ),
    ],
)
def test_compress_data_arguments_are_checked(reference, kwargs, message):
    from olmp.task import SplitsTask

    given = {"S": reference[1], "T": SplitsTask(reference[1])}
    kwargs = {k: given.get(v, v) if isinstance(v, str) else v for k, v in kwargs.items()}
    with pytest.raises(OlmpError, match=re.escape(message)):
        compress(_model(reference), **kwargs)


def test_evaluate_must_return_a_number(reference, tmp_path):
    with pytest.raises(OlmpError, match=r"evaluate\(model, 'tune'\) returned 'high'"):
        compress(_model(reference), evaluate=lambda net, split: "high", run_dir=tmp_path / "r")
    assert not (tmp_path / "r" / "result.json").exists()


def _rules(monkeypatch, **rules):
    """Change the compressor's fixed rules (class attributes) for one test."""
    from olmp.compression import Compressor

    for name, value in rules.items():
        assert hasattr(Compressor, name), name
        monkeypatch.setattr(Compressor, name, value)


def test_backtracking_goes_back_to_the_best_and_halves_the_search_tolerance(
    reference, tmp_path, monkeypatch
):
    """With tolerance 0 and a loose search, rounds fail val; after two failures in a row
    the run continues from the best network with half the search tolerance, and an
    interrupted run resumes to the same result."""
    _rules(monkeypatch, backtrack_after=2)
    options = {**FAST, "tolerance": 0.0, "search_tolerance": 0.2, "max_rounds": 6}
    config = CompressConfig(**options, patience=6)
    _, full = compress(_model(reference), reference[1], config, run_dir=tmp_path / "full")
    history = full["history"]
    backtracks = [h for h in history if h["backtracked_to"] is not None]
    assert backtracks, [h["val_accuracy"] for h in history]
    first = backtracks[0]
    before = [h for h in history if h["round"] < first["round"]]
    assert all(h["val_accuracy"] < full["reference_val_accuracy"] for h in before[-2:])
    assert first["search_tolerance"] == pytest.approx(0.1)
    assert first["backtracked_to"] == max((h["round"] for h in before if h["new_best"]), default=0)

    class Stop(Exception):
        pass

    def stop_at_backtrack(entry, state):
        if entry["round"] == first["round"]:
            raise Stop

    with pytest.raises(Stop):
        compress(
            _model(reference),
            reference[1],
            config,
            run_dir=tmp_path / "cut",
            on_round=stop_at_backtrack,
        )
    _, resumed = compress(
        _model(reference), reference[1], config, run_dir=tmp_path / "cut", resume=True
    )

    def timeless(entries):
        return [{k: v for k, v in h.items() if k != "elapsed_s"} for h in entries]

    assert timeless(resumed["history"]) == timeless(history)
    assert resumed["compression_ratio"] == full["compression_ratio"]


def test_a_shortened_step_stops_where_the_size_reaches_the_floor():
    from olmp.compression import shortened_step

    def size_of(z):  # size falls linearly from 1 at z = 0 to 0.1 at z = (1, 1)
        return 1.0 - 0.45 * z.sum(axis=1)

    start, end = np.zeros(2), np.ones(2)
    assert shortened_step(size_of, start, end, 0.05) is end  # within the limit: unchanged
    middle = shortened_step(size_of, start, end, 0.5)
    assert size_of(middle[None, :])[0] == pytest.approx(0.5, abs=1e-6)
    assert size_of(middle[None, :])[0] >= 0.5
    np.testing.assert_allclose(middle, [5 / 9, 5 / 9], atol=1e-6)


@pytest.mark.parametrize("count", [1, 2, 5, 8, 13])
def test_bisect_finds_the_smallest_passing_candidate_within_its_attempts(count):
    """Candidates 0..count-1 sorted from the smallest network; those from ``first_pass`` on
    pass. Bisection finds the first passing one with 1 + ceil(log2(count)) attempts at
    most, wherever it lies."""
    from olmp.compression import smallest_passing

    attempts = 1 + math.ceil(math.log2(count)) if count > 1 else 1
    for first_pass in range(count + 1):  # count: nothing passes
        tried = []

        def passes(i, first_pass=first_pass, tried=tried):
            tried.append(i)
            return i >= first_pass

        found = smallest_passing(count, attempts, passes)
        assert found == (first_pass if first_pass < count else None)
        assert len(tried) <= attempts and len(set(tried)) == len(tried)
    assert smallest_passing(count, 0, passes) is None
    assert smallest_passing(0, 4, passes) is None


def test_the_final_phase_keeps_the_smallest_round_that_fine_tuning_lifts_over_val(
    reference, monkeypatch
):
    """Rounds that prune hard fail val at tolerance 0; the final phase fine-tunes the
    smallest of the rounds below the loop's best first, then bisects, and the result is
    the smallest round that passed."""
    options = {**FAST, "tolerance": 0.0, "search_tolerance": 0.2, "max_rounds": 5}
    _rules(monkeypatch, final_margin=1.0, final_candidates=3)
    config = CompressConfig(**options, patience=5)
    _, result = compress(_model(reference), reference[1], config)
    threshold = result["reference_val_accuracy"]
    history = {h["round"]: h for h in result["history"]}
    loop_best = min(
        (h["size"] for h in history.values() if h["val_accuracy"] >= threshold), default=1.0
    )
    candidates = sorted(
        (h for h in history.values() if h["size"] < loop_best), key=lambda h: h["size"]
    )
    assert candidates, [h["val_accuracy"] for h in history.values()]
    attempts = result["final_attempts"]
    assert attempts[0]["round"] == candidates[0]["round"]
    on_candidates = [a for a in attempts if history[a["round"]]["size"] < loop_best]
    assert len(on_candidates) <= 3
    for a in on_candidates:
        assert a["accepted"] == (a["val_accuracy"] >= threshold)
    passed = [a for a in on_candidates if a["accepted"]]
    if passed:
        smallest = min(passed, key=lambda a: history[a["round"]]["size"])
        assert result["best_round"] == smallest["round"] and result["best_fine_tuned"]
        assert result["val_accuracy"] >= threshold
    else:
        assert history.get(result["best_round"], {"size": 1.0})["size"] == loop_best


@pytest.mark.parametrize("limit", [None, 1.5])
def test_after_a_backtrack_a_round_shrinks_the_network_at_most_by_backtrack_shrink(
    reference, limit, monkeypatch
):
    """With a loose search every round prunes far; once the run has backtracked, a round
    with ``backtrack_shrink`` keeps at least 1/limit of the network it starts from."""
    from olmp.compression import Compressor
    from olmp.compression.steps import network_size as _size
    from olmp.pruning.masks import magnitude_masks
    from olmp.task import SplitsTask

    _rules(monkeypatch, backtrack_shrink=limit)
    config = CompressConfig(**{**FAST, "search_tolerance": 0.3})
    compressor = Compressor(_model(reference), SplitsTask(reference[1]), config)
    compressor._start()
    layers = compressor.layers
    unlimited, _ = compressor._search(1)
    assert _size(layers, magnitude_masks(layers, unlimited)) < 1 / 1.5  # a large step
    compressor.state.search_tolerance = 0.3  # as after a backtrack (same tolerance here)
    thresholds, summary = compressor._search(1)
    size = _size(layers, magnitude_masks(layers, thresholds))
    if limit is None:
        assert size < 1 / 1.5
    else:
        assert size == pytest.approx(1 / limit, rel=0.02)
        assert summary["search_size"] == pytest.approx(size, rel=1e-6)


def test_a_search_from_an_infeasible_network_does_not_grow_it(reference):
    """Start a round's search from a network pruned far past the search's tolerance (as
    after a backtrack with a halved tolerance): the requirement is capped at the start's
    tune accuracy, so the search does not re-grow weights towards the reference's."""
    from olmp.compression import Compressor
    from olmp.compression.steps import network_size as _size
    from olmp.pruning.masks import magnitude_masks
    from olmp.task import SplitsTask

    model, splits = _model(reference), reference[1]
    config = CompressConfig(**{**FAST, "search_tolerance": 0.02})
    compressor = Compressor(model, SplitsTask(splits), config)
    compressor._start()
    layers = compressor.layers
    # Keep about 1 % of every layer: far below the tune requirement.
    magnitudes = [layer.module.weight.detach().abs().flatten() for layer in layers]
    one_percent = torch.stack([m.kthvalue(int(0.99 * len(m))).values for m in magnitudes])
    compressor.masks = magnitude_masks(layers, one_percent)
    start_size = _size(layers, compressor.masks)
    thresholds, summary = compressor._search(1)
    size = _size(layers, magnitude_masks(layers, thresholds))
    paper_required = compressor.reference["tune_accuracy"] - 0.02
    assert summary["search_required_accuracy"] < paper_required
    assert size <= start_size * 1.01
    assert summary["search_feasible"]


@pytest.mark.parametrize("retries", [0, 1])
def test_the_run_ends_when_backtracking_to_the_same_best_keeps_failing(
    reference, retries, monkeypatch
):
    """Rounds that fail val after ``retries`` returns to one best network end the run,
    and the result says so."""
    options = {**FAST, "tolerance": 0.0, "search_tolerance": 0.2, "max_rounds": 12}
    _rules(monkeypatch, backtrack_after=2, backtracks_per_best=retries)
    config = CompressConfig(**options, patience=12)
    _, result = compress(_model(reference), reference[1], config)
    history = result["history"]
    assert result["stop_reason"] == "backtracks_per_best", [h["val_accuracy"] for h in history]
    assert result["rounds"] < 12
    # the last two rounds failed val, and the best had already been gone back to `retries` times
    assert all(not h["new_best"] for h in history[-2:])
    assert all(h["val_accuracy"] < result["reference_val_accuracy"] for h in history[-2:])
    last_best = max((h["round"] for h in history if h["new_best"]), default=0)
    backtracks = [h for h in history if h["backtracked_to"] is not None]
    assert [h["backtracked_to"] for h in backtracks if h["round"] > last_best] == [
        last_best
    ] * retries


def test_a_run_records_which_budget_ended_it(reference):
    _, result = compress(_model(reference), reference[1], CompressConfig(**FAST))
    assert result["rounds"] == FAST["max_rounds"] and result["stop_reason"] == "max_rounds"


@pytest.mark.parametrize(
    ("budget", "reason"),
    [({"max_evaluations": 45}, "max_evaluations"), ({"time_limit": 1e-9}, "time_limit")],
)
def test_evaluation_and_time_budgets_end_the_rounds(reference, budget, reason):
    config = CompressConfig(**(FAST | {"max_rounds": 10} | budget))
    _, result = compress(_model(reference), reference[1], config)
    assert result["stop_reason"] == reason
    if reason == "max_evaluations":  # round 1 spends 30, round 2 the 15 left
        assert result["rounds"] == 2
        assert [h["evaluations"] for h in result["history"]] == [30, 45]
    else:  # scoring the reference spent the time: no round runs, the network stays whole
        assert result["rounds"] == 0 and result["compression_ratio"] == 1.0


def test_dns_adjusting_end_to_end_splices_weights_back(reference):
    model = _model(reference)
    splits = reference[1]
    pruned, result = compress(model, splits, CompressConfig(adjust="dns", **FAST))
    assert result["config"]["adjust"] == "dns"
    assert result["compression_ratio"] > 1.5
    assert result["val_accuracy"] == accuracy(pruned, splits.val)
    # DNS re-derives masks from the weights it keeps training, so a round's search size is
    # not what retraining ends with: masks moved in at least one round.
    assert any(h["size"] != h["search_size"] for h in result["history"])


def test_a_solver_without_its_backend_is_refused_at_the_door(monkeypatch):
    from olmp.solvers import SOLVERS

    monkeypatch.setattr(SOLVERS["tpe"], "available", classmethod(lambda cls: False))
    with pytest.raises(OlmpError, match=r"solver 'tpe' needs .*pip install 'olmp\[tpe\]'"):
        CompressConfig(solver="tpe")


def test_solver_options_reach_the_solver_and_the_run_record(reference, monkeypatch):
    import importlib

    compress_module = importlib.import_module("olmp.compression.search")
    built = []
    real = compress_module.make_solver

    def recording_make_solver(name, lower, upper, **kwargs):
        solver = real(name, lower, upper, **kwargs)
        built.append(solver)
        return solver

    monkeypatch.setattr(compress_module, "make_solver", recording_make_solver)
    config = CompressConfig(solver_options={"r": 0.8, "epoch": 2}, **FAST)
    _, result = compress(_model(reference), reference[1], config)
    assert len(built) == FAST["max_rounds"]
    assert all(s.r == 0.8 and s.epoch == 2 for s in built)
    assert result["config"]["solver_options"] == {"r": 0.8, "epoch": 2}
    recorded = CompressConfig.from_dict(json.loads(json.dumps(result["config"])))
    assert recorded == config.resolved(None)  # batch size and shift: the fallbacks
    same = CompressConfig(solver_options={"epoch": 2, "r": 0.8}, **FAST)
    assert same == config and hash(same) == hash(config)  # a config is still a value
    assert hash(CompressConfig(**FAST)) != hash(config)


def test_options_left_to_the_context_are_filled_in_by_it():
    recipe = {"batch_size": 32, "max_shift": 2}
    plain = CompressConfig().resolved(recipe)
    assert (plain.batch_size, plain.augment_shift, plain.adjust_steps) == (32, 2, 500)
    fair = CompressConfig().resolved(None, constrained=True)
    assert (fair.batch_size, fair.augment_shift, fair.adjust_steps) == (64, 0, 2000)
    # A round retrains one epoch of the train split when that is more than 500 (2,000).
    assert CompressConfig().resolved(recipe, train_size=2000).adjust_steps == 500
    assert CompressConfig().resolved(recipe, train_size=50_000).adjust_steps == 1563
    assert CompressConfig().resolved(None, train_size=50_000).adjust_steps == 782
    assert CompressConfig().resolved(None, constrained=True, train_size=24_000).adjust_steps == 2000
    big = CompressConfig().resolved(None, constrained=True, train_size=200_000)
    assert big.adjust_steps == 3125
    # What the user set stands, constraints or not.
    mine = CompressConfig(adjust_steps=300, batch_size=16, augment_shift=0)
    assert mine.resolved(recipe, constrained=True) == mine
    # A damaged recipe's batch size is named (it divided the epoch: ZeroDivisionError).
    with pytest.raises(OlmpError, match="batch_size must be at least 1"):
        CompressConfig().resolved({"batch_size": 0}, train_size=2000)
    assert mine.resolved(recipe, train_size=50_000) == mine
    with pytest.raises(OlmpError, match="adjust_steps must be at least 1, or None"):
        CompressConfig(adjust_steps=0)
    # A wrong recipe is refused, not read as "no recipe" (which retrains without shifts).
    metadata = {"model": "lenet-5", "recipe": recipe}  # the whole metadata, not its recipe
    with pytest.raises(OlmpError, match=r"metadata\['recipe'\], not its whole metadata"):
        CompressConfig().resolved(metadata)
    with pytest.raises(OlmpError, match=r"none of a training recipe's keys .*; got batchsize"):
        CompressConfig().resolved({"batchsize": 128})
    with pytest.raises(OlmpError, match="recipe must be a TrainConfig or its dict"):
        CompressConfig().resolved("fast")  # type: ignore[arg-type]
    tuned = {"optimizer": "adam", "lr": 1e-3, "batch_size": 32}  # olmp tune's: other keys too
    assert CompressConfig().resolved(tuned).batch_size == 32


def test_a_round_retrains_at_least_one_epoch_of_the_runs_train_split(reference):
    # digits' 1,077 train rows in batches of 2: 539 steps an epoch, more than the 500.
    splits = reference[1]
    options = {**FAST, "adjust_steps": None, "batch_size": 2, "max_rounds": 1, "final_steps": 0}
    _, result = compress(_model(reference), splits, CompressConfig(**options))
    assert result["config"]["adjust_steps"] == math.ceil(len(splits.train) / 2) == 539


def test_a_resume_given_a_config_keeps_what_the_run_took_from_its_context(reference, tmp_path):
    # A run recorded with other steps per round than its context gives now (fashion-mnist
    # runs at 500, before a round retrained an epoch), resumed with a config that leaves
    # them to the context: it goes on with its own instead of being refused.
    run = tmp_path / "run"
    first = CompressConfig(**{**FAST, "max_rounds": 1, "final_steps": 0})
    compress(_model(reference), reference[1], first, run_dir=run)
    more = dataclasses.replace(first, max_rounds=2, adjust_steps=None)
    _, result = compress(_model(reference), reference[1], more, run_dir=run, resume=True)
    assert result["config"]["adjust_steps"] == FAST["adjust_steps"]
    assert result["rounds"] == 2
    assert CompressConfig(batch_size=8).continuing(first.resolved(None)).batch_size == 8


def test_config_recorded_before_a_field_existed_keeps_the_old_behaviour():
    record = CompressConfig(max_rounds=7, time_limit=60.0).to_dict()
    assert CompressConfig.from_dict(record) == CompressConfig(max_rounds=7, time_limit=60.0)
    del record["racing_z"]  # runs recorded before racing decided feasibility exactly
    record["max_time_s"] = record.pop("time_limit")  # the field's old name
    record |= {
        "backtrack_after": None,
        "final_order": "bisect",
        "distill": 0.5,
    }  # no longer options
    old = CompressConfig.from_dict(record)
    assert old.racing_z is None and old.time_limit == 60.0 and old.max_rounds == 7


def test_force_leaves_another_commands_folder_alone(reference, tmp_path):
    search = tmp_path / "search"  # an olmp tune folder: a result.json, no state.json
    search.mkdir()
    for name in ("tune.json", "result.json"):
        (search / name).write_text("{}")
    config = CompressConfig(**FAST)
    with pytest.raises(OlmpError, match=r"holds tune\.json, the record of an olmp tune search"):
        compress(_model(reference), reference[1], config, run_dir=search, force=True)
    assert sorted(p.name for p in search.iterdir()) == ["result.json", "tune.json"]
    (search / "tune.json").unlink()  # a file of a run's names, without its record
    with pytest.raises(OlmpError, match=r"holds result\.json but no state\.json"):
        compress(_model(reference), reference[1], config, run_dir=search, force=True)
    assert sorted(p.name for p in search.iterdir()) == ["result.json"]


def test_your_own_scores_are_checked_and_shown_in_their_own_units(reference):
    from olmp.export import export_metadata
    from olmp.report import summary_line
    from olmp.task import CallableTask

    model = _model(reference)
    for returned in ("0.9", True, np.True_, torch.tensor(True)):  # float() takes them all
        task = CallableTask(lambda m, split, value=returned: value)
        with pytest.raises(OlmpError, match=r"returned .*, not a number"):
            task.score(model, "val")
    percent = CallableTask(lambda m, split: 95.0)
    with pytest.warns(
        UserWarning, match=r"returned 95: tolerances \(below 1\) are in the score.s own units"
    ):
        assert percent.score(model, "val") == 95.0
    with warnings.catch_warnings():  # said once
        warnings.simplefilter("error")
        percent.score(model, "tune")

    record = {"compression_ratio": 3.0, "compression_ratio_with_biases": 2.9, "metric": "macro-f1"}
    record |= {"val_accuracy": 0.9444, "reference_val_accuracy": 0.95}
    record |= {"test_accuracy": 0.9771, "reference_test_accuracy": 0.98, "model": "m"}
    line = summary_line(record)
    assert "val macro-f1 0.9444 (ref 0.95); test macro-f1 0.9771 (ref 0.98)" in line
    assert "%" not in line
    assert set(export_metadata(record)) == {
        "model",
        "compression_ratio",
        "compression_ratio_with_biases",
    }
    assert "test 97.71% (ref 98.00%)" in summary_line(record | {"metric": "accuracy"})


def test_a_train_that_never_calls_on_step_is_named_when_it_matters(reference):
    from olmp.task import CallableTask

    splits = reference[1]
    data = {"tune": splits.tune, "val": splits.val, "test": splits.test}
    calls = []

    def deaf(model, *, steps, lr, seed, on_step):  # trains, never calls on_step
        calls.append(steps)

    task = CallableTask(lambda m, split: accuracy(m, data[split]), deaf)
    with pytest.warns(UserWarning, match=r"train\(\) ran 20 steps without calling on_step"):
        compress(_model(reference), task=task, config=CompressConfig(**{**FAST, "adjust": "dns"}))
    assert calls
    with warnings.catch_warnings(record=True) as caught:  # finetune, no time limit: no hook
        warnings.simplefilter("always")
        task = CallableTask(lambda m, split: accuracy(m, data[split]), deaf)
        compress(_model(reference), task=task, config=CompressConfig(**FAST))
    assert not [w for w in caught if "on_step" in str(w.message)]


def test_retraining_options_your_own_train_ignores_are_named(reference):
    splits = reference[1]
    data = {"tune": splits.tune, "val": splits.val, "test": splits.test}
    config = CompressConfig(**{**FAST, "max_rounds": 1, "batch_size": 16, "augment_shift": 1})
    with pytest.warns(UserWarning, match=r"config sets batch_size and augment_shift, which"):
        compress(_model(reference), evaluate=lambda m, s: accuracy(m, data[s]), config=config)
    with warnings.catch_warnings(record=True) as caught:  # on splits= they apply
        warnings.simplefilter("always")
        compress(_model(reference), splits, config)
    assert not [w for w in caught if "config sets" in str(w.message)]


def test_warnings_name_the_callers_line_not_olmps(reference):
    # The layer pattern is checked three calls deep (compress -> Compressor -> layers):
    # the warning must point at this file, where the typo is.
    with pytest.warns(UserWarning, match="pattern 'zzz' matches no") as caught:
        compress(_model(reference), reference[1], CompressConfig(exclude=("zzz",), **FAST))
    (warning,) = [w for w in caught if "zzz" in str(w.message)]
    assert warning.filename == __file__


def _without_times(value):
    """A run record with its clock readings left out (they differ between any two runs)."""
    if isinstance(value, dict):
        return {k: _without_times(v) for k, v in value.items() if "time" not in k and k != "elapsed_s"}  # fmt: skip  # noqa: E501
    if isinstance(value, list):
        return [_without_times(v) for v in value]
    return value


def test_a_resume_with_a_larger_budget_continues_a_finished_run(reference, tmp_path):
    # As olmp tune's: a run that ended by its budget goes on from its last round, and ends as
    # a run given the larger budget from the start (its final phase runs again after).
    def run(rounds, run_dir, resume=False):
        config = CompressConfig(**{**FAST, "max_rounds": rounds})
        return compress(_model(reference), reference[1], config, run_dir=run_dir, resume=resume)[1]

    short = run(2, tmp_path / "extended")
    assert short["stop_reason"] == "max_rounds" and len(short["history"]) == 2
    extended = run(4, tmp_path / "extended", resume=True)
    fresh = run(4, tmp_path / "fresh")
    assert len(extended["history"]) == 4 and extended["stop_reason"] == "max_rounds"
    assert _without_times(extended) == _without_times(fresh)
    state = json.loads((tmp_path / "extended" / STATE_JSON).read_text())
    assert state["config"]["max_rounds"] == 4 and state["state"]["finished"]
    # A smaller budget finds nothing to do, and says so: the finished run stands as it was.
    with pytest.warns(UserWarning, match="ended by max_rounds, which --max-rounds 3 does not"):
        assert _without_times(run(3, tmp_path / "extended", resume=True)) == _without_times(fresh)
    # No config: the run's own.
    model, splits = _model(reference), reference[1]
    again = compress(model, splits, run_dir=tmp_path / "extended", resume=True)[1]
    assert _without_times(again) == _without_times(fresh)
    # Settings other than the budgets are still the run's own.
    with pytest.raises(OlmpError, match=r"in --tolerance \(0.02, here 0.05\); .*only the budgets"):
        config = CompressConfig(**{**FAST, "tolerance": 0.05})
        compress(_model(reference), reference[1], config, run_dir=tmp_path / "fresh", resume=True)
    with pytest.raises(OlmpError, match=r"in --solver-option \(\{\}, here \{'r': 0.8\}\)"):
        config = CompressConfig(**{**FAST, "solver_options": {"r": 0.8}})
        compress(_model(reference), reference[1], config, run_dir=tmp_path / "fresh", resume=True)


def test_an_extension_stopped_halfway_leaves_no_old_result_to_be_read_as_its_own(
    reference, tmp_path
):
    def run(rounds, resume=False, on_round=None):
        options = {**FAST, "adjust_steps": 50, "final_steps": 50, "seed": 2, "max_rounds": rounds}
        model, splits, config = _model(reference), reference[1], CompressConfig(**options)
        return compress(model, splits, config, run_dir=run_dir, resume=resume, on_round=on_round)[1]  # fmt: skip  # noqa: E501

    class Stop(Exception):
        pass

    def stop_after_round_3(entry, state):
        if entry["round"] == 3:
            raise Stop

    run_dir = tmp_path / "run"
    assert run(2)["best_fine_tuned"]  # its final phase kept a network: rounds/final
    with pytest.raises(Stop):
        run(5, resume=True, on_round=stop_after_round_3)
    # Unfinished again: report and export say so, rather than show the 2-round result.
    assert not (run_dir / RESULT_JSON).exists() and not (run_dir / "pruned.safetensors").exists()
    with pytest.raises(OlmpError, match="holds no finished olmp run"):
        olmp.compression.read_result(run_dir)
    # A budget below what it has done would end it with a record naming less than it ran.
    with pytest.raises(OlmpError, match=r"with --max-rounds 2: it has done 3 already; give at least 3"):  # fmt: skip  # noqa: E501
        run(2, resume=True)
    extended = run(5, resume=True)
    assert len(extended["history"]) == 5 and not extended["best_fine_tuned"]
    # The 2-round run's final network is not the result's: it is gone.
    assert not (run_dir / "rounds" / "final.safetensors").exists()
