"""The pruning methods OLMP is measured against, on the same footing as OLMP.

Every baseline runs the same loop: prune to the next keep fraction of a geometric schedule
(``1 → final_keep`` over ``stages`` stages), retrain with frozen masks for
``stage_steps`` steps, measure val accuracy, and keep the smallest network whose val
accuracy is at least the reference's minus ``tolerance`` — OLMP's own selection rule. The
retraining budget is ``stages × stage_steps`` SGD steps, which a benchmark sets equal to
what an OLMP run spent. The methods differ only in how a keep fraction is spread over the
layers:

``global``
    one magnitude threshold for the whole network (Han et al. 2015, "Learning both
    weights and connections", iterative prune-and-retrain), through
    :func:`torch.nn.utils.prune.global_unstructured`.
``uniform``
    the same keep fraction in every layer.
``sa``
    a per-layer allocation found by simulated annealing on the tune split (the idea of
    NNI's ``SimulatedAnnealingPruner``, written here from its published description): keep
    fractions are perturbed in log space, rescaled to the stage's overall budget, scored by
    tune accuracy without retraining, and accepted by the Metropolis rule while the
    temperature cools.
``dns``
    Dynamic Network Surgery (Guo et al. 2016) with hand-set coefficients: layer ``l``'s
    threshold is ``μ_l + c_l·σ_l`` of its current ``|W_l|``, with ``c`` ramped linearly
    over the stages up to ``dns_coefficients``; training is straight-through with the
    0.9·t / 1.1·t hysteresis, so pruned weights can come back.

For ``global``, ``uniform`` and ``sa``, weights pruned at one stage stay pruned (the
network is baked to ``W ⊙ M`` before the next stage ranks magnitudes), so the schedule
only ever removes weights.

``gmp-global``, ``gmp-layer``
    gradual magnitude pruning (Zhu & Gupta 2017, "To prune, or not to prune"): one run per
    target ratio of ``gmp_ratios``, each spending the whole budget (``stages ×
    stage_steps`` steps) from the reference: in the first half the sparsity follows the
    cubic schedule ``s_t = s_f · (1 − (1 − t / T_half)³)`` with the masks recomputed by
    magnitude every ``gmp_update_every`` steps (one threshold for the network, or the
    same fraction in each layer), in the second half the masks stay. The result is the
    largest target whose network holds the val rule.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils import prune

from olmp.compression import adjust, masked_score
from olmp.data.registry import DatasetSplits
from olmp.errors import OlmpError, unknown_choice
from olmp.pruning.layers import PrunableLayer, find_prunable_layers
from olmp.pruning.masks import (
    Masks,
    applied_mask,
    apply_masks,
    compression_ratios,
    current_masks,
    dense_tensor,
    layer_counts,
    magnitude_masks,
    remove_masks,
)
from olmp.pruning.thresholds import MeanStd
from olmp.task import SplitsTask, Task, paired_changes, reported_outcomes
from olmp.training import model_device, seeded_torch_rng

METHODS = ("global", "uniform", "sa", "dns", "gmp-global", "gmp-layer")


@dataclass(frozen=True)
class BaselineConfig:
    """Settings of a baseline run.

    Attributes:
        method: one of :data:`METHODS`.
        tolerance: allowed val-accuracy loss against the reference (0 = none).
        stages: pruning stages; ``stage_steps`` retraining steps follow each.
        final_keep: keep fraction of the last stage (the schedule is geometric).
        patience: stop after this many stages in a row that fail the val rule.
        lr, batch_size, augment_shift: retraining settings (as OLMP's ``adjust_lr``,
            ``batch_size``, ``augment_shift``).
        sa_evaluations: candidate allocations scored per stage (``sa`` only).
        sa_start_temperature, sa_end_temperature: Metropolis temperature, in accuracy
            points, at the first and last evaluation of a stage's annealing.
        sa_step: standard deviation of a perturbation of log10(keep fraction) at the start
            temperature; it shrinks in proportion to the temperature.
        dns_coefficients: ``c`` per prunable layer for ``dns`` (one value: every layer);
            2.5 keeps roughly 2 % of a Gaussian-initialised layer, and
            :func:`dns_coefficient` turns a wanted keep fraction into its ``c``.
        gmp_ratios: the target compression ratios of ``gmp-*``, one run each.
        gmp_update_every: steps between ``gmp-*`` mask updates while pruning.
        seed: seeds retraining order and the annealing.
    """

    method: str = "global"
    tolerance: float = 0.0
    stages: int = 20
    stage_steps: int = 500
    final_keep: float = 0.002
    patience: int = 3
    lr: float = 0.01
    batch_size: int = 64
    augment_shift: int = 0
    sa_evaluations: int = 300
    sa_start_temperature: float = 1.0
    sa_end_temperature: float = 0.05
    sa_step: float = 0.35
    dns_coefficients: tuple[float, ...] = (2.5,)
    gmp_ratios: tuple[float, ...] = (5, 10, 20, 50, 75, 100, 125, 150, 200)
    gmp_update_every: int = 100
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise unknown_choice("method", self.method, list(METHODS))
        if not 0 <= self.tolerance < 1:
            raise OlmpError(f"tolerance must be in [0, 1), got {self.tolerance}")
        if not 0 < self.final_keep < 1:
            raise OlmpError(f"final_keep must be in (0, 1), got {self.final_keep}")
        if not self.gmp_ratios or min(self.gmp_ratios) <= 1:
            raise OlmpError(f"gmp_ratios must be numbers above 1, got {self.gmp_ratios}")
        for name in ("stages", "patience", "sa_evaluations", "gmp_update_every"):
            if getattr(self, name) < 1:
                raise OlmpError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.stage_steps < 0:
            raise OlmpError(f"stage_steps must be >= 0, got {self.stage_steps}")
        if not self.dns_coefficients or min(self.dns_coefficients) < 0:
            raise OlmpError(
                f"dns_coefficients must be one or more numbers >= 0, got {self.dns_coefficients}"
            )

    def schedule(self) -> list[float]:
        """Keep fraction of each stage."""
        return [self.final_keep ** (k / self.stages) for k in range(1, self.stages + 1)]


# ---------------------------------------------------------------------------------------
# Allocations: a keep fraction of the whole network -> masks


def top_k_masks(layers: list[PrunableLayer], counts: list[int]) -> Masks:
    """Masks keeping exactly the ``counts[l]`` largest-magnitude weights of each layer."""
    masks: Masks = {}
    for layer, k in zip(layers, counts, strict=True):
        magnitudes = layer.module.weight.detach().abs().flatten()
        mask = torch.zeros_like(magnitudes, dtype=torch.bool)
        mask[torch.topk(magnitudes, int(k), sorted=False).indices] = True
        masks[layer.weight_name] = mask.reshape(layer.module.weight.shape)
    return masks


def global_masks(layers: list[PrunableLayer], keep: float) -> Masks:
    """One magnitude threshold across all layers, via ``prune.global_unstructured``."""
    total = sum(layer.n_weights for layer in layers)
    parameters = [(layer.module, "weight") for layer in layers]
    # Training leaves conv weights channels-last, which global_unstructured cannot flatten
    # (it views each weight and its default mask as 1-D): give it the same values in
    # contiguous strides. Training switches the layout back when it next runs.
    for layer in layers:
        layer.module.weight.data = layer.module.weight.data.contiguous()
    prune.global_unstructured(
        parameters,
        pruning_method=prune.L1Unstructured,
        amount=total - max(1, round(keep * total)),
    )
    masks = {layer.weight_name: layer.module.weight_mask.bool().clone() for layer in layers}
    for layer in layers:
        prune.remove(layer.module, "weight")  # bakes W ⊙ M; the mask is what we keep
    return masks


def uniform_masks(layers: list[PrunableLayer], keep: float) -> Masks:
    """The same keep fraction in every layer."""
    return top_k_masks(layers, [max(1, round(keep * layer.n_weights)) for layer in layers])


def rescale_keep(log_keep: np.ndarray, sizes: np.ndarray, budget: float) -> np.ndarray:
    """Keep fractions ``min(1, 10**(log_keep + b))`` with the one shift ``b`` that makes
    ``Σ sizes · keep`` equal ``budget`` weights (found by bisection)."""
    lo, hi = -12.0, 12.0
    for _ in range(60):
        mid = (lo + hi) / 2
        kept = float((sizes * np.minimum(1.0, 10.0 ** (log_keep + mid))).sum())
        lo, hi = (mid, hi) if kept < budget else (lo, mid)
    return np.minimum(1.0, 10.0 ** (log_keep + (lo + hi) / 2))


def annealed_masks(
    model: nn.Module,
    layers: list[PrunableLayer],
    keep: float,
    task: Task,
    config: BaselineConfig,
    rng: np.random.Generator,
) -> tuple[Masks, int]:
    """A per-layer allocation of ``keep`` found by simulated annealing on tune accuracy.

    Starts from the uniform allocation. Returns the masks of the best allocation seen and
    the number of allocations scored.
    """
    sizes = np.array([layer.n_weights for layer in layers], dtype=float)
    nonzero = np.array([int(torch.count_nonzero(layer.module.weight)) for layer in layers])
    budget = keep * sizes.sum()
    scorer = task.population_scorer(model, layers, prune_biases=False)
    # Sorted once per stage: keeping the k largest is then the threshold at index k - 1.
    descending = [
        torch.sort(layer.module.weight.detach().abs().flatten(), descending=True).values
        for layer in layers
    ]

    def counts_of(log_keep: np.ndarray) -> list[int]:
        fractions = rescale_keep(log_keep, sizes, budget)
        return [int(c) for c in np.clip(np.round(fractions * sizes), 1, nonzero)]

    def score(counts: list[int]) -> float:
        thresholds = torch.stack([d[k - 1] for d, k in zip(descending, counts, strict=True)])
        return 100 * float(scorer(thresholds[None, :])[0])

    current = np.full(len(layers), math.log10(keep))
    current_counts = counts_of(current)
    current_score = score(current_counts)
    best_counts, best_score = current_counts, current_score
    cooling = (config.sa_end_temperature / config.sa_start_temperature) ** (
        1 / max(config.sa_evaluations - 1, 1)
    )
    temperature = config.sa_start_temperature
    for _ in range(config.sa_evaluations - 1):
        step = config.sa_step * temperature / config.sa_start_temperature
        candidate = current + rng.normal(0.0, step, size=current.shape)
        candidate_counts = counts_of(candidate)
        candidate_score = score(candidate_counts)
        delta = candidate_score - current_score
        if delta >= 0 or rng.random() < math.exp(delta / temperature):
            current, current_counts, current_score = candidate, candidate_counts, candidate_score
            if current_score > best_score:
                best_counts, best_score = current_counts, current_score
        temperature *= cooling
    return top_k_masks(layers, best_counts), config.sa_evaluations


def dns_coefficient(keep: float) -> float:
    """The ``c`` at which ``μ + c·σ`` of a Gaussian layer's ``|W|`` keeps ``keep`` of it.

    A way to hand-set DNS's per-layer coefficients from the keep fractions one aims at.
    The magnitudes of zero-mean Gaussian weights (standard deviation ``s``) are
    half-normal, with mean ``s·√(2/π)`` and standard deviation ``s·√(1 − 2/π)``, and a
    fraction ``keep`` of them lies above ``s·Φ⁻¹(1 − keep/2)``; ``s`` cancels. The mean
    alone keeps about 42.5 %, so larger fractions give ``c = 0``.

        >>> round(dns_coefficient(0.018), 2)
        2.6
    """
    if not 0 < keep < 1:
        raise OlmpError(f"a keep fraction must be in (0, 1), got {keep}")
    threshold = NormalDist().inv_cdf(1 - keep / 2)
    mean, std = math.sqrt(2 / math.pi), math.sqrt(1 - 2 / math.pi)
    return max(0.0, (threshold - mean) / std)


def dns_thresholds(layers: list[PrunableLayer], coefficients: np.ndarray) -> torch.Tensor:
    """``μ_l + c_l·σ_l`` of each layer's current ``|W_l|`` (never above its largest)."""
    abs_weights = [layer.module.weight.detach().abs().cpu() for layer in layers]
    return MeanStd(abs_weights, c_max=float(coefficients.max())).thresholds(coefficients)[0]


# ---------------------------------------------------------------------------------------
# The shared loop


def _bake(layers: list[PrunableLayer], masks: Masks) -> None:
    with torch.no_grad():
        for layer in layers:
            layer.module.weight.mul_(masks[layer.weight_name].to(layer.module.weight.device))


def kept(stage: int, model: nn.Module, masks: Masks, val_accuracy: float) -> dict[str, Any]:
    """The record of the network kept so far: a copy of its weights, its masks, its score."""
    state = copy.deepcopy(model.state_dict())
    return {"stage": stage, "state": state, "masks": masks, "val_accuracy": val_accuracy}


def staged_runs(
    model: nn.Module,
    layers: list[PrunableLayer],
    task: Task,
    config: BaselineConfig,
    required: float,
    best: dict[str, Any],
    rng: np.random.Generator,
) -> tuple[dict[str, Any], list[dict[str, Any]], int, int]:
    """The stage loop of ``global``, ``uniform``, ``sa`` and ``dns``: returns the best
    stage (the reference's ``best`` when none holds val), the history, the retraining
    steps and the candidate allocations scored."""
    coefficients = np.broadcast_to(np.asarray(config.dns_coefficients, dtype=float), (len(layers),))
    history: list[dict[str, Any]] = []
    evaluations = steps = failures = 0
    for stage, keep in enumerate(config.schedule(), start=1):
        thresholds = None  # DNS only: masks are re-derived from them while training
        if config.method == "global":
            masks = global_masks(layers, keep)
        elif config.method == "uniform":
            masks = uniform_masks(layers, keep)
        elif config.method == "sa":
            masks, scored = annealed_masks(model, layers, keep, task, config, rng)
            evaluations += scored
        else:
            thresholds = dns_thresholds(layers, coefficients * stage / config.stages)
            masks = magnitude_masks(layers, thresholds)
        if thresholds is None:
            _bake(layers, masks)
        if config.stage_steps > 0:
            seed = config.seed * 100_003 + stage
            masks = adjust(
                model,
                layers,
                masks,
                task,
                steps=config.stage_steps,
                lr=config.lr,
                seed=seed,
                thresholds=thresholds,
            )
            if thresholds is None:
                _bake(layers, masks)
        steps += config.stage_steps
        val = masked_score(task, model, layers, masks, "val")
        ratio, _ = compression_ratios(layers, masks)
        feasible = val + 1e-12 >= required
        history.append(
            {
                "stage": stage,
                "target_keep": keep if thresholds is None else None,
                "compression_ratio": ratio,
                "val_accuracy": val,
                "feasible": feasible,
            }
        )
        if feasible:
            best = kept(stage, model, masks, val)
            failures = 0
        else:
            failures += 1
            if failures >= config.patience:
                break
    return best, history, steps, evaluations


def gmp_step(layers: list[PrunableLayer], keep: float, allocation: str) -> None:
    """Shrink the applied masks in place to keep ``keep`` of the weights, by magnitude:
    one threshold for the network (``global``) or ``keep`` of each layer (``layer``)."""
    values = [
        (dense_tensor(layer, "weight") * applied_mask(layer, "weight")).abs() for layer in layers
    ]
    if allocation == "global":
        flat = torch.cat([v.flatten() for v in values])
        k = max(1, round(keep * flat.numel()))
        cutoffs = [torch.topk(flat, k).values.min()] * len(layers)
    else:
        cutoffs = [
            torch.topk(v.flatten(), max(1, round(keep * v.numel()))).values.min() for v in values
        ]
    with torch.no_grad():
        for layer, v, cutoff in zip(layers, values, cutoffs, strict=True):
            applied_mask(layer, "weight").copy_((v >= cutoff) & (v > 0))


def gradual_runs(
    model: nn.Module,
    layers: list[PrunableLayer],
    task: Task,
    config: BaselineConfig,
    required: float,
    best: dict[str, Any],
) -> tuple[dict[str, Any], list[dict[str, Any]], int]:
    """``gmp-*``: one gradual-pruning run per target of ``gmp_ratios`` from the reference;
    returns the largest target that holds val (the reference's ``best`` when none does),
    the history and the retraining steps of all runs."""
    allocation = config.method.removeprefix("gmp-")
    reference = copy.deepcopy(model.state_dict())
    budget = config.stages * config.stage_steps
    pruning_steps = budget // 2
    history: list[dict[str, Any]] = []
    for ratio in sorted(config.gmp_ratios):
        model.load_state_dict(reference)
        final = 1.0 / ratio

        def on_step(step: int, final: float = final) -> None:
            due = step % config.gmp_update_every == 0 or step == pruning_steps
            if due and step <= pruning_steps:
                progress = step / pruning_steps
                gmp_step(layers, 1.0 - (1.0 - final) * (1.0 - (1.0 - progress) ** 3), allocation)

        apply_masks(layers, uniform_masks(layers, 1.0), straight_through=False)
        if pruning_steps == 0:
            gmp_step(layers, final, allocation)
        seed = config.seed * 100_003 + round(ratio)
        with seeded_torch_rng(seed, model_device(model)):  # as OLMP's retraining is
            task.retrain(model, steps=budget, lr=config.lr, seed=seed, on_step=on_step)
        masks = current_masks(layers)
        remove_masks(layers, bake=False)
        _bake(layers, masks)
        val = masked_score(task, model, layers, masks, "val")
        reached, _ = compression_ratios(layers, masks)
        feasible = val + 1e-12 >= required
        entry = {"target_ratio": ratio, "compression_ratio": reached, "val_accuracy": val}
        history.append(entry | {"feasible": feasible})
        if feasible:
            best = kept(len(history), model, masks, val)
    return best, history, budget * len(history)


def prune_baseline(
    model: nn.Module,
    splits: DatasetSplits | None = None,
    config: BaselineConfig | None = None,
    *,
    task: Task | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """Prune the trained ``model`` in place with a baseline method; returns
    ``(pruned model, result record)`` with the fields of an OLMP result record that apply
    (compression ratios, val and test accuracy beside the reference's and their paired
    change, per-layer counts, per-stage history, retraining steps, wall time).

    The data come as ``splits`` (classification, retrained with the config's
    ``batch_size`` and ``augment_shift``) or as any :class:`olmp.task.Task`.
    """
    config = config or BaselineConfig()
    if (splits is None) == (task is None):
        raise OlmpError("give prune_baseline() exactly one of splits= or task=")
    if task is None:
        task = SplitsTask(splits, batch_size=config.batch_size, augment_shift=config.augment_shift)
    started = time.perf_counter()
    layers = find_prunable_layers(model)
    if config.method == "dns" and len(config.dns_coefficients) not in (1, len(layers)):
        names = ", ".join(layer.name for layer in layers)
        raise OlmpError(
            f"dns_coefficients has {len(config.dns_coefficients)} values; give one, or one "
            f"per prunable layer ({len(layers)}: {names})"
        )
    rng = np.random.default_rng(config.seed)
    reference = {
        f"reference_{split}_accuracy": task.score(model, split) for split in ("tune", "val", "test")
    }
    reference_outcomes = reported_outcomes(task, model)
    required = reference["reference_val_accuracy"] - config.tolerance
    best = kept(0, model, uniform_masks(layers, 1.0), reference["reference_val_accuracy"])
    evaluations = 0
    if config.method.startswith("gmp-"):
        best, history, steps = gradual_runs(model, layers, task, config, required, best)
    else:
        best, history, steps, evaluations = staged_runs(
            model, layers, task, config, required, best, rng
        )
    model.load_state_dict(best["state"])
    masks = best["masks"]
    _bake(layers, masks)  # DNS keeps pruned weights' values until the end
    ratio, ratio_b = compression_ratios(layers, masks)
    return model, {
        "method": config.method,
        "config": asdict(config),
        "seed": config.seed,
        **reference,
        "compression_ratio": ratio,
        "compression_ratio_with_biases": ratio_b,
        "val_accuracy": task.score(model, "val"),
        "test_accuracy": task.score(model, "test"),
        "paired_change": paired_changes(reference_outcomes, reported_outcomes(task, model)),
        "best_stage": best["stage"],
        "stages_run": len(history),
        "retrain_steps": steps,
        "evaluations": evaluations,
        "wall_time_s": round(time.perf_counter() - started, 3),
        "layers": layer_counts(layers, masks),
        "history": history,
    }
