"""``olmp train``: train a reference model with the default recipe."""

from __future__ import annotations

import argparse
import json
import time

from olmp.cli.common import (
    add_data_and_device,
    check_names,
    count,
    epoch_progress,
    number,
    seed,
)
from olmp.cli.parser import COMMAND_HELP, Formatter
from olmp.console import console
from olmp.data import DATASETS, TABULAR_DATASETS
from olmp.files import check_writable, refuse_to_overwrite
from olmp.models import MODELS
from olmp.reference import pick_device, train_reference
from olmp.training import default_recipe, with_overrides


def _train(args: argparse.Namespace) -> int:
    check_names(args.model, args.dataset)
    refuse_to_overwrite(args.out, args.force)
    check_writable(args.out, "--out")
    pick_device(args.device)
    config = with_overrides(
        default_recipe(args.model, args.dataset),
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        seed=args.seed,
    )
    progress, on_epoch = epoch_progress(config.epochs, f"training {args.model}")
    began = time.perf_counter()
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
    # Both times: the progress line counts loading the data, the recorded train_time_s not.
    console.print(
        f"trained {args.model} on {args.dataset}: {meta['train_time_s']:.1f} s of training "
        f"({time.perf_counter() - began:.1f} s in all, loading, scoring and saving); val accuracy "
        f"{meta['val_accuracy']:.2%}, test accuracy {meta['test_accuracy']:.2%}"
    )
    console.print(f"saved {args.out}")
    if args.json:  # the file's scores as `olmp evaluate --json` gives them, and its training
        keys = ("model", "dataset", "split_seed", "tune_accuracy", "val_accuracy")
        keys += ("test_accuracy", "train_time_s", "recipe")
        print(json.dumps({"weights": str(args.out)} | {k: meta[k] for k in keys if k in meta}))
    return 0


def add_command(commands: argparse._SubParsersAction) -> None:
    """Add this module's command(s) to the ``olmp`` parser."""
    train = commands.add_parser(
        "train",
        help=COMMAND_HELP["train"],
        description="Train a reference model with the default recipe for the model and "
        "dataset (SGD with Nesterov momentum, weight decay, cosine learning rate) and save "
        "a safetensors checkpoint with its metadata (model, dataset, split seed, val and "
        "test accuracy).",
        epilog="example:\n  olmp train --model lenet-5 --dataset fashion-mnist "
        "--out lenet5.safetensors --epochs 10",
        formatter_class=Formatter,
    )
    train.add_argument("--model", required=True, help=f"{', '.join(MODELS)} or pkg.mod:factory")
    train.add_argument(
        "--dataset",
        required=True,
        help=f"{', '.join(DATASETS)}; tabular: {', '.join(TABULAR_DATASETS)}",
    )
    train.add_argument("--out", required=True, help="checkpoint file to write (.safetensors)")
    train.add_argument("--epochs", type=count, help="override the recipe's number of epochs")
    train.add_argument("--lr", type=number, help="override the recipe's peak learning rate")
    train.add_argument("--batch-size", type=count, help="override the recipe's batch size")
    train.add_argument(
        "--seed",
        type=seed,
        default=0,
        help="initialisation and batch-order seed (default: %(default)s)",
    )
    train.add_argument(
        "--split-seed",
        type=seed,
        default=0,
        help="seed of the tune/val carve (default: %(default)s)",
    )
    train.add_argument("--force", action="store_true", help="overwrite an existing --out")
    train.add_argument(
        "--json", action="store_true", help="print one JSON object (accuracies, time, recipe)"
    )
    add_data_and_device(train)
    train.set_defaults(run=_train)
