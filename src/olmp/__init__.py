"""olmp: optimization-based layer-wise magnitude-based pruning of PyTorch networks.

The public API; every ``olmp`` CLI command is a thin layer over one of these. Each name is
imported from its module on first use (so are the subpackages, ``olmp.data`` and the
others): torch takes about two seconds to load, which ``olmp --help`` need not wait for.
"""

import importlib as _importlib
import pkgutil as _pkgutil
from typing import TYPE_CHECKING

from olmp.version import __version__ as __version__

#: Each module's public names. The imports under TYPE_CHECKING below say the same for type
#: checkers and editors (``tests/test_cli.py`` checks that they agree).
_EXPORTS = {
    "olmp.compression": ("CompressConfig", "compress", "load_for_compression"),
    "olmp.data": ("DATASETS", "load_dataset", "splits_from_loaders", "splits_from_tensors"),
    "olmp.errors": ("OlmpError",),
    "olmp.export": ("export_run", "inspect_export", "load_compressed"),
    "olmp.models": ("MODELS", "build_model"),
    "olmp.reference": ("evaluate_weights", "load_weights", "train_reference"),
    "olmp.report": ("compare_runs", "report_run"),
    "olmp.task": ("CallableTask", "SplitsTask", "Task"),
    "olmp.training": ("TrainConfig", "accuracy", "default_recipe", "train"),
}
_HOMES = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted([*_HOMES, "__version__"])


#: The subpackages and modules, by name (``olmp.data``): loaded on first use too.
_SUBMODULES = {m.name for m in _pkgutil.iter_modules(__path__) if not m.name.startswith("_")}


def __getattr__(name: str) -> object:
    """A public name, or a submodule, imported on first use."""
    if name in _HOMES:
        value = getattr(_importlib.import_module(_HOMES[name]), name)
    elif name in _SUBMODULES:
        value = _importlib.import_module(f"olmp.{name}")
    else:
        raise AttributeError(f"module 'olmp' has no attribute {name!r}")
    globals()[name] = value  # found here from now on, without this call
    return value


def __dir__() -> list[str]:  # the module's own dunders too, not its helpers
    return sorted({*__all__, *_SUBMODULES, *(k for k in globals() if k.startswith("__"))})


if TYPE_CHECKING:  # what type checkers and editors read
    from olmp.compression import CompressConfig as CompressConfig
    from olmp.compression import compress as compress
    from olmp.compression import load_for_compression as load_for_compression
    from olmp.data import DATASETS as DATASETS
    from olmp.data import load_dataset as load_dataset
    from olmp.data import splits_from_loaders as splits_from_loaders
    from olmp.data import splits_from_tensors as splits_from_tensors
    from olmp.errors import OlmpError as OlmpError
    from olmp.export import export_run as export_run
    from olmp.export import inspect_export as inspect_export
    from olmp.export import load_compressed as load_compressed
    from olmp.models import MODELS as MODELS
    from olmp.models import build_model as build_model
    from olmp.reference import evaluate_weights as evaluate_weights
    from olmp.reference import load_weights as load_weights
    from olmp.reference import train_reference as train_reference
    from olmp.report import compare_runs as compare_runs
    from olmp.report import report_run as report_run
    from olmp.task import CallableTask as CallableTask
    from olmp.task import SplitsTask as SplitsTask
    from olmp.task import Task as Task
    from olmp.training import TrainConfig as TrainConfig
    from olmp.training import accuracy as accuracy
    from olmp.training import default_recipe as default_recipe
    from olmp.training import train as train
