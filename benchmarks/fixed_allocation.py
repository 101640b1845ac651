"""How much accuracy a fixed per-layer allocation keeps after retraining, search aside.

For each seed the reference (default recipe, seed = initialisation and split seed) is
pruned by magnitude to the keep fractions given, in ``--stages`` stages of a geometric
schedule, retraining ``--steps`` SGD steps after each stage and ``--final-steps`` more at
the end with the masks frozen (olmp's own ``train``; the setting's recipe gives the shift
augmentation). Accuracy is measured on tune, val and test together (the held-out images,
so a paired difference has less noise than one split's): it tells what a network of that
size can reach with this retraining, whatever search chose it. Accuracy on the training
images (without augmentation) tells whether a network that loses accuracy fails to fit
them or fails to generalise from them. Nothing here selects
anything, so reading test does not bias a decision.

Several allocations (``--keep``, repeated) and retraining variants (``--retrain``,
repeated) run side by side on the same references; each row is one (allocation, variant)
with medians over the seeds, and the last column is the paired difference, seed by seed,
to the table's first row (the first allocation with the first variant). A variant is
``default`` or comma-separated ``FIELD=VALUE`` pairs of:

- ``weight_decay``, ``batch_size``, ``max_shift``, ``max_rotation``, ``max_scale``,
  ``average_last``: the retraining recipe's fields;
- ``distill``: weight of distillation from the dense reference (temperature 4);
- ``splice``: 1 re-chooses each layer's kept weights every 10 steps as the largest of the
  dense weights at the stage's kept count, with gradients reaching every weight (dynamic
  pruning with feedback, Lin et al. 2020); masks freeze for ``--final-steps``.

    python benchmarks/fixed_allocation.py --keep 0.004 0.024 0.11 --seeds 0 1 2
    python benchmarks/fixed_allocation.py --keep 0.004 0.024 0.11 --retrain default \\
        --retrain weight_decay=0 --retrain distill=0.5 --retrain splice=1
    python benchmarks/fixed_allocation.py --setting lenet-300-100/fashion-mnist \\
        --keep 0.038 0.045 0.6 --steps 1000

``--train-images N`` asks how the answer depends on the amount of training data: the
reference is then trained here (same recipe and seeds as the cached one) on the first N
training images only, and retraining uses those N images too; the held-out images are the
same. With N = the whole training split it is the cached reference again.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import statistics
import time

import numpy as np
import torch
from _common import SETTINGS, machine, reference_checkpoint, spread

from olmp.data import load_dataset
from olmp.data.registry import DatasetSplits, Split
from olmp.pruning.layers import PrunableLayer, find_prunable_layers
from olmp.pruning.masks import (
    applied_mask,
    apply_masks,
    compression_ratios,
    dense_tensor,
    magnitude_masks,
    remove_masks,
)
from olmp.pruning.thresholds import KeepRatio
from olmp.reference import load_weights, train_new
from olmp.training import TrainConfig, accuracy, default_recipe, train, with_overrides

RECIPE_FIELDS = {
    "weight_decay": float,
    "batch_size": int,
    "max_shift": int,
    "max_rotation": float,
    "max_scale": float,
    "average_last": float,
}
VARIANT_FIELDS = RECIPE_FIELDS | {"distill": float, "splice": int}
SPLICE_EVERY = 10


def parse_variant(text: str) -> dict:
    """``default`` or ``FIELD=VALUE[,FIELD=VALUE...]`` -> {field: value}."""
    if text == "default":
        return {}
    variant = {}
    for pair in text.split(","):
        name, sep, value = pair.partition("=")
        if not sep or name not in VARIANT_FIELDS:
            raise argparse.ArgumentTypeError(
                f"--retrain wants 'default' or FIELD=VALUE pairs with FIELD one of "
                f"{', '.join(VARIANT_FIELDS)}; got {pair!r}"
            )
        variant[name] = VARIANT_FIELDS[name](value)
    return variant


def top_fraction_thresholds(layers, fractions) -> torch.Tensor:
    """Per layer, the magnitude that keeps the given fraction of its weights (OLMP's own
    keep-ratio parametrisation of the current weights)."""
    param = KeepRatio([dense_tensor(layer, "weight").detach().abs() for layer in layers])
    return param.thresholds(param.encode(np.array(fractions)))[0]


@torch.no_grad()
def splice_top_k(layers: list[PrunableLayer], counts: list[int]) -> None:
    """Each layer's mask re-chosen in place as its ``count`` largest dense weights."""
    for layer, count in zip(layers, counts, strict=True):
        mask = applied_mask(layer, "weight")
        magnitude = dense_tensor(layer, "weight").abs().flatten()
        mask.view(-1).zero_()[torch.topk(magnitude, count).indices] = True


def subset_reference(
    model_name: str, dataset: str, seed: int, count: int
) -> tuple[torch.nn.Module, DatasetSplits]:
    """A reference trained as :func:`_common.reference_checkpoint` trains one (default
    recipe, initialisation and split seed = ``seed``, olmp's own ``train_new``) on the
    first ``count`` training images only, with the splits cut down to them."""
    splits = load_dataset(dataset, seed=seed)
    if not 0 < count <= len(splits.train):
        raise SystemExit(f"--train-images must be in [1, {len(splits.train)}], got {count}")
    train_x, train_y = splits.train.x[:count], splits.train.y[:count]
    splits = dataclasses.replace(splits, train=Split(train_x, train_y))
    recipe = with_overrides(default_recipe(model_name, dataset), seed=seed)
    return train_new(model_name, splits, recipe), splits


def run_one(setting: str, seed: int, keep: list[float], variant: dict, args) -> dict:
    """One seed of one (allocation, variant): the held-out accuracy it reaches."""
    model_name, dataset = setting.split("/")
    if args.train_images:
        model, splits = subset_reference(model_name, dataset, seed, args.train_images)
    else:
        weights = reference_checkpoint(model_name, dataset, seed, args.workdir)
        model, splits, _ = load_weights(weights)
    held_out = Split(
        torch.cat([splits.tune.x, splits.val.x, splits.test.x]),
        torch.cat([splits.tune.y, splits.val.y, splits.test.y]),
    )
    reference = accuracy(model, held_out)
    teacher = copy.deepcopy(model).eval().requires_grad_(False) if variant.get("distill") else None
    recipe_fields = {k: v for k, v in variant.items() if k in RECIPE_FIELDS}
    base = default_recipe(model_name, dataset)
    layers = find_prunable_layers(model)
    if len(keep) != len(layers):
        raise SystemExit(f"--keep needs {len(layers)} fractions for {setting}, got {keep}")
    splice = bool(variant.get("splice"))
    started = time.perf_counter()
    for stage in range(1, args.stages + 1):
        fractions = [k ** (stage / args.stages) for k in keep]
        masks = magnitude_masks(layers, top_fraction_thresholds(layers, fractions))
        counts = [int(masks[layer.weight_name].sum()) for layer in layers]
        apply_masks(layers, masks, straight_through=splice)
        last = stage == args.stages
        recipe = TrainConfig(
            **{
                "max_shift": base.max_shift,
                **recipe_fields,
                "max_steps": args.steps + (args.final_steps if last else 0),
                "lr": args.final_lr if last else args.lr,
                "seed": seed * 100 + stage,
            }
        )

        def on_step(_model, step: int, counts=counts) -> None:
            if step % SPLICE_EVERY == 0 and step <= args.steps:  # frozen for final steps
                splice_top_k(layers, counts)

        train(
            model,
            splits.train,
            recipe,
            on_step=on_step if splice else None,
            teacher=teacher,
            distill_weight=variant.get("distill", 0.0),
        )
        if not last:
            remove_masks(layers, bake=False)
    record = {
        "setting": setting,
        "seed": seed,
        "keep": keep,
        "variant": variant,
        "train_images": len(splits.train),
        "ratio": compression_ratios(layers, masks)[0],
        "reference_held_out": reference,
        "held_out": accuracy(model, held_out),
        "train": accuracy(model, splits.train),  # unaugmented: capacity or generalisation?
        "val": accuracy(model, splits.val),
        "test": accuracy(model, splits.test),
        "seconds": time.perf_counter() - started,
    }
    print(json.dumps(record), flush=True)
    return record


def variant_label(variant: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in variant.items()) or "default"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setting", choices=SETTINGS, default=SETTINGS[0])
    parser.add_argument(
        "--keep",
        type=float,
        nargs="+",
        action="append",
        required=True,
        metavar="FRACTION",
        help="one keep fraction per prunable layer; repeat for more allocations",
    )
    parser.add_argument(
        "--retrain",
        type=parse_variant,
        action="append",
        metavar="VARIANT",
        help="'default' or FIELD=VALUE[,...] (see the module docstring); repeatable",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--stages", type=int, default=10)
    parser.add_argument("--steps", type=int, default=500, help="retraining steps per stage")
    parser.add_argument("--lr", type=float, default=0.03)
    parser.add_argument("--final-steps", type=int, default=3000)
    parser.add_argument("--final-lr", type=float, default=0.05)
    parser.add_argument(
        "--train-images",
        type=int,
        metavar="N",
        help="train the reference here, and retrain, on the first N training images only",
    )
    parser.add_argument("--workdir", default="/tmp/olmp-bench")
    parser.add_argument(
        "--json", help="also write every run's record, with the machine's, to this file"
    )
    args = parser.parse_args()
    variants = args.retrain or [{}]
    info = machine()
    rows, first = [], None
    for keep in args.keep:
        for variant in variants:
            runs = [run_one(args.setting, seed, keep, variant, args) for seed in args.seeds]
            loss = [100 * (r["reference_held_out"] - r["held_out"]) for r in runs]
            first = first or loss
            rows.append(
                (keep, variant, runs, loss, [a - b for a, b in zip(loss, first, strict=True)])
            )
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"machine": info, "runs": [r for row in rows for r in row[2]]}, out, indent=1)
    print(
        f"\n`{info['command']}` — {info['cores']} cores ({info['torch_threads']} torch "
        f"threads), {info['cpu']}, torch {info['torch']}, {info['date']}, commit {info['commit']}\n"
    )
    print(
        "| keep fractions | retraining | seeds | ratio (weights) | held-out loss (points) "
        "| train % | val % | test % | loss − first row's (points) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for keep, variant, runs, loss, paired in rows:
        print(
            f"| {' / '.join(f'{k:g}' for k in keep)} | {variant_label(variant)} | {len(runs)} | "
            f"{statistics.median(r['ratio'] for r in runs):.1f} | {spread(loss, '.2f')} | "
            f"{spread([100 * r['train'] for r in runs], '.1f')} | "
            f"{spread([100 * r['val'] for r in runs], '.1f')} | "
            f"{spread([100 * r['test'] for r in runs], '.1f')} | {spread(paired, '+.2f')} |"
        )


if __name__ == "__main__":
    main()
