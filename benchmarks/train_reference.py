"""Accuracy and time of the default training recipes (the reference models OLMP compresses).

Trains every (model, dataset) setting with its default recipe for several seeds and prints
a markdown table of median (min-max) val and test accuracy and training time, plus the
targets of the foundation issue. Results also go to benchmarks/results/train_reference.json.

    python benchmarks/train_reference.py                 # all settings, seeds 0 1 2
    python benchmarks/train_reference.py --quick         # mnist-5k only, one seed
"""

from __future__ import annotations

import argparse
import json
import statistics

from _common import RESULTS, machine, spread

from olmp.reference import train_reference
from olmp.training import default_recipe, with_overrides

SETTINGS = [  # (model, dataset, minimum test accuracy, maximum median train time in s)
    ("lenet-300-100", "mnist-5k", 0.94, 60.0),
    ("lenet-300-100", "fashion-mnist", 0.89, None),
    ("lenet-5", "fashion-mnist", 0.90, None),
    ("conv-small", "fashion-mnist", 0.91, None),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--quick", action="store_true", help="mnist-5k, one seed")
    parser.add_argument("--only", nargs="+", help="restrict to these model names")
    args = parser.parse_args()
    info = machine()  # before the runs: the commit they ran
    settings = SETTINGS[:1] if args.quick else SETTINGS
    seeds = args.seeds[:1] if args.quick else args.seeds
    if args.only:
        settings = [s for s in settings if s[0] in args.only]

    rows = []
    for model, dataset, min_acc, max_time in settings:
        runs = []
        for seed in seeds:
            config = with_overrides(default_recipe(model, dataset), seed=seed)
            _, meta = train_reference(model, dataset, config=config, split_seed=seed)
            runs.append(meta)
            print(
                f"{model} {dataset} seed {seed}: test {meta['test_accuracy']:.4f} "
                f"in {meta['train_time_s']:.1f} s",
                flush=True,
            )
        test = [r["test_accuracy"] for r in runs]
        times = [r["train_time_s"] for r in runs]
        met = statistics.median(test) >= min_acc and (
            max_time is None or statistics.median(times) <= max_time
        )
        rows.append(
            {
                "model": model,
                "dataset": dataset,
                "seeds": seeds,
                "epochs": runs[0]["recipe"]["epochs"],
                "val_accuracy": [r["val_accuracy"] for r in runs],
                "test_accuracy": test,
                "train_time_s": times,
                "target": f"test >= {min_acc:.0%}"
                + (f", time <= {max_time:.0f} s" if max_time else ""),
                "met": met,
            }
        )

    print(
        f"\n`{info['command']}` — {info['cores']} cores, {info['cpu']}, torch {info['torch']}, "
        f"{info['date']}, commit {info['commit']}\n"
    )
    print("| model | dataset | epochs | val acc | test acc | train time (s) | target | met |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['model']} | {r['dataset']} | {r['epochs']} | "
            f"{spread([100 * v for v in r['val_accuracy']], '.2f')} | "
            f"{spread([100 * v for v in r['test_accuracy']], '.2f')} | "
            f"{spread(r['train_time_s'], '.1f')} | {r['target']} | {'yes' if r['met'] else 'NO'} |"
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "train_reference.json").write_text(
        json.dumps({"machine": info, "rows": rows}, indent=2) + "\n"
    )


if __name__ == "__main__":
    main()
