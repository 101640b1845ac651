"""Selection rules on the same runs: which round each rule keeps, and what it costs on test.

A run's rounds are scored again on val and test from their snapshots (test only here, after
the fact). Every rule then picks among the same networks (the reference and each round's;
not the final phase's fine-tuned ones, which a run does not keep), so the rules differ
only in how they read val:

* ``point``: the smallest network whose own val accuracy clears the threshold (the
  product's rule);
* ``isotonic``: its own and its fitted val accuracy, fitted over all the run's networks by a
  least-squares curve that never rises as the network shrinks (tried in 5e90a50);
* ``window F``: its own val accuracy and the mean over the networks within a factor ``F``
  of its size (window 1.25 tried in 954a5ff);
* ``tune+val level``: its own val accuracy against the reference's level estimated on tune and
  val together (2,000 images instead of 1,000; the pairing with the reference is lost);
* ``tune+val pooled``: its accuracy on tune and val together against the reference's (tune is
  the split the search's fitness reads, so a round's tune score is not independent of it).

Neither smoothing was adopted: BENCHMARKS.md ("Selecting under val noise") has why.

    python benchmarks/selection.py RUN_DIR [RUN_DIR ...] [--tolerance 0] [--json OUT]

A run folder's reference is the checkpoint its record names (a relative path is taken from
the folder's parent).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from _common import machine
from scipy.optimize import isotonic_regression

from olmp.compression import STATE_JSON, masked_score, split_snapshot
from olmp.compression.run_folder import snapshot_path
from olmp.files import load_checkpoint
from olmp.pruning.layers import find_prunable_layers
from olmp.pruning.masks import compression_ratios
from olmp.reference import load_weights
from olmp.task import SplitsTask


@dataclass(frozen=True)
class Candidate:
    """One network a run could return: its kept fraction of the weights, its val and tune
    accuracy."""

    size: float
    val_accuracy: float
    tune_accuracy: float


def score_rounds(run_dir: Path) -> dict:
    """Val and test accuracy and compression of the reference and every round."""
    record = json.loads((run_dir / STATE_JSON).read_text())
    weights = Path(record["metadata"]["weights"])
    if not weights.is_absolute():
        weights = run_dir.parent / weights
    model, splits, _ = load_weights(weights)
    task = SplitsTask(splits)
    layers = find_prunable_layers(model)
    rows = []
    for r in range(record["state"]["round"] + 1):
        tensors, _ = load_checkpoint(snapshot_path(run_dir, r))
        state, masks = split_snapshot(tensors)
        model.load_state_dict(state)
        size = 1.0 / compression_ratios(layers, masks)[0]
        scores = {s: masked_score(task, model, layers, masks, s) for s in ("tune", "val", "test")}
        rows.append({"round": r, "size": size, **scores})
    return {"run": str(run_dir), "rounds": rows}


def smallest(candidates: list[Candidate], passes: np.ndarray) -> int:
    """The smallest candidate that ``passes`` (the reference, index 0, when none does)."""
    passing = np.flatnonzero(passes)
    if not len(passing):
        return 0
    return min(passing, key=lambda i: (candidates[i].size, -candidates[i].val_accuracy))


def smallest_passing(candidates: list[Candidate], estimate: np.ndarray, threshold: float) -> int:
    """The smallest candidate whose own and ``estimate``d val accuracy clear ``threshold``."""
    own = np.array([c.val_accuracy for c in candidates])
    return smallest(candidates, np.minimum(estimate, own) + 1e-12 >= threshold)


def point_rule(candidates: list[Candidate], threshold: float) -> int:
    return smallest_passing(candidates, np.array([c.val_accuracy for c in candidates]), threshold)


def isotonic_rule(candidates: list[Candidate], threshold: float) -> int:
    """Fitted by least squares with a curve that never rises as the network shrinks, over
    all the run's networks (one size: one point, weighted by its count)."""
    sizes = np.array([c.size for c in candidates])
    values = np.array([c.val_accuracy for c in candidates])
    _, group = np.unique(sizes, return_inverse=True)
    counts = np.bincount(group).astype(float)
    means = np.bincount(group, weights=values) / counts
    fit = isotonic_regression(means, weights=counts, increasing=True).x
    return smallest_passing(candidates, fit[group], threshold)


def window_rule(factor: float):
    def rule(candidates: list[Candidate], threshold: float) -> int:
        log_size = np.log([c.size for c in candidates])
        values = np.array([c.val_accuracy for c in candidates])
        near = np.abs(log_size[:, None] - log_size[None, :]) <= math.log(factor) + 1e-12
        return smallest_passing(candidates, (near * values).sum(1) / near.sum(1), threshold)

    return rule


def tune_val_level(candidates: list[Candidate], threshold: float) -> float:
    """``threshold`` (the reference's val accuracy minus the tolerance) moved to the mean of
    the reference's tune and val accuracy."""
    reference = candidates[0]
    return threshold + (reference.tune_accuracy - reference.val_accuracy) / 2


def tune_val_level_rule(candidates: list[Candidate], threshold: float) -> int:
    own = np.array([c.val_accuracy for c in candidates])
    return smallest(candidates, own + 1e-12 >= tune_val_level(candidates, threshold))


def tune_val_pooled_rule(candidates: list[Candidate], threshold: float) -> int:
    pooled = np.array([(c.tune_accuracy + c.val_accuracy) / 2 for c in candidates])
    return smallest(candidates, pooled + 1e-12 >= tune_val_level(candidates, threshold))


RULES = {
    "point (olmp)": point_rule,
    "isotonic": isotonic_rule,
    "window 1.25": window_rule(1.25),
    "window 1.5": window_rule(1.5),
    "window 2": window_rule(2.0),
    "tune+val level": tune_val_level_rule,
    "tune+val pooled": tune_val_pooled_rule,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--tolerance", type=float, default=0.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    info = machine()
    table = []
    for run_dir in args.runs:
        scored = score_rounds(run_dir)
        rows = scored["rounds"]
        reference = rows[0]
        candidates = [Candidate(r["size"], r["val"], r["tune"]) for r in rows]
        threshold = reference["val"] - args.tolerance
        picks = {}
        for name, rule in RULES.items():
            row = rows[rule(candidates, threshold)]
            picks[name] = {
                "round": row["round"],
                "ratio": 1 / row["size"],
                "test_change": 100 * (row["test"] - reference["test"]),
            }
        table.append(scored | {"picks": picks})
    print(f"`{info['command']}` — {info['date']}, commit {info['commit']}\n")
    names = list(RULES)
    print("| run | " + " | ".join(f"{n}: ratio, test change" for n in names) + " |")
    print("|---|" + "---|" * len(names))
    for t in table:
        cells = [f"{p['ratio']:.1f}×, {p['test_change']:+.1f}" for p in t["picks"].values()]
        print(f"| {Path(t['run']).name} | " + " | ".join(cells) + " |")
    medians = []
    for n in names:
        ratio = statistics.median(t["picks"][n]["ratio"] for t in table)
        change = statistics.median(t["picks"][n]["test_change"] for t in table)
        medians.append(f"{ratio:.1f}×, {change:+.1f}")
    print("| median | " + " | ".join(medians) + " |")
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "runs": table}, indent=1) + "\n")


if __name__ == "__main__":
    main()
