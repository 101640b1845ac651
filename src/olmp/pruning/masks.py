"""Magnitude masks applied through a module's own parameters.

Masks are boolean tensors keyed by ``state_dict`` name (``"1.weight"``, ``"1.bias"``).
While a model is being adjusted they live in a ``torch.nn.utils.parametrize``
parametrisation, so ``module.weight`` *is* ``W ⊙ M`` and the dense ``W`` stays in
``module.parametrizations.weight.original``. Two flavours:

- straight-through (Dynamic Network Surgery): the forward pass uses ``W ⊙ M`` but the
  gradient reaches every entry of ``W``, so a pruned weight can grow back and be spliced in
  again by :func:`update_masks_with_hysteresis`;
- plain: the gradient of a pruned entry is zero (fine-tuning with frozen masks).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize

from olmp.pruning.layers import PrunableLayer

Masks = dict[str, torch.Tensor]


class MaskParametrisation(nn.Module):
    """``w -> w * mask``, optionally with a straight-through gradient."""

    def __init__(self, mask: torch.Tensor, straight_through: bool) -> None:
        super().__init__()
        self.register_buffer("mask", mask.to(torch.bool))
        self.straight_through = straight_through

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        masked = w * self.mask
        if self.straight_through:
            # Value of w * mask, gradient of w: d(masked)/dw is the identity.
            return w + (masked - w).detach()
        return masked


def _tensors(layer: PrunableLayer) -> Iterator[tuple[str, str]]:
    """(attribute, state_dict name) of the layer's weight and bias."""
    yield "weight", layer.weight_name
    if layer.bias_name is not None:
        yield "bias", layer.bias_name


def magnitude_masks(
    layers: list[PrunableLayer], thresholds: torch.Tensor, prune_biases: bool = False
) -> Masks:
    """Masks keeping ``|w| >= t_l`` in each layer (and its bias when ``prune_biases``)."""
    masks: Masks = {}
    for layer, t in zip(layers, thresholds.tolist(), strict=True):
        for attr, name in _tensors(layer):
            if attr == "bias" and not prune_biases:
                continue
            masks[name] = dense_tensor(layer, attr).detach().abs() >= t
    return masks


def dense_tensor(layer: PrunableLayer, attr: str) -> torch.Tensor:
    """The dense (unmasked) weight or bias of ``layer``, whether masked or not."""
    module = layer.module
    if parametrize.is_parametrized(module, attr):
        return module.parametrizations[attr].original
    return getattr(module, attr)


def applied_mask(layer: PrunableLayer, attr: str) -> torch.Tensor:
    """The mask applied to ``layer``'s ``attr`` (``"weight"`` or ``"bias"``), itself, not a
    copy: changing it in place changes what the layer computes."""
    return layer.module.parametrizations[attr][0].mask


def apply_masks(layers: list[PrunableLayer], masks: Masks, straight_through: bool) -> None:
    """Make each masked tensor of ``layers`` read as ``W ⊙ M`` (see the module docstring)."""
    for layer in layers:
        for attr, name in _tensors(layer):
            if name in masks:
                mask = masks[name].to(dense_tensor(layer, attr).device)
                parametrize.register_parametrization(
                    layer.module, attr, MaskParametrisation(mask, straight_through)
                )


def current_masks(layers: list[PrunableLayer]) -> Masks:
    """The masks currently applied to ``layers`` (copies)."""
    masks: Masks = {}
    for layer in layers:
        for attr, name in _tensors(layer):
            if parametrize.is_parametrized(layer.module, attr):
                masks[name] = applied_mask(layer, attr).clone()
    return masks


def remove_masks(layers: list[PrunableLayer], bake: bool) -> None:
    """Remove the parametrisations; ``bake`` leaves ``W ⊙ M`` as the parameter, otherwise
    the dense ``W`` comes back."""
    for layer in layers:
        for attr, _ in _tensors(layer):
            if parametrize.is_parametrized(layer.module, attr):
                parametrize.remove_parametrizations(layer.module, attr, leave_parametrized=bake)


@torch.no_grad()
def update_masks_with_hysteresis(
    layers: list[PrunableLayer], thresholds: torch.Tensor, low: float = 0.9, high: float = 1.1
) -> None:
    """DNS splicing: prune a kept weight when ``|w| <= low * t``, restore a pruned one when
    ``|w| > high * t``; weights in between keep their state. Updates masks in place."""
    for layer, t in zip(layers, thresholds.tolist(), strict=True):
        for attr, _ in _tensors(layer):
            if not parametrize.is_parametrized(layer.module, attr):
                continue
            mask = applied_mask(layer, attr)
            magnitude = dense_tensor(layer, attr).abs()
            mask &= magnitude > low * t
            mask |= magnitude > high * t


MASK_PREFIX = "mask/"


def with_masks(state_dict: dict[str, torch.Tensor], masks: Masks) -> dict[str, torch.Tensor]:
    """One tensor dict holding ``state_dict`` and the masks (keys ``mask/<parameter>``),
    as pruned checkpoints store them."""
    return dict(state_dict) | {f"{MASK_PREFIX}{k}": v for k, v in masks.items()}


def split_masks(tensors: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], Masks]:
    """The inverse of :func:`with_masks`: ``(the other tensors, masks)``."""
    masks = {k[len(MASK_PREFIX) :]: v for k, v in tensors.items() if k.startswith(MASK_PREFIX)}
    others = {k: v for k, v in tensors.items() if not k.startswith(MASK_PREFIX)}
    return others, masks


def layer_counts(layers: list[PrunableLayer], masks: Masks) -> list[dict[str, Any]]:
    """Per layer: name, type, weight shape, and total and kept weights and biases (an
    unmasked tensor is kept entirely)."""

    def kept(name: str | None, total: int) -> int:
        mask = masks.get(name) if name is not None else None
        return total if mask is None else int(mask.sum())

    return [
        {
            "name": layer.name,
            "type": type(layer.module).__name__,
            "shape": list(layer.module.weight.shape),
            "total_weights": layer.n_weights,
            "kept_weights": kept(layer.weight_name, layer.n_weights),
            "total_biases": layer.n_biases,
            "kept_biases": kept(layer.bias_name, layer.n_biases),
        }
        for layer in layers
    ]


def count_kept(layers: list[PrunableLayer], masks: Masks) -> dict[str, int]:
    """Totals of the layers' weights and biases and how many of each the masks keep."""
    rows = layer_counts(layers, masks)
    return {
        "weights": sum(r["total_weights"] for r in rows),
        "kept_weights": sum(r["kept_weights"] for r in rows),
        "biases": sum(r["total_biases"] for r in rows),
        "kept_biases": sum(r["kept_biases"] for r in rows),
    }


def compression_ratios(layers: list[PrunableLayer], masks: Masks) -> tuple[float, float]:
    """(weights only, weights + biases) compression ratios = total / kept."""
    c = count_kept(layers, masks)
    return (
        c["weights"] / max(c["kept_weights"], 1),
        (c["weights"] + c["biases"]) / max(c["kept_weights"] + c["kept_biases"], 1),
    )
