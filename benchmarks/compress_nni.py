"""NNI 2.10's automatic pruners, run from NNI's own code, on the references OLMP compresses.

NNI is not an olmp dependency: it runs in an environment of its own, with olmp installed
beside it only for the data, the references and the retraining recipe (so every method sees
the same splits and the same SGD steps):

    python3.11 -m venv /tmp/nnienv
    /tmp/nnienv/bin/pip install nni==2.10 torch==2.13.0 tensorboard -e .
    TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 OMP_NUM_THREADS=1 /tmp/nnienv/bin/python \\
        benchmarks/compress_nni.py --setting lenet-300-100/mnist-5k --seeds 0 1 2 --workdir W

(NNI 2.10 reloads its own pickled intermediate models with ``torch.load``, which torch >= 2.6
refuses without that variable; it only ever reads files NNI itself just wrote.)

The protocol is `compress.py`'s for the gradual magnitude pruning baselines: for each seed,
the reference and the OLMP default run in ``W`` (trained and run when missing), and for each
target ratio of `BaselineConfig.gmp_ratios` one NNI run from the reference that spends the
retraining steps the OLMP run spent, at OLMP's learning rate and the reference's recipe:

* ``sa``: `SimulatedAnnealingPruner` (NNI's defaults: magnitude ``level`` pruning, start
  temperature 100, stop 20, cooling 0.9, perturbation 0.35) allocates the target's total
  sparsity over the layers, scoring each allocation's tune accuracy without retraining (as
  OLMP's search scores tune); its best masks are then fine-tuned with the whole budget.
* ``agp``: `AGPPruner` as shipped, the same sparsity in every layer (``sparsity_per_layer``),
  ``level`` pruning over 10 iterations with a tenth of the budget of fine-tuning after each.

Each target's network is scored on val and test; the selection rule is OLMP's, on val only
(the largest target whose val accuracy is >= the reference's minus the tolerance), applied at
each ``--tolerances`` value to the same runs. Test is read for the report only.
Writes a markdown table (stdout) and benchmarks/results/compress_nni_<setting>.json; each
target's run is kept in ``W`` and reused (a stopped run goes on).

``--set tolerance=0.005`` gives each target the steps of the OLMP run with that setting (the
run `compress.py --set tolerance=0.005` makes, shared in ``W``) instead of the default's: the
protocol's budget at that tolerance. The record is then named for it (``..._tolerance-0.005``).

``--ratios 10 20`` runs only those targets (where each costs hours, the ones that decide a
verdict): the selection then picks among them, and the record is named for them and for the
``--methods`` when not both (``compress_nni_<setting>_sa_10-20x.json``), so it never
replaces the whole protocol's.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
from _common import (
    RESULTS,
    SETTINGS,
    add_overrides,
    machine,
    olmp_run,
    override_text,
    reference_checkpoint,
)
from compress import retrain_steps
from nni.compression.pytorch.pruning import AGPPruner, SimulatedAnnealingPruner

from olmp.baselines import BaselineConfig
from olmp.compression import CompressConfig
from olmp.files import write_json_atomic
from olmp.pruning.layers import find_prunable_layers
from olmp.reference import load_weights
from olmp.task import SplitsTask
from olmp.training import default_recipe

AGP_ITERATIONS = 10
METHODS = ("sa", "agp")


def masked_weights_of(masks: dict) -> dict[str, torch.Tensor]:
    """NNI's masks (``{module: {"weight": mask}}``) as olmp's (``{"module.weight": mask}``)."""
    return {f"{name}.weight": m["weight"].bool() for name, m in masks.items()}


def bake(model: torch.nn.Module, masks: dict[str, torch.Tensor]) -> None:
    """Zero the pruned weights for good, so a score sees exactly the kept ones."""
    state = model.state_dict()
    with torch.no_grad():
        for name, mask in masks.items():
            state[name].mul_(mask)


def fine_tune_fixed(model, masks, task, steps: int, lr: float, seed: int) -> None:
    """Retrain a baked network with the masks held fixed: pruned weights are zeroed again
    after every step."""
    task.retrain(model, steps=steps, lr=lr, seed=seed, on_step=lambda step: bake(model, masks))


def run_target(method: str, model, names: list[str], task, ratio: float, budget: int, seed: int):
    """One NNI run from the reference to ``ratio``; returns the pruned model's masks."""
    lr = CompressConfig.adjust_lr
    sparsity = 1.0 - 1.0 / ratio
    tune_score = lambda m: task.score(m, "tune")  # noqa: E731 (NNI's legacy evaluator)
    with tempfile.TemporaryDirectory() as log_dir:
        if method == "sa":
            config = [{"total_sparsity": sparsity, "op_names": names}]
            pruner = SimulatedAnnealingPruner(
                model, config, evaluator=tune_score, pruning_algorithm="level", log_dir=log_dir
            )
        else:
            calls = itertools.count()
            per_iteration = budget // AGP_ITERATIONS

            def finetuner(wrapped):  # NNI calls it with the masks applied by its wrappers
                task.retrain(
                    wrapped, steps=per_iteration, lr=lr, seed=seed + next(calls), on_step=None
                )

            config = [{"sparsity_per_layer": sparsity, "op_names": names}]
            pruner = AGPPruner(
                model,
                config,
                "level",
                AGP_ITERATIONS,
                log_dir=log_dir,
                finetuner=finetuner,
            )
        pruner.compress()
        _, best, nni_masks, _, _ = pruner.get_best_result()
    masks = masked_weights_of(nni_masks)
    model.load_state_dict(best.state_dict())
    bake(model, masks)
    if method == "sa":  # SA searched without retraining; AGP fine-tuned as it pruned
        fine_tune_fixed(model, masks, task, budget, lr, seed)
    return masks


def run_method(
    method: str, setting: str, seed: int, workdir: Path, ratios: list[float], overrides: dict
) -> dict:
    model_name, dataset = setting.split("/")
    _, olmp_result, _ = olmp_run(model_name, dataset, seed, workdir, overrides)
    budget = retrain_steps(olmp_result)
    stem = f"nni-{model_name}-{dataset}-{method}-seed-{seed}-{budget}"
    # Runs of every target written as one file (before targets were kept one by one).
    whole = workdir / f"{stem}.json"
    done = {}
    if whole.exists():
        done = {t["target_ratio"]: t for t in json.loads(whole.read_text())["targets"]}
    weights = reference_checkpoint(model_name, dataset, seed, workdir)
    model, splits, _ = load_weights(weights)
    recipe = default_recipe(model_name, dataset)
    task = SplitsTask(splits, batch_size=recipe.batch_size, augment_shift=recipe.max_shift)
    names = [layer.name for layer in find_prunable_layers(model)]
    reference_state = {k: v.clone() for k, v in model.state_dict().items()}
    record = {
        "method": f"nni-{method}",
        "seed": seed,
        "retrain_steps_per_target": budget,
        **{f"reference_{s}_accuracy": task.score(model, s) for s in ("val", "test")},
        "targets": [],
    }
    for ratio in sorted(ratios):
        cache = workdir / f"{stem}-{ratio:g}x.json"
        if ratio not in done and cache.exists():
            done[ratio] = json.loads(cache.read_text())
        if ratio not in done:
            started = time.perf_counter()
            model.load_state_dict(reference_state)
            masks = run_target(method, model, names, task, ratio, budget, seed * 100_003 + ratio)
            total = sum(m.numel() for m in masks.values())
            kept = sum(int(m.sum()) for m in masks.values())
            done[ratio] = {
                "target_ratio": ratio,
                "compression_ratio": total / max(kept, 1),
                "val_accuracy": task.score(model, "val"),
                "test_accuracy": task.score(model, "test"),
                "wall_time_s": round(time.perf_counter() - started, 1),
            }
            write_json_atomic(cache, done[ratio])
            print(json.dumps({"method": method, "seed": seed} | done[ratio]), flush=True)
        record["targets"].append(done[ratio])
    return record


def select(record: dict, tolerance: float) -> dict:
    """OLMP's rule on val: the largest target that holds, else the reference (1×)."""
    required = record["reference_val_accuracy"] - tolerance
    passing = [t for t in record["targets"] if t["val_accuracy"] + 1e-12 >= required]
    if not passing:
        return {"compression_ratio": 1.0, "val_change": 0.0, "test_change": 0.0}
    best = max(passing, key=lambda t: t["compression_ratio"])
    return {
        "compression_ratio": best["compression_ratio"],
        "val_change": best["val_accuracy"] - record["reference_val_accuracy"],
        "test_change": best["test_accuracy"] - record["reference_test_accuracy"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setting", choices=sorted(SETTINGS), default="lenet-300-100/mnist-5k")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--tolerances", type=float, nargs="+", default=[0.0, 0.005])
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--ratios", type=int, nargs="+", default=sorted(BaselineConfig.gmp_ratios))
    add_overrides(
        parser, "the OLMP run whose retraining steps each target gets (default: the defaults')"
    )
    args = parser.parse_args()
    # As `olmp_run` does: a setting equal to the default's is the default run (and name).
    overrides = {k: v for k, v in args.set if getattr(CompressConfig(), k) != v}
    args.workdir.mkdir(parents=True, exist_ok=True)
    info = machine()
    some_targets = sorted(args.ratios) != sorted(BaselineConfig.gmp_ratios)
    records = [
        run_method(m, args.setting, s, args.workdir, args.ratios, overrides)
        for m in args.methods
        for s in args.seeds
    ]
    rows = []
    print(f"\n`{info['command']}` — {info['date']}, commit {info['commit']}\n")
    if some_targets:
        print(f"Targets run: {', '.join(f'{r:g}x' for r in args.ratios)} (1.0x: none held)\n")
    print("| method | tolerance | " + " | ".join(f"seed {s}" for s in args.seeds) + " | median |")
    print("|---|---|" + "---|" * (len(args.seeds) + 1))
    for method in args.methods:
        for tolerance in args.tolerances:
            picks = [select(r, tolerance) for r in records if r["method"] == f"nni-{method}"]
            rows.append({"method": f"nni-{method}", "tolerance": tolerance, "seeds": picks})
            cells = [
                f"{p['compression_ratio']:.1f}× (test {100 * p['test_change']:+.1f})" for p in picks
            ]
            median = statistics.median(p["compression_ratio"] for p in picks)
            print(f"| nni-{method} | {tolerance:g} | " + " | ".join(cells) + f" | {median:.1f}× |")
    name = f"compress_nni_{args.setting.replace('/', '_')}"
    name += "".join(f"_{k}-{override_text(v)}" for k, v in sorted(overrides.items()))
    if sorted(args.methods) != sorted(METHODS):
        name += "_" + "-".join(args.methods)
    if some_targets:
        name += "_" + "-".join(f"{r:g}" for r in sorted(args.ratios)) + "x"
    write_json_atomic(RESULTS / f"{name}.json", {"machine": info, "rows": rows, "runs": records})


if __name__ == "__main__":
    main()
