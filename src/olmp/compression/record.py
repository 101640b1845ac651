"""The result record of a compression (``result.json``), read off a finished
:class:`~olmp.compression.compressor.Compressor`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch import nn

from olmp.environment import describe_environment
from olmp.pruning.layers import find_prunable_layers
from olmp.pruning.masks import compression_ratios, layer_counts
from olmp.task import REPORTED_SPLITS, paired_changes, reported_outcomes

if TYPE_CHECKING:
    from olmp.compression.compressor import Compressor


def result_record(c: Compressor) -> dict[str, Any]:
    """The record of ``c``'s result: settings, reference and result scores, the paired
    change, per-layer counts, the history and, for a task with constraints, what they
    measure. Reads the test split, to report only; leaves ``c.model`` the pruned network."""
    reference_outcomes = c.reference_outcomes()
    model = c.pruned_model()
    ratio, ratio_b = compression_ratios(c.layers, c.masks)
    return {
        **c.metadata,
        **describe_environment(),
        "seed": c.config.seed,
        "solver": c.config.solver,
        "config": c.config.to_dict(),
        **c.task.describe(),
        "metric": c.task.metric,
        "compression_ratio": ratio,
        "compression_ratio_with_biases": ratio_b,
        **whole_network_record(c, model),
        "reference_tune_accuracy": c.reference["tune_accuracy"],
        "reference_val_accuracy": c.reference["val_accuracy"],
        "reference_test_accuracy": c.reference["test_accuracy"],
        "val_accuracy": c.task.score(model, "val"),
        "test_accuracy": c.task.score(model, "test"),
        "paired_change": paired_changes(reference_outcomes, reported_outcomes(c.task, model)),
        "rounds": c.state.round,
        "stop_reason": c.state.stop_reason,
        "best_round": c.state.best.get("round"),
        "best_fine_tuned": bool(c.state.best.get("fine_tuned")),
        "evaluations": c.state.evaluations,
        "wall_time_s": round(c.state.elapsed_s, 3),
        "layers": layer_rows(c),
        "history": c.state.history,
        "final_attempts": c.state.final_attempts,
        **constraint_record(c, model),
    }


def whole_network_record(c: Compressor, model: nn.Module) -> dict[str, Any]:
    """When ``include`` / ``exclude`` left prunable layers out, the ratios above count the
    pruned layers only: the whole network's, those layers kept dense, and their names."""
    chosen = {layer.name for layer in c.layers}
    every = find_prunable_layers(model)
    left_dense = [layer.name for layer in every if layer.name not in chosen]
    if not left_dense:
        return {}
    ratio, ratio_b = compression_ratios(every, c.masks)
    return {
        "whole_network": {
            "compression_ratio": ratio,
            "compression_ratio_with_biases": ratio_b,
            "layers_left_dense": left_dense,
        }
    }


def layer_rows(c: Compressor) -> list[dict[str, Any]]:
    """Per-layer counts of the result, with the magnitude threshold its round applied
    (0 for the unpruned reference)."""
    rows = layer_counts(c.layers, c.masks)
    best = c.state.best.get("round", 0)
    entry = next((h for h in c.state.history if h["round"] == best), {})
    thresholds = entry.get("thresholds", [0.0] * len(rows))
    return [row | {"threshold": t} for row, t in zip(rows, thresholds, strict=True)]


def constraint_record(c: Compressor, model: nn.Module) -> dict[str, Any]:
    """For a task with constraints: what they measure for the reference and the result
    on val and test (reported only; decisions read val)."""
    if "constraints" not in c.reference:
        return {}
    return {
        "constraints": {
            "reference": {s: c.reference["constraints"][s] for s in REPORTED_SPLITS},
            "result": {s: c.task.constraint_report(model, s) for s in REPORTED_SPLITS},
        }
    }
