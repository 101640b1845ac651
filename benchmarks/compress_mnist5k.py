"""OLMP's headline target: LeNet-300-100 on mnist-5k with the default settings.

For each seed: train the reference with the default recipe (initialisation seed and split
seed = the seed), compress it with `CompressConfig` defaults (the solver can be chosen) and
record compression, val and test accuracy against the reference, and wall time. Prints a
markdown table with the median and range over seeds; writes
benchmarks/results/compress_mnist5k_<solver>_<adjust>.json.

    python benchmarks/compress_mnist5k.py                      # NCS, seeds 0 1 2
    python benchmarks/compress_mnist5k.py --solver cmaes
    python benchmarks/compress_mnist5k.py --adjust dns          # Dynamic Network Surgery
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from _common import RESULTS, machine, spread

from olmp.compress import CompressConfig, compress
from olmp.reference import load_weights, train_reference
from olmp.training import default_recipe, with_overrides

MODEL, DATASET = "lenet-300-100", "mnist-5k"


def run_seed(seed: int, solver: str, adjust: str, workdir: str) -> dict:
    """Train a reference and compress it; returns the result record's headline fields."""
    recipe = with_overrides(default_recipe(MODEL, DATASET), seed=seed)
    weights = f"{workdir}/ref-{seed}.safetensors"
    started = time.perf_counter()
    train_reference(MODEL, DATASET, weights, config=recipe, split_seed=seed, force=True)
    model, splits, _ = load_weights(weights)
    config = CompressConfig(solver=solver, adjust=adjust, seed=seed, augment_shift=recipe.max_shift)
    _, result = compress(model, splits, config)
    total = time.perf_counter() - started
    keys = (
        "compression_ratio",
        "compression_ratio_with_biases",
        "reference_val_accuracy",
        "val_accuracy",
        "reference_test_accuracy",
        "test_accuracy",
        "wall_time_s",
        "evaluations",
        "rounds",
        "best_round",
    )
    record = {k: result[k] for k in keys} | {"seed": seed, "total_time_s": total}
    record["keep_fractions"] = [r["kept_weights"] / r["total_weights"] for r in result["layers"]]
    print(json.dumps(record), flush=True)
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--solver", default="ncs")
    parser.add_argument("--adjust", default=CompressConfig.adjust, help="finetune or dns")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--workdir", default="/tmp/olmp-bench")
    args = parser.parse_args()
    info = machine()  # before the runs: the commit they ran
    runs = [run_seed(seed, args.solver, args.adjust, args.workdir) for seed in args.seeds]

    loss = [100 * (r["reference_test_accuracy"] - r["test_accuracy"]) for r in runs]
    ratio = [r["compression_ratio"] for r in runs]
    val_delta = [100 * (r["val_accuracy"] - r["reference_val_accuracy"]) for r in runs]
    print(
        f"\n`{info['command']}` — {info['cores']} cores ({info['torch_threads']} torch "
        f"threads), {info['cpu']}, torch {info['torch']}, {info['date']}, "
        f"commit {info['commit']}\n"
    )
    print(
        "| solver | adjust | seeds | ratio (weights) | ratio (w+b) | ref test % | test % | "
        "test loss (points) | val % - ref val % | time, train + compress (s) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    print(
        f"| {args.solver} | {args.adjust} | {len(runs)} | {spread(ratio, '.1f')} | "
        f"{spread([r['compression_ratio_with_biases'] for r in runs], '.1f')} | "
        f"{spread([100 * r['reference_test_accuracy'] for r in runs], '.1f')} | "
        f"{spread([100 * r['test_accuracy'] for r in runs], '.1f')} | "
        f"{spread(loss, '.1f')} | "
        f"{spread(val_delta, '.1f')} | "
        f"{spread([r['total_time_s'] for r in runs], '.0f')} |"
    )
    met = statistics.median(ratio) >= 150 and statistics.median(loss) <= 0.5
    print(
        f"\ntarget (median >= 150x, median test loss <= 0.5 points): {'met' if met else 'NOT met'}"
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"compress_mnist5k_{args.solver}_{args.adjust}.json").write_text(
        json.dumps({"machine": info, "runs": runs}, indent=2) + "\n"
    )


if __name__ == "__main__":
    main()
