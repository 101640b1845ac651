"""``olmp export`` and ``olmp inspect``: small sparse files of a run's network."""

from __future__ import annotations

import argparse
import json

from rich.table import Table

from olmp.cli.common import (
    add_data_dir,
    add_trust,
)
from olmp.cli.parser import COMMAND_HELP, Formatter
from olmp.console import print_table
from olmp.export import VALUE_DTYPES, export_run, inspect_export, summarise_sizes


def _export(args: argparse.Namespace) -> int:
    record = export_run(
        args.run_dir,
        args.out,
        dtype=args.dtype,
        onnx=args.onnx,
        force=args.force,
        data_dir=args.data_dir,
        model=args.model,
        trust_model_code=args.trust_model_code,
    )
    if args.json:
        print(json.dumps(record))
        return 0
    if "onnx_file" in record:
        print(
            f"ONNX: {record['onnx_file']} ({record['onnx_bytes']:,} bytes, weights dense); "
            f"onnxruntime matches PyTorch on {record['checked_inputs']:,} test inputs "
            f"(largest logit difference {record['max_logit_difference']:.2g})"
        )
    if "file_bytes" in record:
        print(f"{record['file']}: {summarise_sizes(record)}")
        if "test_accuracy" in record:
            loaded = (
                f"loaded back: val {record['val_accuracy']:.2%}, test {record['test_accuracy']:.2%}"
            )
            run_test = record["run_test_accuracy"]
            if run_test is not None:  # None: the run's own evaluate() scored another metric
                change = 100 * (record["test_accuracy"] - run_test)
                loaded += f" ({change:+.2f} points against the run's {run_test:.2%})"
            print(loaded)
        else:
            print(record["accuracy_note"])
    return 0


def _inspect(args: argparse.Namespace) -> int:
    info = inspect_export(args.file)
    if args.json:
        print(json.dumps(info))
        return 0
    meta, sizes = info["metadata"], info["sizes"]
    print(
        f"{args.file}: olmp export v{meta['format_version']} of {meta.get('model', '?')} "
        f"(input {meta.get('input_shape')}, {meta.get('num_classes')} classes), "
        f"compressed on {meta.get('dataset', '?')} split seed {meta.get('split_seed', '?')}"
    )
    table = Table()
    for column in ("tensor", "shape", "dtype", "encoding", "non-zero", "of", "stored bytes"):
        table.add_column(column, justify="left" if column in ("tensor", "encoding") else "right")
    for name, entry in meta["tensors"].items():
        table.add_row(
            name,
            "x".join(map(str, entry["shape"])),
            entry["dtype"],
            entry["encoding"],
            f"{entry['nonzero']:,}",
            f"{entry['numel']:,}",
            f"{entry['stored_bytes']:,}",
        )
    print_table(table)
    print(summarise_sizes(sizes))
    if "test_accuracy" in meta:
        print(
            f"run: {meta['compression_ratio']:.1f}x, val {meta['val_accuracy']:.2%}, "
            f"test {meta['test_accuracy']:.2%} (float32 weights)"
        )
    return 0


def add_command(commands: argparse._SubParsersAction) -> None:
    """Add this module's command(s) to the ``olmp`` parser."""
    export = commands.add_parser(
        "export",
        help=COMMAND_HELP["export"],
        description="Write the pruned network of a finished run in olmp's sparse format "
        "(safetensors; per tensor the smallest of bitmask + values, block indices + values, "
        "or dense), load it back and measure its accuracy. --onnx also writes ONNX, "
        "checked against PyTorch with onnxruntime on the test images (needs the optional "
        "extra: pip install 'olmp[onnx]').",
        epilog="examples:\n  olmp export runs/demo/compression --out lenet.olmp.safetensors\n"
        "  olmp export runs/r1 --out r1-fp16.safetensors --dtype float16\n"
        "  olmp export runs/r1 --onnx r1.onnx",
        formatter_class=Formatter,
    )
    export.add_argument("run_dir", metavar="RUN_DIR", help="folder of a finished olmp compress")
    export.add_argument("--out", metavar="FILE", help="sparse safetensors file to write")
    export.add_argument(
        "--dtype",
        default="float32",
        choices=list(VALUE_DTYPES),
        help="stored value type (default: %(default)s)",
    )
    export.add_argument("--onnx", metavar="FILE", help="ONNX file to write (weights dense)")
    export.add_argument("--force", action="store_true", help="overwrite existing files")
    export.add_argument("--json", action="store_true", help="print one JSON object")
    add_data_dir(export)
    export.add_argument(
        "--model", help="the run's model, when it is your own package.module:factory"
    )
    add_trust(export)
    export.set_defaults(run=_export)

    inspect = commands.add_parser(
        "inspect",
        help=COMMAND_HELP["inspect"],
        description="Print an olmp export's model, per-tensor encodings and sizes.",
        epilog="example:\n  olmp inspect lenet.olmp.safetensors",
        formatter_class=Formatter,
    )
    inspect.add_argument("file", metavar="FILE", help="file written by olmp export")
    inspect.add_argument("--json", action="store_true", help="print one JSON object")
    inspect.set_defaults(run=_inspect)
