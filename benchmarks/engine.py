"""The engine (olmp.dfo) on five benchmarks, through its public API only.

``bbob``: every solver on COCO's noiseless BBOB suite (``pip install 'olmp[bench]'``, i.e.
coco-experiment), functions f1-f24, dimensions 2, 5, 10 and 20, instances 1-5, 100·d
evaluations, each run a :class:`olmp.dfo.Study` over ``[-5, 5]^d`` (seed = instance).
Score: the area under the runtime ECDF, COCO-style: for 51 targets ``f_opt + 10^k``,
``k = 2, 1.8, ..., -8``, a (function, instance, target) pair reached after ``e``
evaluations counts ``1 - log10(e / d) / 2`` (1 when reached within d evaluations, 0 when
never reached within 100·d); the area is the mean over pairs, per solver and dimension.
A run stops at ``--time-limit`` seconds (a study's ``max_seconds``), marked in the record.

``mixed``: a mixed space with a known optimum (see :func:`mixed_problem`): every solver
against random search at equal budget, median best over seeds.

``sphere``: ``olmp solvers --check`` (the 10-D shifted sphere, 500 evaluations) over
``--seeds`` seeds, every solver at its defaults, plus NCS with the paper's settings (the
compressor's ``olmp.solvers.make_solver``): median best f and range.

``parallel``: 40 evaluations of a 100 ms sleep, with 1 and 4 workers (``n_jobs``).

``overhead``: the engine's own time per trial (ask + tell, a trivial objective) against
one LeNet-300-100 forward pass over 1,000 images, random and ncs at d = 10, in one run.

    python benchmarks/engine.py bbob --solvers ncs cmaes random cobyqa --dims 2 5 10 20
    python benchmarks/engine.py bbob --report   # the tables again from the record
    python benchmarks/engine.py mixed
    python benchmarks/engine.py sphere --seeds 11
    python benchmarks/engine.py parallel
    python benchmarks/engine.py overhead

Records: ``benchmarks/results/engine_<benchmark>.json``; bbob runs already in the record
are not run again, so a long grid can be run in parts (``--tag T`` writes
``engine_bbob_T.json``; ``--report`` tables every ``engine_bbob*.json`` together).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from typing import Any

import numpy as np
from _common import RESULTS, machine

from olmp.dfo import SOLVERS, Categorical, Integer, Problem, Real, Space, Study
from olmp.files import write_json_atomic, write_text_atomic

#: COCO's 51 targets: f_opt + 10^k for k = 2, 1.8, ..., -8.
TARGET_EXPONENTS = np.round(np.arange(2.0, -8.01, -0.2), 1)


# -- BBOB ---------------------------------------------------------------------------------


def bbob_run(solver: str, fid: int, dim: int, instance: int, time_limit: float) -> dict[str, Any]:
    import cocoex

    problem = cocoex.BareProblem("bbob", fid, dim, instance)
    f_opt = float(problem.best_value())
    width = len(str(dim - 1))  # the names benchmarks/solvers.py gave (TPE orders by them)
    space = Space([Real(f"x{i:0{width}d}", -5.0, 5.0) for i in range(dim)])
    names = space.names

    def objective(params: dict[str, float]) -> float:
        return float(problem(np.array([params[n] for n in names])))

    study = Study(
        Problem(space, objective),
        solver,
        seed=instance,
        max_evaluations=100 * dim,
        max_seconds=time_limit,
    )
    began = time.perf_counter()
    study.optimize()
    seconds = time.perf_counter() - began
    study.sampler.close()
    gaps = np.array([t.value - f_opt for t in study.trials if t.value is not None])
    best = np.minimum.accumulate(gaps) if gaps.size else np.array([math.inf])
    hits = []
    for k in TARGET_EXPONENTS:
        reached = np.flatnonzero(best <= 10.0**k)
        hits.append(int(reached[0]) + 1 if reached.size else None)
    return {
        "solver": solver,
        "fid": fid,
        "dim": dim,
        "instance": instance,
        "evaluations": study.n_evaluations,
        "final": float(best[-1]),
        "hits": hits,
        "seconds": round(seconds, 3),
        "time_limited": study.stop_reason == "max_seconds",
    }


def ecdf_area(runs: list[dict[str, Any]]) -> float:
    scores = []
    for run in runs:
        for hit in run["hits"]:
            reached = hit is not None and hit <= 100 * run["dim"]
            scores.append(1.0 - max(0.0, math.log10(hit / run["dim"])) / 2.0 if reached else 0.0)
    return float(np.mean(scores)) if scores else math.nan


def bbob(args: argparse.Namespace) -> None:
    if args.report:  # every part's record, tabled together
        print(bbob_tables(list(recorded_runs().values())))
        return
    path = RESULTS / f"engine_bbob{'_' + args.tag if args.tag else ''}.json"
    record = json.loads(path.read_text()) if path.exists() else {"runs": [], "machines": []}
    # A run any part finished within its time limit is not run again; a cut one is.
    done = {key for key, run in recorded_runs().items() if not run["time_limited"]}
    record["machines"].append(machine())
    for dim in args.dims:
        for solver in args.solvers:
            began = time.perf_counter()
            for fid in args.functions:
                for instance in args.instances:
                    if (solver, fid, dim, instance) in done:
                        continue
                    record["runs"].append(bbob_run(solver, fid, dim, instance, args.time_limit))
                    write_text_atomic(path, json.dumps(record, indent=1) + "\n")
            print(f"{solver} d={dim}: {time.perf_counter() - began:.0f} s", flush=True)
    print(bbob_tables(record["runs"]))


def recorded_runs() -> dict[tuple[str, int, int, int], dict[str, Any]]:
    """Every part's runs, one per (solver, function, dimension, instance): a run that
    finished within its time limit is preferred to one that was cut."""
    runs: dict[tuple[str, int, int, int], dict[str, Any]] = {}
    for part in sorted(RESULTS.glob("engine_bbob*.json")):
        for run in json.loads(part.read_text())["runs"]:
            key = (run["solver"], run["fid"], run["dim"], run["instance"])
            if key not in runs or (runs[key]["time_limited"] and not run["time_limited"]):
                runs[key] = run
    return runs


def bbob_tables(runs: list[dict[str, Any]]) -> str:
    solvers = list(dict.fromkeys(r["solver"] for r in runs))
    dims = sorted({r["dim"] for r in runs})
    lines = ["| solver | " + " | ".join(f"d = {d}" for d in dims) + " |"]
    lines.append("|---" * (len(dims) + 1) + "|")
    for solver in solvers:
        cells = []
        for dim in dims:
            cell = [r for r in runs if r["solver"] == solver and r["dim"] == dim]
            fids = {r["fid"] for r in cell}
            limited = sum(r["time_limited"] for r in cell)
            text = f"{ecdf_area(cell):.3f}" if cell else "-"
            if cell and len(fids) < 24:
                text += f" (f{min(fids)}-f{max(fids)}: {len(fids)} functions)"
            instances = sorted({r["instance"] for r in cell})
            if cell and len(instances) < 5:
                text += f" (instances {', '.join(map(str, instances))})"
            if limited:
                text += f" ({limited} runs cut at the time limit)"
            cells.append(text)
        lines.append(f"| {solver} | " + " | ".join(cells) + " |")
    return "\n".join(
        [*lines, "", *cobyqa_target(runs), "", *against_the_old_figures(runs, solvers)]
    )


def cobyqa_target(runs: list[dict[str, Any]]) -> list[str]:
    """cobyqa against the better of bobyqa and mads, on the runs all three made."""
    lines = ["cobyqa against the better of bobyqa and mads (the (function, instance) runs all "]
    lines[0] += "three made; target: within 0.05):"
    lines += [
        "",
        "| d | runs | cobyqa | bobyqa | mads | cobyqa - better |",
        "|---|---|---|---|---|---|",
    ]
    for dim in (2, 5, 10):
        by = {
            name: {
                (r["fid"], r["instance"]): r for r in runs if (r["solver"], r["dim"]) == (name, dim)
            }
            for name in ("cobyqa", "bobyqa", "mads")
        }
        common = set.intersection(*(set(cells) for cells in by.values()))
        if not common:
            continue
        area = {name: ecdf_area([cells[key] for key in common]) for name, cells in by.items()}
        gap = area["cobyqa"] - max(area["bobyqa"], area["mads"])
        lines.append(
            f"| {dim} | {len(common)} | {area['cobyqa']:.3f} | {area['bobyqa']:.3f} | "
            f"{area['mads']:.3f} | {gap:+.3f} |"
        )
    return lines


#: The record of the solvers before the move (benchmarks/solvers.py, commit b44c07d).
OLD_RECORD = RESULTS / "solvers_bbob.json"


def against_the_old_figures(runs: list[dict[str, Any]], solvers: list[str]) -> list[str]:
    """ECDF areas on the old record's cells (f1, f2, f3, f8; d = 2, 10), before and now."""
    old_runs = []
    for run in json.loads(OLD_RECORD.read_text())["runs"]:
        hits = []
        for k in TARGET_EXPONENTS:
            reached = [e for e, best in run["trace"] if best <= 10.0**k]
            hits.append(min(reached) if reached else None)
        old_runs.append({**run, "fid": run["function"], "hits": hits})
    lines = [
        "ECDF area on f1, f2, f3, f8 (the functions of the old record), before the move -> now:"
    ]
    lines += ["", "| solver | d = 2 | d = 10 |", "|---|---|---|"]
    for solver in solvers:
        cells = []
        for dim in (2, 10):
            now = [
                r
                for r in runs
                if r["solver"] == solver and r["dim"] == dim and r["fid"] in (1, 2, 3, 8)
            ]
            before = [r for r in old_runs if r["solver"] == solver and r["dim"] == dim]
            cells.append(
                f"{ecdf_area(before):.3f} -> {ecdf_area(now):.3f}" if now and before else "-"
            )
        lines.append(f"| {solver} | " + " | ".join(cells) + " |")
    return lines


# -- mixed --------------------------------------------------------------------------------


def mixed_problem() -> Problem:
    """A stand-in for tuning a small MLP's training: what it models and its optimum.

    Variables: the optimiser (sgd / adam / rmsprop, categorical), the learning rate (log,
    1e-5-1), momentum (only for sgd, 0-0.99), the number of hidden layers (1-4, integer)
    and each layer's width (log-integer 8-1024, active only when the layer exists), the
    activation (categorical) and dropout (0-0.8). The "validation error" is a sum of
    smooth penalties around a known optimum, 0 exactly there: adam, lr 1e-3, 3 layers
    of widths 256, 128, 64, gelu, dropout 0.2 (sgd's best is worse: 0.5, with its own best
    lr 0.05 and momentum 0.9; rmsprop's is 0.3 at lr 3e-4). Extra layers cost 0.4 each,
    missing ones 0.6.
    """
    widths = [
        Integer(f"width{i}", 8, 1024, log=True, when={"layers": list(range(i, 5))})
        for i in range(1, 5)
    ]
    space = Space(
        [
            Categorical("optimizer", ["sgd", "adam", "rmsprop"]),
            Real("lr", 1e-5, 1.0, log=True),
            Real("momentum", 0.0, 0.99, when={"optimizer": ["sgd"]}),
            Integer("layers", 1, 4),
            *widths,
            Categorical("activation", ["relu", "tanh", "gelu", "sigmoid"]),
            Real("dropout", 0.0, 0.8),
        ]
    )
    return Problem(space, mixed_error)


#: The optimum of :func:`mixed_error`.
MIXED_OPTIMUM = {
    "optimizer": "adam",
    "lr": 1e-3,
    "layers": 3,
    "width1": 256,
    "width2": 128,
    "width3": 64,
    "activation": "gelu",
    "dropout": 0.2,
}


def mixed_error(p: dict[str, Any]) -> float:
    best_lr = {"sgd": 0.05, "adam": 1e-3, "rmsprop": 3e-4}[p["optimizer"]]
    error = {"sgd": 0.5, "adam": 0.0, "rmsprop": 0.3}[p["optimizer"]]
    error += 0.5 * math.log10(p["lr"] / best_lr) ** 2
    if p["optimizer"] == "sgd":
        error += 2.0 * (p["momentum"] - 0.9) ** 2
    error += 0.4 * max(0, p["layers"] - 3) + 0.6 * max(0, 3 - p["layers"])
    for i, width in enumerate((256, 128, 64), start=1):
        if f"width{i}" in p:
            error += 0.2 * math.log2(p[f"width{i}"] / width) ** 2
    error += {"relu": 0.1, "tanh": 0.3, "gelu": 0.0, "sigmoid": 0.6}[p["activation"]]
    return error + (p["dropout"] - 0.2) ** 2


def mixed(args: argparse.Namespace) -> None:
    problem = mixed_problem()
    assert mixed_error(MIXED_OPTIMUM) == 0.0
    problem.space.validate(MIXED_OPTIMUM)
    results: dict[str, list[float]] = {}
    for solver in args.solvers:
        for seed in range(args.seeds):
            study = Study(problem, solver, seed=seed, max_evaluations=args.budget)
            results.setdefault(solver, []).append(study.optimize().value)
            study.sampler.close()
    record = {"machine": machine(), "budget": args.budget, "seeds": args.seeds, "best": results}
    (RESULTS / "engine_mixed.json").write_text(json.dumps(record, indent=1) + "\n")
    random_median = statistics.median(results["random"])
    print(
        f"| solver | median best ({args.seeds} seeds, {args.budget} evaluations) "
        "| min-max | beats random |"
    )
    print("|---|---|---|---|")
    for solver, values in results.items():
        median = statistics.median(values)
        reference = solver in ("random", "uniform")
        verdict = "-" if reference else ("yes" if median < random_median else "no")
        print(f"| {solver} | {median:.3f} | {min(values):.3f}-{max(values):.3f} | {verdict} |")


def sphere(args: argparse.Namespace) -> None:
    from olmp.solvers import check_solvers, make_solver
    from olmp.solvers.check import shifted_sphere

    best: dict[str, list[float]] = {}
    for seed in range(args.seeds):
        for record in check_solvers(dim=10, budget=500, seed=seed):
            if record["best"] is not None:
                best.setdefault(record["name"], []).append(record["best"])
        f, lower, upper = shifted_sphere(10, seed)
        with make_solver("ncs", lower, upper, seed=seed) as paper:  # preset "paper"
            best.setdefault("ncs, paper settings", []).append(paper.minimize(f, 500)[1])
    write_json_atomic(RESULTS / "engine_sphere.json",
                      {"machine": machine(), "seeds": args.seeds, "best": best})  # fmt: skip
    print(f"| solver | median best f ({args.seeds} seeds) | min-max |")
    print("|---|---|---|")
    for name, values in best.items():
        print(f"| {name} | {statistics.median(values):.3g} | {min(values):.3g}-{max(values):.3g} |")


# -- parallel and overhead -------------------------------------------------------------------


def sleepy(params: dict[str, Any]) -> float:
    time.sleep(0.1)
    return (params["x"] - 0.3) ** 2


def _noop() -> None:
    return None


def parallel(args: argparse.Namespace) -> None:
    """Wall time of 40 sleeps with 1 and 4 workers, median of ``--repeats``: "cold" starts
    the pool inside the study (``n_jobs=4``), "warm" hands it a pool already started (a
    pool reused across studies pays its start-up once)."""
    from olmp.dfo import ProcessPool

    space = Space([Real("x", 0.0, 1.0), Real("y", 0.0, 1.0)])
    rows: dict[str, dict[str, float]] = {}
    for solver in ("random", "tpe"):
        walls: dict[str, list[float]] = {"one": [], "cold": [], "warm": []}
        for _ in range(args.repeats):
            for mode in walls:
                pool = None
                if mode == "warm":
                    pool = ProcessPool(4)
                    for future in [pool.submit(_noop) for _ in range(8)]:
                        future.result()
                study = Study(Problem(space, sleepy), solver, seed=0, max_evaluations=40)
                began = time.perf_counter()
                study.optimize(executor=pool, n_jobs=1 if mode == "one" else 4)
                walls[mode].append(time.perf_counter() - began)
                if pool is not None:
                    pool.close()
        one = statistics.median(walls["one"])
        rows[solver] = {"one_worker_s": one}
        for mode in ("cold", "warm"):
            wall = statistics.median(walls[mode])
            rows[solver][f"four_workers_{mode}_s"] = wall
            rows[solver][f"ratio_{mode}"] = wall / one
        row = rows[solver]
        print(
            f"{solver}: 1 worker {one:.2f} s; 4 workers {row['four_workers_cold_s']:.2f} s "
            f"(ratio {row['ratio_cold']:.3f}) with the pool's start, "
            f"{row['four_workers_warm_s']:.2f} s ({row['ratio_warm']:.3f}) "
            "with a pool started before"
        )
    record = {"machine": machine(), "repeats": args.repeats, "runs": rows}
    (RESULTS / "engine_parallel.json").write_text(json.dumps(record, indent=1) + "\n")


def overhead(args: argparse.Namespace) -> None:
    import torch

    from olmp.models import build_model

    model = build_model("lenet-300-100", (1, 28, 28), 10).eval()
    images = torch.randn(1000, 1, 28, 28)
    with torch.no_grad():
        for _ in range(5):
            model(images)
        began = time.perf_counter()
        for _ in range(50):
            model(images)
    forward = (time.perf_counter() - began) / 50
    space = Space([Real(f"x{i}", -5.0, 5.0) for i in range(10)])
    rows = {"forward_s": forward, "torch_threads": torch.get_num_threads()}
    spent = [0.0]  # seconds inside the objective, not the engine's

    def objective(params: dict[str, float]) -> float:
        began = time.perf_counter()
        value = sum(v * v for v in params.values())
        spent[0] += time.perf_counter() - began
        return value

    for solver in ("random", "ncs"):
        spent[0] = 0.0

        study = Study(Problem(space, objective), solver, seed=0, max_evaluations=args.trials)
        began = time.perf_counter()
        study.optimize()
        per_trial = (time.perf_counter() - began - spent[0]) / args.trials
        rows[solver] = {"engine_s_per_trial": per_trial, "ratio": per_trial / forward}
        print(
            f"{solver}: {per_trial * 1e6:.0f} us per trial = {per_trial / forward:.2%} of a "
            f"forward pass ({forward * 1e3:.2f} ms)"
        )
    (RESULTS / "engine_overhead.json").write_text(
        json.dumps({"machine": machine(), **rows}, indent=1) + "\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="benchmark", required=True)
    b = sub.add_parser("bbob")
    b.add_argument("--solvers", nargs="+", default=list(SOLVERS))
    b.add_argument("--dims", nargs="+", type=int, default=[2, 5, 10, 20])
    b.add_argument("--functions", nargs="+", type=int, default=list(range(1, 25)))
    b.add_argument("--instances", nargs="+", type=int, default=[1, 2, 3, 4, 5])
    b.add_argument("--time-limit", type=float, default=120.0)
    b.add_argument("--tag", default="")
    b.add_argument("--report", action="store_true")
    m = sub.add_parser("mixed")
    m.add_argument("--solvers", nargs="+", default=list(SOLVERS))
    m.add_argument("--budget", type=int, default=200)
    m.add_argument("--seeds", type=int, default=9)
    p = sub.add_parser("parallel")
    p.add_argument("--repeats", type=int, default=3)
    s = sub.add_parser("sphere")
    s.add_argument("--seeds", type=int, default=11)
    o = sub.add_parser("overhead")
    o.add_argument("--trials", type=int, default=2000)
    args = parser.parse_args()
    benchmarks = (bbob, mixed, sphere, parallel, overhead)
    {f.__name__: f for f in benchmarks}[args.benchmark](args)


if __name__ == "__main__":
    main()
