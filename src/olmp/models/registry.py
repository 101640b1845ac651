"""One registry for models, and loading a user's own model factory.

Every model is built by a factory ``factory(input_shape, num_classes) -> nn.Module``. A
model is named either by a registry key (``lenet-300-100``) or by a user factory written
``package.module:factory``; such a factory may take ``input_shape`` and ``num_classes``
(passed when its signature accepts them) or no arguments at all.

Building a ``package.module:factory`` imports that module and calls that callable: it runs
code. A name the user typed (``--model``, ``model=``) is theirs to run; a name read from a
file is data from whoever made the file, so it is resolved only against the registry unless
the user passes ``trust_model_code=True`` (``--trust-model-code``). Nothing is imported
before that check: a file whose metadata says ``os:abort`` is refused, not run.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from olmp.errors import OlmpError, check_count, unknown_choice
from olmp.models.conv_small import conv_small
from olmp.models.lenet import lenet_5, lenet_300_100
from olmp.models.mlp import mlp
from olmp.models.tuned import tuned_cnn

ModelFactory = Callable[..., nn.Module]


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: its factory and a one-line description."""

    name: str
    factory: ModelFactory
    description: str


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("lenet-300-100", lenet_300_100, "784-300-100-10 perceptron with ReLU"),
        ModelSpec("lenet-5", lenet_5, "Caffe LeNet-5: conv20-pool-conv50-pool-fc500-fc10"),
        ModelSpec("conv-small", conv_small, "AlexNet-style CNN: 3 conv blocks, 2 hidden fc"),
        ModelSpec("tuned-cnn", tuned_cnn, "CNN built from an architecture spec (olmp tune)"),
        ModelSpec("mlp", mlp, "fully connected ReLU network for tabular data, 100-100 hidden"),
    )
}


def register_model(name: str, factory: ModelFactory, description: str = "") -> None:
    """Add a model factory to the registry."""
    MODELS[name] = ModelSpec(name, factory, description)


def is_code_path(name: str) -> bool:
    """Whether ``name`` names code to import (``package.module:factory``), not a registry key."""
    return name not in MODELS and ":" in name


def check_recorded_model(name: object, source: str, trust_model_code: bool) -> str:
    """``name``, a model name read from the file ``source``, if it may be built: a registry
    key, or a ``package.module:factory`` path when ``trust_model_code``. Imports nothing."""
    if not isinstance(name, str) or not name:
        raise OlmpError(f"{source} records model {name!r}, which is not a model name")
    if is_code_path(name) and not trust_model_code:
        raise OlmpError(
            f"{source} records model {name!r}, which would import and run code named by the "
            "file; olmp builds models named in files only from its registry "
            f"({', '.join(sorted(MODELS))}). If you trust the file, name the model yourself "
            "(--model / model=) or pass --trust-model-code (trust_model_code=True)"
        )
    return name


def resolve_factory(name: str) -> ModelFactory:
    """The factory for a registry key or a ``package.module:factory`` path.

    ``name`` must come from the user: a ``package.module:factory`` is imported here. Check
    names read from files with :func:`check_recorded_model` first.
    """
    if name in MODELS:
        return MODELS[name].factory
    if ":" not in name:
        raise unknown_choice(
            "model", name, list(MODELS), "or give your own as package.module:factory"
        )
    module_name, _, attr = name.partition(":")
    if not (all(part.isidentifier() for part in module_name.split(".")) and attr.isidentifier()):
        raise OlmpError(  # ':x' or '.mod:x' would fail inside importlib with its own words
            f"model {name!r} is no registry name ({', '.join(MODELS)}) nor a "
            "package.module:factory of Python names"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        # The olmp command does not look in the current folder for modules, as python does.
        missing = isinstance(exc, ModuleNotFoundError) and exc.name == module_name.split(".")[0]
        hint = (
            "; it must be installed or on PYTHONPATH (PYTHONPATH=. for a file in this folder)"
            if missing
            else ""
        )
        raise OlmpError(
            f"cannot import module {module_name!r} for model {name!r}: {exc}{hint}"
        ) from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise OlmpError(f"model {name!r}: module {module_name!r} has no callable {attr!r}")
    return factory


def build_model(
    name: str,
    input_shape: tuple[int, ...],
    num_classes: int,
    options: Mapping[str, Any] | None = None,
) -> nn.Module:
    """Build model ``name`` for inputs of ``input_shape`` and ``num_classes`` outputs;
    ``options`` (JSON data, such as ``tuned-cnn``'s ``spec``) are passed to the factory as
    keyword arguments."""
    num_classes = check_count(num_classes, "num_classes")
    factory = resolve_factory(name)
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        params = {}
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kwargs = {
        key: value
        for key, value in (("input_shape", tuple(input_shape)), ("num_classes", num_classes))
        if takes_any or key in params
    }
    for key, value in dict(options or {}).items():
        if not (takes_any or key in params) or key in kwargs:
            raise OlmpError(f"model {name!r} takes no option {key!r}")
        kwargs[key] = value
    needed = [
        p.name
        for p in params.values()
        if p.default is inspect.Parameter.empty
        and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        and p.name not in kwargs
    ]
    if needed:
        raise OlmpError(
            f"model factory {name!r} needs {', '.join(needed)}, which olmp does not give (it "
            "gives input_shape, num_classes and recorded model_options): give defaults"
        )
    model = factory(**kwargs)
    if not isinstance(model, nn.Module):
        raise OlmpError(f"model factory {name!r} returned {type(model).__name__}, not nn.Module")
    return model


def check_finite_weights(model: nn.Module, model_name: str) -> None:
    """Raise unless every floating-point tensor of ``model`` is finite: training from NaN
    weights gives NaN losses and a constant network, which no score should call a result."""
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise OlmpError(f"model {model_name!r} holds NaN or infinite values in {name}")
