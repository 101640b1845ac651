"""FNNC (``olmp fair train``) against fairlearn's reductions, on the same splits.

    OMP_NUM_THREADS=1 python benchmarks/fair.py run --peer-python /tmp/fairenv/bin/python
    python benchmarks/fair.py report

``run``: for Adult (sex) and COMPAS (race), demographic parity (dp) and equalized odds
(eo), epsilon 0.01 / 0.05 / 0.1 and seeds 0-4, FNNC through :func:`olmp.fair.fair_train`
at its defaults. Each (dataset, seed) split is exported once to an ``.npz`` (features,
labels, groups of train / val / test, and FNNC's test predictions), and
``benchmarks/fair_fairlearn.py`` runs the peers on it in fairlearn's own environment
(``python3.11 -m venv /tmp/fairenv && /tmp/fairenv/bin/pip install fairlearn==0.15.*
torch==2.13.0``; it never imports olmp): ``ExponentiatedGradient`` with
``DemographicParity`` / ``EqualizedOdds`` at the same epsilon around logistic regression
and around the same MLP (100-100 hidden), and ``ThresholdOptimizer`` around logistic
regression; fairlearn's own metrics are computed on FNNC's predictions as a cross-check of
ours. Records: ``benchmarks/results/fair_fnnc.json`` and ``fair_peers.json`` (each run is
kept, so an interrupted ``run`` resumes).

``speed``: wall time of the check's command, ``olmp fair train --dataset adult --protected
sex --constraint dp --epsilon 0.05`` (its defaults), for seeds 0-2, with the machine's
load average (record ``fair_speed.json``).

``compress [--tolerance T]``: OLMP on a LeNet-style MLP (``lenet-300-100``) trained on Adult by
FNNC at ``dp <= 0.04`` (sex; :data:`REFERENCE_DP`, so that it meets 0.05), seeds 0-4, compressed
at the defaults (or at ``--tolerance``, a variant) without and with ``--constraint dp<=0.05
--protected sex`` (``olmp.compress(..., constraints=...)``); record ``fair_compress.json`` (the
two tolerances may run side by side, in one workdir: neither loses the other's runs). Each
unconstrained result is also *made fair*: retrained with its masks fixed as a constrained run
retrains (``FairTask``, the final fine-tuning's steps and rate), to see whether its sparsity
could meet the constraint at the accuracy it kept. A third run per seed compresses, without the
constraint, a reference of its own: trained by FNNC the same way but at ``dp <= 1`` (a bound no
network breaks, so plain training), so each network is held to the accuracy of a reference
trained under its own rules.

``floor``: what a classifier with **no** group difference reads on these test splits: for
each exported split and FNNC prediction set, the groups are shuffled (over all rows for dp,
within each label for eo, which keeps each group's base rate), 200 times; the median of
that test value is what sampling alone reads on a split of that size (record
``fair_floor.json``).

``retrain``: why the compression's reference is trained inside the constraint. Each reference
FNNC trains at ``dp <= 0.05`` itself (seeds 0-4) is retrained **dense**, unpruned, as a
constrained round retrains (``FairTask.retrain``, the default steps and rate): its val accuracy
and train + val dp against the reference's, beside what FNNC's epoch selection did (how many
of its 40 epochs met epsilon on train + val, their median val accuracy, the kept one's). A
round must match the reference's val accuracy at tolerance 0; record ``fair_retrain.json``.

``report``: the tables of BENCHMARKS.md (medians and ranges over seeds) and
``benchmarks/results/fair_fronts.png`` (test accuracy against the test constraint value).
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import RESULTS, machine

from olmp import CompressConfig
from olmp.data import DatasetSplits, load_tabular
from olmp.fair import fair_train, fairness_report
from olmp.fair.compress import FairTask
from olmp.fair.metrics import constraint_value
from olmp.fair.train import predict
from olmp.files import load_checkpoint, write_json_atomic
from olmp.models import build_model
from olmp.plots import pyplot, save_figure
from olmp.pruning import apply_masks, find_prunable_layers, remove_masks

JOBS = {"adult": "sex", "compas": "race"}
CONSTRAINTS = ("dp", "eo")
EPSILONS = (0.01, 0.05, 0.1)
SEEDS = (0, 1, 2, 3, 4)
FNNC = RESULTS / "fair_fnnc.json"
PEERS = RESULTS / "fair_peers.json"
HERE = Path(__file__).resolve().parent


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.exists() else {"runs": [], "machines": []}


def _export(dataset: str, seed: int, work: Path, data_dir: str | None) -> Path:
    """The split's arrays, and FNNC's test predictions for every (constraint, epsilon)."""
    splits = load_tabular(dataset, seed=seed, data_dir=data_dir)
    protected = JOBS[dataset]
    arrays: dict[str, np.ndarray] = {}
    for part in ("train", "val", "test"):
        split = getattr(splits, part)
        arrays[f"x_{part}"] = split.x.numpy()
        arrays[f"y_{part}"] = split.y.numpy()
        arrays[f"g_{part}"] = split.groups[protected].numpy()
    for constraint in CONSTRAINTS:
        for eps in EPSILONS:
            tensors, meta = load_checkpoint(
                work / f"{dataset}-{constraint}-{seed}" / f"eps-{eps:g}" / "model.safetensors"
            )
            model = build_model(meta["model"], tuple(meta["input_shape"]), meta["num_classes"])
            model.load_state_dict(tensors)
            model.eval()
            with torch.no_grad():
                pred = model(splits.test.x).argmax(1)
            ours = fairness_report(pred, splits.test.y, splits.test.groups[protected])
            arrays[f"fnnc_{constraint}_{eps:g}"] = pred.numpy()
            arrays[f"olmp_fnnc_{constraint}_{eps:g}"] = np.array(
                [ours["dp_difference"], ours["eo_difference"]], dtype=np.float64
            )
    path = work / f"{dataset}-{seed}.npz"
    np.savez_compressed(path, **arrays)
    return path


def run(args: argparse.Namespace) -> None:
    record = _load(FNNC)
    record["machines"].append(machine())
    done = {(r["dataset"], r["constraints"][0], r["epsilon"], r["seed"]) for r in record["runs"]}
    work = Path(args.workdir)
    for dataset, protected in JOBS.items():
        for seed in SEEDS:
            for constraint in CONSTRAINTS:
                out = work / f"{dataset}-{constraint}-{seed}"
                if all((dataset, constraint, e, seed) in done for e in EPSILONS) and out.exists():
                    continue
                summaries = fair_train(
                    dataset, out, protected=protected, constraints=[constraint],
                    epsilons=EPSILONS, seed=seed, data_dir=args.data_dir,
                    resume=(out / "fair.json").exists(),
                )  # fmt: skip
                for s in summaries:
                    if (dataset, constraint, s["epsilon"], seed) not in done:
                        record["runs"].append(s)
                write_json_atomic(FNNC, record)
                print(f"fnnc {dataset} {constraint} seed {seed}: done", flush=True)
            npz = _export(dataset, seed, work, args.data_dir)
            if args.peer_python:
                subprocess.run(
                    [args.peer_python, str(HERE / "fair_fairlearn.py"), str(npz), str(PEERS),
                     dataset, str(seed)],
                    check=True,
                )  # fmt: skip


#: The dp bound of the constrained runs (and of the references ``retrain`` examines), and
#: that of a reference trained without a binding constraint (no network's dp exceeds 1).
FAIR_DP, FREE_DP = 0.05, 1.0
#: The fair reference is trained by FNNC at this epsilon, inside the constraint it is held to
#: (dp <= FAIR_DP): FNNC aims at epsilon itself, and trained at 0.05 two of five references
#: broke 0.05 on train + val, where a compressed network is judged (see ``retrain``).
REFERENCE_DP = 0.04
#: A compression benchmark's runs per seed: (under the constraint?, the bound its reference
#: was trained at). The fair reference is compressed without and with the constraint; the
#: last run compresses the free reference without it.
COMPRESS_RUNS = ((False, REFERENCE_DP), (True, REFERENCE_DP), (False, FREE_DP))


def compress_runs(args: argparse.Namespace) -> None:
    import olmp

    path = RESULTS / "fair_compress.json"
    this_machine = machine()
    done = {_run_key(r) for r in _load(path)["runs"]}
    work = Path(args.workdir)
    for seed, (constrained, reference_eps) in itertools.product(SEEDS, COMPRESS_RUNS):
        if (seed, constrained, args.tolerance, reference_eps) in done:
            continue
        reference = _reference(work, seed, args.data_dir, reference_eps)
        model, splits, _ = olmp.load_weights(reference, data_dir=args.data_dir)
        extra = {"constraints": [f"dp<={FAIR_DP}"], "protected": "sex"} if constrained else {}
        config = olmp.CompressConfig(tolerance=args.tolerance)
        pruned, result = olmp.compress(model, splits, config, **extra)
        # Measured the same way for every run (the unconstrained ones record none).
        measured = {
            part: fairness_report(
                predict(pruned, getattr(splits, part).x),
                getattr(splits, part).y,
                getattr(splits, part).groups["sex"],
            )
            for part in ("val", "test")
        }
        made_fair = None
        if not constrained and reference_eps == REFERENCE_DP:
            made_fair = _made_fair(pruned, splits, config, result)
        _append_run(
            path,
            this_machine,
            {
                "seed": seed,
                "constrained": constrained,
                "made_fair": made_fair,
                "tolerance": args.tolerance,
                "reference_epsilon": reference_eps,
                "compression_ratio": result["compression_ratio"],
                "reference_test_accuracy": result["reference_test_accuracy"],
                "test_accuracy": result["test_accuracy"],
                "reference_val_accuracy": result["reference_val_accuracy"],
                "val_accuracy": result["val_accuracy"],
                "val_dp_difference": measured["val"]["dp_difference"],
                "test_dp_difference": measured["test"]["dp_difference"],
                "wall_time_s": result["wall_time_s"],
                "constraints": result.get("constraints"),
            },
        )


def retrain(args: argparse.Namespace) -> None:
    import olmp

    record: dict[str, Any] = {"machine": machine(), "seeds": {}}
    for seed in SEEDS:
        weights = _reference(Path(args.workdir), seed, args.data_dir, FAIR_DP)
        model, splits, _ = olmp.load_weights(weights, data_dir=args.data_dir)
        # What olmp.compress runs on this reference.
        config = CompressConfig().resolved(None, constrained=True, train_size=len(splits.train))
        record.update(steps=config.adjust_steps, lr=config.adjust_lr, batch_size=config.batch_size)
        task = FairTask(
            splits, protected="sex", constraints={"dp": FAIR_DP}, batch_size=config.batch_size
        )
        before = task.constraint_report(model, "val")
        task.retrain(model, steps=config.adjust_steps, lr=config.adjust_lr, seed=0, on_step=None)
        after = task.constraint_report(model, "val")
        history = _load(weights.parent / "result.json")["history"]
        feasible = [e["val"]["accuracy"] for e in history if e["violation"] <= 0]
        record["seeds"][str(seed)] = {
            "reference": {"val_accuracy": before["accuracy"],
                          "train_and_val_dp": before["train_and_val"]["dp_difference"]},
            "retrained": {"val_accuracy": after["accuracy"],
                          "train_and_val_dp": after["train_and_val"]["dp_difference"]},
            "epochs": len(history),
            "epochs_meeting_epsilon": len(feasible),
            "median_val_accuracy_of_those": statistics.median(feasible) if feasible else None,
        }  # fmt: skip
        print(seed, record["seeds"][str(seed)], flush=True)
    write_json_atomic(RESULTS / "fair_retrain.json", record)


def _reference(work: Path, seed: int, data_dir: str | None, epsilon: float) -> Path:
    """The weights of FNNC's reference of ``seed`` at ``dp <= epsilon`` in ``work``, trained
    once: in a folder of this process's own, then renamed into place, so that two benchmarks
    sharing ``work`` (the tolerances side by side) never write into one folder."""
    reference = (
        work / f"compress-ref-{seed}"
        if epsilon == FAIR_DP
        else work / f"compress-ref-{seed}-eps{epsilon:g}"
    )
    trained = reference / f"eps-{epsilon:g}"
    if (trained / "result.json").exists():
        return trained / "model.safetensors"
    scratch = work / f"{reference.name}.{os.getpid()}"
    fair_train(
        "adult", scratch, protected="sex", epsilons=[epsilon], seed=seed,
        model="lenet-300-100", data_dir=data_dir, force=True,
    )  # fmt: skip
    try:
        scratch.rename(reference)
    except OSError:  # another process's reference (the same seed, the same network) got there
        shutil.rmtree(scratch)
        if not (trained / "result.json").exists():
            raise SystemExit(f"{reference} exists but holds no reference: remove it") from None
    return trained / "model.safetensors"


def _append_run(path: Path, this_machine: dict[str, str], run: dict[str, Any]) -> None:
    """Add ``run`` to the record at ``path``, read afresh, so that what another process
    wrote meanwhile (the other tolerance) is kept; the machine is listed once per process."""
    record = _load(path)
    if this_machine not in record["machines"]:
        record["machines"].append(this_machine)
    record["runs"].append(run)
    write_json_atomic(path, record)
    print(run, flush=True)


def _made_fair(
    pruned: torch.nn.Module, splits: DatasetSplits, config: CompressConfig, result: dict[str, Any]
) -> dict[str, float]:
    """A copy of the unconstrained result retrained under ``dp <= 0.05`` with its zeros
    kept (FairTask's primal-dual steps, as many as the final fine-tuning, at its rate):
    val accuracy and the dp the constraint is judged by, test accuracy and dp."""
    model = copy.deepcopy(pruned)
    task = FairTask(
        splits,
        protected="sex",
        constraints={"dp": FAIR_DP},
        batch_size=result["config"]["batch_size"],
    )
    layers = find_prunable_layers(model)
    masks = {layer.weight_name: layer.module.weight.detach() != 0 for layer in layers}
    apply_masks(layers, masks, straight_through=False)
    task.retrain(model, steps=config.final_steps, lr=config.final_lr, seed=0, on_step=None)
    remove_masks(layers, bake=True)
    val, test = task.constraint_report(model, "val"), task.constraint_report(model, "test")
    return {
        "val_accuracy": val["accuracy"],
        "train_and_val_dp_difference": val["train_and_val"]["dp_difference"],
        "test_accuracy": test["accuracy"],
        "test_dp_difference": test["dp_difference"],
    }


def speed(args: argparse.Namespace) -> None:
    import time

    runs = []
    for seed in (0, 1, 2):
        with tempfile.TemporaryDirectory() as work:
            began = time.perf_counter()
            [summary] = fair_train(
                "adult", Path(work) / "run", protected="sex", seed=seed, data_dir=args.data_dir
            )
            seconds = time.perf_counter() - began
        runs.append(
            {
                "seed": seed,
                "seconds": round(seconds, 2),
                "load": os.getloadavg()[0],
                "epochs_run": summary["epochs_run"],
                "accuracy": summary["accuracy"],
            }
        )
        print(runs[-1], flush=True)
    write_json_atomic(
        RESULTS / "fair_speed.json",
        {"machine": machine(), "torch_threads": torch.get_num_threads(), "runs": runs},
    )


PERMUTATIONS = 200


def floor(args: argparse.Namespace) -> None:
    rng = np.random.default_rng(0)
    runs = []
    for dataset, seed in itertools.product(JOBS, SEEDS):
        data = np.load(Path(args.workdir) / f"{dataset}-{seed}.npz")
        for constraint, eps in itertools.product(CONSTRAINTS, EPSILONS):
            values = _shuffled_values(data, constraint, data[f"fnnc_{constraint}_{eps:g}"], rng)
            runs.append(
                {
                    "dataset": dataset, "seed": seed, "constraint": constraint, "epsilon": eps,
                    "median": float(np.median(values)), "p90": float(np.quantile(values, 0.9)),
                }
            )  # fmt: skip
    write_json_atomic(RESULTS / "fair_floor.json", {"machine": machine(), "runs": runs})
    for dataset, constraint in itertools.product(JOBS, CONSTRAINTS):
        cell = [r for r in runs if r["dataset"] == dataset and r["constraint"] == constraint]
        print(
            f"{dataset} {constraint}: a classifier with no group difference reads "
            f"{_median_range([r['median'] for r in cell], '.4f')} on test (90th percentile "
            f"{_median_range([r['p90'] for r in cell], '.4f')})"
        )


def _shuffled_values(
    data: Any, constraint: str, predictions: np.ndarray, rng: np.random.Generator
) -> list[float]:
    """``constraint``'s test value of ``predictions`` with the groups shuffled
    :data:`PERMUTATIONS` times: over all rows for dp (no link between group and anything),
    within each label for eo (none given the label)."""
    labels, groups = data["y_test"], data["g_test"]
    blocks = [np.arange(len(groups))] if constraint == "dp" else [labels == v for v in (0, 1)]
    values = []
    for _ in range(PERMUTATIONS):
        shuffled = groups.copy()
        for rows in blocks:
            shuffled[rows] = rng.permutation(groups[rows])
        measured = fairness_report(
            torch.from_numpy(predictions), torch.from_numpy(labels), torch.from_numpy(shuffled)
        )
        values.append(constraint_value(measured, [constraint]))
    return values


def _median_range(values: list[float], fmt: str = ".3f") -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"


def report(args: argparse.Namespace) -> None:
    ours, peers = _load(FNNC)["runs"], _load(PEERS)["runs"]
    rows: dict[tuple[str, str, float, str], list[dict[str, float]]] = {}
    for r in ours:
        key = (r["dataset"], r["constraints"][0], r["epsilon"], "FNNC (olmp fair train)")
        rows.setdefault(key, []).append({"accuracy": r["accuracy"], "value": r["constraint_value"]})
    for r in peers:
        if r["method"] == "crosscheck":
            continue
        key = (r["dataset"], r["constraint"], r.get("epsilon") or 0.0, r["method"])
        rows.setdefault(key, []).append({"accuracy": r["accuracy"], "value": r["value"]})
    header = "dataset | constraint | epsilon | method | seeds | test accuracy | test value"
    print(f"| {header} | runs within epsilon + 0.01 |")
    print("|---|---|---|---|---|---|---|---|")
    for (dataset, constraint, eps, method), cell in sorted(rows.items()):
        within = sum(c["value"] <= eps + 0.01 for c in cell) if eps else "-"
        print(
            f"| {dataset} ({JOBS[dataset]}) | {constraint} | {eps or '-'} | {method} | "
            f"{len(cell)} | "
            f"{_median_range([c['accuracy'] for c in cell])} | "
            f"{_median_range([c['value'] for c in cell], '.4f')} | {within} |"
        )
    print()
    print("FNNC minus ExponentiatedGradient(MLP) at the same epsilon, median test accuracy:")
    for dataset in JOBS:
        for constraint in CONSTRAINTS:
            for eps in EPSILONS:
                a = rows.get((dataset, constraint, eps, "FNNC (olmp fair train)"), [])
                b = rows.get((dataset, constraint, eps, "ExponentiatedGradient(MLP)"), [])
                if a and b:
                    gap = statistics.median(c["accuracy"] for c in a) - statistics.median(
                        c["accuracy"] for c in b
                    )
                    print(f"- {dataset} {constraint} eps {eps}: {100 * gap:+.2f}")
    checks = [r for r in peers if r["method"] == "crosscheck"]
    if checks:
        worst = max(r["max_abs_difference"] for r in checks)
        print(
            f"\nfairlearn's metrics on FNNC's test predictions against ours: {len(checks)} "
            f"prediction sets, largest absolute difference {worst:.2e}"
        )
    _plot_fronts(rows)
    _compress_table()
    speed_record = RESULTS / "fair_speed.json"
    if speed_record.exists():
        runs = json.loads(speed_record.read_text())["runs"]
        print(
            "\nolmp fair train (adult, dp 0.05): median "
            f"{statistics.median(r['seconds'] for r in runs):.1f} s "
            f"over seeds {[r['seed'] for r in runs]} (load {[round(r['load'], 1) for r in runs]})"
        )


def _tolerance(run: dict[str, Any]) -> float:
    """A compression run's tolerance (the runs recorded before the option were at 0)."""
    return run.get("tolerance", 0.0)


def _run_key(run: dict[str, Any]) -> tuple[int, bool, float, float]:
    """(seed, constrained, tolerance, reference epsilon; runs recorded before there was a
    choice had their reference at 0.05)."""
    return run["seed"], run["constrained"], _tolerance(run), run.get("reference_epsilon", FAIR_DP)


def _compress_table() -> None:
    """One row per tolerance and seed: the three runs side by side, and the constrained
    run's share of each unconstrained one's compression."""
    path = RESULTS / "fair_compress.json"
    if not path.exists():
        return
    run = {_run_key(r): r for r in json.loads(path.read_text())["runs"]}
    print(
        "\n| tolerance | seed | no constraint: ratio (test dp) | made fair: val accuracy (needed) "
        "| no constraint, own reference: ratio (test dp) | dp <= 0.05: ratio (test dp), test "
        "accuracy (reference) | dp <= 0.05 / no constraint: same, own reference |"
    )
    print("|---|---|---|---|---|---|---|")
    shares: dict[tuple[float, float], list[float]] = {}
    ratios: dict[tuple[float, float], tuple[list[float], list[float]]] = {}  # (fair, other)
    for tolerance, seed in sorted({(key[2], key[0]) for key in run}):
        same = run.get((seed, False, tolerance, REFERENCE_DP))
        own = run.get((seed, False, tolerance, FREE_DP))
        fair = run.get((seed, True, tolerance, REFERENCE_DP))
        cells = [_ratio_dp(same), "", _ratio_dp(own), _ratio_dp(fair), ""]
        if same and same.get("made_fair"):
            needed = same["reference_val_accuracy"] - tolerance
            cells[1] = f"{same['made_fair']['val_accuracy']:.4f} ({needed:.4f})"
        if fair:
            cells[3] += f", {fair['test_accuracy']:.4f} ({fair['reference_test_accuracy']:.4f})"
            parts = []
            for eps, other in ((REFERENCE_DP, same), (FREE_DP, own)):
                if other is None:
                    parts.append("-")
                    continue
                share = fair["compression_ratio"] / other["compression_ratio"]
                shares.setdefault((tolerance, eps), []).append(share)
                pair = ratios.setdefault((tolerance, eps), ([], []))
                pair[0].append(fair["compression_ratio"])
                pair[1].append(other["compression_ratio"])
                parts.append(f"{share:.2f}")
            cells[4] = " / ".join(parts)
        print(f"| {tolerance:g} | {seed} | " + " | ".join(cells) + " |")
    for (tolerance, eps), values in sorted(shares.items()):
        reference = "the same" if eps == REFERENCE_DP else "its own"
        fair_median, other_median = (statistics.median(r) for r in ratios[tolerance, eps])
        print(
            f"\ntolerance {tolerance:g}, unconstrained from {reference} reference: constrained "
            f"/ unconstrained {_median_range(values, '.2f')}, at least half on "
            f"{sum(v >= 0.5 for v in values)} of {len(values)} seeds; medians {fair_median:.1f}x "
            f"/ {other_median:.1f}x = {fair_median / other_median:.2f}"
        )


def _ratio_dp(run: dict[str, Any] | None) -> str:
    if run is None:
        return "-"
    return f"{run['compression_ratio']:.1f}x ({run['test_dp_difference']:.3f})"


def _plot_fronts(rows: dict) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(len(JOBS), len(CONSTRAINTS), figsize=(10, 8))
    for i, dataset in enumerate(JOBS):
        for j, constraint in enumerate(CONSTRAINTS):
            ax = axes[i][j]
            methods = sorted({k[3] for k in rows if k[0] == dataset and k[1] == constraint})
            for method in methods:
                points = sorted(
                    (
                        statistics.median(c["value"] for c in cell),
                        statistics.median(c["accuracy"] for c in cell),
                    )
                    for (d, c_, _, m), cell in rows.items()
                    if d == dataset and c_ == constraint and m == method
                )
                xs, ys = zip(*points, strict=True)
                ax.plot(xs, ys, "o-" if len(xs) > 1 else "s", label=method)
            ax.set_title(f"{dataset} ({JOBS[dataset]}), {constraint}")
            ax.set_xlabel(f"test {constraint} value (median over seeds)")
            ax.set_ylabel("test accuracy")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, RESULTS / "fair_fronts.png")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run")
    r.add_argument("--peer-python", help="fairlearn's environment's python")
    r.add_argument("--data-dir", default=str(HERE.parent.parent / "shared" / "data" / "fairness"))
    r.add_argument("--workdir", default=tempfile.gettempdir() + "/olmp-fair-bench")
    r.set_defaults(run=run)
    c = sub.add_parser("compress")
    c.add_argument("--data-dir", default=r.get_default("data_dir"))
    c.add_argument("--workdir", default=r.get_default("workdir"))
    c.add_argument(
        "--tolerance", type=float, default=0.0, help="both runs' tolerance (0: the default)"
    )
    c.set_defaults(run=compress_runs)
    p = sub.add_parser("speed")
    p.add_argument("--data-dir", default=r.get_default("data_dir"))
    p.set_defaults(run=speed)
    f = sub.add_parser("floor")
    f.add_argument("--workdir", default=r.get_default("workdir"))
    f.set_defaults(run=floor)
    t = sub.add_parser("retrain")
    t.add_argument("--data-dir", default=r.get_default("data_dir"))
    t.add_argument("--workdir", default=r.get_default("workdir"))
    t.set_defaults(run=retrain)
    sub.add_parser("report").set_defaults(run=report)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    sys.exit(main())
