import math

import pytest
import torch

from olmp.data import load_dataset
from olmp.errors import OlmpError
from olmp.models import build_model
from olmp.training import (
    TrainConfig,
    accuracy,
    default_recipe,
    random_affine,
    random_shift,
    train,
)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0)


def _trained(digits, seed=0, epochs=3):
    torch.manual_seed(seed)
    model = build_model("lenet-300-100", digits.input_shape, digits.num_classes)
    return train(model, digits.train, TrainConfig(epochs=epochs, batch_size=32, seed=seed))


def test_short_training_clearly_beats_chance(digits):
    model = _trained(digits)
    assert accuracy(model, digits.val) > 0.85  # chance is 0.10
    assert accuracy(model, digits.test) > 0.85


def test_training_is_deterministic_with_a_seed(digits):
    a, b = _trained(digits, seed=3, epochs=1), _trained(digits, seed=3, epochs=1)
    c = _trained(digits, seed=4, epochs=1)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert not all(
        torch.equal(pa, pc) for pa, pc in zip(a.parameters(), c.parameters(), strict=True)
    )


def test_hooks_are_called(digits):
    steps, epochs = [], []
    model = build_model("lenet-300-100", digits.input_shape, 10)
    train(
        model,
        digits.train,
        TrainConfig(epochs=2, batch_size=500),
        on_step=lambda m, s: steps.append(s),
        on_epoch=lambda e, loss: epochs.append((e, loss)),
    )
    assert steps == list(range(1, 7))  # 1077 samples / 500 -> 3 steps per epoch
    assert [e for e, _ in epochs] == [1, 2] and all(loss > 0 for _, loss in epochs)


def test_average_last_ends_with_the_mean_of_the_last_steps_weights(digits):
    # 1077 samples / 500 -> 3 steps per epoch, 4 epochs: 12 steps; 0.25 averages the last 3.
    config = TrainConfig(epochs=4, batch_size=500, seed=1)
    snapshots = []

    def record(model, step):
        snapshots.append([p.detach().clone() for p in model.parameters()])

    torch.manual_seed(0)
    plain = train(
        build_model("lenet-300-100", digits.input_shape, 10), digits.train, config, on_step=record
    )
    torch.manual_seed(0)
    averaged = train(
        build_model("lenet-300-100", digits.input_shape, 10),
        digits.train,
        TrainConfig(**{**config.to_dict(), "average_last": 0.25}),
    )
    assert len(snapshots) == 12
    for i, param in enumerate(averaged.parameters()):
        expected = torch.stack([s[i] for s in snapshots[-3:]]).mean(dim=0)
        torch.testing.assert_close(param.detach(), expected)
        assert not torch.allclose(param, list(plain.parameters())[i])  # not the last step's


def test_random_shift_translates_each_image():
    x = torch.zeros(2, 1, 5, 5)
    x[:, 0, 2, 2] = 1.0
    shifted = random_shift(x, 1, torch.Generator().manual_seed(0))
    assert shifted.shape == x.shape
    for image in shifted:
        ((row, col),) = image[0].nonzero().tolist()
        assert abs(row - 2) <= 1 and abs(col - 2) <= 1
    assert torch.equal(shifted.sum(dim=(1, 2, 3)), torch.ones(2))


def _tilt_degrees(image: torch.Tensor) -> float:
    """Angle between the principal axis of an image's ink and the vertical."""
    rows_cols = (image > 0.25).nonzero().double()
    centred = rows_cols - rows_cols.mean(dim=0)
    _, vectors = torch.linalg.eigh(centred.T @ centred)
    row, col = vectors[:, -1].tolist()  # the axis of largest spread
    return math.degrees(math.atan2(abs(col), abs(row)))


@pytest.mark.parametrize("shape", [(28, 28), (20, 60)])
def test_random_affine_rotates_within_its_bound_about_the_centre(shape):
    height, width = shape
    x = torch.full((8, 1, height, width), -0.5)  # a background that is not 0
    x[:, 0, 4 : height - 4, width // 2 - 1 : width // 2 + 1] = 1.0  # a vertical bar
    assert torch.allclose(random_affine(x, 0.0, 0.0, torch.Generator()), x, atol=1e-5)
    small = random_affine(x, 10.0, 0.0, torch.Generator().manual_seed(1))
    assert all(_tilt_degrees(image[0]) <= 10 + 3 for image in small)  # 3: pixel rounding
    large = random_affine(x, 90.0, 0.0, torch.Generator().manual_seed(1))
    tilts = [_tilt_degrees(image[0]) for image in large]
    assert max(tilts) > 30
    for image in large:  # a rotation keeps the bar's length (on a non-square image too)
        rows_cols = (image[0] > 0.25).nonzero().double()
        assert abs(torch.cdist(rows_cols, rows_cols).max() - (height - 9)) <= 3
        centre = rows_cols.mean(dim=0)
        assert abs(centre[0] - (height - 1) / 2) <= 1.5 and abs(centre[1] - (width - 1) / 2) <= 1.5
    assert torch.allclose(large[:, :, :, :2], torch.full_like(large[:, :, :, :2], -0.5))  # fill


def test_random_affine_scales_each_image_by_its_own_factor():
    x = torch.full((6, 1, 28, 28), -0.5)
    x[:, 0, 6:22, 13:15] = 1.0  # a bar 16 pixels long
    scaled = random_affine(x, 0.0, 0.3, torch.Generator().manual_seed(2))
    lengths = (scaled[:, 0, :, 13] > 0.25).sum(dim=1).float()
    assert ((lengths >= 16 / 1.3 - 1) & (lengths <= 16 * 1.3 + 1)).all()
    assert lengths.unique().numel() > 1


def test_training_applies_the_rotations(digits):
    def trained(config):
        torch.manual_seed(0)
        model = build_model("lenet-300-100", digits.input_shape, digits.num_classes)
        return train(model, digits.train, config).state_dict()

    plain = trained(TrainConfig(epochs=1, batch_size=32))
    turned = trained(TrainConfig(epochs=1, batch_size=32, max_rotation=15))
    assert not all(torch.equal(plain[k], turned[k]) for k in plain)


def test_default_recipes_are_specific_where_defined():
    assert default_recipe("lenet-5", "fashion-mnist").lr == 0.02
    assert default_recipe("lenet-5", "mnist-5k") == TrainConfig(epochs=40, lr=0.02, max_shift=2)
    assert default_recipe("lenet-300-100", "mnist-5k").max_shift == 2
    assert default_recipe("custom:model", "mnist").epochs == TrainConfig().epochs


@pytest.mark.parametrize(
    "bad",
    [
        {"epochs": 0},
        {"batch_size": 0},
        {"lr": 0.0},
        {"average_last": 1.0},
        {"average_last": -0.1},
        {"max_rotation": -1.0},
        {"max_rotation": 200.0},
        {"max_scale": 1.0},
        {"epochs": 1.5},
        {"epochs": "3"},
        {"seed": -1},
        {"max_shift": -1},
        {"momentum": 2.0},
        {"weight_decay": -1e-4},
        {"lr": "0.1"},
    ],
)
def test_bad_recipes_are_refused(bad):
    with pytest.raises(OlmpError):
        TrainConfig(**bad)


def test_a_learning_rate_that_is_not_positive_is_named_as_the_option():
    for lr in (0, -0.1):
        with pytest.raises(OlmpError, match=r"^lr \(learning rate\) must be positive, got"):
            TrainConfig(lr=lr)
