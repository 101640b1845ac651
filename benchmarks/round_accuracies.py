"""Tune, val and test accuracy of every round of a finished compression run.

The run's selection reads only val; this script reads the test split too, after the fact,
to show how well val predicts test at each compression level (how noisy the split is).

    python benchmarks/round_accuracies.py RUN_DIR --weights REF [--rounds 0 5 10]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from _common import machine
from safetensors.torch import load_file

from olmp.compression import STATE_JSON, masked_score, split_snapshot
from olmp.pruning.layers import find_prunable_layers
from olmp.pruning.masks import compression_ratios
from olmp.reference import load_weights
from olmp.task import SplitsTask


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--weights", required=True, help="the run's reference checkpoint")
    parser.add_argument("--rounds", type=int, nargs="+", help="default: every round")
    args = parser.parse_args()
    state = json.loads((args.run_dir / STATE_JSON).read_text())["state"]
    model, splits, _ = load_weights(args.weights)
    task = SplitsTask(splits)
    layers = find_prunable_layers(model)
    rounds = args.rounds if args.rounds is not None else range(state["round"] + 1)
    info = machine()
    print(f"`{info['command']}` — {info['date']}, commit {info['commit']}\n")
    print("| round | ratio (weights) | tune % | val % | test % |")
    print("|---|---|---|---|---|")
    for r in rounds:
        snapshot = load_file(str(args.run_dir / "rounds" / f"round-{r:03d}.safetensors"))
        weights, masks = split_snapshot(snapshot)
        model.load_state_dict(weights)
        accs = [100 * masked_score(task, model, layers, masks, s) for s in ("tune", "val", "test")]
        ratio = compression_ratios(layers, masks)[0]
        print(f"| {r} | {ratio:.1f} | " + " | ".join(f"{a:.1f}" for a in accs) + " |")


if __name__ == "__main__":
    main()
