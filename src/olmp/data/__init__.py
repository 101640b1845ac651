"""Datasets: one registry, deterministic train / tune / val / test splits.

>>> from olmp.data import load_dataset, DATASETS
>>> sorted(DATASETS)
['digits', 'fashion-mnist', 'mnist', 'mnist-5k', 'mnist-paper']
>>> from olmp.data import TABULAR_DATASETS
>>> sorted(TABULAR_DATASETS)
['adult', 'compas', 'credit-default', 'german']
"""

from olmp.data import idx_sets, small_sets  # noqa: F401  (register the built-in datasets)
from olmp.data.idx import read_idx, write_idx
from olmp.data.registry import (
    DATASETS,
    DatasetSpec,
    DatasetSplits,
    Split,
    load_dataset,
    register_dataset,
    splits_from_loaders,
    splits_from_tensors,
)
from olmp.data.tabular import TABULAR_DATASETS, GroupedSplit, TabularSplits, load_tabular

__all__ = [
    "DATASETS",
    "TABULAR_DATASETS",
    "DatasetSpec",
    "DatasetSplits",
    "GroupedSplit",
    "Split",
    "TabularSplits",
    "load_dataset",
    "load_tabular",
    "read_idx",
    "register_dataset",
    "splits_from_loaders",
    "splits_from_tensors",
    "write_idx",
]
