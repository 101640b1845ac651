"""Magnitude pruning on any ``nn.Module``: which layers, thresholds, masks, evaluation.

- :mod:`olmp.pruning.layers` — choose the prunable Linear / Conv layers;
- :mod:`olmp.pruning.thresholds` — turn a search vector into per-layer thresholds;
- :mod:`olmp.pruning.masks` — masks through ``torch.nn.utils.parametrize``, DNS splicing,
  size accounting;
- :mod:`olmp.pruning.evaluate` — accuracy of a whole population of pruned variants (one
  batched pass on a GPU).
"""

from olmp.pruning.evaluate import PopulationEvaluator
from olmp.pruning.layers import PrunableLayer, find_prunable_layers
from olmp.pruning.masks import (
    apply_masks,
    compression_ratios,
    count_kept,
    magnitude_masks,
    remove_masks,
    update_masks_with_hysteresis,
)
from olmp.pruning.thresholds import PARAMETRISATIONS, KeepRatio, MeanStd, make_parametrisation

__all__ = [
    "PARAMETRISATIONS",
    "KeepRatio",
    "MeanStd",
    "PopulationEvaluator",
    "PrunableLayer",
    "apply_masks",
    "compression_ratios",
    "count_kept",
    "find_prunable_layers",
    "magnitude_masks",
    "make_parametrisation",
    "remove_masks",
    "update_masks_with_hysteresis",
]
