"""What sequential racing saves, and what it gets wrong, on the candidates of real searches.

An exact OLMP run (the defaults, a few rounds) is made on the reference network of a
setting, and every population its searches score is logged with the network it was scored
on and the search's accuracy requirement. Then, in the same process, each logged
population is scored again on the tune split by `olmp.pruning.evaluate.PopulationEvaluator`
exactly (`racing_z=None`: a candidate stops only when it can no longer reach the
requirement) and with the sequential test at each `--z`. Reported per z: candidates per
second and the speed-up over exact, the share of tune samples scored, the feasibility
decisions that differ from the exact ones, and whether the smallest feasible candidate of
each round is still the same.

    python benchmarks/racing.py --quick                               # mnist-5k, 2 rounds
    python benchmarks/racing.py --setting lenet-5/fashion-mnist --rounds 3 \\
        --json benchmarks/results/racing_lenet-5.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from _common import SETTINGS, machine, reference_checkpoint

from olmp.compression import CompressConfig, compress
from olmp.pruning.evaluate import PopulationEvaluator
from olmp.pruning.layers import find_prunable_layers
from olmp.pruning.thresholds import KeepRatio
from olmp.reference import load_weights
from olmp.task import SplitsTask
from olmp.training import default_recipe


class LoggingTask(SplitsTask):
    """A SplitsTask that keeps every population its searches score (exactly)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.log: list[dict] = []  # per round: the weights, its populations and floors

    def population_scorer(self, model, layers, prune_biases):
        scorer = super().population_scorer(model, layers, prune_biases)
        entry = {
            "state": {k: v.detach().clone() for k, v in model.state_dict().items()},
            "thresholds": [],
            "floors": [],
        }
        self.log.append(entry)

        def logged(thresholds, floor=None):
            if floor is not None:
                entry["thresholds"].append(thresholds.clone())
                entry["floors"].append(floor)
            return scorer(thresholds, floor=floor)

        return logged


def score_round(model, layers, tune, entry, z, sizes) -> dict:
    """Score one logged round's populations with ``racing_z=z``; decisions and time."""
    model.load_state_dict(entry["state"])
    evaluator = PopulationEvaluator(model, layers, tune, racing_z=z)
    # Samples scored: every forward pass goes through _predict (CPU) on one batch.
    counted = {"samples": 0}
    original = evaluator._predict

    def counting(params, x, shared):
        counted["samples"] += len(x)
        return original(params, x, shared)

    evaluator._predict = counting
    feasible, started = [], time.perf_counter()
    for thresholds, floor in zip(entry["thresholds"], entry["floors"], strict=True):
        feasible.append(evaluator.accuracies(thresholds, floor=floor) >= floor)
    seconds = time.perf_counter() - started
    feasible = np.concatenate(feasible)
    candidates = len(feasible)
    smallest = np.where(feasible, sizes, np.inf)
    return {
        "seconds": seconds,
        "candidates": candidates,
        "samples_share": counted["samples"] / (candidates * len(tune)),
        "feasible": feasible,
        "best": int(np.argmin(smallest)) if np.isfinite(smallest).any() else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setting", default=SETTINGS[0], choices=SETTINGS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=3, help="exact OLMP rounds to log")
    parser.add_argument("--z", type=float, nargs="+", default=[2.0, 3.0, 4.0])
    parser.add_argument("--quick", action="store_true", help="mnist-5k, 2 rounds")
    parser.add_argument("--workdir", default="/tmp/olmp-bench")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    if args.quick:
        args.setting, args.rounds = "lenet-300-100/mnist-5k", 2
    model_name, dataset = args.setting.split("/")
    info = machine()
    weights = reference_checkpoint(model_name, dataset, args.seed, args.workdir)
    model, splits, _ = load_weights(weights)
    recipe = default_recipe(model_name, dataset)
    config = replace(
        CompressConfig(seed=args.seed), max_rounds=args.rounds, final_steps=0
    ).resolved(recipe, train_size=len(splits.train))
    task = LoggingTask(splits, batch_size=config.batch_size, augment_shift=config.augment_shift)
    compress(model, task=task, config=config)  # the rounds whose candidates are replayed

    layers = find_prunable_layers(model)
    total = sum(layer.n_weights for layer in layers)
    rows = []
    exact_runs = []
    for entry in task.log:
        if not entry["thresholds"]:
            continue
        thresholds = torch.cat(entry["thresholds"])
        model.load_state_dict(entry["state"])  # sizes are those of this round's weights
        magnitudes = [layer.module.weight.detach().abs() for layer in layers]
        kept = KeepRatio(magnitudes).kept_counts(thresholds).sum(1)
        entry["sizes"] = (kept.double() / total).numpy()
        exact_runs.append(score_round(model, layers, splits.tune, entry, None, entry["sizes"]))
    for z in [None, *args.z]:
        runs = (
            exact_runs
            if z is None
            else [
                score_round(model, layers, splits.tune, entry, z, entry["sizes"])
                for entry in task.log
                if entry["thresholds"]
            ]
        )
        seconds = sum(r["seconds"] for r in runs)
        candidates = sum(r["candidates"] for r in runs)
        differ = sum(
            int((r["feasible"] != e["feasible"]).sum())
            for r, e in zip(runs, exact_runs, strict=True)
        )
        wrongly_feasible = sum(
            int((r["feasible"] & ~e["feasible"]).sum())
            for r, e in zip(runs, exact_runs, strict=True)
        )
        same_best = sum(r["best"] == e["best"] for r, e in zip(runs, exact_runs, strict=True))
        rows.append(
            {
                "z": z,
                "candidates": candidates,
                "candidates_per_s": candidates / seconds,
                "samples_share": statistics.fmean(r["samples_share"] for r in runs),
                "decisions_differing": differ,
                "wrongly_feasible": wrongly_feasible,
                "rounds_same_best": same_best,
                "rounds": len(runs),
            }
        )
    exact_speed = rows[0]["candidates_per_s"]
    print(
        f"`{info['command']}` — {info['cores']} cores ({info['torch_threads']} torch threads), "
        f"{info['cpu']}, torch {info['torch']}, {info['date']}, commit {info['commit']}\n"
    )
    print(
        "| racing | candidates | cand/s | speed-up | tune samples scored | decisions differing "
        "| of which wrongly feasible | rounds with the same smallest feasible |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        name = "exact" if row["z"] is None else f"z = {row['z']:g}"
        print(
            f"| {name} | {row['candidates']} | {row['candidates_per_s']:.1f} | "
            f"{row['candidates_per_s'] / exact_speed:.2f} | {100 * row['samples_share']:.0f} % | "
            f"{row['decisions_differing']} | {row['wrongly_feasible']} | "
            f"{row['rounds_same_best']} / {row['rounds']} |"
        )
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
