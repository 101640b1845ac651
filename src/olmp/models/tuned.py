"""``tuned-cnn``: a convolutional network built from a JSON-serialisable architecture spec.

``olmp tune`` searches architectures; the network it finds is saved with its spec in the
checkpoint's metadata (``model_options``), so :func:`olmp.load_weights` rebuilds it from the
registry and data alone, without importing code named by a file.

A spec is::

    {"conv": [{"channels": 32, "kernel": 3, "stride": 1, "padding": 1, "pool": true}, ...],
     "fc": [128, ...], "dropout": 0.2, "activation": "relu"}

Each conv layer is ``Conv2d -> activation [-> MaxPool2d(2)]``; then the feature maps are
flattened, and each fully connected layer is ``Dropout -> Linear -> activation``; a last
``Dropout -> Linear`` gives the class scores. An architecture whose feature map shrinks
below 1x1 raises :class:`~olmp.errors.OlmpError` saying at which layer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from torch import nn

from olmp.errors import OlmpError, check_count, unknown_choice

#: Activation functions by name.
ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}
_CONV_KEYS = ("channels", "kernel", "stride", "padding", "pool")
#: The network built without a spec: ``olmp tune``'s start (two 3x3 conv blocks, fc 128).
DEFAULT_SPEC: dict[str, Any] = {
    "conv": [{"channels": 32, "kernel": 3, "stride": 1, "padding": 1, "pool": True}] * 2,
    "fc": [128],
    "dropout": 0.2,
    "activation": "relu",
}
_SPEC_KEYS = ("conv", "fc", "dropout", "activation")


def _whole(value: Any, what: str, low: int) -> int:
    return check_count(value, f"tuned-cnn spec: {what}", low)


def check_spec(spec: Any) -> dict[str, Any]:
    """``spec`` checked and normalised (see the module docstring); OlmpError naming the bad
    entry otherwise."""
    if not isinstance(spec, Mapping):
        raise OlmpError(
            "model tuned-cnn needs an architecture spec (recorded by olmp tune as the "
            f"checkpoint's model_options), got {spec!r}"
        )
    unknown = sorted(set(spec) - set(_SPEC_KEYS))
    if unknown:
        raise unknown_choice("tuned-cnn spec key", unknown[0], list(_SPEC_KEYS))
    convs = []
    for i, layer in enumerate(spec.get("conv", [])):
        if not isinstance(layer, Mapping) or set(layer) != set(_CONV_KEYS):
            raise OlmpError(
                f"tuned-cnn spec: conv layer {i + 1} needs exactly {', '.join(_CONV_KEYS)}; "
                f"got {layer!r}"
            )
        convs.append(
            {
                "channels": _whole(layer["channels"], f"conv{i + 1} channels", 1),
                "kernel": _whole(layer["kernel"], f"conv{i + 1} kernel", 1),
                "stride": _whole(layer["stride"], f"conv{i + 1} stride", 1),
                "padding": _whole(layer["padding"], f"conv{i + 1} padding", 0),
                "pool": bool(layer["pool"]),
            }
        )
    fcs = [_whole(size, f"fc{i + 1} size", 1) for i, size in enumerate(spec.get("fc", []))]
    dropout = spec.get("dropout", 0.0)
    if isinstance(dropout, bool) or not isinstance(dropout, int | float) or not 0 <= dropout < 1:
        raise OlmpError(f"tuned-cnn spec: dropout must be in [0, 1), got {dropout!r}")
    activation = spec.get("activation", "relu")
    if activation not in ACTIVATIONS:
        raise unknown_choice("activation", str(activation), list(ACTIVATIONS))
    return {"conv": convs, "fc": fcs, "dropout": float(dropout), "activation": activation}


def feature_shapes(spec: Mapping[str, Any], input_shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """The (channels, height, width) after each conv layer; OlmpError when the inputs are
    not images or a feature map shrinks below 1x1 (naming the layer and the sizes)."""
    spec = check_spec(spec)
    if not spec["conv"]:
        return []
    if len(input_shape) != 3:
        raise OlmpError(
            f"conv layers need image inputs (channels, height, width); this dataset's inputs "
            f"have shape {tuple(input_shape)}"
        )
    channels, height, width = input_shape
    shapes = []
    for i, layer in enumerate(spec["conv"], start=1):
        k, s, p = layer["kernel"], layer["stride"], layer["padding"]
        new_h = (height + 2 * p - k) // s + 1
        new_w = (width + 2 * p - k) // s + 1
        if new_h < 1 or new_w < 1:
            raise OlmpError(
                f"cannot build this network: conv{i} (kernel {k}, stride {s}, padding {p}) "
                f"on a {height}x{width} feature map gives {new_h}x{new_w}, below 1x1"
            )
        height, width, channels = new_h, new_w, layer["channels"]
        if layer["pool"]:
            if height < 2 or width < 2:
                raise OlmpError(
                    f"cannot build this network: 2x2 pooling after conv{i} on a "
                    f"{height}x{width} feature map gives {height // 2}x{width // 2}, below 1x1"
                )
            height, width = height // 2, width // 2
        shapes.append((channels, height, width))
    return shapes


def tuned_cnn(
    input_shape: tuple[int, ...] = (1, 28, 28),
    num_classes: int = 10,
    spec: Mapping[str, Any] | None = None,
) -> nn.Module:
    """The network ``spec`` describes (see the module docstring; :data:`DEFAULT_SPEC`
    when ``None``)."""
    spec = check_spec(DEFAULT_SPEC if spec is None else spec)
    shapes = feature_shapes(spec, input_shape)
    activation = ACTIVATIONS[spec["activation"]]
    layers: list[nn.Module] = []
    channels = input_shape[0] if shapes else 0
    for layer, _shape in zip(spec["conv"], shapes, strict=True):
        layers += [
            nn.Conv2d(
                channels, layer["channels"], layer["kernel"], layer["stride"], layer["padding"]
            ),
            activation(),
        ]
        if layer["pool"]:
            layers.append(nn.MaxPool2d(2))
        channels = layer["channels"]
    layers.append(nn.Flatten())
    features = math.prod(shapes[-1]) if shapes else math.prod(input_shape)
    for size in spec["fc"]:
        if spec["dropout"] > 0:
            layers.append(nn.Dropout(spec["dropout"]))
        layers += [nn.Linear(features, size), activation()]
        features = size
    if spec["dropout"] > 0:
        layers.append(nn.Dropout(spec["dropout"]))
    layers.append(nn.Linear(features, num_classes))
    return nn.Sequential(*layers)
