"""``olmp demo``: the main job end to end on built-in data."""

from __future__ import annotations

import argparse
import shlex
import time
from pathlib import Path

from olmp.cli.common import (
    epoch_progress,
    fresh_dir,
)
from olmp.cli.compress import finished_rounds, run_compression
from olmp.cli.parser import COMMAND_HELP, Formatter
from olmp.compression import STATE_JSON, CompressConfig, load_for_compression
from olmp.console import console
from olmp.files import check_writable
from olmp.reference import pick_device, train_reference
from olmp.training import default_recipe


def _demo(args: argparse.Namespace) -> int:
    pick_device(args.device)
    check_writable(args.out, "--out")
    out_dir = fresh_dir(Path(args.out))
    model, dataset = "lenet-300-100", "mnist-5k"
    console.print(f"[bold]olmp demo[/]: {model} on {dataset}, results in {out_dir}")
    config = default_recipe(model, dataset)
    progress, on_epoch = epoch_progress(config.epochs, "training reference")
    started = time.perf_counter()
    try:
        with progress:
            _, meta = train_reference(
                model, dataset, out_dir / "reference.safetensors", device=args.device,
                on_epoch=on_epoch,
            )  # fmt: skip
    except BaseException:  # Ctrl-C or an error before anything was saved: no empty folder
        if not any(out_dir.iterdir()):
            out_dir.rmdir()
        raise
    console.print(
        f"reference: val accuracy {meta['val_accuracy']:.2%}, "
        f"test accuracy {meta['test_accuracy']:.2%} ({meta['train_time_s']:.0f} s)"
    )
    weights = out_dir / "reference.safetensors"
    # The defaults, as `olmp compress --weights REFERENCE` runs them (the same loader).
    net, splits, recipe, metadata = load_for_compression(weights, device=args.device)
    try:
        run_compression(
            net, splits, CompressConfig(), out_dir / "compression", metadata, recipe=recipe
        )
    except KeyboardInterrupt:
        run = out_dir / "compression"
        said = f"the reference is saved as {weights}"
        if (run / STATE_JSON).is_file() and finished_rounds(run):  # worth resuming
            command = ["olmp", "compress", "--weights", str(weights), "--out", str(run)]
            said = (
                f"the reference and the finished rounds are in {out_dir}; continue with: "
                f"{shlex.join(command)} --resume"
            )
        console.print(said, highlight=False, soft_wrap=True)
        raise
    console.print(f"demo finished in {time.perf_counter() - started:.0f} s")
    return 0


def add_command(commands: argparse._SubParsersAction) -> None:
    """Add this module's command(s) to the ``olmp`` parser."""
    demo = commands.add_parser(
        "demo",
        help=COMMAND_HELP["demo"],
        description="Train LeNet-300-100 on the built-in mnist-5k digits, then compress it "
        "with OLMP's defaults and print the per-layer table. Results go to a new folder "
        "(runs/demo, runs/demo-2, ...): nothing is overwritten.",
        epilog="example:\n  olmp demo --out runs/demo",
        formatter_class=Formatter,
    )
    demo.add_argument("--out", default="runs/demo", help="results folder (default: runs/demo)")
    demo.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda if available)")
    demo.set_defaults(run=_demo)
