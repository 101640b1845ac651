"""Shared fixtures: small IDX datasets written by the tests themselves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from olmp.data.idx import write_idx
from olmp.data.idx_sets import FILE_NAMES


def write_fake_mnist(
    folder: Path, n_train: int = 120, n_test: int = 40, compress: bool = True
) -> Path:
    """Write four MNIST-style IDX files whose every image is unique; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    arrays = {
        "train-images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels": (np.arange(n_train) % 10).astype(np.uint8),
        "test-images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test-labels": (np.arange(n_test) % 10).astype(np.uint8),
    }
    for key, array in arrays.items():
        name = FILE_NAMES[key] + (".gz" if compress else "")
        write_idx(folder / name, array, compress=compress)
    return folder


@pytest.fixture
def isolated_data(tmp_path, monkeypatch):
    """Point $OLMP_DATA and the home cache at empty temporary folders."""
    monkeypatch.setenv("OLMP_DATA", str(tmp_path / "olmp_data"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    from olmp.data import registry

    registry._raw_tensors.cache_clear()
    yield tmp_path
    registry._raw_tensors.cache_clear()


# Budgets small enough for a unit test, large enough that compression happens.
#: The fairness datasets of ../shared (CI has it beside the checkout).
FAIRNESS = Path(__file__).resolve().parents[2] / "shared" / "data" / "fairness"

FAST_COMPRESS = dict(
    evaluations_per_round=30,
    max_rounds=2,
    adjust_steps=20,
    final_steps=20,
    search_tolerance=0.05,
    tolerance=0.02,
)


@pytest.fixture(scope="session")
def digits_reference():
    """``(state_dict, splits)`` of LeNet-300-100 trained briefly on digits (about 93 %)."""
    import torch

    from olmp.data import load_dataset
    from olmp.models import build_model
    from olmp.training import TrainConfig, train

    splits = load_dataset("digits", seed=0)
    torch.manual_seed(0)
    model = build_model("lenet-300-100", splits.input_shape, 10)
    train(model, splits.train, TrainConfig(epochs=5, batch_size=32))
    return model.state_dict(), splits


def fresh_model(reference):
    """A new LeNet-300-100 holding the weights of a ``digits_reference``."""
    from olmp.models import build_model

    state, splits = reference
    model = build_model("lenet-300-100", splits.input_shape, 10)
    model.load_state_dict(state)
    return model
