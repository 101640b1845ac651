"""Throughput of candidate evaluation: a population together against one at a time.

For LeNet-300-100 and LeNet-5, populations of 1 to 64 threshold vectors (each layer near a
keep fraction of --keep, jittered per candidate) are scored on mnist-5k's tune split
(1,000 images) with `olmp.pruning.evaluate.PopulationEvaluator` in three ways, in the same
process: `population` (the default on a CPU: the first Linear layer's outputs computed for
the whole population together, the rest one candidate at a time), `vmap` (masked weights
stacked and run under `torch.vmap`, the default on a GPU) and `alone` (every candidate
evaluated on its own, no sharing). Reports candidates per second, the speed-up of
`population` over `alone`, and the GFLOP/s that the dense arithmetic of the forward passes
would need, beside a plain dense matrix product measured in the same process.

    python benchmarks/eval_speed.py --quick            # under a minute
    python benchmarks/eval_speed.py --json benchmarks/results/eval_speed.json
    python benchmarks/eval_speed.py --device cuda --json eval_speed_gpu.json   # on a GPU

On a GPU the three ways run on the device (``vmap`` is then the product's default); the
record names the device.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from _common import machine
from torch import nn

from olmp.data import load_dataset
from olmp.models import build_model
from olmp.pruning.evaluate import PopulationEvaluator
from olmp.pruning.layers import find_prunable_layers
from olmp.pruning.thresholds import make_parametrisation


def forward_flops(model: nn.Module, x: torch.Tensor) -> float:
    """Multiply-adds x2 of the Linear and Conv layers for one forward pass over ``x``."""
    flops = 0.0

    def count(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal flops
        if isinstance(module, nn.Linear):
            flops += 2.0 * output.numel() * module.in_features
        elif isinstance(module, nn.Conv2d):
            per_output = module.in_channels // module.groups * np.prod(module.kernel_size)
            flops += 2.0 * output.numel() * per_output

    hooks = [m.register_forward_hook(count) for m in model.modules()]
    with torch.inference_mode():
        model.eval()(x)
    for hook in hooks:
        hook.remove()
    return flops


def dense_gflops(n: int, repeats: int, device: torch.device) -> float:
    """GFLOP/s of a plain (n x 784) @ (784 x 300) matrix product on ``device``, median of
    ``repeats``."""
    a, b = torch.randn(n, 784, device=device), torch.randn(784, 300, device=device)
    torch.mm(a, b)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        torch.mm(a, b)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - started)
    return 2.0 * n * 784 * 300 / statistics.median(times) / 1e9


def time_population(
    evaluator: PopulationEvaluator, thresholds: torch.Tensor, repeats: int
) -> float:
    evaluator.accuracies(thresholds)  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        evaluator.accuracies(thresholds)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer sizes and repeats")
    parser.add_argument("--keep", type=float, default=0.05, help="keep fraction per layer")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    args = parser.parse_args()
    device = torch.device(args.device)
    info = machine()
    if device.type == "cuda":
        info["device"] = torch.cuda.get_device_name(device)
    splits = load_dataset("mnist-5k", seed=0)
    # --quick keeps population 10 (the target's) and drops 64, which alone costs LeNet-5
    # about a minute per repeat on one core.
    sizes = [1, 10] if args.quick else [1, 2, 4, 8, 10, 16, 32, 64]
    repeats = 3 if args.quick else 7
    rng = np.random.default_rng(0)
    gflops_dense = dense_gflops(len(splits.tune), repeats, device)
    rows = []
    for name in ("lenet-300-100", "lenet-5"):
        torch.manual_seed(0)
        model = build_model(name, splits.input_shape, splits.num_classes).eval().to(device)
        layers = find_prunable_layers(model)
        param = make_parametrisation(
            "keep-ratio", [layer.module.weight.detach().abs() for layer in layers]
        )
        flops = forward_flops(model, splits.tune.x.to(device))
        evaluators = {
            "population": PopulationEvaluator(model, layers, splits.tune, batched=False),
            "vmap": PopulationEvaluator(model, layers, splits.tune, batched=True),
            "alone": PopulationEvaluator(
                model, layers, splits.tune, batched=False, share_first_layer=False
            ),
        }
        for population in sizes:
            z = np.log10(args.keep) + 0.1 * rng.standard_normal((population, len(layers)))
            thresholds = param.thresholds(z)
            seconds = {k: time_population(e, thresholds, repeats) for k, e in evaluators.items()}
            row = {"model": name, "population": population}
            for mode, took in seconds.items():
                row[f"{mode}_candidates_per_s"] = population / took
                row[f"{mode}_gflops"] = population * flops / took / 1e9
            row["speedup"] = seconds["alone"] / seconds["population"]
            row["vmap_speedup"] = seconds["alone"] / seconds["vmap"]
            rows.append(row)
            print(json.dumps(row), flush=True)

    print(
        f"\n`{info['command']}` — {info['cores']} cores ({info['torch_threads']} torch "
        f"threads), {info['cpu']}, torch {info['torch']}, {info['date']}, commit "
        f"{info['commit']}; dense matmul (1000x784 @ 784x300): {gflops_dense:.1f} GFLOP/s\n"
    )
    print(
        "| model | population | population cand/s | vmap cand/s | alone cand/s | "
        "speed-up (population / alone) | speed-up (vmap / alone) | alone GFLOP/s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['model']} | {r['population']} | {r['population_candidates_per_s']:.1f} | "
            f"{r['vmap_candidates_per_s']:.1f} | {r['alone_candidates_per_s']:.1f} | "
            f"{r['speedup']:.2f} | {r['vmap_speedup']:.2f} | {r['alone_gflops']:.1f} |"
        )
    pop10 = next((r for r in rows if r["model"] == "lenet-300-100" and r["population"] == 10), None)
    summary = {
        "machine": info,
        "dense_matmul_gflops": gflops_dense,
        "keep": args.keep,
        "rows": rows,
        # the name for it: population evaluation against one candidate at a time
        "batched_speedup_pop10": pop10["speedup"] if pop10 else None,
    }
    if pop10:
        met = "met" if pop10["speedup"] >= 3 else "NOT met"
        print(
            f"\npopulation speed-up at population 10 (LeNet-300-100, keep {args.keep}): "
            f"{pop10['speedup']:.2f}x "
            f"(target >= 3x): {met}"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
