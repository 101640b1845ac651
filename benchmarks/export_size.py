"""Size on disk of the default LeNet-300-100 / mnist-5k run, exported.

For each seed: the default run (trained and compressed as `benchmarks/compress_mnist5k.py`
does, reusing its folders in --workdir), exported with `olmp.export_run` in float32 and in
float16. Reports the file size against the dense float32 weights and against the bytes of
the kept values alone, and the accuracy of the file loaded back.
Writes benchmarks/results/export_size.json.

    python benchmarks/export_size.py --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from _common import RESULTS, machine, mnist5k_run, spread

from olmp.export import export_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--workdir", default="/tmp/olmp-bench")
    args = parser.parse_args()
    info = machine()
    rows = []
    for seed in args.seeds:
        run_dir, result, _ = mnist5k_run(seed, args.workdir)
        for dtype in ("float32", "float16"):
            out = Path(args.workdir) / f"export-{seed}-{dtype}.safetensors"
            record = export_run(run_dir, out, dtype=dtype, force=True)
            row = {
                "seed": seed,
                "dtype": dtype,
                "compression_ratio": result["compression_ratio"],
                "file_bytes": record["file_bytes"],
                "dense_float32_bytes": record["dense_float32_bytes"],
                "kept_values": record["kept_values"],
                "file_over_kept_float32": record["file_bytes"] / (4 * record["kept_values"]),
                "dense_over_file": record["dense_float32_bytes"] / record["file_bytes"],
                "test_change_points": 100 * (record["test_accuracy"] - result["test_accuracy"]),
                "encodings": record["encodings"],
            }
            print(json.dumps(row), flush=True)
            rows.append(row)

    print(
        f"\n`{info['command']}` — {info['cpu']}, torch {info['torch']}, {info['date']}, "
        f"commit {info['commit']}\n"
    )
    print(
        "| dtype | seeds | run ratio (weights) | file bytes | dense float32 / file | "
        "file / kept values (4 B each) | test change (points) |"
    )
    print("|---|---|---|---|---|---|---|")
    for dtype in ("float32", "float16"):
        sel = [r for r in rows if r["dtype"] == dtype]
        print(
            f"| {dtype} | {len(sel)} | {spread([r['compression_ratio'] for r in sel], '.1f')} | "
            f"{spread([r['file_bytes'] for r in sel], ',.0f')} | "
            f"{spread([r['dense_over_file'] for r in sel], '.1f')} | "
            f"{spread([r['file_over_kept_float32'] for r in sel], '.2f')} | "
            f"{spread([r['test_change_points'] for r in sel], '+.2f')} |"
        )
    f32 = [r for r in rows if r["dtype"] == "float32"]
    met = (
        statistics.median(r["file_over_kept_float32"] for r in f32) <= 2.5
        and statistics.median(r["dense_over_file"] for r in f32) >= 20
    )
    print(
        "\ntarget (float32 file <= 2.5x its kept values' bytes, >= 20x smaller than dense): "
        + ("met" if met else "NOT met")
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "export_size.json").write_text(json.dumps({"machine": info, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
