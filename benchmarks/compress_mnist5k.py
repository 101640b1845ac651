"""OLMP's headline target: LeNet-300-100 on mnist-5k with the default settings.

For each seed: train the reference with the default recipe (initialisation seed and split
seed = the seed), compress it with `CompressConfig` defaults (the solver can be chosen) and
record compression, val and test accuracy against the reference (with the paired standard
errors of the val and test changes; the table shows the test one), and wall time. Prints a
markdown table with the median and range over seeds; writes
benchmarks/results/compress_mnist5k_<solver>_<adjust>.json.

    python benchmarks/compress_mnist5k.py                      # NCS, seeds 0 1 2
    python benchmarks/compress_mnist5k.py --solver cmaes
    python benchmarks/compress_mnist5k.py --adjust dns          # Dynamic Network Surgery
    python benchmarks/compress_mnist5k.py --set adjust_lr=0.02 --set final_steps=3000

`--set FIELD=VALUE` overrides any other `CompressConfig` field; the result file's name then
carries the overrides too, and `--tag TAG` ends it (so a rerun can keep an older record).
Reference checkpoints and run folders are kept in `--workdir` (default /tmp/olmp-bench)
and reused: an interrupted benchmark resumes where it stopped, and
`benchmarks/export_size.py` exports the same runs. Delete the folder to start afresh.
The time column is the reference's training time plus the run's wall time.
"""

from __future__ import annotations

import argparse
import json
import statistics

from _common import HEADLINE_KEYS, RESULTS, add_overrides, machine, mnist5k_run, spread

from olmp.compression import CompressConfig


def run_seed(seed: int, workdir: str, overrides: dict[str, object]) -> dict:
    """Train a reference and compress it; returns the result record's headline fields."""
    _, result, reference = mnist5k_run(seed, workdir, overrides)
    keys = (*HEADLINE_KEYS, "rounds", "best_round")
    record = {k: result[k] for k in keys} | {
        "seed": seed,
        "total_time_s": reference["train_time_s"] + result["wall_time_s"],
    }
    record["keep_fractions"] = [r["kept_weights"] / r["total_weights"] for r in result["layers"]]
    # How much of the val and test changes could be the luck of the splits' images.
    for split in ("val", "test"):
        error = result["paired_change"][split]["standard_error"]
        record[f"{split}_change_standard_error"] = error
    print(json.dumps(record), flush=True)
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--solver", default=CompressConfig.solver)
    parser.add_argument("--adjust", default=CompressConfig.adjust, help="finetune or dns")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--workdir", default="/tmp/olmp-bench")
    add_overrides(parser, "override a CompressConfig field of the runs")
    parser.add_argument("--tag", help="appended to the result file's name, to keep older records")
    args = parser.parse_args()
    overrides = dict(args.set)
    if args.solver != CompressConfig.solver:
        overrides["solver"] = args.solver
    if args.adjust != CompressConfig.adjust:
        overrides["adjust"] = args.adjust
    info = machine()  # before the runs: the commit they ran
    runs = [run_seed(seed, args.workdir, overrides) for seed in args.seeds]

    # solver and adjust have their own columns and file-name parts
    extra = {k: v for k, v in overrides.items() if k not in ("solver", "adjust")}
    overrides_text = " ".join(f"{k}={v}" for k, v in extra.items())
    loss = [100 * (r["reference_test_accuracy"] - r["test_accuracy"]) for r in runs]
    ratio = [r["compression_ratio"] for r in runs]
    val_delta = [100 * (r["val_accuracy"] - r["reference_val_accuracy"]) for r in runs]
    print(
        f"\n`{info['command']}` — {info['cores']} cores ({info['torch_threads']} torch "
        f"threads), {info['cpu']}, torch {info['torch']}, {info['date']}, "
        f"commit {info['commit']}\n"
    )
    print(
        "| solver | adjust | overrides | seeds | ratio (weights) | ratio (w+b) | ref test % | "
        "test % | test loss (points) | its paired SE (points) | val % - ref val % | "
        "time, train + compress (s) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    print(
        f"| {args.solver} | {args.adjust} | {overrides_text or '-'} | {len(runs)} | "
        f"{spread(ratio, '.1f')} | "
        f"{spread([r['compression_ratio_with_biases'] for r in runs], '.1f')} | "
        f"{spread([100 * r['reference_test_accuracy'] for r in runs], '.1f')} | "
        f"{spread([100 * r['test_accuracy'] for r in runs], '.1f')} | "
        f"{spread(loss, '.1f')} | "
        f"{spread([100 * r['test_change_standard_error'] for r in runs], '.2f')} | "
        f"{spread(val_delta, '.1f')} | "
        f"{spread([r['total_time_s'] for r in runs], '.0f')} |"
    )
    met = statistics.median(ratio) >= 150 and statistics.median(loss) <= 0.5
    print(
        f"\ntarget (median >= 150x, median test loss <= 0.5 points): {'met' if met else 'NOT met'}"
    )
    RESULTS.mkdir(exist_ok=True)
    suffix = "".join(f"_{k}-{v}" for k, v in extra.items())
    suffix += f"_{args.tag}" if args.tag else ""
    (RESULTS / f"compress_mnist5k_{args.solver}_{args.adjust}{suffix}.json").write_text(
        json.dumps({"machine": info, "runs": runs}, indent=2) + "\n"
    )


if __name__ == "__main__":
    main()
