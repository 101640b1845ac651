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
