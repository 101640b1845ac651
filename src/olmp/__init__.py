"""olmp: optimization-based layer-wise magnitude-based pruning of PyTorch networks.

The public API; every ``olmp`` CLI command is a thin layer over one of these.
"""

__version__ = "0.1.0"

from olmp.data import DATASETS, load_dataset
from olmp.errors import OlmpError
from olmp.models import MODELS, build_model
from olmp.reference import evaluate_weights, load_weights, train_reference
from olmp.training import TrainConfig, accuracy, default_recipe, train

__all__ = [
    "DATASETS",
    "MODELS",
    "OlmpError",
    "TrainConfig",
    "__version__",
    "accuracy",
    "build_model",
    "default_recipe",
    "evaluate_weights",
    "load_dataset",
    "load_weights",
    "train",
    "train_reference",
]
