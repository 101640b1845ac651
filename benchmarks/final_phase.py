"""The final phase's orders side by side on the same rounds.

An OLMP run ends by fine-tuning, with frozen masks, some of the rounds that are smaller
than the loop's best network, and keeps the smallest that then holds the val rule
(`CompressConfig.final_order`). This script takes finished run folders, puts each back
to where its rounds ended (the loop's best, no final attempts) and replays the final phase
once per order, with the run's own final-phase settings and seed. The rounds are shared,
so any difference comes from which rounds get fine-tuned.

    python benchmarks/final_phase.py RUN_DIR [RUN_DIR ...] [--orders bisect smallest-first]

Prints one row per run and order (ratio, val and test accuracy, the rounds tried) and
writes benchmarks/results/final_phase.json (or --json PATH).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from _common import RESULTS, machine

from olmp.compression import FINAL_ORDERS, STATE_JSON, CompressConfig, Compressor, splits_task
from olmp.files import write_json_atomic
from olmp.reference import load_weights


def replay(run_dir: Path, order: str) -> dict:
    """The run in ``run_dir`` with its final phase done again in ``order`` (the folder is
    only read)."""
    record = json.loads((run_dir / STATE_JSON).read_text())
    config = replace(CompressConfig.from_dict(record["config"]), final_order=order)
    model, splits, _ = load_weights(record["metadata"]["weights"])
    run = Compressor(model, splits_task(splits, config), config)  # no run_dir: no writes
    run.load_rounds(run_dir, record)
    run.reopen_final_phase()
    result = run.run()  # the rounds are done: this is the final phase alone
    return {
        "run": run_dir.name,
        "order": order,
        "compression_ratio": result["compression_ratio"],
        "reference_val_accuracy": result["reference_val_accuracy"],
        "val_accuracy": result["val_accuracy"],
        "reference_test_accuracy": result["reference_test_accuracy"],
        "test_accuracy": result["test_accuracy"],
        "attempts": result["final_attempts"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="finished OLMP run folders")
    parser.add_argument("--orders", nargs="+", choices=FINAL_ORDERS, default=list(FINAL_ORDERS))
    parser.add_argument("--json", type=Path, default=RESULTS / "final_phase.json")
    args = parser.parse_args()
    info = machine()
    rows = []
    print("| run | order | ratio (weights) | val % - ref val % | test % - ref test % | tried |")
    print("|---|---|---|---|---|---|")
    for run_dir in args.runs:
        for order in args.orders:
            row = replay(run_dir, order)
            rows.append(row)
            tried = ", ".join(
                f"r{a['round']}{'+' if a['accepted'] else '-'}" for a in row["attempts"]
            )
            print(
                f"| {row['run']} | {order} | {row['compression_ratio']:.1f} | "
                f"{100 * (row['val_accuracy'] - row['reference_val_accuracy']):+.2f} | "
                f"{100 * (row['test_accuracy'] - row['reference_test_accuracy']):+.2f} | "
                f"{tried} |",
                flush=True,
            )
    print(
        f"\n`{info['command']}` — {info['cores']} cores ({info['torch_threads']} torch "
        f"threads), {info['cpu']}, torch {info['torch']}, {info['date']}, commit {info['commit']}"
    )
    write_json_atomic(args.json, {"machine": info, "rows": rows})


if __name__ == "__main__":
    main()
