"""``olmp evaluate``: val and test accuracy of a checkpoint."""

from __future__ import annotations

import argparse
import json

from rich.markup import escape

from olmp.cli.common import (
    add_weights_options,
    check_names,
    weights_arguments,
)
from olmp.cli.parser import COMMAND_HELP, Formatter
from olmp.console import console
from olmp.reference import evaluate_weights, pick_device


def _evaluate(args: argparse.Namespace) -> int:
    check_names(args.model, args.dataset)
    pick_device(args.device)
    result = evaluate_weights(**weights_arguments(args))
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{result['model']} on {result['dataset']}: "
            f"val accuracy {result['val_accuracy']:.2%}, "
            f"test accuracy {result['test_accuracy']:.2%}"
        )
    if "recorded_note" in result:
        console.print(f"[yellow]note:[/] {escape(result['recorded_note'])}", highlight=False)
    return 0


def add_command(commands: argparse._SubParsersAction) -> None:
    """Add this module's command(s) to the ``olmp`` parser."""
    evaluate = commands.add_parser(
        "evaluate",
        help=COMMAND_HELP["evaluate"],
        description="Print the val and test accuracy of a checkpoint. Model, dataset and "
        "split seed default to those recorded in the checkpoint.",
        epilog="example:\n  olmp evaluate --model lenet-300-100 --dataset mnist-5k "
        "--weights ref.safetensors --json",
        formatter_class=Formatter,
    )
    add_weights_options(evaluate, "checkpoint file")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.set_defaults(run=_evaluate)
