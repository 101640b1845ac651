"""MNIST and Fashion-MNIST from their standard IDX files.

The four files (raw or ``.gz``) are looked for in the folders of
:func:`olmp.data.fetch.search_roots` (for Fashion-MNIST also ``/usr/share/datasets``,
Debian's ``dataset-fashion-mnist``), in each first under ``<folder>/<dataset name>/`` and
then in ``<folder>/`` itself. When they are missing and ``download`` is allowed, they are
fetched from the canonical mirrors into the first folder, verified against the published
MD5 checksums, and only then moved into place.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

import olmp.data.fetch as fetch
from olmp.data.idx import read_idx
from olmp.data.registry import DatasetSpec, RawArrays, register_dataset
from olmp.errors import OlmpError, warn_user

FILE_KEYS = ("train-images", "train-labels", "test-images", "test-labels")
FILE_NAMES = {
    "train-images": "train-images-idx3-ubyte",
    "train-labels": "train-labels-idx1-ubyte",
    "test-images": "t10k-images-idx3-ubyte",
    "test-labels": "t10k-labels-idx1-ubyte",
}


@dataclass(frozen=True)
class IdxSource:
    """Where a dataset's gzipped IDX files can be downloaded, with their published MD5s."""

    mirrors: tuple[str, ...]
    md5: dict[str, str]  # file key -> md5 of the .gz file
    system_roots: tuple[Path, ...] = ()


SOURCES: dict[str, IdxSource] = {
    "mnist": IdxSource(
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
        md5={
            "train-images": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels": "d53e105ee54ea40749a09fcbcd1e9432",
            "test-images": "9fb629c4189551a2d022fa330f9573f3",
            "test-labels": "ec29112dd5afa0611ce80d1b7f02629c",
        },
    ),
    "fashion-mnist": IdxSource(
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        md5={
            "train-images": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels": "25c81989df183df01b3e8a0aad5dffbe",
            "test-images": "bef4ecab320f06d8554ea6380940ec79",
            "test-labels": "bb300cfdad3c16e7a12a480ee83cd310",
        },
        system_roots=(Path("/usr/share/datasets"),),
    ),
}


def search_roots(name: str, data_dir: Path | None) -> list[Path]:
    """Folders searched for dataset ``name``, in order (see the module docstring)."""
    return fetch.search_roots(data_dir, SOURCES[name].system_roots)


def _find_file(folder: Path, key: str) -> Path | None:
    for candidate in (FILE_NAMES[key], FILE_NAMES[key] + ".gz"):
        if (folder / candidate).is_file():
            return folder / candidate
    return None


def find_files(name: str, data_dir: Path | None) -> dict[str, Path] | None:
    """The four IDX files of ``name`` from the first folder that holds all of them."""
    for root in search_roots(name, data_dir):
        for folder in (root / name, root):
            found = {key: _find_file(folder, key) for key in FILE_KEYS}
            if all(found.values()):
                if data_dir is not None and root != Path(data_dir):  # a typo, or a file short
                    warn_user(
                        f"{name}: not all four files in --data-dir {data_dir}; using {folder}"
                    )
                return found  # type: ignore[return-value]
    return None


def download(name: str, folder: Path, timeout: float = 30.0) -> dict[str, Path]:
    """Download the four gzipped files of ``name`` into ``folder``, verifying checksums."""
    source = SOURCES[name]
    paths: dict[str, Path] = {}
    for key in FILE_KEYS:
        target = folder / (FILE_NAMES[key] + ".gz")
        urls = [mirror + target.name for mirror in source.mirrors]
        try:
            paths[key] = fetch.download_file(urls, target, source.md5[key], timeout)
        except OlmpError as exc:
            raise OlmpError(f"could not download {name}: {exc}") from None
    return paths


def load_idx_dataset(name: str, data_dir: Path | None, allow_download: bool) -> RawArrays:
    """Raw arrays of ``name`` from local IDX files, downloading them if allowed."""
    files = find_files(name, data_dir)
    if files is None:
        roots = search_roots(name, data_dir)
        where = ", ".join(str(root / name) for root in roots)
        needed = ", ".join(FILE_NAMES[key] + "[.gz]" for key in FILE_KEYS)
        hint = (
            f"{name} files not found. Put {needed} in one of: {where}, or "
            f"{fetch.data_dir_hint('them', data_dir)}"
        )
        if not allow_download:
            raise OlmpError(hint)
        try:
            files = download(name, roots[0] / name)
        except OlmpError as exc:
            raise OlmpError(f"{hint}; downloading them failed (no network?): {exc}") from None
    arrays = {key: read_idx(path) for key, path in files.items()}
    for key, array in arrays.items():  # pixels 0-255 and class numbers, as published
        if array.dtype != np.uint8:
            raise OlmpError(
                f"{files[key]} holds {array.dtype} values; {name}'s IDX files hold unsigned "
                "bytes (pixels 0-255, class numbers)"
            )
    for part in ("train", "test"):
        images, labels = arrays[f"{part}-images"], arrays[f"{part}-labels"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise OlmpError(
                f"{files[f'{part}-images']} and {files[f'{part}-labels']} do not match: "
                f"images {images.shape}, labels {labels.shape} (expected N x H x W and N)"
            )
    train_side, test_side = arrays["train-images"].shape[1:], arrays["test-images"].shape[1:]
    if train_side != test_side:
        raise OlmpError(
            f"{files['train-images']} holds {'x'.join(map(str, train_side))} images and "
            f"{files['test-images']} {'x'.join(map(str, test_side))}: one size for both"
        )
    return (
        arrays["train-images"],
        arrays["train-labels"].astype(np.int64),
        arrays["test-images"],
        arrays["test-labels"].astype(np.int64),
    )


MNIST = DatasetSpec(
    name="mnist",
    description="MNIST handwritten digits, 28x28, 60,000 train / 10,000 test (IDX files)",
    load=lambda data_dir, dl: load_idx_dataset("mnist", data_dir, dl),
    scale=255.0,
    mean=0.1307,
    std=0.3081,
    num_classes=10,
    tune_size=5000,
    val_size=5000,
)
register_dataset(MNIST)
register_dataset(
    replace(
        MNIST,
        name="mnist-paper",
        description="MNIST with the OLMP paper's split: 6,000 of the 60,000 training images "
        "held out (3,000 tune + 3,000 val), official test",
        tune_size=3000,
        val_size=3000,
    )
)
register_dataset(
    DatasetSpec(
        name="fashion-mnist",
        description="Fashion-MNIST clothing images, 28x28, 60,000 train / 10,000 test (IDX)",
        load=lambda data_dir, dl: load_idx_dataset("fashion-mnist", data_dir, dl),
        scale=255.0,
        mean=0.2860,
        std=0.3530,
        num_classes=10,
        tune_size=5000,
        val_size=5000,
    )
)
