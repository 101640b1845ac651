"""OLMP side by side with the baselines it must beat, at equal retraining budget.

For each setting and seed, on the same reference network (default recipe, initialisation
and split seed = the seed):

1. OLMP with each solver (`--solvers`, default ncs cmaes random — random search around the
   incumbent is what the released OLMP code effectively did), `CompressConfig` defaults;
2. the baselines of `olmp.baselines` — `global` magnitude pruning with iterative
   retraining (Han et al. 2015), `uniform` per-layer pruning, `sa`, a simulated-
   annealing allocation of per-layer sparsities (NNI's SimulatedAnnealingPruner idea), and
   `dns`, Dynamic Network Surgery with hand-set per-layer coefficients (Guo et al. 2016;
   see DNS_KEEP) —
   each given the retraining steps that the OLMP run of that seed with the first of
   `--solvers` (NCS by default) spent, spread over its stages, and OLMP's selection rule
   (smallest network with val >= reference val - tolerance, OLMP's tolerance: 0 unless
   `--set tolerance=...`).

Per method: compression ratio (weights only, and weights + biases), val and test accuracy
beside the reference's, wall time, candidate evaluations; median and range over seeds.
Writes a markdown table (stdout), benchmarks/results/compress_<setting>.csv and .json, and
a plot of test accuracy against compression ratio (benchmarks/results/compress_<setting>.png);
`--set` overrides and `--tag` add to the file names.

    python benchmarks/compress.py --quick                       # mnist-5k, 1 seed, short runs
    python benchmarks/compress.py --setting lenet-300-100/mnist-5k --seeds 0 1 2
    python benchmarks/compress.py --setting lenet-300-100/fashion-mnist --seeds 0 1 2  # hours
    python benchmarks/compress.py --setting lenet-5/fashion-mnist --seeds 0 1 2        # hours
    python benchmarks/compress.py --setting lenet-300-100/fashion-mnist --set adjust_steps=1000

OLMP runs, baseline results and references are kept in --workdir and reused (an
interrupted benchmark resumes, and seeds run separately can be tabled together).
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
from dataclasses import asdict, replace
from pathlib import Path

from _common import (
    HEADLINE_KEYS,
    RESULTS,
    SETTINGS,
    add_overrides,
    baseline_config,
    machine,
    olmp_run,
    reference_checkpoint,
    solver_specs,
    spread,
)

from olmp.baselines import METHODS, BaselineConfig, dns_coefficient, prune_baseline
from olmp.compression import CompressConfig
from olmp.files import write_json_atomic
from olmp.reference import load_weights

QUICK = {"max_rounds": 15, "patience": 5}  # OLMP overrides of --quick

# DNS's hand-set per-layer coefficients: for each layer, the c at which mean + c * std of a
# Gaussian layer's |W| keeps the fraction that DNS itself ended with on MNIST (Guo et al.
# 2016: LeNet-300-100 1.8 / 1.8 / 5.5 %, LeNet-5 14.2 / 3.1 / 0.7 / 4.3 % of each layer).
# The coefficients ramp up to these over the stages; the val rule picks the stage.
DNS_KEEP = {"lenet-300-100": (0.018, 0.018, 0.055), "lenet-5": (0.142, 0.031, 0.007, 0.043)}


def retrain_steps(result: dict) -> int:
    """SGD steps an OLMP run spent retraining: every round plus every final attempt."""
    config = result["config"]
    return (
        result["rounds"] * config["adjust_steps"]
        + len(result["final_attempts"]) * config["final_steps"]
    )


def row_of(method: str, seed: int, result: dict, steps: int) -> dict:
    headline = {k: result[k] for k in HEADLINE_KEYS}
    return {"method": method, "seed": seed, "retrain_steps": steps} | headline


def run_seed(setting: str, seed: int, args: argparse.Namespace) -> list[dict]:
    model_name, dataset = setting.split("/")
    overrides = (dict(QUICK) if args.quick else {}) | dict(args.set)
    rows = []
    for spec, (solver, options) in args.solver_specs.items():
        _, result, _ = olmp_run(
            model_name,
            dataset,
            seed,
            args.workdir,
            overrides | {"solver": solver, "solver_options": options},
        )
        rows.append(row_of(f"olmp-{spec}", seed, result, retrain_steps(result)))
        print(json.dumps(rows[-1]), flush=True)
    budget = rows[0]["retrain_steps"]  # the first solver's (NCS by default)
    # The baselines retrain at OLMP's learning rate and select by OLMP's tolerance,
    # overridden or not (equal budgets, equal rule).
    lr = float(overrides.get("adjust_lr", CompressConfig.adjust_lr))
    tolerance = float(overrides.get("tolerance", CompressConfig.tolerance))
    weights = reference_checkpoint(model_name, dataset, seed, args.workdir)
    coefficients = tuple(round(dns_coefficient(keep), 3) for keep in DNS_KEEP[model_name])
    for method in args.baselines:
        config = baseline_config(
            model_name,
            dataset,
            lr=lr,
            method=method,
            stages=args.stages,
            stage_steps=budget // args.stages,
            tolerance=tolerance,
            dns_coefficients=coefficients,
            seed=seed,
        )
        # A finished baseline run with the same settings is reused, like the OLMP runs.
        cache = Path(args.workdir) / (
            f"baseline-{model_name}-{dataset}-{method}-seed-{seed}-"
            f"{config.stages}x{config.stage_steps}"
            + ("" if lr == CompressConfig.adjust_lr else f"-lr-{lr:g}")
            + ("" if tolerance == CompressConfig.tolerance else f"-tolerance-{tolerance:g}")
            + ("-c-" + "-".join(f"{c:g}" for c in coefficients) if method == "dns" else "")
            + ".json"
        )
        if cache.exists():
            result = json.loads(cache.read_text())
        else:
            if method.startswith("gmp-"):
                result = gradual_by_target(weights, config, cache)
            else:
                model, splits, _ = load_weights(weights)
                _, result = prune_baseline(model, splits, config)
            write_json_atomic(cache, result)
        rows.append(row_of(method, seed, result, result["retrain_steps"]))
        print(json.dumps(rows[-1]), flush=True)
    return rows


def gradual_by_target(weights: Path, config: BaselineConfig, cache: Path) -> dict:
    """A ``gmp-*`` baseline one target at a time, each cached beside ``cache`` as it ends,
    so a stopped benchmark keeps the targets it finished (a LeNet-5 target is 10-20 CPU
    minutes). Each target runs from the reference with the seed the all-targets run gives
    it, so the result is the same: the largest target that holds val, the steps of all."""
    results = []
    for ratio in sorted(config.gmp_ratios):
        part = cache.with_suffix(f".target-{ratio:g}.json")
        if part.exists():
            results.append(json.loads(part.read_text()))
            continue
        model, splits, _ = load_weights(weights)
        _, result = prune_baseline(model, splits, replace(config, gmp_ratios=(ratio,)))
        write_json_atomic(part, result)
        results.append(result)
    held = [r for r in results if r["history"][0]["feasible"]]
    chosen = dict(held[-1] if held else results[0])  # none held: the reference, as each says
    chosen["history"] = [entry for r in results for entry in r["history"]]
    chosen["best_stage"] = results.index(held[-1]) + 1 if held else 0
    chosen["stages_run"] = len(chosen["history"])
    chosen["retrain_steps"] = sum(r["retrain_steps"] for r in results)
    chosen["wall_time_s"] = sum(r["wall_time_s"] for r in results)
    chosen["config"] = asdict(config)
    return chosen


def plot(rows: list[dict], setting: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for method in dict.fromkeys(r["method"] for r in rows):
        sel = [r for r in rows if r["method"] == method]
        ax.scatter(
            [r["compression_ratio"] for r in sel],
            [100 * (r["test_accuracy"] - r["reference_test_accuracy"]) for r in sel],
            label=method,
            marker="*" if method.startswith("olmp") else "o",
            s=80,
        )
    ax.axhline(0, color="gray", linestyle="--", linewidth=1)
    ax.set_xscale("log")
    ax.set_xlabel("compression ratio (weights, log scale)")
    ax.set_ylabel("test accuracy - reference (points)")
    ax.set_title(f"{setting}: one point per method and seed")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setting", choices=SETTINGS, default=SETTINGS[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--solvers",
        nargs="+",
        default=["ncs", "cmaes", "random"],
        metavar="SOLVER",
        help="NAME or NAME:OPTION=VALUE[,...], e.g. ncs:r=0.8,epoch=2 beside ncs",
    )
    parser.add_argument(
        "--baselines", nargs="*", choices=METHODS, default=list(METHODS), help="none: OLMP only"
    )
    parser.add_argument("--stages", type=int, default=BaselineConfig.stages)
    parser.add_argument("--quick", action="store_true", help="1 seed, OLMP capped at 15 rounds")
    parser.add_argument("--workdir", default="/tmp/olmp-bench")
    parser.add_argument(
        "--tag",
        default="",
        help="suffix of the result files' names, to keep an earlier record of the setting",
    )
    add_overrides(parser, "override a CompressConfig field of the OLMP runs")
    args = parser.parse_args()
    args.solver_specs = solver_specs(parser, args.solvers)
    if args.quick:
        args.seeds = args.seeds[:1]
    info = machine()
    rows = [row for seed in args.seeds for row in run_seed(args.setting, seed, args)]

    print(
        f"\n`{info['command']}` — {info['cores']} cores ({info['torch_threads']} torch "
        f"threads), {info['cpu']}, torch {info['torch']}, {info['date']}, "
        f"commit {info['commit']}\n"
    )
    print(
        "| method | seeds | ratio (weights) | ratio (w+b) | val % - ref val % | test % | "
        "test % - ref test % | retrain steps | evaluations | time (s) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for method in dict.fromkeys(r["method"] for r in rows):
        sel = [r for r in rows if r["method"] == method]

        def s(key: str, fmt: str, scale: float = 1.0, rel: str | None = None) -> str:
            values = [scale * (r[key] - (r[rel] if rel else 0)) for r in sel]  # noqa: B023
            return spread(values, fmt)

        print(
            f"| {method} | {len(sel)} | {s('compression_ratio', '.1f')} | "
            f"{s('compression_ratio_with_biases', '.1f')} | "
            f"{s('val_accuracy', '+.1f', 100, 'reference_val_accuracy')} | "
            f"{s('test_accuracy', '.1f', 100)} | "
            f"{s('test_accuracy', '+.1f', 100, 'reference_test_accuracy')} | "
            f"{s('retrain_steps', '.0f')} | {s('evaluations', '.0f')} | "
            f"{s('wall_time_s', '.0f')} |"
        )
    medians = {
        m: statistics.median(r["compression_ratio"] for r in rows if r["method"] == m)
        for m in dict.fromkeys(r["method"] for r in rows)
    }
    solvers = {m: v for m, v in medians.items() if m.startswith("olmp")}
    others = {m: medians[m] for m in args.baselines}
    if "global" in others:
        best = max(solvers, key=solvers.get)
        print(
            f"\nOLMP's best solver ({best}) vs global magnitude pruning: "
            f"{solvers[best] / others['global']:.2f}x the compression (target >= 2x)"
        )
    if others:
        strongest = max(others, key=others.get)
        print(
            f"ahead of every baseline at the median (strongest: {strongest}, "
            f"{others[strongest]:.1f}x): "
            + ", ".join(
                f"{m} {'yes' if v > others[strongest] else 'no'}" for m, v in solvers.items()
            )
        )

    RESULTS.mkdir(exist_ok=True)
    stem = "compress_" + args.setting.replace("/", "_") + ("_quick" if args.quick else "")
    stem += "".join(f"_{k}-{v}" for k, v in args.set) + (f"_{args.tag}" if args.tag else "")
    with (RESULTS / f"{stem}.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (RESULTS / f"{stem}.json").write_text(json.dumps({"machine": info, "rows": rows}, indent=2))
    plot(rows, args.setting, RESULTS / f"{stem}.png")


if __name__ == "__main__":
    main()
