"""Benchmarks of experienced optimisation (BENCHMARKS.md, "Experienced optimisation").

ackley: shifted Ackley functions in [-1, 1]^d (d = 10, 20), budget 50. Experience: 5 SRacos
    studies on each of 10 source shifts (50 studies per dimension, one network per shift),
    recorded to study files; tested on 5 other shifts x 5 seeds: expsracos (k = 10), its
    ablation (a random one of the k), sracos, cmaes, tpe, random. Median best value;
    ExpSRacos's wins against each.
build: ``olmp experience build`` from the 50 Ackley studies of d = 20, timed as a user runs
    it (a fresh process: imports included). Run after ``ackley``.
lodo: leave one dataset out on ``olmp tune --task ensemble`` (its twelve datasets, the
    tabular ones read from --data-dir): experience = ``--histories`` (3) SRacos searches
    (budget 30) on every other dataset; on the held-out one, 5 seeds x {sracos, expsracos,
    expsracos with a random one of the k} at budget 30. Median best val error per dataset, the
    datasets ExpSRacos wins, and one-sided sign tests (scipy.stats.binomtest) against sracos
    and against the ablation (:data:`COMPARISONS`).
arch: the same on the architecture job (``olmp tune``'s CNN task) on digits, mnist-5k and
    fashion-mnist, made small to fit the machine: a narrowed space (:data:`ARCH_SPACE`),
    1 epoch on 500 training images per trial, ``--budget`` 20 and ``--seeds`` 3 unless
    given, experience = 3 searches per other dataset.
auc: how well the directional model ranks the held-out dataset's own improvements, on the
    ``lodo`` records (run it first): for each held-out dataset, the (best so far, trial) pairs
    of its five SRacos searches, scored by the model built from the other datasets' histories
    (``--histories`` per dataset): one network per dataset weighted by how well each predicted
    the search so far (the product, olmp.dfo.directional.Reliability), the same networks
    weighted equally, and one network trained on all of them pooled. ROC AUC per dataset.
null [--job arch]: the noise the lodo (arch) target has to clear: SRacos against SRacos. SRacos
    again on every dataset of the lodo (arch) record, with its settings and seeds 5-9 (n to 2n-1
    for a record of n seeds); then, many times, the ten SRacos searches of a dataset (seeds 0-9)
    split at random into two halves of five, and the halves' median best val errors compared
    dataset by dataset, as the lodo table compares two methods: how many datasets a method that
    is SRacos itself "wins", and how often it wins 75 % of them.
merge: one record from lodo (or arch) records that held out different datasets
    (``--held-out D... --record PART.json``, run side by side with their own TMPDIR).
table: print the Markdown tables of BENCHMARKS.md from the records.

Everything goes through the public API (olmp.dfo.Study, olmp.tune.tune, olmp.experience);
records are written atomically to benchmarks/results/experience_*.json.

    python benchmarks/experience.py ackley
    python benchmarks/experience.py build
    python benchmarks/experience.py lodo
    python benchmarks/experience.py arch
    python benchmarks/experience.py auc
    python benchmarks/experience.py null
    python benchmarks/experience.py table
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import RESULTS, machine

from olmp.dfo import Problem, Real, Space, Study
from olmp.dfo.directional import Reliability, pairs, train_directional_model
from olmp.experience import build_experience, read_study
from olmp.files import write_json_atomic
from olmp.tune import tune
from olmp.tune.ensemble import ENSEMBLE_DATASETS

WORK = Path(tempfile.gettempdir()) / "olmp-experience-bench"
#: The architecture job's space: the CNN task's, narrowed so that a trial takes a second.
ARCH_SPACE = {"conv_layers": [0, 2], "fc_layers": [0, 2], "conv_channels": [4, 32],
              "fc_size": [16, 256], "batch_size": 64}  # fmt: skip
SOURCES, TARGETS, STUDIES_PER_SOURCE, SEEDS = 10, 5, 5, 5
K = 10


def ackley(shift: np.ndarray):
    """Ackley's function with its optimum (0) at ``shift``."""

    def f(params: dict) -> float:
        x = np.array([params[f"x{i}"] for i in range(len(shift))]) - shift
        a = -20.0 * math.exp(-0.2 * math.sqrt(float(np.mean(x**2))))
        return a - math.exp(float(np.mean(np.cos(2 * math.pi * x)))) + 20.0 + math.e

    return f


def ackley_space(dim: int) -> Space:
    return Space([Real(f"x{i}", -1.0, 1.0) for i in range(dim)])


def run_ackley(args: argparse.Namespace) -> None:
    record: dict = {"machine": machine(), "budget": args.budget, "k": K, "dims": {}}
    methods = {
        "expsracos": ("expsracos", {"k": K}),
        "expsracos-random-of-k": ("expsracos", {"k": K, "select": "random"}),
        "sracos": ("sracos", {}),
        "cmaes": ("cmaes", {}),
        "tpe": ("tpe", {}),
        "random": ("random", {}),
    }
    for dim in args.dims:
        space = ackley_space(dim)
        rng = np.random.default_rng(dim)
        sources = rng.uniform(-0.3, 0.3, size=(SOURCES, dim))
        targets = rng.uniform(-0.3, 0.3, size=(TARGETS, dim))
        folder = WORK / f"ackley-{dim}"
        shutil.rmtree(folder, ignore_errors=True)
        paths = []
        began = time.perf_counter()
        for i, shift in enumerate(sources):
            for j in range(STUDIES_PER_SOURCE):
                # shift{i}/seed{j}.json: the folder names the study's source (its
                # "dataset"), so the model learns one network per shift.
                path = folder / f"shift{i}" / f"seed{j}.json"
                study = Study(Problem(space, ackley(shift)), "sracos", seed=100 + j,
                              max_evaluations=args.budget, path=path)  # fmt: skip
                study.optimize()
                paths.append(path)
        collect = time.perf_counter() - began
        model_file = folder / "ackley.exp"
        model = build_experience(paths, model_file)
        best: dict[str, list[float]] = {m: [] for m in methods}
        for method, (solver, options) in methods.items():
            if solver == "expsracos":
                options = {**options, "experience": str(model_file)}
            for shift in targets:
                for seed in range(SEEDS):
                    study = Study(Problem(space, ackley(shift)), solver, seed=seed,
                                  options=options, max_evaluations=args.budget)  # fmt: skip
                    study.optimize()
                    study.sampler.close()
                    best[method].append(float(study.best.value))
            print(dim, method, f"{statistics.median(best[method]):.3f}", flush=True)
        exp = best["expsracos"]
        record["dims"][str(dim)] = {
            "experience": {
                "studies": len(paths),
                "collect_seconds": round(collect, 1),
                "training": model.info["training"],
            },
            "median_best": {m: statistics.median(v) for m, v in best.items()},
            "best": best,
            "expsracos_wins": {
                m: sum(a < b for a, b in zip(exp, v, strict=True)) for m, v in best.items()
            },
            "runs_per_method": len(exp),
        }
        write_json_atomic(RESULTS / "experience_ackley.json", record)


def run_build(args: argparse.Namespace) -> None:
    folder = WORK / "ackley-20"
    studies = sorted(str(p) for p in folder.glob("shift*/seed*.json"))
    if len(studies) != SOURCES * STUDIES_PER_SOURCE:
        sys.exit(f"run `ackley` first: {folder} holds {len(studies)} studies")
    out = folder / "timed.exp"
    command = [sys.executable, "-m", "olmp", "experience", "build", "--from", *studies,
               "--out", str(out), "--force", "--json"]  # fmt: skip
    times = []
    for _ in range(3):
        began = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        times.append(time.perf_counter() - began)
    summary = json.loads(done.stdout)
    record = {
        "machine": machine(),
        "studies": len(studies),
        "trials_per_study": 50,
        "examples": summary["examples"],
        "wall_seconds": [round(t, 2) for t in times],
        "training_seconds_last": summary["seconds"],
        "command": "python -m olmp experience build --from <50 study dirs> --out M --force",
    }
    write_json_atomic(RESULTS / "experience_build.json", record)
    print(record)


def run_lodo(args: argparse.Namespace) -> None:
    datasets = args.datasets or list(ENSEMBLE_DATASETS)
    settings = {"data_dir": args.data_dir}
    name = args.record or f"experience_lodo{_histories_suffix(args.histories)}.json"
    _lodo("ensemble", datasets, args.budget, SEEDS, settings, name, args.histories,
          args.held_out)  # fmt: skip


def run_merge(args: argparse.Namespace) -> None:
    """One record from the records of ``lodo``/``arch`` runs that held out different
    datasets (run side by side, each with its own TMPDIR and ``--record``), summary
    recomputed; the parts must share task, budget, seeds, k and experience."""
    parts = [json.loads((RESULTS / name).read_text()) for name in args.parts]
    shared = ("task", "budget", "k", "seeds", "settings", "history_studies_per_dataset")
    for name, part in zip(args.parts[1:], parts[1:], strict=True):
        if differ := [key for key in shared if part.get(key) != parts[0].get(key)]:
            sys.exit(f"{name} differs from {args.parts[0]} in {differ}")
    record = {**parts[0], "datasets": {}, "parts": list(args.parts)}
    for part in parts:
        record["datasets"].update(part["datasets"])
    record["summary"] = _sign_tests(record["datasets"])
    write_json_atomic(RESULTS / args.out, record)
    print(record["summary"])


def _histories_suffix(per_dataset: int) -> str:
    """What a record's name adds when the experience is not the usual 3 searches per dataset."""
    return "" if per_dataset == 3 else f"_h{per_dataset}"


def run_arch(args: argparse.Namespace) -> None:
    settings = {
        "space": ARCH_SPACE,
        "epochs": 1,
        "train_size": 500,
        "trial_time_limit": 60,
    }
    _lodo("cnn", args.datasets, args.budget, args.seeds, settings,
          args.record or "experience_arch.json", 3, args.held_out)  # fmt: skip


def _histories(task: str, datasets: list[str], per_dataset: int, budget: int,
               settings: dict) -> dict[str, list[Path]]:  # fmt: skip
    """The experience: ``per_dataset`` SRacos searches on every dataset, made once and kept
    in ``WORK/lodo-<task>/histories``."""
    folder = WORK / f"lodo-{task}" / "histories"
    paths = {d: [folder / f"{d}-{j}" for j in range(per_dataset)] for d in datasets}
    for dataset, outs in paths.items():
        for j, out in enumerate(outs):
            if not (out / "result.json").exists():
                tune(dataset, out, task=task, solver="sracos", seed=100 + j, budget=budget,
                     force=True, **settings)  # fmt: skip
            # A search whose trials all failed (a dataset not installed, say) teaches nothing
            # and would quietly leave its dataset out of everyone's experience.
            if all(math.isinf(value) for _, value in read_study(out)[1]):
                sys.exit(f"every trial of {out} failed (see its trials.json): is {dataset} "
                         "installed? Delete the folder and run again.")  # fmt: skip
    return paths


def _lodo(task: str, datasets: list[str], budget: int, seeds: int, settings: dict,
          name: str, per_dataset: int, held_out: list[str] | None = None) -> None:  # fmt: skip
    """Leave one dataset out on ``olmp tune --task task`` (see the module docstring), for
    each of ``held_out`` (default: every dataset) with experience from all the others."""
    folder = WORK / f"lodo-{task}"
    record: dict = {"machine": machine(), "task": task, "budget": budget, "k": K,
                    "seeds": seeds, "settings": settings,
                    "history_studies_per_dataset": per_dataset, "datasets": {}}  # fmt: skip
    began = time.perf_counter()
    histories = _histories(task, datasets, per_dataset, budget, settings)
    record["history_seconds"] = round(time.perf_counter() - began, 1)
    methods = {
        "sracos": ("sracos", {}),
        "expsracos": ("expsracos", {"k": K}),
        "expsracos-random-of-k": ("expsracos", {"k": K, "select": "random"}),
    }
    for held in held_out or datasets:
        others = [path for d in datasets if d != held for path in histories[d]]
        model_file = folder / f"without-{held}-h{per_dataset}.exp"
        model = build_experience(others, model_file, force=True)
        runs: dict[str, list[dict]] = {m: [] for m in methods}
        for method, (solver, options) in methods.items():
            if solver == "expsracos":
                options = {**options, "experience": str(model_file)}
            for seed in range(seeds):
                out = folder / "runs" / f"{held}-{method}-{seed}"
                summary = tune(held, out, task=task, solver=solver, seed=seed, budget=budget,
                               solver_options=options, force=True, **settings)  # fmt: skip
                runs[method].append(
                    {
                        "seed": seed,
                        "val_error": 1.0 - summary["best_val_accuracy"],
                        "test_error": 1.0 - summary["test_accuracy"],
                        "failed": summary["failed"],
                    }
                )
        medians = {m: statistics.median(r["val_error"] for r in v) for m, v in runs.items()}
        record["datasets"][held] = {
            "experience_from": sorted({d for d in datasets if d != held}),
            "model_datasets": model.datasets,
            "median_val_error": medians,
            "median_test_error": {
                m: statistics.median(r["test_error"] for r in v) for m, v in runs.items()
            },
            "runs": runs,
        }
        print(held, {m: round(v, 4) for m, v in medians.items()}, flush=True)
        record["summary"] = _sign_tests(record["datasets"])
        write_json_atomic(RESULTS / name, record)


#: What each comparison holds against what: (method, baseline); a summary's key is the
#: method against sracos, else "method vs baseline".
COMPARISONS = (("expsracos", "sracos"), ("expsracos-random-of-k", "sracos"),
               ("expsracos", "expsracos-random-of-k"))  # fmt: skip


def _count(pairs: list[tuple[float, float]]) -> dict:
    """Wins (first lower), losses, ties of ``pairs`` and a one-sided sign test over those
    not tied."""
    from scipy.stats import binomtest

    wins = sum(a < b for a, b in pairs)
    losses = sum(a > b for a, b in pairs)
    p = binomtest(wins, wins + losses, 0.5, alternative="greater").pvalue if wins + losses else 1.0
    return {"wins": wins, "losses": losses, "ties": len(pairs) - wins - losses, "sign_test_p": p}


def _key(method: str, baseline: str) -> str:
    return method if baseline == "sracos" else f"{method} vs {baseline}"


def _sign_tests(datasets: dict) -> dict:
    """Each comparison of :data:`COMPARISONS` dataset by dataset on the median val error."""
    out = {}
    for method, baseline in COMPARISONS:
        counts = _count([(d["median_val_error"][method], d["median_val_error"][baseline])
                         for d in datasets.values()])  # fmt: skip
        out[_key(method, baseline)] = {**counts, "datasets": len(datasets),
                                       "win_share": counts["wins"] / len(datasets)}  # fmt: skip
    return out


def run_null(args: argparse.Namespace) -> None:
    lodo = json.loads((RESULTS / f"experience_{args.job}.json").read_text())
    task = lodo.get("task", "ensemble")
    n = lodo["seeds"]  # SRacos searches per dataset in the record (seeds 0 to n - 1)
    seeds = range(n, 2 * n)
    record: dict = {"machine": machine(), "lodo_commit": lodo["machine"]["commit"],
                    "budget": lodo["budget"], "seeds": list(seeds), "splits": args.splits,
                    "datasets": {}}  # fmt: skip
    errors: dict[str, list[float]] = {}
    for dataset, d in lodo["datasets"].items():
        runs = []
        for seed in seeds:
            out = WORK / f"lodo-{task}" / "null" / f"{dataset}-sracos-{seed}"
            summary = tune(dataset, out, task=task, solver="sracos", seed=seed,
                           budget=lodo["budget"], force=True, **lodo["settings"])  # fmt: skip
            runs.append({"seed": seed, "val_error": 1.0 - summary["best_val_accuracy"]})
        errors[dataset] = [r["val_error"] for r in d["runs"]["sracos"]] + [
            r["val_error"] for r in runs
        ]
        record["datasets"][dataset] = {"runs": runs}
        print(dataset, [round(e, 4) for e in errors[dataset]], flush=True)
    # The same comparison as the lodo table's (median of five against median of five, per
    # dataset), between two halves of one method's searches drawn at random.
    rng = np.random.default_rng(0)
    wins, ties = [], []
    for _ in range(args.splits):
        pairs = [
            (statistics.median(e[i] for i in half[:n]), statistics.median(e[i] for i in half[n:]))
            for e in errors.values() for half in [rng.permutation(2 * n)]
        ]  # fmt: skip
        wins.append(sum(a < b for a, b in pairs))
        ties.append(sum(a == b for a, b in pairs))
    needed = math.ceil(0.75 * len(errors))
    record["summary"] = {
        "datasets": len(errors),
        "median_wins": statistics.median(wins),
        "median_ties": statistics.median(ties),
        "wins_distribution": {str(w): wins.count(w) / len(wins) for w in sorted(set(wins))},
        "wins_needed": needed,
        "share_reaching_target": sum(w >= needed for w in wins) / len(wins),
        "seeds_5_9_against_lodo_sracos": _count(
            [(statistics.median(e[n:]), statistics.median(e[:n])) for e in errors.values()]
        ),
    }  # fmt: skip
    suffix = "" if args.job == "lodo" else f"_{args.job}"
    write_json_atomic(RESULTS / f"experience_null{suffix}.json", record)
    print(record["summary"])


def run_auc(args: argparse.Namespace) -> None:
    from sklearn.metrics import roc_auc_score

    folder = WORK / "lodo-ensemble"
    lodo = RESULTS / "experience_lodo.json"
    if not lodo.exists() or not (folder / "runs").is_dir():
        sys.exit(f"run `lodo` first: {lodo} or {folder / 'runs'} is missing")
    lodo_record = json.loads(lodo.read_text())
    datasets = list(lodo_record["datasets"])
    paths = _histories("ensemble", datasets, args.histories, lodo_record["budget"],
                       lodo_record["settings"])  # fmt: skip
    histories = {d: [read_study(path) for path in paths[d]] for d in datasets}
    space = histories[datasets[0]][0][0]
    record: dict = {"machine": machine(), "lodo_commit": lodo_record["machine"]["commit"],
                    "history_studies_per_dataset": args.histories, "datasets": {}}  # fmt: skip
    for held in datasets:
        others = [(h, r) for d in datasets if d != held for _, h, r in histories[d]]
        per_dataset = train_directional_model(space, [h for h, _ in others],
                                              sources=[r for _, r in others])  # fmt: skip
        pooled = train_directional_model(space, [h for h, _ in others],
                                         sources=["pooled"] * len(others))  # fmt: skip
        labels: list[float] = []
        scores: dict[str, list[float]] = {"weighted": [], "equal": [], "pooled": []}
        for run in sorted((folder / "runs").glob(f"{held}-sracos-*")):
            X, y = pairs(space, read_study(run)[1])
            reliability = Reliability(per_dataset.networks)  # one per search, as expsracos
            for row, label in zip(X, y, strict=True):
                candidate = row[: space.dim]
                best = candidate - row[space.dim :]
                p = per_dataset.network_scores(best, candidate[None])[:, 0]
                scores["weighted"].append(float(np.average(p, weights=reliability.weights)))
                scores["equal"].append(float(p.mean()))
                scores["pooled"].append(float(pooled.score(best, candidate[None])[0]))
                labels.append(float(label))
                reliability.observe(p, bool(label))
        record["datasets"][held] = {
            "pairs": len(labels),
            "improvements": int(sum(labels)),
            "auc": {name: float(roc_auc_score(labels, v)) for name, v in scores.items()},
        }
        print(held, {k: round(v, 3) for k, v in record["datasets"][held]["auc"].items()},
              flush=True)  # fmt: skip
    aucs = [d["auc"] for d in record["datasets"].values()]
    record["median_auc"] = {name: statistics.median(a[name] for a in aucs) for name in aucs[0]}
    record["weighted_above_pooled"] = sum(a["weighted"] > a["pooled"] for a in aucs)
    record["weighted_above_equal"] = sum(a["weighted"] > a["equal"] for a in aucs)
    write_json_atomic(RESULTS / f"experience_auc{_histories_suffix(args.histories)}.json", record)
    above = record["weighted_above_pooled"], record["weighted_above_equal"], len(aucs)
    print(record["median_auc"], "weighted above pooled / equal in {} / {} of {}".format(*above))


def run_table(args: argparse.Namespace) -> None:
    ackley = json.loads((RESULTS / "experience_ackley.json").read_text())
    dims = ackley["dims"]
    head = [f"d = {d}: median best (ExpSRacos better in)" for d in dims]
    print("| method | " + " | ".join(head) + " |")
    print("|---" * (1 + len(dims)) + "|")
    for method in next(iter(dims.values()))["median_best"]:
        cells = []
        for d in dims.values():
            wins = d["expsracos_wins"][method], d["runs_per_method"]
            note = "" if method == "expsracos" else " ({}/{})".format(*wins)
            cells.append(f"{d['median_best'][method]:.3f}{note}")
        print(f"| {method} | " + " | ".join(cells) + " |")
    for name in ("experience_lodo.json", "experience_arch.json"):
        path = RESULTS / name
        if not path.exists():
            continue
        record = json.loads(path.read_text())
        print(f"\n{name}: task {record.get('task', 'ensemble')}")
        columns = (
            "sracos",
            "expsracos",
            "random one of k",
            "expsracos test",
            "sracos test",
        )
        print("| held-out dataset | " + " | ".join(columns) + " |")
        print("|---" * (1 + len(columns)) + "|")
        for dataset, d in record["datasets"].items():
            v, t = d["median_val_error"], d["median_test_error"]
            mark = "**" if v["expsracos"] < v["sracos"] else ""
            cells = [f"{v['sracos']:.4f}", f"{mark}{v['expsracos']:.4f}{mark}",
                     f"{v['expsracos-random-of-k']:.4f}", f"{t['expsracos']:.4f}",
                     f"{t['sracos']:.4f}"]  # fmt: skip
            print(f"| {dataset} | " + " | ".join(cells) + " |")
        by_dataset, by_run = _sign_tests(record["datasets"]), _paired(record["datasets"])
        for key, d in by_dataset.items():
            r = by_run[key]
            name = key if " vs " in key else f"{key} vs sracos"
            print(f"- {name}: by dataset {d['wins']} / {d['losses']} / {d['ties']} (wins / "
                  f"losses / ties, sign test p = {d['sign_test_p']:.3g}); run by run "
                  f"{r['wins']} / {r['losses']} / {r['ties']} "
                  f"(p = {r['sign_test_p']:.3g})")  # fmt: skip


def _paired(datasets: dict) -> dict:
    """Each comparison of :data:`COMPARISONS` run by run (same dataset, same seed) on the
    best val error."""
    return {
        _key(method, baseline): _count(
            [(a["val_error"], b["val_error"]) for d in datasets.values()
             for a, b in zip(d["runs"][method], d["runs"][baseline], strict=True)]
        )
        for method, baseline in COMPARISONS
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    a = commands.add_parser("ackley")
    a.add_argument("--dims", type=int, nargs="+", default=[10, 20])
    a.add_argument("--budget", type=int, default=50)
    a.set_defaults(run=run_ackley)
    b = commands.add_parser("build")
    b.set_defaults(run=run_build)
    lodo = commands.add_parser("lodo")
    lodo.add_argument("--datasets", nargs="+")
    lodo.add_argument("--budget", type=int, default=30)
    lodo.add_argument(
        "--data-dir",
        default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "fairness"),
        help="folder of the tabular sets' files (default: ../shared/data/fairness)",
    )
    lodo.add_argument("--histories", type=int, default=3, help="experience searches per dataset")
    arch = commands.add_parser("arch")
    arch.add_argument("--datasets", nargs="+", default=["digits", "mnist-5k", "fashion-mnist"])
    arch.add_argument("--budget", type=int, default=20)
    arch.add_argument("--seeds", type=int, default=3)
    for command in (lodo, arch):  # to split a run over processes: see ``merge``
        command.add_argument("--held-out", nargs="+", help="hold out only these datasets")
        command.add_argument("--record", help="record file name in benchmarks/results")
    lodo.set_defaults(run=run_lodo)
    arch.set_defaults(run=run_arch)
    merge = commands.add_parser("merge")
    merge.add_argument("parts", nargs="+", help="record file names in benchmarks/results")
    merge.add_argument("--out", required=True, help="the merged record's file name")
    merge.set_defaults(run=run_merge)
    null = commands.add_parser("null")
    null.add_argument("--splits", type=int, default=10_000, help="random halvings drawn")
    null.add_argument("--job", choices=["lodo", "arch"], default="lodo", help="whose record")
    null.set_defaults(run=run_null)
    auc = commands.add_parser("auc")
    auc.add_argument("--histories", type=int, default=3, help="experience searches per dataset")
    auc.set_defaults(run=run_auc)
    table = commands.add_parser("table")
    table.set_defaults(run=run_table)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
