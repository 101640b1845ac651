"""The ``olmp`` command. Each subcommand is a thin layer over a public Python function."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from olmp import __version__
from olmp.data import DATASETS
from olmp.errors import OlmpError, unknown_choice
from olmp.files import refuse_to_overwrite
from olmp.models import MODELS, resolve_factory
from olmp.reference import evaluate_weights, train_reference
from olmp.training import default_recipe, with_overrides

console = Console(stderr=True)

EPILOG_MAIN = """\
examples:
  olmp demo
  olmp train --model lenet-300-100 --dataset mnist-5k --out ref.safetensors
  olmp evaluate --weights ref.safetensors --json
"""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    pass


def _epoch_progress(total: int, label: str) -> tuple[Progress, Callable[[int, float], None]]:
    """A rich progress bar over epochs and the callback that advances it."""
    progress = Progress(
        TextColumn(f"[bold]{label}[/]"),
        BarColumn(),
        TextColumn("epoch {task.completed}/{task.total}"),
        TextColumn("loss {task.fields[loss]:.4f}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )
    task = progress.add_task(label, total=total, loss=float("nan"))

    def on_epoch(epoch: int, loss: float) -> None:
        progress.update(task, completed=epoch, loss=loss)

    return progress, on_epoch


def _check_names(model: str | None, dataset: str | None) -> None:
    """Validate names before any work so bad input fails fast, with the choices listed."""
    if model is not None:
        resolve_factory(model)
    if dataset is not None and dataset not in DATASETS:
        raise unknown_choice("dataset", dataset, list(DATASETS))


def _train(args: argparse.Namespace) -> int:
    _check_names(args.model, args.dataset)
    refuse_to_overwrite(args.out, args.force)
    config = with_overrides(
        default_recipe(args.model, args.dataset),
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        seed=args.seed,
    )
    progress, on_epoch = _epoch_progress(config.epochs, f"training {args.model}")
    with progress:
        _, meta = train_reference(
            args.model,
            args.dataset,
            args.out,
            config=config,
            split_seed=args.split_seed,
            data_dir=args.data_dir,
            device=args.device,
            force=args.force,
            on_epoch=on_epoch,
        )
    console.print(
        f"trained {args.model} on {args.dataset} in {meta['train_time_s']:.1f} s: "
        f"val accuracy {meta['val_accuracy']:.2%}, test accuracy {meta['test_accuracy']:.2%}"
    )
    console.print(f"saved {args.out}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    _check_names(args.model, args.dataset)
    result = evaluate_weights(
        args.weights,
        args.model,
        args.dataset,
        split_seed=args.split_seed,
        data_dir=args.data_dir,
        device=args.device,
    )
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{result['model']} on {result['dataset']}: "
            f"val accuracy {result['val_accuracy']:.2%}, "
            f"test accuracy {result['test_accuracy']:.2%}"
        )
    return 0


def _demo(args: argparse.Namespace) -> int:
    out_dir = _fresh_dir(Path(args.out))
    model, dataset = "lenet-300-100", "mnist-5k"
    console.print(f"[bold]olmp demo[/]: {model} on {dataset}, results in {out_dir}")
    config = default_recipe(model, dataset)
    progress, on_epoch = _epoch_progress(config.epochs, "training reference")
    started = time.perf_counter()
    with progress:
        _, meta = train_reference(
            model, dataset, out_dir / "reference.safetensors", device=args.device, on_epoch=on_epoch
        )
    table = Table(title=f"reference {model} on {dataset}")
    for column in ("split", "accuracy"):
        table.add_column(column)
    for split in ("tune", "val", "test"):
        table.add_row(split, f"{meta[f'{split}_accuracy']:.2%}")
    Console().print(table)
    console.print(f"done in {time.perf_counter() - started:.1f} s; saved {out_dir}")
    return 0


def _fresh_dir(base: Path) -> Path:
    """``base`` if it does not exist yet, else the first free ``base-2``, ``base-3``, ..."""
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    candidate.mkdir(parents=True)
    return candidate


def _list(args: argparse.Namespace) -> int:
    table = Table(title="models")
    table.add_column("name")
    table.add_column("description")
    for spec in MODELS.values():
        table.add_row(spec.name, spec.description)
    Console().print(table)
    table = Table(title="datasets")
    table.add_column("name")
    table.add_column("description")
    for spec in DATASETS.values():
        table.add_row(spec.name, spec.description)
    Console().print(table)
    return 0


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="folder searched first for dataset files")
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda if available)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``olmp`` command."""
    parser = argparse.ArgumentParser(
        prog="olmp",
        description="Compress trained PyTorch networks by layer-wise magnitude pruning "
        "with thresholds chosen by derivative-free optimisation (OLMP).",
        epilog=EPILOG_MAIN,
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=f"olmp {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    train = commands.add_parser(
        "train",
        help="train a reference model with the default recipe",
        description="Train a reference model with the default recipe for the model and "
        "dataset (SGD with Nesterov momentum, weight decay, cosine learning rate) and save "
        "a safetensors checkpoint with its metadata (model, dataset, split seed, val and "
        "test accuracy).",
        epilog="example:\n  olmp train --model lenet-5 --dataset fashion-mnist "
        "--out lenet5.safetensors --epochs 10",
        formatter_class=_Formatter,
    )
    train.add_argument("--model", required=True, help=f"{', '.join(MODELS)} or pkg.mod:factory")
    train.add_argument("--dataset", required=True, help=", ".join(DATASETS))
    train.add_argument("--out", required=True, help="checkpoint file to write (.safetensors)")
    train.add_argument("--epochs", type=int, help="override the recipe's number of epochs")
    train.add_argument("--lr", type=float, help="override the recipe's peak learning rate")
    train.add_argument("--batch-size", type=int, help="override the recipe's batch size")
    train.add_argument("--seed", type=int, default=0, help="initialisation and batch-order seed")
    train.add_argument("--split-seed", type=int, default=0, help="seed of the tune/val carve")
    train.add_argument("--force", action="store_true", help="overwrite an existing --out")
    _add_common(train)
    train.set_defaults(run=_train)

    evaluate = commands.add_parser(
        "evaluate",
        help="print val and test accuracy of a checkpoint",
        description="Print the val and test accuracy of a checkpoint. Model, dataset and "
        "split seed default to those recorded in the checkpoint.",
        epilog="example:\n  olmp evaluate --model lenet-300-100 --dataset mnist-5k "
        "--weights ref.safetensors --json",
        formatter_class=_Formatter,
    )
    evaluate.add_argument("--weights", required=True, help="checkpoint file")
    evaluate.add_argument("--model", help="model name (default: from the checkpoint)")
    evaluate.add_argument("--dataset", help="dataset name (default: from the checkpoint)")
    evaluate.add_argument("--split-seed", type=int, help="default: from the checkpoint")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    _add_common(evaluate)
    evaluate.set_defaults(run=_evaluate)

    demo = commands.add_parser(
        "demo",
        help="the main job on built-in data: LeNet-300-100 on mnist-5k",
        description="Train LeNet-300-100 on the built-in mnist-5k digits and report its "
        "accuracy. Results go to a new folder (runs/demo, runs/demo-2, ...): nothing is "
        "overwritten.",
        epilog="example:\n  olmp demo --out runs/demo",
        formatter_class=_Formatter,
    )
    demo.add_argument("--out", default="runs/demo", help="results folder (default: runs/demo)")
    demo.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda if available)")
    demo.set_defaults(run=_demo)

    listing = commands.add_parser(
        "list",
        help="list the built-in models and datasets",
        description="List the built-in models and datasets.",
        epilog="example:\n  olmp list",
        formatter_class=_Formatter,
    )
    listing.set_defaults(run=_list)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``olmp`` command; returns the exit status (2 for bad input)."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except OlmpError as exc:
        console.print(f"[red]olmp: error:[/] {exc}", highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        console.print("olmp: interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
