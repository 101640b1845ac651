"""Benchmarks of ``olmp attack`` (public API only), results in ``benchmarks/results/attack_*``.

    python benchmarks/attack.py peers --weights REF --eps 0.1 --images 100 --seeds 0 1 2
    python benchmarks/attack.py ordering --weights REF --eps 0.1 --images 50 --seeds 0
    python benchmarks/attack.py compressed --weights REF RUN/pruned.safetensors ... --eps 0.1
    python benchmarks/attack.py throughput --weights REF

* ``peers``: our ``square`` against ART's ``SquareAttack`` on the same model, images, targets,
  ε and budget (ART runs in its own environment, ``--art-python``, through
  ``benchmarks/attack_art.py``), both at each ``--p-init`` (ours 0.05 by default, ART's 0.8).
* ``ordering``: the five attacks and the block attack with a random block order
  (``--methods`` keeps some of them).
* ``compressed``: every ``--methods`` attack on a dense network and its compressed versions,
  at each seed.
* ``throughput``: queries per second scored as one batch against one at a time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import RESULTS, machine

from olmp.attack import Oracle, run_attack
from olmp.attack.run import pixel_images
from olmp.data.registry import get_spec
from olmp.dfo.solvers import parse_solver_options
from olmp.files import write_json_atomic
from olmp.reference import load_weights

BUDGET = 3000


def ours(weights, method, eps, images, seed, budget=BUDGET, **kw):
    started = time.perf_counter()
    result = run_attack(
        weights, method=method, eps=eps, budget=budget, images=images, seed=seed,
        device="cpu", **kw,
    )  # fmt: skip
    result["wall_s"] = time.perf_counter() - started
    return result


def as_checkpoint(weights, args):
    """A run's round checkpoint (``RUN/rounds/round-NNN.safetensors``, the run's own format)
    as a plain checkpoint that ``olmp attack`` loads: masks applied, model and dataset named
    by ``--model``/``--dataset``. Other files are returned as they are."""
    path = Path(weights)
    if path.parent.name != "rounds":
        return weights
    from safetensors.torch import load_file

    from olmp.files import save_checkpoint

    tensors = load_file(str(path))
    state = {k[len("model/") :]: v for k, v in tensors.items() if k.startswith("model/")}
    for name, mask in tensors.items():
        if name.startswith("mask/"):
            state[name[len("mask/") :]] = state[name[len("mask/") :]] * mask
    out = Path(tempfile.gettempdir()) / f"attack-{path.parent.parent.name}-{path.stem}.safetensors"
    save_checkpoint(out, state, {"model": args.model, "dataset": args.dataset, "split_seed": 0})
    return out


def brief(result):
    return {
        "method": result["method"] + (f"/{result['solver']}" if result.get("solver") else ""),
        "options": result["options"],
        "weights": result["weights"],
        "compression_ratio": result["compression_ratio"],
        "seed": result["seed"],
        "pairs": result["pairs"],
        "success_rate": result["success_rate"],
        "success_at": {b: v["success_rate"] for b, v in result["success_at"].items()},
        "median_queries": result["median_queries"],
        "wall_s": round(result["wall_s"], 1),
    }


def art_square(result, weights, eps, seed, p_init, art_python):
    """ART's SquareAttack on the pairs of one of our results."""
    _, splits, meta = load_weights(weights, device="cpu")
    spec = get_spec(splits.name)
    pixels = pixel_images(splits.test.x, spec.mean, spec.std)
    index = np.array([r["index"] for r in result["records"]])
    with tempfile.TemporaryDirectory() as tmp:
        pairs = Path(tmp) / "pairs.npz"
        np.savez(
            pairs, x=pixels[index], target=np.array([r["target"] for r in result["records"]]),
            mean=spec.mean, std=spec.std, eps=eps, budget=BUDGET, seed=seed, p_init=p_init,
            model=meta["model"],
        )  # fmt: skip
        out = Path(tmp) / "art.json"
        script = Path(__file__).with_name("attack_art.py")
        subprocess.run([art_python, str(script), str(pairs), str(weights), str(out)], check=True)
        return json.loads(out.read_text())


def peers(args, save):
    for seed in args.seeds:
        for p_init in args.p_init:
            r = ours(
                args.weights[0], "square", args.eps, args.images, seed, options={"p_init": p_init}
            )
            art = art_square(r, args.weights[0], args.eps, seed, p_init, args.art_python)
            row = {**brief(r), "p_init": p_init, "art_success_rate": art["success_rate"],
                   "art_seconds": round(art["seconds"], 1), "art_version": art["art"]}  # fmt: skip
            save(row)


def ordering(args, save):
    runs = [("square", {}), ("parsimonious", {}), ("genattack", {}), ("zo-fw", {}),
            ("bobyqa", {}), ("bobyqa", {"order": "random"})]  # fmt: skip
    if args.methods:  # a subset, e.g. the vertex attacks and both block orders
        runs = [(m, o) for m, o in runs if m in args.methods]
    for seed in args.seeds:
        for method, options in runs:
            r = ours(args.weights[0], method, args.eps, args.images, seed, options=options)
            save(brief(r))


def compressed(args, save):
    options = parse_solver_options(args.option)
    for seed in args.seeds:
        for given in args.weights:
            weights = as_checkpoint(given, args)
            for method in args.methods or ["square", "bobyqa"]:
                r = ours(weights, method, args.eps, args.images, seed, options=options)
                r["weights"] = str(given)
                save(brief(r))


def throughput(args, save):
    model, splits, _ = load_weights(args.weights[0], device="cpu")
    spec = get_spec(splits.name)
    x = pixel_images(splits.test.x[:50], spec.mean, spec.std)
    for k in (50,):
        oracle = Oracle(model, spec.mean, spec.std, 0, 10**9)
        t = time.perf_counter()
        for _ in range(40):
            oracle.loss(x[:k])
        batched = 40 * k / (time.perf_counter() - t)
        t = time.perf_counter()
        for _ in range(4):
            for i in range(k):
                oracle.loss(x[i : i + 1])
        single = 4 * k / (time.perf_counter() - t)
        save({"batch": k, "batched_qps": round(batched), "single_qps": round(single),
              "ratio": round(batched / single, 1)})  # fmt: skip


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("part", choices=["peers", "ordering", "compressed", "throughput"])
    parser.add_argument("--weights", nargs="+", required=True)
    parser.add_argument("--eps", type=float, default=0.1)
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument(
        "--methods", nargs="+", help="compressed: default square bobyqa; ordering: all"
    )
    parser.add_argument("--art-python", default="/tmp/artenv/bin/python")
    parser.add_argument("--p-init", type=float, nargs="+", default=[0.05])
    parser.add_argument("--model", default="lenet-300-100", help="of round checkpoints")
    parser.add_argument("--dataset", default="mnist-5k", help="of round checkpoints")
    parser.add_argument("--option", action="append", default=[], help="KEY=VALUE, compressed")
    parser.add_argument("--tag", default="")
    args = parser.parse_args()
    torch.set_num_threads(1)
    name = f"attack_{args.part}{'_' + args.tag if args.tag else ''}.json"
    record = {"machine": machine(), "eps": args.eps, "budget": BUDGET, "rows": []}

    def save(row):  # after every row, so that a stopped benchmark keeps what it measured
        record["rows"].append(row)
        print(json.dumps(row), flush=True)
        write_json_atomic(RESULTS / name, record)

    {"peers": peers, "ordering": ordering, "compressed": compressed,
     "throughput": throughput}[args.part](args, save)  # fmt: skip
    rows = record["rows"]
    if rows and "success_rate" in rows[0]:
        print(statistics.median(r["success_rate"] for r in rows))


if __name__ == "__main__":
    sys.exit(main())
