"""A fully connected network for tabular data (FNNC's kind of classifier)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import nn

from olmp.errors import OlmpError

#: Hidden layer widths of :func:`mlp` unless told otherwise.
DEFAULT_HIDDEN = (100, 100)


def mlp(
    input_shape: tuple[int, ...] = (100,),
    num_classes: int = 2,
    hidden: Sequence[int] = DEFAULT_HIDDEN,
) -> nn.Module:
    """Flatten, then ``Linear + ReLU`` per width in ``hidden``, then a linear output layer."""
    widths = list(hidden)
    if not widths or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in widths):
        raise OlmpError(
            f"mlp hidden widths must be a non-empty list of integers >= 1, got {hidden!r}"
        )
    layers: list[nn.Module] = [nn.Flatten()]
    width = math.prod(input_shape)
    for out in widths:
        layers += [nn.Linear(width, out), nn.ReLU()]
        width = out
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)
