"""Every installed solver on BBOB functions, and on one OLMP search round (LeNet-5).

(a) BBOB (the COCO platform's noiseless suite, ``pip install coco-experiment``): sphere
(f1), ellipsoid (f2), Rastrigin (f3) and Rosenbrock (f8) in dimensions 2, 10 and 40,
instances 1-5, every solver with the same budget (``--budget-per-dim`` evaluations per
variable, default 100), started at the centre of ``[-5, 5]^dim`` with its default settings
and seed ``instance``. It records best-so-far ``f - f_opt`` against evaluations, prints a
markdown table of the median (min-max) final ``f - f_opt`` over instances, and writes
convergence plots. ``--quick``: dimensions 2 and 10, 2 instances, 50 evaluations per
variable. A run that passes ``--time-limit`` seconds stops at the end of its current batch
and is marked ``*`` (MADS through NOMAD 4.6 is very slow beyond about 20 variables); for
rows with such a run a second table compares every solver after the fewest evaluations
any run of the row spent, and the convergence curves stop where each run stopped.

(b) ``--olmp --weights L5.safetensors``: one OLMP search round on a trained LeNet-5 /
fashion-mnist reference (``olmp train --model lenet-5 --dataset fashion-mnist --out
L5.safetensors``, about 8 minutes on one core), from the dense network, for every solver:
the fitness of ``olmp compress``'s search (the kept fraction of the weights when the tune
accuracy stays within ``--search-tolerance`` of the reference, ``1 + shortfall``
otherwise), with ``--olmp-evaluations`` candidates each. It records the compression of the
best feasible candidate against candidate evaluations.

    python benchmarks/solvers.py --quick
    python benchmarks/solvers.py --solvers cmaes tpe --dims 10 --instances 3
    python benchmarks/solvers.py --solvers ncs ncs:r=0.8,epoch=2 random --no-bbob --olmp ...
    python benchmarks/solvers.py --olmp --weights l5.safetensors --olmp-evaluations 300
    python benchmarks/solvers.py --report benchmarks/results/solvers_bbob.json  # tables again
    python benchmarks/solvers.py --report benchmarks/results/solvers_olmp_lenet-5.json

Results go to ``benchmarks/results/solvers_bbob[_quick].json`` / ``..._convergence.png``
and ``solvers_olmp_lenet-5.json`` / ``.png``; ``--tag T`` adds ``_T`` to those names, so a
partial run does not replace the record of the full one.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from _common import RESULTS, machine, solver_spec, solver_specs, spread

from olmp.solvers import SOLVERS, make_solver

FUNCTIONS = {1: "sphere", 2: "ellipsoid", 3: "rastrigin", 8: "rosenbrock"}


class Trace:
    """Wraps a batch objective: counts evaluations and keeps best-so-far improvements."""

    def __init__(self, f: Any, offset: float = 0.0) -> None:
        self.f = f
        self.offset = offset  # subtracted from every value recorded (f_opt)
        self.evaluations = 0
        self.best = math.inf
        self.points: list[tuple[int, float]] = []  # (evaluations, best so far) at changes

    def __call__(self, x: np.ndarray) -> np.ndarray:
        values = np.asarray(self.f(x), dtype=float)
        for value in values:
            self.evaluations += 1
            if value - self.offset < self.best:
                self.best = float(value - self.offset)
                self.points.append((self.evaluations, self.best))
        return values


def run_solver(
    name: str, trace: Trace, lower: np.ndarray, upper: np.ndarray, **options: Any
) -> dict[str, Any]:
    """Spend the budget of ``options`` with solver ``name`` (a :func:`solver_spec`); stop
    early past the time limit."""
    budget, limit = options.pop("budget"), options.pop("time_limit")
    solver_name, own_options = solver_spec(name)
    began = time.perf_counter()
    stopped = False
    with make_solver(solver_name, lower, upper, **own_options, **options) as solver:
        while trace.evaluations < budget:
            if time.perf_counter() - began > limit:
                stopped = True
                break
            x = solver.ask()[: budget - trace.evaluations]
            solver.tell(x, trace(x))
    return {
        "evaluations": trace.evaluations,
        "seconds": round(time.perf_counter() - began, 3),
        "stopped_by_time": stopped,
        "final": trace.best,
        "trace": trace.points,
    }


# -- (a) BBOB ---------------------------------------------------------------------------------


def bbob(args: argparse.Namespace, solvers: list[str]) -> dict[str, Any]:
    import cocoex

    runs = []
    for fid in args.functions:
        for dim in args.dims:
            lower, upper = np.full(dim, -5.0), np.full(dim, 5.0)
            budget = args.budget_per_dim * dim
            for instance in range(1, args.instances + 1):
                problem = cocoex.BareProblem("bbob", fid, dim, instance)
                f_opt = float(problem.best_value())
                for name in solvers:
                    trace = Trace(problem, f_opt)  # BareProblem evaluates (k, dim) batches
                    record = run_solver(
                        name,
                        trace,
                        lower,
                        upper,
                        seed=instance,
                        budget=budget,
                        time_limit=args.time_limit,
                    )
                    record.update(
                        solver=name, function=fid, dim=dim, instance=instance, budget=budget
                    )
                    runs.append(record)
                    mark = " (time limit)" if record["stopped_by_time"] else ""
                    print(
                        f"  f{fid} {dim}-D i{instance} {name}: {record['final']:.3g} after "
                        f"{record['evaluations']} evaluations, {record['seconds']:.1f} s{mark}",
                        flush=True,
                    )
    return {"runs": runs}


def bbob_table(runs: list[dict[str, Any]], solvers: list[str]) -> str:
    """Markdown: median (min-max) final f - f_opt over instances, per function/dim/solver."""
    lines = [
        "| function | dim | " + " | ".join(solvers) + " |",
        "|---|---|" + "---|" * len(solvers),
    ]
    keys = sorted({(r["function"], r["dim"]) for r in runs})
    for fid, dim in keys:
        cells = []
        for name in solvers:
            mine = [r for r in runs if (r["function"], r["dim"], r["solver"]) == (fid, dim, name)]
            cell = spread([max(r["final"], 0.0) for r in mine], ".1e")
            if any(r["stopped_by_time"] for r in mine):
                cell += " *"
            cells.append(cell)
        lines.append(f"| f{fid} {FUNCTIONS[fid]} | {dim} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def best_at(points: list[tuple[int, float]], evaluations: int) -> float:
    """Best-so-far value of a trace after ``evaluations`` evaluations (inf before any)."""
    values = [v for e, v in points if e <= evaluations]
    return values[-1] if values else math.inf


def equal_budget_table(runs: list[dict[str, Any]], solvers: list[str]) -> str | None:
    """Markdown, for the function/dim rows where some run hit the time limit: every
    solver's f - f_opt after the fewest evaluations any run of that row spent, so the
    row compares equal budgets. None when no run was stopped."""
    lines = [
        "| function | dim | evaluations | " + " | ".join(solvers) + " |",
        "|---|---|---|" + "---|" * len(solvers),
    ]
    keys = sorted({(r["function"], r["dim"]) for r in runs if r["stopped_by_time"]})
    for fid, dim in keys:
        row = [r for r in runs if (r["function"], r["dim"]) == (fid, dim)]
        common = min(r["evaluations"] for r in row)
        cells = [
            spread([max(best_at(r["trace"], common), 0.0) for r in row if r["solver"] == n], ".1e")
            for n in solvers
        ]
        lines.append(f"| f{fid} {FUNCTIONS[fid]} | {dim} | {common} | " + " | ".join(cells) + " |")
    return "\n".join(lines) if keys else None


def median_curve(runs: list[dict[str, Any]], budget: int) -> tuple[list, list]:
    """Median over runs of best-so-far at log-spaced evaluation counts; a run stopped by
    the time limit counts only up to the evaluations it spent."""
    grid = np.unique(np.geomspace(1, budget, 60).astype(int))
    curves = []
    for run in runs:
        evals = np.array([e for e, _ in run["trace"]])
        values = np.array([v for _, v in run["trace"]])
        idx = np.searchsorted(evals, grid, side="right") - 1
        curve = np.where(idx >= 0, values[np.maximum(idx, 0)], np.nan)
        curves.append(np.where(grid <= run["evaluations"], curve, np.nan))
    with warnings.catch_warnings():  # columns past every run's end are all-NaN: left blank
        warnings.simplefilter("ignore", RuntimeWarning)
        return grid.tolist(), np.nanmedian(np.array(curves), axis=0).tolist()


def bbob_plot(runs: list[dict[str, Any]], solvers: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    functions = sorted({r["function"] for r in runs})
    dims = sorted({r["dim"] for r in runs})
    fig, axes = plt.subplots(
        len(functions), len(dims), figsize=(4.2 * len(dims), 3.2 * len(functions)), squeeze=False
    )
    for i, fid in enumerate(functions):
        for j, dim in enumerate(dims):
            ax = axes[i][j]
            for name in solvers:
                mine = [
                    r for r in runs if (r["function"], r["dim"], r["solver"]) == (fid, dim, name)
                ]
                if not mine:
                    continue
                grid, curve = median_curve(mine, mine[0]["budget"])
                ax.plot(grid, np.maximum(curve, 1e-12), label=name)
            ax.set(xscale="log", yscale="log", title=f"f{fid} {FUNCTIONS[fid]}, {dim}-D")
            ax.set_xlabel("evaluations")
            ax.set_ylabel("median best f - f_opt (floor 1e-12)")
            ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- (b) one OLMP search round ----------------------------------------------------------------


def olmp_round(args: argparse.Namespace, solvers: list[str]) -> dict[str, Any]:
    """One search round from the dense reference, as ``olmp compress`` runs it, per solver."""
    import torch

    from olmp.compression import search_fitness
    from olmp.pruning.evaluate import PopulationEvaluator
    from olmp.pruning.layers import find_prunable_layers
    from olmp.pruning.masks import dense_tensor
    from olmp.pruning.thresholds import make_parametrisation
    from olmp.reference import load_weights
    from olmp.training import accuracy

    model, splits, meta = load_weights(args.weights, data_dir=args.data_dir)
    layers = find_prunable_layers(model)
    abs_weights = [dense_tensor(layer, "weight").detach().abs().cpu() for layer in layers]
    param = make_parametrisation("keep-ratio", abs_weights)
    lower, upper = param.bounds()
    start = np.clip(param.encode(np.ones(len(layers))), lower, upper)
    evaluator = PopulationEvaluator(model, layers, splits.tune)
    reference = accuracy(model, splits.tune)
    required = reference - args.search_tolerance
    total = float(sum(layer.n_weights for layer in layers))

    def fitness(z: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            thresholds = param.thresholds(z)
            size = (param.kept_counts(thresholds).sum(1).double() / total).numpy()
            acc = evaluator.accuracies(thresholds)
        return search_fitness(size, acc, required)

    runs = []
    for name in solvers:
        trace = Trace(fitness)
        record = run_solver(
            name,
            trace,
            lower,
            upper,
            x0=start,
            popsize=args.popsize,
            seed=args.seed,
            sigma0=args.search_step * (upper - lower),
            budget=args.olmp_evaluations,
            time_limit=args.time_limit,
        )
        feasible = record["final"] <= 1.0
        record.update(
            solver=name,
            compression=1.0 / record["final"] if feasible else None,
            trace=[(e, 1.0 / v if v <= 1.0 else None) for e, v in record["trace"]],
        )
        runs.append(record)
        shown = f"{record['compression']:.1f}x" if feasible else "nothing feasible"
        print(f"  {name}: {shown} after {record['evaluations']} evaluations", flush=True)
    return {
        "model": meta.get("model"),
        "dataset": meta.get("dataset"),
        "reference_tune_accuracy": reference,
        "search_tolerance": args.search_tolerance,
        "layers": [layer.name for layer in layers],
        "runs": runs,
    }


def olmp_table(result: dict[str, Any]) -> str:
    """Markdown: each solver's best feasible compression at its end, and after the fewest
    evaluations any solver spent (the equal-budget column when a time limit cut runs)."""
    common = min(r["evaluations"] for r in result["runs"])
    lines = [
        f"| solver | compression (best feasible) | after {common} evaluations "
        "| evaluations | seconds |",
        "|---|---|---|---|---|",
    ]

    def shown(ratio: float | None) -> str:
        return "-" if ratio is None else f"{ratio:.1f}x"

    for r in result["runs"]:
        # best_at minimises, so rank feasible compressions by their inverse
        points = [(e, 1.0 / c) for e, c in r["trace"] if c is not None]
        size = best_at(points, common)
        at_common = None if math.isinf(size) else 1.0 / size
        lines.append(
            f"| {r['solver']} | {shown(r['compression'])} | {shown(at_common)} "
            f"| {r['evaluations']} | {r['seconds']:.0f} |"
        )
    return "\n".join(lines)


def olmp_plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for r in result["runs"]:
        points = [(e, c) for e, c in r["trace"] if c is not None]
        if points:
            evals, ratios = zip(*points, strict=True)
            ax.step(
                [*evals, r["evaluations"]], [*ratios, ratios[-1]], where="post", label=r["solver"]
            )
    ax.set(xlabel="candidate evaluations", ylabel="compression of the best feasible candidate")
    ax.set_title(f"one OLMP search round, {result['model']} / {result['dataset']}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report_bbob(result: dict[str, Any], plot_path: Path) -> None:
    """Print part (a)'s tables and draw its convergence plot from its JSON record."""
    runs, solvers = result["runs"], result["solvers"]
    bbob_plot(runs, solvers, plot_path)
    print("\nmedian (min-max) over instances of the final f - f_opt; * = time limit hit\n")
    print(bbob_table(runs, solvers))
    equal = equal_budget_table(runs, solvers)
    if equal:
        print("\nrows with a time-limited run, every solver after the same evaluations:\n")
        print(equal)
    seconds = {
        n: statistics.median(r["seconds"] for r in runs if r["solver"] == n) for n in solvers
    }
    print("\nmedian seconds per run: " + ", ".join(f"{n} {s:.2f}" for n, s in seconds.items()))


# -- command line -----------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--solvers",
        nargs="+",
        metavar="SOLVER",
        help="NAME or NAME:OPTION=VALUE[,...] (e.g. ncs:r=0.99,epoch=10); default: every "
        "installed solver with its defaults",
    )
    parser.add_argument("--quick", action="store_true", help="dims 2 10, 2 instances, 50/dim")
    parser.add_argument("--functions", type=int, nargs="+", default=list(FUNCTIONS))
    parser.add_argument("--dims", type=int, nargs="+", help="default 2 10 40 (quick: 2 10)")
    parser.add_argument("--instances", type=int, help="instances 1..N (default 5; quick: 2)")
    parser.add_argument("--budget-per-dim", type=int, help="default 100 (quick: 50)")
    parser.add_argument(
        "--time-limit",
        type=float,
        default=300.0,
        help="seconds per run, (b) included (default 300)",
    )
    parser.add_argument("--no-bbob", action="store_true", help="skip part (a)")
    parser.add_argument("--tag", default="", help="suffix of the result files' names")
    parser.add_argument(
        "--report",
        type=Path,
        metavar="JSON",
        help="tables and plot again from a saved (a) or (b) record",
    )
    parser.add_argument("--olmp", action="store_true", help="run part (b); needs --weights")
    parser.add_argument("--weights", help="(b) trained LeNet-5 / fashion-mnist checkpoint")
    parser.add_argument("--data-dir", help="(b) folder searched first for dataset files")
    parser.add_argument("--olmp-evaluations", type=int, default=300, help="(b) per solver")
    parser.add_argument("--popsize", type=int, default=10, help="(b) as olmp compress")
    parser.add_argument("--search-step", type=float, default=0.02, help="(b) as olmp compress")
    parser.add_argument("--search-tolerance", type=float, default=0.02, help="(b)")
    parser.add_argument("--seed", type=int, default=0, help="(b) solver seed")
    args = parser.parse_args()
    args.dims = args.dims or ([2, 10] if args.quick else [2, 10, 40])
    args.instances = args.instances or (2 if args.quick else 5)
    args.budget_per_dim = args.budget_per_dim or (50 if args.quick else 100)
    if args.olmp and not args.weights:
        parser.error("--olmp needs --weights (a trained LeNet-5 / fashion-mnist checkpoint)")
    specs = solver_specs(parser, args.solvers or list(SOLVERS))
    solvers = [spec for spec, (name, _) in specs.items() if SOLVERS[name].available()]
    missing = [spec for spec in specs if spec not in solvers]

    if args.report:
        record = json.loads(args.report.read_text())
        if "layers" in record:  # part (b)'s record
            olmp_plot(record, args.report.with_suffix(".png"))
            print(olmp_table(record))
        else:
            report_bbob(record, args.report.with_name(f"{args.report.stem}_convergence.png"))
        return
    info = machine()
    print(
        f"`{info['command']}` — {info['date']}, commit {info['commit']}, {info['cpu']}, "
        f"{info['cores']} cores, torch threads {info['torch_threads']}"
    )
    if missing:
        print("not installed, skipped: " + ", ".join(missing))
    RESULTS.mkdir(parents=True, exist_ok=True)

    if not args.no_bbob:
        tag = ("_quick" if args.quick else "") + (f"_{args.tag}" if args.tag else "")
        print(
            f"\n(a) BBOB f{', f'.join(map(str, args.functions))}, dims {args.dims}, instances "
            f"1-{args.instances}, {args.budget_per_dim} evaluations per variable\n",
            flush=True,
        )
        result = bbob(args, solvers)
        config = {k: getattr(args, k) for k in ("functions", "dims", "instances", "budget_per_dim")}
        result.update(machine=info, config=config, solvers=solvers)
        (RESULTS / f"solvers_bbob{tag}.json").write_text(json.dumps(result, indent=1))
        report_bbob(result, RESULTS / f"solvers_bbob{tag}_convergence.png")

    if args.olmp:
        print(f"\n(b) one OLMP search round from {args.weights}\n", flush=True)
        result = olmp_round(args, solvers)
        result.update(machine=info)
        stem = "solvers_olmp_lenet-5" + (f"_{args.tag}" if args.tag else "")
        (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=1))
        olmp_plot(result, RESULTS / f"{stem}.png")
        print()
        print(olmp_table(result))


if __name__ == "__main__":
    main()
