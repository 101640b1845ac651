"""Threshold parametrisations: how a search vector becomes one threshold per layer.

The solver sees a vector ``z`` of one number per layer inside box bounds; a
parametrisation turns a population of such vectors into per-layer magnitude thresholds
for the current weights. Both keep every layer's largest-magnitude weight, so no layer is
ever cut off entirely, and neither keeps a weight that is exactly zero.

- :class:`KeepRatio`: ``z_l = log10(keep fraction of layer l)``, bounded below by
  ``log10(min_keep)``. A log scale gives the search equal resolution at 50 % and 0.5 %.
- :class:`MeanStd`: the original OLMP release's ``t_l = max(mu_l + c_l * sigma_l, 0)``
  with ``mu_l``, ``sigma_l`` the mean and standard deviation of ``|W_l|``; ``z_l = c_l``.
"""

from __future__ import annotations

import abc
import math
from typing import ClassVar

import numpy as np
import torch

from olmp.errors import OlmpError, unknown_choice

#: The smallest threshold any search gives: a weight that is exactly zero (pruned before:
#: an exported or pruned network compressed again) is never kept, so it counts as pruned
#: and retraining through ``W ⊙ M`` cannot regrow it. No trained weight is that small.
SMALLEST_THRESHOLD = torch.finfo(torch.float32).tiny


def recorded_thresholds(thresholds: torch.Tensor) -> list[float]:
    """``thresholds`` as records show them: the floor as 0, the threshold it stands in for
    (both keep every weight that is not exactly zero)."""
    return [0.0 if t <= SMALLEST_THRESHOLD else t for t in thresholds.tolist()]


class Parametrisation(abc.ABC):
    """Maps search vectors to thresholds; built for the layers' current |weights|."""

    name: ClassVar[str]

    def __init__(self, abs_weights: list[torch.Tensor]) -> None:
        self.abs_weights = [a.detach().flatten() for a in abs_weights]
        # Sorted once per search round; every threshold lookup is then an index.
        self.sorted_desc = [torch.sort(a, descending=True).values for a in self.abs_weights]

    @property
    def dim(self) -> int:
        """Number of search variables (one per layer)."""
        return len(self.abs_weights)

    @abc.abstractmethod
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds of ``z``."""

    @abc.abstractmethod
    def thresholds(self, z: np.ndarray) -> torch.Tensor:
        """Per-layer thresholds, shape (P, L), for a population ``z`` of shape (P, L)."""

    @abc.abstractmethod
    def encode(self, keep_fractions: np.ndarray) -> np.ndarray:
        """A ``z`` that keeps (about) ``keep_fractions`` of each layer — the start point."""

    def kept_counts(self, thresholds: torch.Tensor) -> torch.Tensor:
        """Weights kept (``|w| >= t``) per candidate and layer, shape (P, L), counted from
        the sorted magnitudes rather than by comparing every weight again."""
        columns = []
        for layer, values in enumerate(self.sorted_desc):
            ascending = values.flip(0)
            below = torch.searchsorted(ascending, thresholds[:, layer].contiguous(), right=False)
            columns.append(len(values) - below)
        return torch.stack(columns, dim=1)

    def _cap(self, thresholds: torch.Tensor) -> torch.Tensor:
        # Never prune a layer's largest weight: a dead layer breaks the network for good.
        largest = torch.stack([s[0] for s in self.sorted_desc])
        return torch.minimum(thresholds, largest).clamp_min(SMALLEST_THRESHOLD)


class KeepRatio(Parametrisation):
    """``z_l = log10(keep fraction)``; a weight is kept when ``|w| >= t_l``."""

    name = "keep-ratio"

    def __init__(self, abs_weights: list[torch.Tensor], min_keep: float = 1e-4) -> None:
        super().__init__(abs_weights)
        if not 0 < min_keep < 1:
            raise OlmpError(f"min_keep must be in (0, 1), got {min_keep}")
        self.min_keep = min_keep

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return np.full(self.dim, math.log10(self.min_keep)), np.zeros(self.dim)

    def thresholds(self, z: np.ndarray) -> torch.Tensor:
        keep = np.power(10.0, np.clip(np.atleast_2d(z), math.log10(self.min_keep), 0.0))
        columns = []
        for layer, values in enumerate(self.sorted_desc):
            counts = np.clip(np.ceil(keep[:, layer] * len(values)), 1, len(values)).astype(int)
            columns.append(values[torch.as_tensor(counts - 1)])
        return self._cap(torch.stack(columns, dim=1))

    def encode(self, keep_fractions: np.ndarray) -> np.ndarray:
        return np.log10(np.clip(keep_fractions, self.min_keep, 1.0))


class MeanStd(Parametrisation):
    """``t_l = max(mu_l + c_l * sigma_l, 0)`` over ``|W_l|``; ``z_l = c_l`` in
    ``[-mu_l / sigma_l, c_max]``. The lower end is the threshold 0, which keeps the whole
    layer; with ``c_l >= 0`` alone a layer could keep only the weights above its mean
    magnitude (about 40 % for Gaussian weights), so every layer would be pruned."""

    name = "mean-std"

    def __init__(self, abs_weights: list[torch.Tensor], c_max: float = 10.0) -> None:
        super().__init__(abs_weights)
        self.c_max = c_max
        self.mean = torch.stack([a.mean() for a in self.abs_weights])
        self.std = torch.stack([a.std() for a in self.abs_weights])

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        # A hair below -mu/sigma, so that float32 rounding cannot leave the threshold just
        # above 0 and drop a weight of magnitude ~0 from a layer meant to stay whole.
        keep_all = -(self.mean / self.std.clamp_min(1e-12)).double().numpy() * (1 + 1e-6) - 1e-6
        return keep_all, np.full(self.dim, self.c_max)

    def thresholds(self, z: np.ndarray) -> torch.Tensor:
        c = torch.as_tensor(np.atleast_2d(z), dtype=self.mean.dtype)
        return self._cap(torch.clamp(self.mean + c * self.std, min=0.0))

    def encode(self, keep_fractions: np.ndarray) -> np.ndarray:
        lower, upper = self.bounds()
        z = []
        for layer, values in enumerate(self.sorted_desc):
            count = int(np.clip(np.ceil(keep_fractions[layer] * len(values)), 1, len(values)))
            if count == len(values):
                z.append(lower[layer])
                continue
            # Midway between the last magnitude kept and the first dropped, so that rounding
            # in thresholds() flips neither.
            threshold = 0.5 * (values[count - 1] + values[count])
            z.append(float((threshold - self.mean[layer]) / self.std[layer].clamp_min(1e-12)))
        return np.clip(np.array(z), lower, upper)


PARAMETRISATIONS: dict[str, type[Parametrisation]] = {
    KeepRatio.name: KeepRatio,
    MeanStd.name: MeanStd,
}


def make_parametrisation(
    name: str, abs_weights: list[torch.Tensor], **options: float
) -> Parametrisation:
    """The parametrisation called ``name`` for layers with ``abs_weights``."""
    if name not in PARAMETRISATIONS:
        raise unknown_choice("threshold parametrisation", name, list(PARAMETRISATIONS))
    return PARAMETRISATIONS[name](abs_weights, **options)
