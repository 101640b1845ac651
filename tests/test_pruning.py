import copy

import numpy as np
import pytest
import torch
from conftest import fresh_model
from torch import nn

from olmp.data import load_dataset
from olmp.data.registry import Split
from olmp.errors import OlmpError
from olmp.models import build_model
from olmp.pruning.evaluate import PopulationEvaluator, racing_decided
from olmp.pruning.layers import find_prunable_layers
from olmp.pruning.masks import (
    apply_masks,
    compression_ratios,
    count_kept,
    current_masks,
    magnitude_masks,
    remove_masks,
    update_masks_with_hysteresis,
)
from olmp.pruning.thresholds import KeepRatio, MeanStd, make_parametrisation
from olmp.training import TrainConfig, train


def test_layers_by_type_and_pattern():
    model = build_model("lenet-5", (1, 28, 28), 10)
    assert [layer.name for layer in find_prunable_layers(model)] == ["0", "2", "5", "7"]
    assert [layer.name for layer in find_prunable_layers(model, exclude=["7"])] == ["0", "2", "5"]
    assert [layer.name for layer in find_prunable_layers(model, include=["0", "2"])] == ["0", "2"]


def test_model_without_prunable_layers_is_refused():
    with pytest.raises(OlmpError, match="no prunable layers"):
        find_prunable_layers(nn.Sequential(nn.ReLU(), nn.Flatten()))


def test_keep_ratio_keeps_the_asked_fraction():
    torch.manual_seed(0)
    weights = [torch.randn(1000), torch.randn(50)]
    param = KeepRatio([w.abs() for w in weights], min_keep=1e-3)
    lower, upper = param.bounds()
    assert lower.tolist() == [-3.0, -3.0] and upper.tolist() == [0.0, 0.0]
    thresholds = param.thresholds(np.log10([[0.1, 0.5], [1.0, 1e-9]]))
    kept = [
        [int((w.abs() >= t).sum()) for w, t in zip(weights, row, strict=True)] for row in thresholds
    ]
    assert kept == [[100, 25], [1000, 1]]  # at least one weight per layer survives
    assert param.kept_counts(thresholds).tolist() == kept
    assert np.allclose(param.encode(np.array([0.1, 0.5])), np.log10([0.1, 0.5]))


def test_mean_std_matches_the_papers_formula():
    w = torch.tensor([0.0, 1.0, 2.0, 3.0])
    param = MeanStd([w])
    t = param.thresholds(np.array([[0.0], [1.0]]))
    assert t[0, 0] == pytest.approx(1.5)
    assert t[1, 0] == pytest.approx(min(1.5 + float(w.std()), 3.0))
    with pytest.raises(OlmpError, match="unknown threshold parametrisation 'x'"):
        make_parametrisation("x", [w])


@pytest.mark.parametrize("seed", range(20))
def test_mean_std_can_keep_a_whole_layer(seed):
    generator = torch.Generator().manual_seed(seed)
    weights = [torch.randn(500, generator=generator), torch.randn(40, generator=generator) * 3]
    param = MeanStd([w.abs() for w in weights])
    lower, upper = param.bounds()
    assert (lower < 0).all() and (upper == param.c_max).all()
    keep_all = param.encode(np.ones(2))
    assert param.kept_counts(param.thresholds(keep_all)).tolist() == [[500, 40]]
    assert param.kept_counts(param.thresholds(lower)).tolist() == [[500, 40]]
    half = param.kept_counts(param.thresholds(param.encode(np.array([0.5, 0.5])))).tolist()
    assert half == [[250, 20]]


def test_masks_through_parameters_and_straight_through_gradients():
    layer = nn.Linear(4, 3)
    model = nn.Sequential(layer)
    layers = find_prunable_layers(model)
    with torch.no_grad():
        layer.weight.copy_(torch.arange(12.0).reshape(3, 4) - 6)
    masks = magnitude_masks(layers, torch.tensor([3.0]))
    assert int(masks["0.weight"].sum()) == 7  # |w| >= 3
    dense = layer.weight.detach().clone()

    apply_masks(layers, masks, straight_through=True)
    assert torch.equal(layer.weight, dense * masks["0.weight"])
    layer(torch.ones(1, 4)).sum().backward()
    grad = layer.parametrizations.weight.original.grad
    assert (grad != 0).all()  # pruned weights get gradients too (DNS)
    remove_masks(layers, bake=False)
    assert torch.equal(layer.weight, dense)

    apply_masks(layers, masks, straight_through=False)
    layer.parametrizations.weight.original.grad = None
    layer(torch.ones(1, 4)).sum().backward()
    grad = layer.parametrizations.weight.original.grad
    assert torch.equal(grad != 0, masks["0.weight"])
    remove_masks(layers, bake=True)
    assert torch.equal(layer.weight, dense * masks["0.weight"])


def test_hysteresis_prunes_below_low_and_splices_above_high():
    layer = nn.Linear(4, 1, bias=False)
    layers = find_prunable_layers(nn.Sequential(layer))
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.85, 0.95, 1.05, 1.15]]))
    mask = torch.tensor([[True, True, False, False]])
    apply_masks(layers, {"0.weight": mask}, straight_through=True)
    update_masks_with_hysteresis(layers, torch.tensor([1.0]))
    assert current_masks(layers)["0.weight"].tolist() == [[False, True, False, True]]


def test_size_accounting_with_and_without_biases():
    model = nn.Sequential(nn.Linear(10, 10), nn.Linear(10, 2, bias=False))
    layers = find_prunable_layers(model)
    masks = {"0.weight": torch.zeros(10, 10, dtype=torch.bool), "1.weight": torch.ones(2, 10) > 0}
    masks["0.weight"][0, :5] = True
    counts = count_kept(layers, masks)
    assert counts == {"weights": 120, "kept_weights": 25, "biases": 10, "kept_biases": 10}
    assert compression_ratios(layers, masks) == (120 / 25, 130 / 35)


@pytest.fixture(scope="module")
def digits_model():
    splits = load_dataset("digits", seed=0)
    torch.manual_seed(0)
    model = build_model("lenet-300-100", splits.input_shape, 10).eval()
    return model, splits


@pytest.mark.parametrize("prune_biases", [False, True])
def test_batched_evaluation_equals_one_at_a_time(digits_model, prune_biases):
    model, splits = digits_model
    layers = find_prunable_layers(model)
    param = KeepRatio([layer.module.weight.detach().abs() for layer in layers])
    z = np.random.default_rng(0).uniform(-2, 0, size=(7, len(layers)))
    thresholds = param.thresholds(z)
    kwargs = {"prune_biases": prune_biases, "population_chunk": 3, "batch_size": 50}
    batched = PopulationEvaluator(model, layers, splits.tune, batched=True, **kwargs)
    looped = PopulationEvaluator(model, layers, splits.tune, batched=False, **kwargs)
    alone = PopulationEvaluator(
        model, layers, splits.tune, batched=False, share_first_layer=False, **kwargs
    )
    assert looped.shared is not None and alone.shared is None  # Flatten -> Linear: shared
    a, b = batched.accuracies(thresholds), looped.accuracies(thresholds)
    assert np.allclose(a, b)
    assert np.allclose(alone.accuracies(thresholds), b)
    # and both equal applying the masks to the model itself
    for p in (0, 6):
        masks = magnitude_masks(layers, thresholds[p], prune_biases)
        apply_masks(layers, masks, straight_through=False)
        with torch.no_grad():
            acc = (model(splits.tune.x).argmax(1) == splits.tune.y).double().mean().item()
        remove_masks(layers, bake=False)
        assert a[p] == pytest.approx(acc)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("prune_biases", [False, True])
def test_every_evaluation_path_on_a_gpu_equals_the_cpu(digits_model, prune_biases):
    """On CUDA each way of evaluating a population (vmap, the shared first layer, alone)
    gives the CPU's accuracies: the shared layer's buffers and thresholds follow the
    weights to the GPU (they were made on the CPU, which broke ``batched=False`` there)."""
    model, splits = digits_model
    layers = find_prunable_layers(model)
    param = KeepRatio([layer.module.weight.detach().abs() for layer in layers])
    thresholds = param.thresholds(np.random.default_rng(1).uniform(-2, 0, size=(5, len(layers))))
    kwargs = {"prune_biases": prune_biases, "batch_size": 50}
    on_cpu = PopulationEvaluator(model, layers, splits.tune, **kwargs).accuracies(thresholds)
    gpu_model = copy.deepcopy(model).cuda()
    gpu_layers = find_prunable_layers(gpu_model)
    for options in ({"batched": True}, {"batched": False}, {"share_first_layer": False}):
        options = {"batched": False, **options}
        evaluator = PopulationEvaluator(gpu_model, gpu_layers, splits.tune, **options, **kwargs)
        # GPU arithmetic may flip a near-tied prediction: one example either way.
        one = 1.0 / len(splits.tune)
        assert np.allclose(evaluator.accuracies(thresholds), on_cpu, rtol=0, atol=one), options


class _FirstLayerTwice(nn.Module):
    """The first Linear layer applied twice: its second input is not the data."""

    def __init__(self) -> None:
        super().__init__()
        self.square, self.out = nn.Linear(64, 64), nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.square(x.flatten(1)))
        return self.out(torch.tanh(self.square(h)))


class _NoLayerInEval(nn.Module):
    """Its only prunable layer runs in training (an auxiliary head), not in eval."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Parameter(torch.randn(64, 10) * 0.1)
        self.aux = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x.flatten(1) @ self.proj
        return out + self.aux(x.flatten(1)) if self.training else out


class _FirstLayerFunctional(nn.Module):
    """The first Linear's weights applied through F.linear: no hook sees that layer run."""

    def __init__(self) -> None:
        super().__init__()
        self.first, self.second = nn.Linear(64, 64), nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(nn.functional.linear(x.flatten(1), self.first.weight, self.first.bias))
        return self.second(h)


@pytest.mark.parametrize("make", [_FirstLayerTwice, _NoLayerInEval, _FirstLayerFunctional])
def test_the_shared_first_layer_steps_aside_where_it_would_be_wrong(digits_reference, make):
    splits = digits_reference[1]
    torch.manual_seed(0)
    model = make()
    train(model, splits.train, TrainConfig(epochs=2, batch_size=32))
    layers = find_prunable_layers(model)
    param = KeepRatio([layer.module.weight.detach().abs() for layer in layers])
    thresholds = param.thresholds(np.random.default_rng(1).uniform(-2, 0, size=(4, len(layers))))
    shared = PopulationEvaluator(model, layers, splits.tune, batched=False)
    alone = PopulationEvaluator(model, layers, splits.tune, batched=False, share_first_layer=False)
    assert shared.shared is None
    np.testing.assert_array_equal(shared.accuracies(thresholds), alone.accuracies(thresholds))


@pytest.mark.parametrize("batched", [False, True])
def test_floor_stops_failing_candidates_early_and_decides_feasibility_exactly(
    digits_reference, batched
):
    model, splits = fresh_model(digits_reference).eval(), digits_reference[1]
    layers = find_prunable_layers(model)
    param = KeepRatio([layer.module.weight.detach().abs() for layer in layers])
    z = np.random.default_rng(0).uniform(-2.5, -0.5, size=(9, len(layers)))
    thresholds = param.thresholds(z)
    evaluator = PopulationEvaluator(
        model, layers, splits.tune, batched=batched, batch_size=50, population_chunk=4
    )
    full = evaluator.accuracies(thresholds)
    assert len(set(full.tolist())) > 3  # candidates differ, so the floor splits them
    floor = float(np.median(full))
    raced = evaluator.accuracies(thresholds, floor=floor)
    passing = full >= floor
    assert passing.any() and (~passing).any()
    assert np.array_equal(raced[passing], full[passing])
    assert (raced[~passing] < floor).all()
    # An unreachable floor: every candidate stops after the first batch of 50 samples, and
    # its estimate is its accuracy on that batch.
    x, y = splits.tune.x[:50], splits.tune.y[:50]
    first_batch = []
    for row in thresholds:
        apply_masks(layers, magnitude_masks(layers, row), straight_through=False)
        with torch.no_grad():
            first_batch.append((model(x).argmax(1) == y).double().mean().item())
        remove_masks(layers, bake=False)
    assert np.allclose(evaluator.accuracies(thresholds, floor=0.99), first_batch)


def test_racing_decides_only_what_the_seen_samples_make_clear():
    seen = torch.tensor([500, 500, 500, 5000, 0])
    correct = torch.tensor([500, 400, 452, 4499, 0])
    decided = racing_decided(correct, seen, total=5000, floor=0.9, z=3.0)
    # all right: clearly above; 80 %: clearly below; 90.4 % of 500: within the noise; the
    # whole split seen: always decided; nothing seen: never.
    assert decided.tolist() == [True, True, False, True, False]
    # A smaller z decides sooner; near the end of the split the error shrinks to nothing.
    assert racing_decided(correct[2:3], seen[2:3], 5000, 0.9, z=0.1).item()
    assert racing_decided(torch.tensor([4480]), torch.tensor([4990]), 5000, 0.895, 3.0).item()


@pytest.mark.parametrize("batched", [False, True])
def test_racing_stops_clear_candidates_early_and_keeps_their_feasibility(digits_reference, batched):
    """Scored with the sequential test, candidates far from the floor stop after part of
    the split, and every decision agrees with the exact one here."""
    model, splits = fresh_model(digits_reference).eval(), digits_reference[1]
    layers = find_prunable_layers(model)
    param = KeepRatio([layer.module.weight.detach().abs() for layer in layers])
    z = np.random.default_rng(1).uniform(-4.0, -0.2, size=(12, len(layers)))
    thresholds = param.thresholds(z)
    # The tune split four times over, so that there are batches to skip.
    data = Split(splits.tune.x.repeat(4, 1, 1, 1), splits.tune.y.repeat(4))
    # Without a shared first Linear layer, as for a convolutional network or on a GPU.
    options = dict(batched=batched, batch_size=60, population_chunk=4, share_first_layer=False)
    exact = PopulationEvaluator(model, layers, data, **options)
    raced = PopulationEvaluator(model, layers, data, racing_z=3.0, **options)
    assert raced.racing_z == 3.0
    full = exact.accuracies(thresholds)
    floor = 0.8
    assert (full >= floor).any() and (full < floor - 0.2).any()
    counted = []
    original = raced._predict if not batched else None
    if original is not None:
        raced._predict = lambda *args: counted.append(1) or original(*args)
    quick = raced.accuracies(thresholds, floor=floor)
    assert np.array_equal(quick >= floor, full >= floor)
    if original is not None:  # fewer batches than every candidate on the whole split
        assert len(counted) < len(thresholds) * len(raced.batches)


def test_racing_is_right_on_a_split_stored_sorted_by_class():
    """A network that answers class 0 to everything looks perfect on the first batches of
    a split sorted by label; the evaluator shuffles before it races."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    with torch.no_grad():
        model[1].weight.fill_(0.01)
        model[1].bias.copy_(torch.tensor([5.0, 0.0, 0.0]))
    data = Split(torch.randn(3000, 1, 2, 2), torch.arange(3).repeat_interleave(1000))
    layers = find_prunable_layers(model)
    evaluator = PopulationEvaluator(
        model, layers, data, racing_z=3.0, batch_size=500, share_first_layer=False
    )
    assert evaluator.racing_z == 3.0
    accuracy = evaluator.accuracies(torch.zeros(1, 1), floor=0.5)[0]
    assert accuracy < 0.5


def test_racing_is_off_where_the_first_layer_is_shared(digits_reference):
    """The shared first Linear layer is computed for every sample anyway: decisions stay
    exact, and the feasible candidates' accuracies are their exact ones."""
    model, splits = fresh_model(digits_reference).eval(), digits_reference[1]
    layers = find_prunable_layers(model)
    evaluator = PopulationEvaluator(model, layers, splits.tune, racing_z=3.0)
    assert evaluator.shared is not None and evaluator.racing_z is None
    thresholds = KeepRatio([layer.module.weight.detach().abs() for layer in layers]).thresholds(
        np.full((1, len(layers)), -1.0)
    )
    exact = PopulationEvaluator(model, layers, splits.tune).accuracies(thresholds)
    assert np.array_equal(evaluator.accuracies(thresholds, floor=0.0), exact)


def test_convolutional_evaluation_on_cpu_goes_channels_last():
    """LeNet-5 on a CPU: the one-at-a-time path runs channels-last (faster there) and
    agrees with vmap and with accuracy() on the masked model."""
    from olmp.data import splits_from_tensors
    from olmp.training import accuracy

    generator = torch.Generator().manual_seed(0)
    x = torch.randn(240, 1, 28, 28, generator=generator)
    y = torch.randint(0, 10, (240,), generator=generator)
    parts = [(x[i : i + 60], y[i : i + 60]) for i in range(0, 240, 60)]
    splits = splits_from_tensors(*parts)
    torch.manual_seed(0)
    model = build_model("lenet-5", (1, 28, 28), 10).eval()
    layers = find_prunable_layers(model)
    param = KeepRatio([layer.module.weight.detach().abs() for layer in layers])
    thresholds = param.thresholds(np.random.default_rng(1).uniform(-1.5, 0, size=(4, 4)))
    looped = PopulationEvaluator(model, layers, splits.tune)
    assert looped.channels_last and not looped.batched
    assert looped.batches[0][0].stride()[1] == 1  # channels innermost
    batched = PopulationEvaluator(model, layers, splits.tune, batched=True)
    a, b = looped.accuracies(thresholds), batched.accuracies(thresholds)
    assert np.abs(a - b).max() <= 1 / 60  # summation order may flip one near-tie
    masks = magnitude_masks(layers, thresholds[2])
    apply_masks(layers, masks, straight_through=False)
    try:
        assert abs(accuracy(model, splits.tune) - a[2]) <= 1 / 60
    finally:
        remove_masks(layers, bake=False)


def test_shared_first_layer_outputs_match_each_candidate():
    from olmp.pruning.evaluate import SharedFirstLayer

    torch.manual_seed(0)
    linear = nn.Linear(50, 7)
    layer = find_prunable_layers(nn.Sequential(linear))[0]
    x = torch.randn(30, 50)
    shared = SharedFirstLayer(layer, [x], bias=None, dense_fraction=0.3)
    magnitudes = linear.weight.detach().abs().flatten()
    # tied thresholds, one keeping nothing, one keeping everything, and slices big enough
    # for the dense product as well as small sparse ones
    thresholds = torch.tensor([0.05, 0.05, 10.0, 0.0, 0.1, 0.12, float(magnitudes.max())])
    out = shared.outputs(thresholds)[0]
    for p, t in enumerate(thresholds):
        w = linear.weight.detach() * (linear.weight.detach().abs() >= t)
        expected = x @ w.T + linear.bias.detach()
        assert torch.allclose(out[p], expected, atol=1e-5)


def test_a_layer_pattern_that_matches_nothing_is_named():
    import warnings

    model = build_model("lenet-300-100", (1, 28, 28), 10)
    with pytest.warns(UserWarning, match=r"pattern 'zzz' matches no Linear.*named 1, 3, 5$"):
        assert len(find_prunable_layers(model, exclude=("zzz",))) == 3
    with pytest.warns(UserWarning, match=r"pattern 'fc\*', 'conv\*' matches no"):
        find_prunable_layers(model, include=("1", "fc*"), exclude=("conv*",))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        find_prunable_layers(model, include=("[13]",), exclude=("3",))


def test_thresholds_keep_no_zero_and_every_other_weight_as_before():
    """The floor above 0 drops exact zeros only; records show it as the 0 it stands for."""
    from olmp.pruning.thresholds import MeanStd, recorded_thresholds

    dense, holed = torch.randn(50), torch.randn(50)
    holed[:20] = 0
    for param in (MeanStd([dense.abs(), holed.abs()]), KeepRatio([dense.abs(), holed.abs()])):
        lower, upper = param.bounds()
        keep_all = param.thresholds(lower if isinstance(param, MeanStd) else upper)
        assert param.kept_counts(keep_all).tolist() == [[50, 30]]
        if isinstance(param, MeanStd):
            assert recorded_thresholds(keep_all[0]) == [0.0, 0.0]
