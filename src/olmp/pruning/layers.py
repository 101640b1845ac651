"""Which layers of an ``nn.Module`` are pruned, and how big they are.

A :class:`PrunableLayer` is a Linear or Conv module whose ``weight`` (and optionally
``bias``) gets a magnitude mask. Layers are chosen by type and by name pattern
(``fnmatch`` style, matched against the module's qualified name), with excludes.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass

from torch import nn

from olmp.errors import OlmpError, warn_user

PRUNABLE_TYPES: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


@dataclass(frozen=True)
class PrunableLayer:
    """One prunable module: its qualified name and the module itself."""

    name: str
    module: nn.Module

    @property
    def weight_name(self) -> str:
        """Qualified name of the weight in the model's ``state_dict``."""
        return f"{self.name}.weight"

    @property
    def bias_name(self) -> str | None:
        """Qualified name of the bias, or ``None`` for a layer without one."""
        return f"{self.name}.bias" if getattr(self.module, "bias", None) is not None else None

    @property
    def n_weights(self) -> int:
        """Number of entries of the weight tensor."""
        return self.module.weight.numel()

    @property
    def n_biases(self) -> int:
        """Number of entries of the bias tensor (0 without bias)."""
        bias = getattr(self.module, "bias", None)
        return 0 if bias is None else bias.numel()


def find_prunable_layers(
    model: nn.Module,
    include: Sequence[str] = ("*",),
    exclude: Sequence[str] = (),
    types: tuple[type[nn.Module], ...] = PRUNABLE_TYPES,
) -> list[PrunableLayer]:
    """The layers of ``model`` of one of ``types`` whose name matches a pattern of
    ``include`` and none of ``exclude``, in module order.

    Raises :class:`OlmpError` when no layer qualifies.

    Example:
        >>> from olmp.models import build_model
        >>> [l.name for l in find_prunable_layers(build_model("lenet-300-100", (1, 28, 28), 10))]
        ['1', '3', '5']
    """
    layers = [
        PrunableLayer(name, module)
        for name, module in model.named_modules()
        if isinstance(module, types)
        and any(fnmatch.fnmatchcase(name, p) for p in include)
        and not any(fnmatch.fnmatchcase(name, p) for p in exclude)
    ]
    kinds = ", ".join(t.__name__ for t in types)
    # The names there are to choose from, when a pattern chose none of them.
    names = [name for name, module in model.named_modules() if isinstance(module, types)]
    listed = f"; its layers are named {', '.join(names)}" if names else ""
    unmatched = [
        pattern
        for pattern in (*include, *exclude)
        if not any(fnmatch.fnmatchcase(name, pattern) for name in names)
    ]
    if layers and unmatched:  # a typo, most likely: the run would silently ignore it
        warn_user(
            f"layer pattern {', '.join(map(repr, unmatched))} matches no {kinds} layer of "
            f"model {type(model).__name__}{listed}"
        )
    if not layers:
        raise OlmpError(
            f"model {type(model).__name__} has no prunable layers ({kinds}) matching "
            f"include={list(include)} exclude={list(exclude)}{listed}"
        )
    return layers
