"""Benchmarks of ``olmp tune`` (BENCHMARKS.md, "Architecture search").

table: solvers x seeds on one dataset at equal trials, with a LeNet baseline trained with
the same per-trial budget; best val error, its test accuracy, failures, time.
speed: the wall time of 20 trials with 1 and 2 workers, alternated, median of --repeats.
retrain: for each seed, the best network (by val) any solver found with that seed, retrained
with the full recipe (all of train, the reference recipe's epochs and cosine decay, its own
optimiser settings), beside the references ``olmp train`` wrote (LeNet-5), both read once on test.
report: one table from several records of ``table`` (runs split over processes), with each
solver's seeds against random search (``uniform``) and the local random search (``random``).

Every run uses one torch thread per trial (the machine is shared).

    python benchmarks/tune.py table --dataset digits --solvers random,tpe,sracos,mads \\
        --seeds 0,1,2 --budget 20 --epochs 2
    python benchmarks/tune.py speed --dataset digits --budget 20 --epochs 2
    python benchmarks/tune.py report benchmarks/results/tune_fashion-mnist_seed*.json
    python benchmarks/tune.py retrain --dataset fashion-mnist --records R... --references REF...
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch
from _common import RESULTS, machine

from olmp import load_weights
from olmp.data import load_dataset
from olmp.files import load_checkpoint, write_json_atomic
from olmp.models import build_model
from olmp.plots import pyplot, save_figure
from olmp.training import accuracy
from olmp.tune import TuneSpace, tune
from olmp.tune.blackbox import subset, train_network, trial_key
from olmp.tune.records import best_so_far


def baseline(dataset: str, epochs: int, train_size: int | None, seed: int) -> dict:
    """LeNet-5 (LeNet-300-100 where images are smaller than 16x16) trained with the per-trial
    budget of the search: same epochs, same train subset, SGD lr 0.05, momentum 0.9."""
    splits = load_dataset(dataset, seed=0)
    name = "lenet-5" if splits.input_shape[-1] >= 16 else "lenet-300-100"
    torch.manual_seed(seed)
    net = build_model(name, splits.input_shape, splits.num_classes)
    recipe = {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4,
              "batch_size": 64}  # fmt: skip
    began = time.perf_counter()
    train_network(net, subset(splits.train, train_size, 0), recipe, epochs, seed)
    return {"model": name, "seed": seed, "val_accuracy": accuracy(net, splits.val),
            "test_accuracy": accuracy(net, splits.test),
            "seconds": round(time.perf_counter() - began, 2)}  # fmt: skip


def trajectory(out: Path, dataset: str, n: int) -> list[dict]:
    """Best val after each of the first ``n`` trials, and the test accuracy of that
    incumbent (benchmark only: needs every trial's weights)."""
    splits = load_dataset(dataset, seed=0)
    records = json.loads((out / "trials.json").read_text())[:n]
    curve, best, rows = best_so_far(records), None, []
    space = TuneSpace
    for r, val in zip(records, curve, strict=True):
        if r["state"] == "complete" and (best is None or r["val_accuracy"] > best["val_accuracy"]):
            best = r
            spec = space.architecture(r["settings"])
            state, _ = load_checkpoint(out / "weights" / f"{trial_key(r['settings'])}.safetensors")
            net = build_model("tuned-cnn", splits.input_shape, splits.num_classes, {"spec": spec})
            net.load_state_dict(state)
            net.eval()
            test = accuracy(net, splits.test)
        rows.append({"trial": len(rows) + 1, "best_val": val,
                     "test_of_best": None if best is None else test})  # fmt: skip
    return rows


def table(args: argparse.Namespace) -> None:
    path = Path(args.out or RESULTS / f"tune_{args.dataset}.json")
    result = json.loads(path.read_text()) if path.exists() and args.append else {}
    result.setdefault("runs", [])
    result.update(machine=machine(), settings=vars(args) | {"func": None})
    done = {(r["solver"], r["seed"]) for r in result["runs"]}
    for seed in [int(s) for s in args.seeds.split(",")]:
        for solver in args.solvers.split(","):
            if (solver, seed) in done:
                continue
            work = Path(tempfile.mkdtemp(prefix="tune-bench-"))
            summary = tune(args.dataset, work / "run", solver=solver, budget=args.budget,
                           epochs=args.epochs, train_size=args.train_size, seed=seed,
                           trial_time_limit=args.trial_time_limit, threads=1,
                           keep_weights=args.trajectory)  # fmt: skip
            records = json.loads((work / "run" / "trials.json").read_text())
            run = {"solver": solver, "seed": seed,
                   "best_val_accuracy": summary["best_val_accuracy"],
                   "test_accuracy": summary["test_accuracy"], "trials": summary["trials"],
                   "failed": summary["failed"], "seconds": summary["seconds"],
                   "curve": best_so_far(records), "best_spec": summary.get("best_spec"),
                   "best_recipe": summary.get("best_recipe"),
                   "errors": sorted({(r["error"] or "").split(" (")[0] for r in records
                                     if r["error"]})}  # fmt: skip
            if args.trajectory:
                run["trajectory"] = trajectory(work / "run", args.dataset, 20)
            result["runs"].append(run)
            print(json.dumps({k: run[k] for k in ("solver", "seed", "best_val_accuracy",
                                                  "test_accuracy", "failed", "seconds")}),
                  flush=True)  # fmt: skip
            shutil.rmtree(work)
            write_json_atomic(path, result)
    seeds = sorted({r["seed"] for r in result["runs"]})
    result["baseline"] = [baseline(args.dataset, args.epochs, args.train_size, s) for s in seeds]
    write_json_atomic(path, result)
    print(markdown(result))


def against(runs: list[dict], baseline: str) -> list[str]:
    """Per solver: median best val error, and on how many seeds it is below ``baseline``'s
    (same seed, same trials), level with it, above it."""
    error = {(r["solver"], r["seed"]): 1 - r["best_val_accuracy"] for r in runs}
    lines = []
    for solver in dict.fromkeys(r["solver"] for r in runs):
        if solver == baseline:
            continue
        pairs = [(error[solver, s], error[baseline, s]) for (n, s) in error
                 if n == solver and (baseline, s) in error]  # fmt: skip
        if not pairs:
            continue
        below = sum(a < b for a, b in pairs)
        level = sum(a == b for a, b in pairs)
        lines.append(
            f"- {solver} against {baseline}: median {statistics.median(a for a, _ in pairs):.4f} "
            f"against {statistics.median(b for _, b in pairs):.4f}; below on {below}, level on "
            f"{level}, above on {len(pairs) - below - level} of {len(pairs)} seeds"
        )
    return lines


def retrain(args: argparse.Namespace) -> None:
    runs = [r for name in args.records for r in json.loads(Path(name).read_text())["runs"]]
    splits = load_dataset(args.dataset, seed=0)
    result = {"machine": machine(), "settings": vars(args) | {"func": None},
              "retrained": [], "references": []}  # fmt: skip
    path = Path(args.out or RESULTS / f"tune_retrain_{args.dataset}.json")
    for seed in [int(s) for s in args.seeds.split(",")]:
        best = max((r for r in runs if r["seed"] == seed), key=lambda r: r["best_val_accuracy"])
        torch.manual_seed(seed)
        net = build_model("tuned-cnn", splits.input_shape, splits.num_classes,
                          {"spec": best["best_spec"]})  # fmt: skip
        began = time.perf_counter()
        train_network(net, splits.train, best["best_recipe"], args.epochs, seed, cosine=True)
        result["retrained"].append({"seed": seed, "solver": best["solver"],
                                    "search_val_accuracy": best["best_val_accuracy"],
                                    "spec": best["best_spec"], "recipe": best["best_recipe"],
                                    "val_accuracy": accuracy(net, splits.val),
                                    "test_accuracy": accuracy(net, splits.test),
                                    "seconds": round(time.perf_counter() - began, 1)})  # fmt: skip
        print(json.dumps(result["retrained"][-1]), flush=True)
        write_json_atomic(path, result)
    for name in args.references:
        net, ref_splits, meta = load_weights(name)
        result["references"].append({"path": name, "model": meta["model"],
                                     "recipe": meta.get("recipe"),
                                     "val_accuracy": accuracy(net, ref_splits.val),
                                     "test_accuracy": accuracy(net, ref_splits.test)})  # fmt: skip
    write_json_atomic(path, result)
    print(json.dumps({k: result[k] for k in ("retrained", "references")}))


def report(args: argparse.Namespace) -> None:
    """Merge the records named (one per process) and print the table and comparisons."""
    merged: dict = {"runs": [], "baseline": [], "sources": []}
    seeds_with_baseline = set()
    for name in args.records:
        record = json.loads(Path(name).read_text())
        merged["runs"] += record["runs"]
        for entry in record.get("baseline", []):  # one per seed (records may share a seed)
            if entry.get("seed") not in seeds_with_baseline:
                merged["baseline"].append(entry)
            if "seed" in entry:
                seeds_with_baseline.add(entry["seed"])
        merged["sources"].append({"path": name, "machine": record["machine"],
                                  "settings": record["settings"]})  # fmt: skip
    merged["runs"].sort(key=lambda r: r["seed"])  # stable: solvers stay in their order
    print(markdown(merged))
    for baseline in ("uniform", "random"):
        print("\n".join(against(merged["runs"], baseline)))
    mads = [r for r in merged["runs"] if r["solver"] == "mads" and r.get("trajectory")]
    if mads:  # beside HyperNOMAD's released example (its test accuracy over 20 trials)
        marks = (1, 5, 10, 15, 20)
        print("| trials | " + " | ".join(map(str, marks)) + " |")
        print("|---|" + "---|" * len(marks))
        for key, label in (("best_val", "MADS, best val"), ("test_of_best", "its test")):
            cells = [statistics.median(r["trajectory"][m - 1][key] for r in mads) for m in marks]
            print(f"| {label} (median of {len(mads)}) | "
                  + " | ".join(f"{100 * c:.2f} %" for c in cells) + " |")  # fmt: skip
    if args.out:
        write_json_atomic(args.out, merged)
    if args.plot:
        plot_curves(merged["runs"], args.plot)


def plot_curves(runs: list[dict], path: str) -> None:
    """Median over seeds of the best val error after each trial, one line per solver."""
    fig, ax = pyplot().subplots(figsize=(6, 4))
    for solver in dict.fromkeys(r["solver"] for r in runs):
        curves = [r["curve"] for r in runs if r["solver"] == solver]
        n = min(len(c) for c in curves)
        # NaN before a seed's first complete trial: counted as error 1
        median = [statistics.median(1 - (0.0 if math.isnan(c[i]) else c[i]) for c in curves)
                  for i in range(n)]  # fmt: skip
        ax.step(range(1, n + 1), median, where="post", label=f"{solver} ({len(curves)} seeds)")
    ax.set_xlabel("trials")
    ax.set_ylabel("best val error (median over seeds)")
    ax.set_ylim(top=min(ax.get_ylim()[1], 0.5))
    ax.legend()
    save_figure(fig, path)


def _row(label: str, val: list[float], test: list[float], seconds: list[float], failed: str) -> str:
    """One table row: median val error and per seed, median test accuracy, time."""
    errors = [1 - v for v in val]
    per = ", ".join(f"{e:.4f}" for e in errors)
    return (
        f"| {label} | {statistics.median(errors):.4f} | {per} | "
        f"{statistics.median(test):.4f} | {failed} | {statistics.median(seconds):.0f} |"
    )


def markdown(result: dict) -> str:
    runs, baselines = result["runs"], result.get("baseline", [])
    lines = ["| solver | median best val error | per seed | median test acc. of best | "
             "failed trials | median time (s) |", "|---|---|---|---|---|---|"]  # fmt: skip
    for s in dict.fromkeys(r["solver"] for r in runs):
        mine = [r for r in runs if r["solver"] == s]
        failed = f"{sum(r['failed'] for r in mine)}/{sum(r['trials'] for r in mine)}"
        val, test = [r["best_val_accuracy"] for r in mine], [r["test_accuracy"] for r in mine]
        lines.append(_row(s, val, test, [r["seconds"] for r in mine], failed))
    for model in dict.fromkeys(b["model"] for b in baselines):
        mine = [b for b in baselines if b["model"] == model]
        val, test = [b["val_accuracy"] for b in mine], [b["test_accuracy"] for b in mine]
        seconds = [b["seconds"] for b in mine]
        lines.append(_row(f"{model}, same per-trial budget", val, test, seconds, ""))
    return "\n".join(lines)


#: The speed test fixes the network and batch size, so that every trial costs the same
#: whatever the solver proposes (with 2 workers the random solver asks other points).
FIXED_ARCHITECTURE = {"conv_layers": 2, "conv_channels": 16, "conv_kernel": 3, "conv_stride": 1,
                      "conv_padding": 1, "conv_pool": True, "fc_layers": 1, "fc_size": 64,
                      "batch_size": 32, "optimizer": "sgd"}  # fmt: skip


def speed(args: argparse.Namespace) -> None:
    """1 and 2 workers in turn, ``--repeats`` times (the first run also warms the caches
    of the process, so the two are alternated and the medians compared)."""
    seconds: dict[int, list[float]] = {1: [], 2: []}
    for repeat in range(args.repeats):
        for n_jobs in (1, 2):
            work = Path(tempfile.mkdtemp(prefix="tune-speed-"))
            began = time.perf_counter()
            summary = tune(args.dataset, work / "run", solver="random", budget=args.budget,
                           epochs=args.epochs, train_size=args.train_size, seed=repeat,
                           n_jobs=n_jobs, threads=1, space=FIXED_ARCHITECTURE)  # fmt: skip
            seconds[n_jobs].append(round(time.perf_counter() - began, 2))
            shutil.rmtree(work)
            print(n_jobs, seconds[n_jobs][-1], summary["trials"], flush=True)
    rows = {n: {"seconds": values, "median": statistics.median(values)}
            for n, values in seconds.items()}  # fmt: skip
    result = {"machine": machine(), "settings": vars(args) | {"func": None}, "workers": rows,
              "ratio": rows[2]["median"] / rows[1]["median"]}  # fmt: skip
    Path(args.out or RESULTS / f"tune_speed_{args.dataset}.json").write_text(
        json.dumps(result, indent=1)
    )
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(required=True)
    for name, func in (("table", table), ("speed", speed)):
        p = sub.add_parser(name)
        p.add_argument("--dataset", default="digits")
        p.add_argument("--solvers", default="uniform,random,tpe,sracos,mads")
        p.add_argument("--seeds", default="0,1,2")
        p.add_argument("--budget", type=int, default=20)
        p.add_argument("--epochs", type=int, default=2)
        p.add_argument("--train-size", type=int)
        p.add_argument("--trial-time-limit", type=float)
        p.add_argument("--trajectory", action="store_true")
        p.add_argument("--append", action="store_true")
        p.add_argument("--repeats", type=int, default=3)
        p.add_argument("--out")
        p.set_defaults(func=func)
    p = sub.add_parser("retrain")
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--records", nargs="+", required=True)
    p.add_argument("--references", nargs="*", default=[])
    p.add_argument("--epochs", type=int, default=20, help="LeNet-5's fashion-mnist recipe")
    p.add_argument("--seeds", default="0")
    p.add_argument("--out")
    p.set_defaults(func=retrain)
    p = sub.add_parser("report")
    p.add_argument("records", nargs="+")
    p.add_argument("--out", help="write the merged record here")
    p.add_argument("--plot", help="write the best-val curves here (PNG)")
    p.set_defaults(func=report)
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.func(args)


if __name__ == "__main__":
    main()
