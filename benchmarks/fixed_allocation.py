"""How much accuracy a fixed per-layer allocation keeps after retraining, search aside.

For the mnist-5k headline setting (LeNet-300-100): the reference (default recipe, seed =
initialisation and split seed) is pruned by magnitude to the keep fractions given, in
`--stages` stages of a geometric schedule, retraining `--steps` SGD steps after each stage
and `--final-steps` at the end with the masks frozen (olmp's own `train`, shift
augmentation as the recipe). Accuracy is measured on tune, val and test together (3,000
held-out images, so a paired difference has about half the noise of one split): it tells
what a network of that size can reach with this retraining, whatever search chose it.

    python benchmarks/fixed_allocation.py --keep 0.004 0.024 0.11 --seeds 0 1 2
    python benchmarks/fixed_allocation.py --keep 0.0055 0.012 0.10 --lr 0.01 --final-lr 0.01
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch
from _common import MNIST5K_DATASET, MNIST5K_MODEL, machine, reference_checkpoint, spread

from olmp.data.registry import Split
from olmp.pruning.layers import find_prunable_layers
from olmp.pruning.masks import (
    apply_masks,
    compression_ratios,
    dense_tensor,
    magnitude_masks,
    remove_masks,
)
from olmp.pruning.thresholds import KeepRatio
from olmp.reference import load_weights
from olmp.training import TrainConfig, accuracy, default_recipe, train


def top_fraction_thresholds(layers, fractions) -> torch.Tensor:
    """Per layer, the magnitude that keeps the given fraction of its weights (OLMP's own
    keep-ratio parametrisation of the current weights)."""
    param = KeepRatio([dense_tensor(layer, "weight").detach().abs() for layer in layers])
    return param.thresholds(param.encode(np.array(fractions)))[0]


def run_seed(seed: int, args: argparse.Namespace) -> dict:
    weights = reference_checkpoint(MNIST5K_MODEL, MNIST5K_DATASET, seed, args.workdir)
    model, splits, _ = load_weights(weights)
    held_out = Split(
        torch.cat([splits.tune.x, splits.val.x, splits.test.x]),
        torch.cat([splits.tune.y, splits.val.y, splits.test.y]),
    )
    reference = accuracy(model, held_out)
    shift = default_recipe(MNIST5K_MODEL, MNIST5K_DATASET).max_shift
    layers = find_prunable_layers(model)
    started = time.perf_counter()
    for stage in range(1, args.stages + 1):
        fractions = [k ** (stage / args.stages) for k in args.keep]
        masks = magnitude_masks(layers, top_fraction_thresholds(layers, fractions))
        apply_masks(layers, masks, straight_through=False)
        steps = args.steps if stage < args.stages else args.steps + args.final_steps
        lr = args.lr if stage < args.stages else args.final_lr
        recipe = TrainConfig(max_steps=steps, lr=lr, max_shift=shift, seed=seed * 100 + stage)
        train(model, splits.train, recipe)
        if stage < args.stages:
            remove_masks(layers, bake=False)
    record = {
        "seed": seed,
        "ratio": compression_ratios(layers, masks)[0],
        "reference_held_out": reference,
        "held_out": accuracy(model, held_out),
        "val": accuracy(model, splits.val),
        "test": accuracy(model, splits.test),
        "seconds": time.perf_counter() - started,
    }
    print(json.dumps(record), flush=True)
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=float, nargs=3, required=True, metavar="FRACTION")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--stages", type=int, default=10)
    parser.add_argument("--steps", type=int, default=500, help="retraining steps per stage")
    parser.add_argument("--lr", type=float, default=0.03)
    parser.add_argument("--final-steps", type=int, default=3000)
    parser.add_argument("--final-lr", type=float, default=0.05)
    parser.add_argument("--workdir", default="/tmp/olmp-bench")
    args = parser.parse_args()
    info = machine()
    runs = [run_seed(seed, args) for seed in args.seeds]
    loss = [100 * (r["reference_held_out"] - r["held_out"]) for r in runs]
    print(
        f"\n`{info['command']}` — {info['cores']} cores ({info['torch_threads']} torch "
        f"threads), {info['cpu']}, torch {info['torch']}, {info['date']}, commit {info['commit']}\n"
    )
    print("| keep fractions | seeds | ratio (weights) | held-out loss (points) | val % | test % |")
    print("|---|---|---|---|---|---|")
    print(
        f"| {' / '.join(f'{k:g}' for k in args.keep)} | {len(runs)} | "
        f"{statistics.median(r['ratio'] for r in runs):.1f} | {spread(loss, '.2f')} | "
        f"{spread([100 * r['val'] for r in runs], '.1f')} | "
        f"{spread([100 * r['test'] for r in runs], '.1f')} |"
    )


if __name__ == "__main__":
    main()
