"""Human-facing views of a run: the per-layer table, the summary line and the plots."""

from __future__ import annotations

import json
import math
import os
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.table import Table

from olmp.errors import OlmpError
from olmp.files import check_output_files
from olmp.plots import counted_x_axis, pyplot, save_figure
from olmp.task import scores_accuracy


def summary_line(result: dict[str, Any]) -> str:
    """Compression and accuracies of a result record, beside the reference's, in one line."""
    whole = result.get("whole_network")  # include / exclude left layers dense
    of_whole = (
        f" in the pruned layers, {whole['compression_ratio']:.2f}x in the whole network "
        f"({', '.join(whole['layers_left_dense'])} left dense)"
        if whole
        else ""
    )
    accuracy = scores_accuracy(result)
    shown = "{:.2%}" if accuracy else "{:.4g}"  # your own evaluate(): any scale
    named = "" if accuracy else f" {result['metric']}"

    def scores(split: str) -> str:
        value, reference = result[f"{split}_accuracy"], result[f"reference_{split}_accuracy"]
        return f"{split}{named} {shown.format(value)} (ref {shown.format(reference)})"

    return (
        f"{result['compression_ratio']:.1f}x weights "
        f"({result['compression_ratio_with_biases']:.1f}x with biases){of_whole}; "
        f"{scores('val')}; {scores('test')}"
    )


def standard_error_of_change(result: dict[str, Any], split: str) -> float | None:
    """The paired standard error of a result's ``split`` change against the reference;
    ``None`` where the record has none (no per-example outcomes, or a record from before
    ``paired_change`` existed)."""
    return ((result.get("paired_change") or {}).get(split) or {}).get("standard_error")


def change_line(result: dict[str, Any]) -> str | None:
    """The test score's change against the reference with its paired standard error, in
    words (``None`` when the record has no per-example outcomes)."""
    if standard_error_of_change(result, "test") is None:
        return None
    change = result["paired_change"]["test"]
    accuracy = scores_accuracy(result)
    scale, unit = (100, " points") if accuracy else (1, "")
    worse, better = ("now wrong", "now right") if accuracy else ("worse", "better")
    return (
        f"test change {scale * change['change']:+.2f}{unit}, paired standard error "
        f"{scale * change['standard_error']:.2f}{unit} ({change['examples']:,} examples: "
        f"{change['worse']:,} {worse}, {change['better']:,} {better})"
    )


def layer_rich_table(result: dict[str, Any]) -> Table:
    """The per-layer table of a result record (shape, total, kept, keep %, and the
    magnitude threshold where the record has it)."""
    table = Table(title=f"{result.get('model', 'model')}, per layer")
    for column in ("layer", "type", "shape", "weights", "kept", "keep %", "threshold"):
        table.add_column(column, justify="left" if column in ("layer", "type") else "right")
    total = kept = 0
    for row in result["layers"]:
        total += row["total_weights"]
        kept += row["kept_weights"]
        threshold = row.get("threshold")
        table.add_row(
            row["name"],
            row["type"],
            "x".join(map(str, row["shape"])),
            f"{row['total_weights']:,}",
            f"{row['kept_weights']:,}",
            f"{100 * row['kept_weights'] / row['total_weights']:.2f}",
            "-" if threshold is None else f"{threshold:.4g}",
        )
    table.add_row(
        "total", "", "", f"{total:,}", f"{kept:,}", f"{100 * kept / total:.2f}", "", style="bold"
    )
    return table


def _chosen_round(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The history entry the result comes from (before any final fine-tuning), if any."""
    return [h for h in result["history"] if h["round"] == result.get("best_round")]


def _draw_compression(ax: Any, result: dict[str, Any]) -> None:
    history = result["history"]
    ax.plot([h["round"] for h in history], [h["compression_ratio"] for h in history], marker="o")
    ax.set_yscale("log")
    counted_x_axis(ax, "round")
    ax.set_ylabel("compression ratio (weights, log scale)")
    ax.axhline(
        result["compression_ratio"],
        color="green",
        linestyle="--",
        label=f"result {result['compression_ratio']:.1f}x",
    )
    for h in _chosen_round(result):
        ax.plot(h["round"], h["compression_ratio"], "g*", markersize=14)
    ax.legend()


def _draw_accuracy(ax: Any, result: dict[str, Any]) -> None:
    history = result["history"]
    accuracy = scores_accuracy(result)
    scale = 100 if accuracy else 1  # your own evaluate(): its own units
    rounds = [h["round"] for h in history]
    ax.plot(rounds, [scale * h["val_accuracy"] for h in history], marker="o", label="val")
    reference = result["reference_val_accuracy"]
    ax.axhline(scale * reference, color="gray", linestyle="--", label="reference val")
    tolerance = result.get("config", {}).get("tolerance", 0.0)
    if tolerance > 0:
        ax.axhline(
            scale * (reference - tolerance), color="red", linestyle=":", label="val threshold"
        )
    for h in _chosen_round(result):
        ax.plot(h["round"], scale * h["val_accuracy"], "g*", markersize=14)
    counted_x_axis(ax, "round")
    ax.set_ylabel("accuracy (%)" if accuracy else result["metric"])
    ax.legend()


def _draw_layers(ax: Any, result: dict[str, Any]) -> None:
    rows = result["layers"]
    keep = [100 * r["kept_weights"] / r["total_weights"] for r in rows]
    bars = ax.bar(range(len(rows)), keep)
    ax.bar_label(bars, labels=[f"{k:.2g}%" for k in keep])
    ax.set_xticks(range(len(rows)), [r["name"] for r in rows], rotation=30, ha="right")
    ax.set_yscale("log")
    # Bars on a log axis start at its bottom: pin it to a whole decade so heights compare.
    ax.set_ylim(10 ** math.floor(math.log10(max(min(keep), 1e-3))), 100)
    ax.set_ylabel("weights kept (%, log scale)")
    ax.set_title(f"per-layer keep ratios, {result['compression_ratio']:.1f}x overall")


def _title(result: dict[str, Any]) -> str:
    return f"OLMP ({result['solver']}) on {result.get('model', '')} / {result.get('dataset', '')}"


def plot_history(result: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """PNG of compression ratio and val accuracy per round, with the reference's."""
    fig, (ax_ratio, ax_acc) = pyplot().subplots(1, 2, figsize=(10, 4))
    _draw_compression(ax_ratio, result)
    _draw_accuracy(ax_acc, result)
    fig.suptitle(_title(result))
    fig.tight_layout()
    save_figure(fig, path)


REPORT_PLOTS = {
    "compression.png": _draw_compression,
    "accuracy.png": _draw_accuracy,
    "layers.png": _draw_layers,
}


def write_report_plots(result: dict[str, Any], out_dir: str | os.PathLike[str]) -> list[Path]:
    """One PNG each for compression per round, val accuracy per round and per-layer keep
    ratios, in ``out_dir``; returns their paths. (They are drawn from the record alone, so
    rewriting them loses nothing.)"""
    paths = []
    for name, draw in REPORT_PLOTS.items():
        fig, ax = pyplot().subplots(figsize=(6, 4))
        draw(ax, result)
        fig.suptitle(_title(result))
        fig.tight_layout()
        save_figure(fig, Path(out_dir) / name)
        paths.append(Path(out_dir) / name)
    return paths


def report_run(
    run_dir: str | os.PathLike[str],
    plots_dir: str | os.PathLike[str] | None = None,
    *,
    force: bool = False,
) -> tuple[dict[str, Any], list[Path]]:
    """The result record of the finished run in ``run_dir`` and its plots, written to
    ``plots_dir`` (default ``run_dir/report``, whose plots are always redrawn: they come from
    the record alone). In a ``plots_dir`` of the user's, plots already there are replaced
    only with ``force``. Nothing is written when the record is damaged."""
    from olmp.compression import read_result

    result = read_result(run_dir)
    own = plots_dir is None  # the run's report/ folder, redrawn freely
    plots_dir = Path(run_dir) / "report" if own else Path(plots_dir)
    check_output_files(
        plots_dir, list(REPORT_PLOTS), force=force or own, option="--plots", what="the plots"
    )
    plots = write_report_plots(result, plots_dir)
    return result, plots


def compare_runs(run_dirs: Sequence[str | os.PathLike[str]]) -> dict[str, Any]:
    """Finished runs side by side (``olmp report A B ...``): ``{"runs": rows, "median": ...}``.

    A row gives the run's folder, its ratio, val and test scores beside its reference's with
    the paired standard error of the test change (``None`` where the record has none), its
    rounds, stop reason and time, and under ``differs`` the settings (config fields, model,
    dataset, weights) that are not the same in every run given. ``median`` holds the median
    ratio and val and test changes over the runs.
    """
    from olmp.compression import read_result

    if isinstance(run_dirs, str | os.PathLike):  # one folder, not its characters
        run_dirs = [run_dirs]
    if not run_dirs:
        raise OlmpError("give at least one run folder to compare")
    seen: set[Path] = set()
    for run_dir in run_dirs:
        if Path(run_dir).resolve() in seen:
            raise OlmpError(f"run folder {run_dir} is given twice")
        seen.add(Path(run_dir).resolve())
    results = [read_result(run_dir) for run_dir in run_dirs]
    settings = [
        {key: r.get(key) for key in ("model", "dataset", "weights")} | r["config"] for r in results
    ]
    differ = [
        key
        for key in dict.fromkeys(k for s in settings for k in s)  # in the records' order
        if len({json.dumps(s.get(key), sort_keys=True) for s in settings}) > 1
    ]
    rows = []
    for run_dir, result, setting in zip(run_dirs, results, settings, strict=True):
        rows.append(
            {"run": str(run_dir)}
            | {key: result.get(key) for key in COMPARED}
            | {
                "test_change_standard_error": standard_error_of_change(result, "test"),
                "differs": {key: setting.get(key) for key in differ},
            }
        )
    changes = {
        split: [r[f"{split}_accuracy"] - r[f"reference_{split}_accuracy"] for r in results]
        for split in ("val", "test")
    }
    median = {
        "compression_ratio": statistics.median(r["compression_ratio"] for r in results),
        "val_change": statistics.median(changes["val"]),
        "test_change": statistics.median(changes["test"]),
    }
    return {"runs": rows, "median": median}


#: What a row of :func:`compare_runs` takes from each run's record.
COMPARED = (
    "compression_ratio",
    "val_accuracy",
    "reference_val_accuracy",
    "test_accuracy",
    "reference_test_accuracy",
    "metric",
    "rounds",
    "stop_reason",
    "wall_time_s",
)


def comparison_table(comparison: dict[str, Any]) -> Table:
    """:func:`compare_runs`'s rows as a table, the median last (for two runs or more)."""
    rows = comparison["runs"]
    accuracy = all(scores_accuracy(r) for r in rows)  # else your evaluate()'s metric
    scale, score = (100, "{:.2%}") if accuracy else (1, "{:.4g}")

    def change(row: dict[str, Any], split: str) -> str:
        value = scale * (row[f"{split}_accuracy"] - row[f"reference_{split}_accuracy"])
        se = row.get("test_change_standard_error") if split == "test" else None
        return f"{score.format(row[f'{split}_accuracy'])} ({value:+.2f}" + (
            f", s.e. {scale * se:.2f})" if se is not None else ")"
        )

    table = Table(title="finished runs" + (" (changes in points)" if accuracy else ""))
    for column in ("run", "ratio", "val (change)", "test (change)", "rounds", "time", "differs"):
        table.add_column(column, justify="left" if column in ("run", "differs") else "right")
    for row in rows:
        table.add_row(
            row["run"],
            f"{row['compression_ratio']:.1f}x",
            change(row, "val"),
            change(row, "test"),
            f"{row['rounds']}" + (f", {row['stop_reason']}" if row.get("stop_reason") else ""),
            f"{row['wall_time_s']:.0f} s",
            "; ".join(f"{k} {v}" for k, v in row["differs"].items()) or "-",
        )
    if len(rows) > 1:
        median = comparison["median"]
        table.add_row(
            "median",
            f"{median['compression_ratio']:.1f}x",
            f"({scale * median['val_change']:+.2f})",
            f"({scale * median['test_change']:+.2f})",
            "",
            "",
            "",
            style="bold",
        )
    return table
