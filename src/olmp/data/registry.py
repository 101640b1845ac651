"""One registry for every dataset, and deterministic train / tune / val / test splits.

A dataset definition says how to get its raw arrays (images as uint8 or floats, integer
labels), how to scale and normalise them, and how many samples go to each split. Every
dataset comes back as a :class:`DatasetSplits` of float32 tensors in NCHW layout:

- ``test`` is the dataset's official test set, or, for sets without one, a subset carved
  with a fixed seed that does not depend on the split seed; nothing but final reporting
  reads it.
- ``tune`` (the accuracy constraint during the search) and ``val`` (model selection) are
  carved from the training data with the split seed; ``train`` is the rest.

Raw arrays are loaded once per process and cached; splitting is cheap.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from olmp.errors import OlmpError, OptionError, check_count, unknown_choice

# Seed of the carve that makes a test split for datasets that ship without one. Fixed so
# that the test split is the same for every split seed and every run.
TEST_CARVE_SEED = 20180713

RawArrays = tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]
"""(train images, train labels, test images or None, test labels or None)."""


@dataclass(frozen=True)
class Split:
    """Inputs ``x`` (float32, N x C x H x W) and integer labels ``y`` of one split."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class DatasetSplits:
    """A dataset cut into disjoint train / tune / val / test splits."""

    name: str
    train: Split
    tune: Split
    val: Split
    test: Split
    input_shape: tuple[int, ...]
    num_classes: int
    split_seed: int

    def sizes(self) -> dict[str, int]:
        """Number of samples per split."""
        return {s: len(getattr(self, s)) for s in ("train", "tune", "val", "test")}


@dataclass(frozen=True)
class DatasetSpec:
    """How to load and cut one dataset.

    ``load(data_dir, download)`` returns :data:`RawArrays`. Images are divided by ``scale``
    and then normalised with ``mean`` and ``std`` (computed on the training images).
    """

    name: str
    description: str
    load: Callable[[Path | None, bool], RawArrays]
    scale: float
    mean: float
    std: float
    num_classes: int
    tune_size: int
    val_size: int
    test_size: int | None = None  # carve a test split of this size when none is shipped


DATASETS: dict[str, DatasetSpec] = {}


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    """Add ``spec`` to the registry under ``spec.name``."""
    DATASETS[spec.name] = spec
    return spec


def get_spec(name: str) -> DatasetSpec:
    """Return the registered spec called ``name`` or raise a listing error."""
    if name not in DATASETS:
        from olmp.data.tabular import TABULAR_DATASETS

        raise unknown_choice("dataset", name, [*DATASETS, *TABULAR_DATASETS])
    return DATASETS[name]


@functools.lru_cache(maxsize=8)
def _raw_tensors(
    name: str, data_dir: Path | None, download: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    spec = DATASETS[name]
    x_train, y_train, x_test, y_test = spec.load(data_dir, download)

    def images(x: np.ndarray) -> torch.Tensor:
        x = torch.as_tensor(np.asarray(x, dtype=np.float32))
        if x.ndim == 3:  # N x H x W -> N x 1 x H x W
            x = x.unsqueeze(1)
        return ((x / spec.scale - spec.mean) / spec.std).contiguous()

    def labels(y: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(y, dtype=np.int64))

    for part, y in (("train", y_train), ("test", y_test)):
        if y is None or not len(y):
            continue
        low, high = int(np.min(y)), int(np.max(y))
        if low < 0 or high >= spec.num_classes:
            raise OlmpError(
                f"dataset {name}: {part} labels range over {low}..{high}, but {name} has "
                f"classes 0..{spec.num_classes - 1}; its files are damaged or not {name}'s"
            )
    if x_test is None or y_test is None:
        return images(x_train), labels(y_train), None, None
    return images(x_train), labels(y_train), images(x_test), labels(y_test)


def load_dataset(
    name: str,
    *,
    seed: int = 0,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
) -> DatasetSplits:
    """Load dataset ``name`` cut into train / tune / val / test with split seed ``seed``.

    Args:
        name: a key of :data:`DATASETS` (``mnist``, ``fashion-mnist``, ``mnist-5k``,
            ``digits``) or of :data:`olmp.data.tabular.TABULAR_DATASETS` (``adult``, ...:
            see :func:`olmp.data.tabular.load_tabular`).
        seed: split seed; the same seed always gives the same tune / val / train samples.
        data_dir: where to look for (and download) files first; see each dataset.
        download: allow downloading missing files when a network exists.

    Example:
        >>> splits = load_dataset("digits", seed=0)
        >>> splits.input_shape, splits.num_classes
        ((1, 8, 8), 10)
    """
    from olmp.data.tabular import TABULAR_DATASETS, load_tabular  # it builds on this module

    if name in TABULAR_DATASETS:
        return load_tabular(name, seed=seed, data_dir=data_dir, download=download)
    spec = get_spec(name)
    check_split_seed(seed)
    root = Path(data_dir).expanduser().resolve() if data_dir is not None else None
    x, y, x_test, y_test = _raw_tensors(name, root, download)

    if x_test is None or y_test is None:
        assert spec.test_size is not None, f"{name} ships no test set and carves none"
        carve = np.random.default_rng(TEST_CARVE_SEED).permutation(len(y))
        test_idx = torch.as_tensor(carve[: spec.test_size])
        rest = torch.as_tensor(np.sort(carve[spec.test_size :]))
        x_test, y_test, x, y = x[test_idx], y[test_idx], x[rest], y[rest]
    carved = spec.tune_size + spec.val_size
    if len(y) <= carved or len(y_test) == 0:
        raise OlmpError(
            f"dataset {name} has {len(y)} training and {len(y_test)} test samples; it needs "
            f"more than {carved} training samples ({spec.tune_size} tune + {spec.val_size} "
            "val + at least one to train on) and a test set: are its files complete?"
        )

    order = torch.as_tensor(np.random.default_rng(seed).permutation(len(y)))
    tune_idx = order[: spec.tune_size]
    val_idx = order[spec.tune_size : spec.tune_size + spec.val_size]
    train_idx = order[spec.tune_size + spec.val_size :]
    return DatasetSplits(
        name=name,
        train=Split(x[train_idx], y[train_idx]),
        tune=Split(x[tune_idx], y[tune_idx]),
        val=Split(x[val_idx], y[val_idx]),
        test=Split(x_test, y_test),
        input_shape=tuple(x.shape[1:]),
        num_classes=spec.num_classes,
        split_seed=seed,
    )


def check_split_seed(seed: object) -> int:
    """``seed`` if it is a valid split seed (an integer in [0, 2**32)); else an error."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or not 0 <= seed < 2**32:
        raise OptionError("split seed", f"must be an integer in [0, 2**32), got {seed!r}")
    return int(seed)


def splits_from_tensors(
    train: tuple[torch.Tensor, torch.Tensor],
    tune: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    *,
    name: str = "custom",
    num_classes: int | None = None,
) -> DatasetSplits:
    """Wrap your own ``(inputs, labels)`` tensors as :class:`DatasetSplits`.

    Inputs may have any shape the model accepts (first axis = samples) and become float32
    (uint8 images, bool or integer features alike; a model that takes integer inputs, token
    ids say, passes its own ``evaluate=`` to :func:`olmp.compress` instead); labels are class
    indices. Keep the four splits disjoint: the search checks accuracy on ``tune``, the
    result is chosen on ``val``, ``test`` is only reported.
    """
    if num_classes is not None:
        num_classes = check_count(num_classes, "num_classes")
    parts = {"train": train, "tune": tune, "val": val, "test": test}
    splits = {}
    for part, pair in parts.items():
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            got = f"{len(pair)} items" if isinstance(pair, tuple | list) else type(pair).__name__
            raise OlmpError(f"{part} must be an (inputs, labels) pair, got {got}")
        x, y = (torch.as_tensor(t) for t in pair)
        if x.is_floating_point() and not torch.isfinite(x).all():  # NaN scores as nothing
            raise OlmpError(f"{part}: inputs hold NaN or infinite values")
        if len(x) != len(y) or len(y) == 0:
            raise OlmpError(
                f"{part}: inputs have {len(x)} samples and labels {len(y)}; "
                "they must be equal and non-zero"
            )
        if y.dtype.is_floating_point or y.ndim != 1:
            raise OlmpError(
                f"{part}: labels must be a 1-d integer tensor, got {y.dtype} {tuple(y.shape)}"
            )
        splits[part] = Split(x.float(), y.long())
    shapes = {tuple(s.x.shape[1:]) for s in splits.values()}
    if len(shapes) != 1:
        raise OlmpError(f"the splits' input shapes differ: {sorted(shapes)}")
    classes = num_classes or int(max(int(s.y.max()) for s in splits.values())) + 1
    for part, split in splits.items():
        low, high = int(split.y.min()), int(split.y.max())
        if low < 0 or high >= classes:
            raise OlmpError(
                f"{part}: labels range over {low}..{high}; with {classes} classes they must "
                f"lie in 0..{classes - 1}"
            )
    return DatasetSplits(
        name=name, input_shape=shapes.pop(), num_classes=classes, split_seed=0, **splits
    )


def splits_from_loaders(
    train: Iterable[tuple[torch.Tensor, torch.Tensor]],
    tune: Iterable[tuple[torch.Tensor, torch.Tensor]],
    val: Iterable[tuple[torch.Tensor, torch.Tensor]],
    test: Iterable[tuple[torch.Tensor, torch.Tensor]],
    **kwargs: Any,
) -> DatasetSplits:
    """Like :func:`splits_from_tensors`, from iterables of ``(inputs, labels)`` batches
    (for example ``torch.utils.data.DataLoader`` objects) or of single samples (a
    ``Dataset``). The data is read once into memory, which suits the small datasets OLMP
    evaluates thousands of times."""

    def gather(
        part: str, loader: Iterable[tuple[torch.Tensor, torch.Tensor]]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        xs, ys = [], []
        for batch in loader:
            if not isinstance(batch, tuple | list) or len(batch) != 2:
                raise OlmpError(
                    f"{part}: each batch must be an (inputs, labels) pair, got a "
                    f"{type(batch).__name__}"
                )
            x, y = (torch.as_tensor(t) for t in batch)
            if y.ndim == 0:  # one sample, as a Dataset gives them
                x, y = x.unsqueeze(0), y.unsqueeze(0)
            xs.append(x)
            ys.append(y)
        if not xs:
            raise OlmpError(f"{part}: the loader gave no batches")
        shapes = sorted({tuple(x.shape[1:]) for x in xs})
        if len(shapes) > 1:  # torch.cat's own error names neither the split nor the shapes
            raise OlmpError(f"{part}: the batches' input shapes differ: {shapes}")
        return torch.cat(xs), torch.cat(ys)

    loaders = {"train": train, "tune": tune, "val": val, "test": test}
    gathered = [gather(part, loader) for part, loader in loaders.items()]
    return splits_from_tensors(*gathered, **kwargs)
