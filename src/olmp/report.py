"""Human-facing views of a run: the per-layer table and the progress plot."""

from __future__ import annotations

import os
from typing import Any

from rich.table import Table

from olmp.files import atomic_path


def summary_line(result: dict[str, Any]) -> str:
    """Compression and accuracies of a result record, beside the reference's, in one line."""
    return (
        f"{result['compression_ratio']:.1f}x weights "
        f"({result['compression_ratio_with_biases']:.1f}x with biases); "
        f"val {result['val_accuracy']:.2%} (ref {result['reference_val_accuracy']:.2%}); "
        f"test {result['test_accuracy']:.2%} (ref {result['reference_test_accuracy']:.2%})"
    )


def layer_rich_table(result: dict[str, Any]) -> Table:
    """The per-layer table of a result record (shape, total, kept, keep %)."""
    table = Table(title=f"{result.get('model', 'model')}, per layer")
    for column in ("layer", "type", "shape", "weights", "kept", "keep %"):
        table.add_column(column, justify="left" if column in ("layer", "type") else "right")
    total = kept = 0
    for row in result["layers"]:
        total += row["total_weights"]
        kept += row["kept_weights"]
        table.add_row(
            row["name"],
            row["type"],
            "x".join(map(str, row["shape"])),
            f"{row['total_weights']:,}",
            f"{row['kept_weights']:,}",
            f"{100 * row['kept_weights'] / row['total_weights']:.2f}",
        )
    table.add_row(
        "total", "", "", f"{total:,}", f"{kept:,}", f"{100 * kept / total:.2f}", style="bold"
    )
    return table


def plot_history(result: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """PNG of compression ratio and val accuracy per round, with the reference's."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    history = result["history"]
    rounds = [h["round"] for h in history]
    fig, (ax_ratio, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    ax_ratio.plot(rounds, [h["compression_ratio"] for h in history], marker="o")
    ax_ratio.set_yscale("log")
    ax_ratio.set_xlabel("round")
    ax_ratio.set_ylabel("compression ratio (weights, log scale)")
    ax_ratio.axhline(
        result["compression_ratio"],
        color="green",
        linestyle="--",
        label=f"result {result['compression_ratio']:.1f}x",
    )
    ax_ratio.legend()
    ax_acc.plot(rounds, [100 * h["val_accuracy"] for h in history], marker="o", label="val")
    ax_acc.axhline(
        100 * result["reference_val_accuracy"], color="gray", linestyle="--", label="reference val"
    )
    tolerance = result.get("config", {}).get("tolerance", 0.0)
    if tolerance > 0:
        ax_acc.axhline(
            100 * (result["reference_val_accuracy"] - tolerance),
            color="red",
            linestyle=":",
            label="val threshold",
        )
    chosen = [h for h in history if h["round"] == result.get("best_round")]
    for h in chosen:  # the round the result comes from (before any final fine-tuning)
        ax_ratio.plot(h["round"], h["compression_ratio"], "g*", markersize=14)
        ax_acc.plot(h["round"], 100 * h["val_accuracy"], "g*", markersize=14)
    ax_acc.set_xlabel("round")
    ax_acc.set_ylabel("accuracy (%)")
    ax_acc.legend()
    fig.suptitle(
        f"OLMP ({result['solver']}) on {result.get('model', '')} / {result.get('dataset', '')}"
    )
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
