"""Success curves, tables with bootstrap intervals, and comparisons of attack runs.

A run's records give, per (image, target) pair, whether the target won and after how many
queries. The success curve is the fraction of pairs won within ``q`` queries, for ``q`` up
to the budget. The table gives the success rate at a few budgets and the median queries over
the successes, each with a 95 % percentile bootstrap interval over the pairs. A value that
is not defined (the median of no successes, any rate of no pairs) is ``None``, JSON's
``null``: JSON has no NaN.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from olmp.attack.folder import CONFIG, RESULT, check_compare_out, output_folder, read_config
from olmp.errors import OlmpError, is_integer, is_number
from olmp.files import atomic_path, write_json_atomic
from olmp.plots import pyplot, save_figure

#: Budgets the table reports, those below the run's own budget (which is always reported).
TABLE_BUDGETS = (100, 300, 500, 1000, 3000, 10_000)
#: Bootstrap resamples and seed (fixed: the same records give the same intervals).
BOOTSTRAP, BOOTSTRAP_SEED = 1000, 0
#: Points of a success curve.
CURVE_POINTS = 200


def table_budgets(budget: int) -> list[int]:
    return [b for b in TABLE_BUDGETS if b < budget] + [budget]


def _interval(samples: np.ndarray) -> list[float] | None:
    samples = samples[np.isfinite(samples)]
    if not samples.size:
        return None
    # Rounded: percentiles of rates over n pairs read 0.6499999999999999 for 0.65.
    return [round(float(np.percentile(samples, q)), 4) for q in (2.5, 97.5)]


def summarize(records: Sequence[dict[str, Any]], budget: int) -> dict[str, Any]:
    """Success rate, per-pair queries, success at the table's budgets (in increasing order)
    and median queries over the successes, with 95 % bootstrap intervals; ``None`` where
    undefined (no successes, no pairs)."""
    won = np.array([bool(r["success"]) for r in records], dtype=bool)  # typed: may be empty
    queries = np.array([int(r["queries"]) for r in records], dtype=int)
    n = len(records)
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    resamples = rng.integers(0, n, size=(BOOTSTRAP, n)) if n else np.zeros((0, 0), int)
    at_budget = {}
    for b in table_budgets(budget):
        hit = won & (queries <= b)
        at_budget[str(b)] = {
            "success_rate": float(hit.mean()) if n else None,
            "interval": _interval(hit[resamples].mean(axis=1)) if n else None,
        }
    median, median_interval = None, None
    if won.any():
        median = float(np.median(queries[won]))
        boots = np.array(
            [np.median(queries[s][won[s]]) if won[s].any() else np.nan for s in resamples]
        )
        median_interval = _interval(boots)
    return {
        "pairs": n,
        "successes": int(won.sum()),
        "success_rate": float(won.mean()) if n else None,
        "queries": queries.tolist(),
        "success_at": at_budget,
        "median_queries": median,
        "median_queries_interval": median_interval,
    }


def curve(result: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(queries, success rate within that many queries) of a run's result."""
    budget = int(result["budget"])
    grid = np.unique(np.linspace(1, budget, min(CURVE_POINTS, budget)).astype(int))
    won = np.array([bool(r["success"]) for r in result["records"]])
    queries = np.array([int(r["queries"]) for r in result["records"]])
    if not len(won):
        return grid, np.zeros(len(grid))
    rates = np.array([(won & (queries <= q)).mean() for q in grid])
    return grid, rates


def write_curve(
    folder: Path, runs: Sequence[tuple[str, dict[str, Any]]], name: str = "curve"
) -> None:
    """``NAME.csv`` (queries, then one success-rate column per run) and ``NAME.png``."""
    curves = [(label, *curve(result)) for label, result in runs]
    grid = np.unique(np.concatenate([c[1] for c in curves]))
    with atomic_path(folder / f"{name}.csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["queries", *[label for label, _, _ in curves]])
        for q in grid:
            row = [int(q)]
            for _, g, rates in curves:
                k = np.searchsorted(g, q, side="right") - 1
                row.append(f"{rates[k]:.4f}" if k >= 0 else "0.0000")
            writer.writerow(row)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, g, rates in curves:
        ax.step(g, rates, where="post", label=label)
    first = runs[0][1]
    ax.set_xlabel("queries")
    ax.set_ylabel("success rate (targeted)")
    ax.set_ylim(0, 1)
    ax.set_title(f"{first.get('model')} / {first.get('dataset')}, ε = {first.get('eps')}")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    save_figure(fig, folder / f"{name}.png")


def load_result(folder: str | Path) -> dict[str, Any]:
    """The ``result.json`` of an attack folder, its rates at the table's budgets in
    increasing order (a JSON file keeps them in the order of their names)."""
    folder = Path(folder)
    if read_config(folder) is None:
        raise OlmpError(f"{folder} is not an attack run (no {CONFIG} of olmp attack)")
    path = folder / RESULT
    try:
        # A run written before undefined values were null holds NaN: read it as null.
        result = json.loads(path.read_text(), parse_constant=lambda _: None)
        result["success_at"] = dict(sorted(result["success_at"].items(), key=lambda b: int(b[0])))
    except FileNotFoundError:
        raise OlmpError(
            f"{folder} holds an unfinished attack run (no {RESULT}); finish it with --resume"
        ) from None
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise OlmpError(f"{path} is not a valid attack result: {exc}") from None
    bad = [key for key, valid in READ.items() if not valid(result.get(key))]
    if bad:
        raise OlmpError(
            f"{path} is not a valid attack result: {', '.join(bad)} missing or of the wrong "
            "kind; run it again (--force) to compare it"
        )
    return result


def _number_or_none(value: Any) -> bool:
    return value is None or is_number(value)


#: What a comparison reads from each result (beyond ``success_at``), and what it must be.
READ = {
    "method": lambda v: isinstance(v, str),
    "pairs": is_integer,
    "records": lambda v: isinstance(v, list),
    "success_rate": _number_or_none,
    "median_queries": _number_or_none,
    "median_queries_interval": lambda v: v is None or isinstance(v, list),
    "compression_ratio": _number_or_none,
}


#: What must match between runs to compare them.
SAME = ("dataset", "split", "eps", "budget", "images", "targets", "seed")


def pair_outcomes(result: dict[str, Any], folder: str | Path) -> dict[tuple[int, int], bool]:
    """(image index, target) -> whether the attack succeeded, from the result of the run
    in ``folder``."""
    try:
        return {(int(r["index"]), int(r["target"])): bool(r["success"]) for r in result["records"]}
    except (KeyError, TypeError, ValueError) as exc:
        raise OlmpError(f"{Path(folder) / RESULT} lacks or garbles its records ({exc})") from None


def _label(row: dict[str, Any]) -> str:
    """A run's column and legend entry: its folder as given (two runs of one method and
    ratio, a pruned run and its exported file say, are otherwise told apart by nothing),
    method and ratio."""
    ratio = row["compression_ratio"]
    return f"{row['folder']}: {row['method']}" + (f" {ratio:.1f}x" if ratio else "")


def compare(
    folders: Sequence[str | Path], out: str | Path | None = None, *, force: bool = False
) -> dict[str, Any]:
    """Compare finished runs made with the same settings, e.g. a dense network and its
    compressed versions: success rate (and at the table's budgets) per run, against
    compression ratio, and each run's success on the pairs every run attacked
    (``shared_pairs``; a network skips the images it misclassifies).
    With ``out`` writes ``compare.json``, ``compare.csv`` and ``compare.png`` there (a
    folder of its own; an earlier comparison is replaced only with ``force``)."""
    if isinstance(folders, str | Path) or len(folders) < 2:
        raise OlmpError(
            "comparing needs a list of at least two attack folders (--compare A B ...); "
            f"got {str(folders) if isinstance(folders, str | Path) else list(map(str, folders))}"
        )
    results = [load_result(f) for f in folders]
    for key in SAME:
        values = [json.dumps(r.get(key)) for r in results]
        if len(set(values)) > 1:
            listed = ", ".join(f"{f}: {v}" for f, v in zip(folders, values, strict=True))
            raise OlmpError(
                f"the runs differ in {key} ({listed}); compare runs made with the same "
                "images, targets, eps and budget"
            )
    target = output_folder(out) if out is not None else None
    if target is not None:
        check_compare_out(target, force=force)
    # Each network attacks the images it classifies correctly: what a comparison reads
    # first is the pairs every run attacked.
    outcomes = [pair_outcomes(r, f) for r, f in zip(results, folders, strict=True)]
    shared = set.intersection(*(set(o) for o in outcomes))
    rows = []
    for folder, r, outcome in zip(folders, results, outcomes, strict=True):
        shared_rate = float(np.mean([outcome[p] for p in shared])) if shared else None
        rows.append(
            {
                "folder": str(folder),
                "weights": r.get("weights"),
                "method": r["method"] + (f"/{r['solver']}" if r.get("solver") else ""),
                "compression_ratio": r.get("compression_ratio"),
                "pairs": r["pairs"],
                "success_rate": r["success_rate"],
                "shared_success_rate": shared_rate,
                "success_at": r["success_at"],
                "median_queries": r["median_queries"],
                "median_queries_interval": r["median_queries_interval"],
            }
        )
    summary = {key: results[0].get(key) for key in SAME} | {
        "shared_pairs": len(shared),
        "runs": rows,
    }
    if target is not None:
        target.mkdir(parents=True, exist_ok=True)
        write_json_atomic(target / "compare.json", summary)
        write_curve(target, list(zip(map(_label, rows), results, strict=True)), name="compare")
    return summary
