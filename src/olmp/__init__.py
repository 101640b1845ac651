"""olmp: optimization-based layer-wise magnitude-based pruning of PyTorch networks.

The public API; every ``olmp`` CLI command is a thin layer over one of these.
"""

from olmp.compression import CompressConfig, compress, load_for_compression
from olmp.data import DATASETS, load_dataset, splits_from_loaders, splits_from_tensors
from olmp.errors import OlmpError
from olmp.export import export_run, inspect_export, load_compressed
from olmp.models import MODELS, build_model
from olmp.reference import evaluate_weights, load_weights, train_reference
from olmp.report import compare_runs, report_run
from olmp.task import CallableTask, SplitsTask, Task
from olmp.training import TrainConfig, accuracy, default_recipe, train
from olmp.version import __version__

__all__ = [
    "DATASETS",
    "MODELS",
    "CallableTask",
    "CompressConfig",
    "OlmpError",
    "SplitsTask",
    "Task",
    "TrainConfig",
    "__version__",
    "accuracy",
    "build_model",
    "compare_runs",
    "compress",
    "default_recipe",
    "evaluate_weights",
    "export_run",
    "inspect_export",
    "load_compressed",
    "load_dataset",
    "load_for_compression",
    "load_weights",
    "report_run",
    "splits_from_loaders",
    "splits_from_tensors",
    "train",
    "train_reference",
]
