"""The ``olmp`` command. Each subcommand is a thin layer over a public Python function."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import NoReturn

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table
from torch import nn

from olmp import __version__
from olmp.compress import CompressConfig, RunState, compress, prepare_run_dir
from olmp.console import (
    ProgressLog,
    console,
    install_warning_printer,
    print_table,
    results,
)
from olmp.data import DATASETS, DatasetSplits
from olmp.errors import OlmpError, OptionError, unknown_choice
from olmp.export import VALUE_DTYPES, export_run, inspect_export, summarise_sizes
from olmp.files import check_writable, refuse_to_overwrite
from olmp.models import MODELS, resolve_factory
from olmp.pruning.thresholds import PARAMETRISATIONS
from olmp.reference import evaluate_weights, load_weights, pick_device, train_reference
from olmp.report import (
    change_line,
    layer_rich_table,
    report_run,
    standard_error_of_change,
    summary_line,
)
from olmp.solvers import SOLVERS, parse_solver_options
from olmp.training import default_recipe, with_overrides

LARGE_TOLERANCE = 0.05  # tolerances above this get a note on their units

EPILOG_MAIN = """\
examples:
  olmp demo
  olmp compress --weights ref.safetensors --out runs/r1
  olmp report runs/r1
  olmp export runs/r1 --out r1.olmp.safetensors
  olmp train --model lenet-300-100 --dataset mnist-5k --out ref.safetensors
  olmp evaluate --weights ref.safetensors --json
"""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    pass


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (the usage is a --help away) and exit
    with status 2, like every other bad input."""

    def error(self, message: str) -> NoReturn:
        console.print(
            f"[red]{self.prog}: error:[/] {message} (see {self.prog} --help)", highlight=False
        )
        raise SystemExit(2)


def _seed(text: str) -> int:
    """An argparse type: a seed, an integer in [0, 2**31)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
    if not 0 <= value < 2**31:
        raise argparse.ArgumentTypeError(f"must be in [0, 2**31), got {value}")
    return value


def _count(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _number(text: str) -> float:
    """An argparse type: a finite number (the option's own range is checked later)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def _epoch_progress(
    total: int, label: str
) -> tuple[AbstractContextManager[object], Callable[[int, float], None]]:
    """A progress display over epochs and the callback that advances it: a rich bar on a
    terminal, a line per epoch otherwise (a log file, CI)."""
    if not console.is_terminal:
        log = ProgressLog("epoch", total)
        return contextlib.nullcontext(), lambda epoch, loss: log.step(epoch, f"loss {loss:.4f}")
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
    check_writable(args.out, "--out")
    pick_device(args.device)
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
    pick_device(args.device)
    result = evaluate_weights(
        args.weights,
        args.model,
        args.dataset,
        split_seed=args.split_seed,
        data_dir=args.data_dir,
        device=args.device,
        trust_model_code=args.trust_model_code,
    )
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{result['model']} on {result['dataset']}: "
            f"val accuracy {result['val_accuracy']:.2%}, "
            f"test accuracy {result['test_accuracy']:.2%}"
        )
    if "recorded_note" in result:
        console.print(f"[yellow]note:[/] {result['recorded_note']}", highlight=False)
    return 0


#: ``olmp compress`` options that set a :class:`CompressConfig` field: field -> flag. Errors
#: about a field name the flag, and each option's help shows the field's default.
COMPRESS_FLAGS = {
    "tolerance": "--tolerance",
    "search_tolerance": "--search-tolerance",
    "solver": "--solver",
    "solver_options": "--solver-option",
    "parametrisation": "--parametrisation",
    "popsize": "--popsize",
    "evaluations_per_round": "--evaluations-per-round",
    "max_rounds": "--rounds",
    "patience": "--patience",
    "backtrack_after": "--backtrack-after",
    "backtracks_per_best": "--backtracks-per-best",
    "backtrack_shrink": "--backtrack-shrink",
    "search_can_grow": "--search-can-grow",
    "racing_z": "--racing-z",
    "max_evaluations": "--max-evaluations",
    "max_time_s": "--time-limit",
    "adjust": "--adjust",
    "adjust_steps": "--adjust-steps",
    "augment_shift": "--augment-shift",
    "distill": "--distill",
    "final_steps": "--final-steps",
    "final_order": "--final-order",
    "prune_biases": "--prune-biases",
    "include": "--include",
    "exclude": "--exclude",
    "seed": "--seed",
}
#: Options whose value 0 on the command line means "no limit" (None in the config).
ZERO_MEANS_NONE = ("racing_z", "backtrack_shrink")


def _dest(flag: str) -> str:
    return flag.removeprefix("--").replace("-", "_")


def _config_from_args(args: argparse.Namespace) -> CompressConfig:
    """A CompressConfig from the command line; options left out keep their defaults.
    Errors name the flag the user typed, not the config field."""
    given = {}
    for name, flag in COMPRESS_FLAGS.items():
        value = getattr(args, _dest(flag))
        if value is None or value is False or value == []:
            continue
        if name == "solver_options":
            value = parse_solver_options(value)
        elif isinstance(value, list):
            value = tuple(value)
        elif name in ZERO_MEANS_NONE and value == 0:
            value = None
        given[name] = value
    try:
        return CompressConfig(**given)
    except OptionError as error:
        raise error.named(COMPRESS_FLAGS.get(error.option, error.option)) from None


def _show_defaults(parser: argparse.ArgumentParser) -> None:
    """Append each compress option's default (from CompressConfig) to its help."""
    defaults = CompressConfig()
    flag_field = {flag: name for name, flag in COMPRESS_FLAGS.items()}
    for action in parser._actions:
        name = next((flag_field[o] for o in action.option_strings if o in flag_field), None)
        if name is None or action.help is None or "default" in action.help:
            continue
        value = getattr(defaults, name)
        if isinstance(value, tuple):
            value = " ".join(value) or "none"
        elif isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items()) or "the solver's own"
        elif value is None:
            value = "none"
        elif isinstance(value, bool):
            value = "on" if value else "off"
        action.help += f" (default: {value})"


def _run_compression(
    model: nn.Module,
    splits: DatasetSplits,
    config: CompressConfig,
    run_dir: Path,
    metadata: dict,
    *,
    resume: bool = False,
    force: bool = False,
) -> dict:
    """Run :func:`olmp.compress` with progress over rounds (a bar on a terminal, a line per
    round otherwise); print the layer table."""
    log = ProgressLog("round", config.max_rounds, limit_s=config.max_time_s)
    progress = Progress(
        TextColumn("[bold]compressing[/]"),
        BarColumn(),
        TextColumn("round {task.completed}/{task.total}"),
        TextColumn("{task.fields[ratio]}"),
        TextColumn("{task.fields[acc]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not console.is_terminal,
    )
    task = progress.add_task("rounds", total=config.max_rounds, ratio="", acc="")

    def on_round(entry: dict, state: RunState) -> None:
        ratio = f"now {entry['compression_ratio']:.1f}x, best {1 / state.best['size']:.1f}x"
        accuracy = f"val {entry['val_accuracy']:.2%}"
        if console.is_terminal:
            progress.update(task, completed=entry["round"], ratio=ratio, acc=accuracy)
        else:
            log.step(entry["round"], f"{ratio}, {accuracy}", elapsed_s=state.elapsed_s)

    with progress:
        _, result = compress(
            model,
            splits,
            config,
            run_dir=run_dir,
            resume=resume,
            force=force,
            metadata=metadata,
            on_round=on_round,
        )
    _print_result(result)
    _explain_selection(result)
    ended = f", rounds ended by {result['stop_reason']}" if result.get("stop_reason") else ""
    console.print(f"done in {result['wall_time_s']:.0f} s{ended}; results in {run_dir}")
    console.print(
        f"next: olmp report {run_dir}   (plots) · "
        f"olmp export {run_dir} --out pruned.olmp.safetensors   (a small file)",
        highlight=False,
    )
    return result


def _print_result(result: dict) -> None:
    """The per-layer table, the summary line and the test change with its error."""
    print_table(layer_rich_table(result))
    results.print(summary_line(result), highlight=False)
    change = change_line(result)
    if change is not None:
        results.print(change, highlight=False)


def _explain_selection(result: dict) -> None:
    """Say so when the search found much smaller networks than the one val accepted."""
    if not result["history"]:
        return
    smallest = max(result["history"], key=lambda h: h["compression_ratio"])
    if smallest["compression_ratio"] < 1.2 * result["compression_ratio"]:
        return
    needed = result["reference_val_accuracy"] - smallest["val_accuracy"]
    error = standard_error_of_change(result, "val")
    scale = (
        f" For scale, the selected network's val change has a paired standard error of {error:.3f}."
        if error is not None
        else ""
    )
    console.print(
        f"note: round {smallest['round']} reached {smallest['compression_ratio']:.1f}x with val "
        f"accuracy {smallest['val_accuracy']:.2%} (reference {result['reference_val_accuracy']:.2%}"
        f"); --tolerance {needed:.3f} or more would accept networks that small.{scale}"
    )


def _note_large_tolerance(tolerance: float) -> None:
    """Tolerances are fractions; one of more than 5 points is more often a slip for points
    (0.5 meant as half a point) than a wish, so say what it allows before the run starts."""
    if tolerance > LARGE_TOLERANCE:
        console.print(
            f"note: --tolerance {tolerance:g} lets val accuracy drop by {100 * tolerance:g} "
            f"percentage points (it is a fraction: half a point is 0.005)"
        )


def _compress(args: argparse.Namespace) -> int:
    _check_names(args.model, args.dataset)
    config = _config_from_args(args)
    _note_large_tolerance(config.tolerance)
    pick_device(args.device)
    run_dir = Path(args.out)
    prepare_run_dir(run_dir, resume=args.resume, force=args.force)
    model, splits, meta = load_weights(
        args.weights,
        args.model,
        args.dataset,
        split_seed=args.split_seed,
        data_dir=args.data_dir,
        device=args.device,
        trust_model_code=args.trust_model_code,
    )
    metadata = {
        "model": args.model or meta["model"],
        "dataset": splits.name,
        "weights": str(args.weights),
    }
    _run_compression(model, splits, config, run_dir, metadata, resume=args.resume, force=args.force)
    return 0


def _demo(args: argparse.Namespace) -> int:
    pick_device(args.device)
    check_writable(args.out, "--out")
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
    console.print(
        f"reference: val accuracy {meta['val_accuracy']:.2%}, "
        f"test accuracy {meta['test_accuracy']:.2%} ({meta['train_time_s']:.0f} s)"
    )
    net, splits, _ = load_weights(out_dir / "reference.safetensors", device=args.device)
    metadata = {
        "model": model,
        "dataset": dataset,
        "weights": str(out_dir / "reference.safetensors"),
    }
    demo_config = CompressConfig(augment_shift=config.max_shift)
    _run_compression(net, splits, demo_config, out_dir / "compression", metadata)
    console.print(f"demo finished in {time.perf_counter() - started:.0f} s")
    return 0


def _export(args: argparse.Namespace) -> int:
    record = export_run(
        args.run_dir,
        args.out,
        dtype=args.dtype,
        onnx=args.onnx,
        force=args.force,
        data_dir=args.data_dir,
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
            change = 100 * (record["test_accuracy"] - record["run_test_accuracy"])
            print(
                f"loaded back: val {record['val_accuracy']:.2%}, test "
                f"{record['test_accuracy']:.2%} ({change:+.2f} points against the run's "
                f"{record['run_test_accuracy']:.2%})"
            )
        else:
            print(record["accuracy_note"])
    return 0


def _report(args: argparse.Namespace) -> int:
    result, plots = report_run(args.run_dir, args.plots)
    if args.json:
        print(json.dumps(result))
    else:
        _print_result(result)
        options = result.get("config", {}).get("solver_options") or {}
        solver = result["solver"] + "".join(f", {k}={v}" for k, v in options.items())
        print(
            f"{solver}, seed {result['seed']}: best of {result['rounds']} rounds "
            f"is round {result['best_round']}"
            + (" (fine-tuned at the end)" if result.get("best_fine_tuned") else "")
            + (f"; rounds ended by {result['stop_reason']}" if result.get("stop_reason") else "")
            + f"; {result['evaluations']:,} candidate evaluations, "
            f"{result['wall_time_s']:.0f} s"
        )
    console.print(f"plots: {', '.join(str(p) for p in plots)}", highlight=False)
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


def _solvers(args: argparse.Namespace) -> int:
    from olmp.solvers import check_solvers, describe_solvers

    if args.check:
        records = check_solvers(dim=args.dim, budget=args.budget, seed=args.seed)
        failed = any(r["installed"] and r["error"] for r in records)
        if args.json:
            print(json.dumps(records, indent=2))
            return 1 if failed else 0
        table = Table(
            title=f"shifted sphere in [-5, 5]^{args.dim}, {args.budget} evaluations, "
            f"seed {args.seed}; f at the centre {records[0]['start']:.4g}"
        )
        for column in ("solver", "best f", "seconds", "note"):
            table.add_column(column)
        for r in records:
            best = "-" if r["best"] is None else f"{r['best']:.3g}"
            seconds = "-" if r["seconds"] is None else f"{r['seconds']:.2f}"
            table.add_row(r["name"], best, seconds, r["error"] or "")
        print_table(table)
        return 1 if failed else 0
    records = describe_solvers()
    if args.json:
        print(json.dumps(records, indent=2))
        return 0
    table = Table(title="solvers (olmp compress --solver NAME)")
    for column in ("name", "installed", "backend", "supports", "options (--solver-option)"):
        table.add_column(column)
    for r in records:
        installed = "yes" if r["installed"] else f"no: {r['install']}"
        options = ", ".join(r["options"]) or "-"
        table.add_row(r["name"], installed, r["backend"], r["supports"], options)
    print_table(table)
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
    print_table(table)
    table = Table(title="datasets")
    table.add_column("name")
    table.add_column("description")
    for spec in DATASETS.values():
        table.add_row(spec.name, spec.description)
    print_table(table)
    return 0


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="folder searched first for dataset files")
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda if available)")


def _add_trust(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--trust-model-code",
        action="store_true",
        help="build a model that the file records as package.module:factory (this imports "
        "and runs that code; without it only registry models are built from a file)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``olmp`` command."""
    parser = _Parser(
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
    train.add_argument("--epochs", type=_count, help="override the recipe's number of epochs")
    train.add_argument("--lr", type=_number, help="override the recipe's peak learning rate")
    train.add_argument("--batch-size", type=_count, help="override the recipe's batch size")
    train.add_argument("--seed", type=_seed, default=0, help="initialisation and batch-order seed")
    train.add_argument("--split-seed", type=_seed, default=0, help="seed of the tune/val carve")
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
    evaluate.add_argument("--split-seed", type=_seed, help="default: from the checkpoint")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    _add_common(evaluate)
    _add_trust(evaluate)
    evaluate.set_defaults(run=_evaluate)

    comp = commands.add_parser(
        "compress",
        help="prune a trained model with OLMP",
        description="Prune every Linear and Conv layer of a trained model by weight "
        "magnitude, with per-layer thresholds chosen by derivative-free search so that the "
        "network is as small as possible while its accuracy stays within the tolerance; "
        "rounds of search alternate with retraining (frozen-mask fine-tuning, or Dynamic "
        "Network Surgery with --adjust dns). RUN_DIR "
        "receives result.json, the pruned checkpoint, the run state (for --resume) and a "
        "progress plot.",
        epilog="examples:\n  olmp compress --weights ref.safetensors --out runs/r1\n"
        "  olmp compress --model lenet-5 --dataset fashion-mnist --weights l5.safetensors "
        "--out runs/l5 --solver cmaes --seed 1\n"
        "  olmp compress --weights ref.safetensors --out runs/r1 --resume",
        formatter_class=_Formatter,
    )
    comp.add_argument("--weights", required=True, help="trained checkpoint to compress")
    comp.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder")
    comp.add_argument("--model", help="model name (default: from the checkpoint)")
    comp.add_argument("--dataset", help="dataset name (default: from the checkpoint)")
    comp.add_argument("--split-seed", type=_seed, help="default: from the checkpoint")
    comp.add_argument(
        "--tolerance",
        type=_number,
        help="allowed val-accuracy loss as a fraction, 0.005 = half a point",
    )
    comp.add_argument(
        "--search-tolerance",
        type=_number,
        help="allowed tune-accuracy loss of a candidate before retraining",
    )
    comp.add_argument("--solver", help=", ".join(SOLVERS))
    comp.add_argument(
        "--solver-option",
        action="append",
        metavar="NAME=VALUE",
        help="one of the solver's own options, repeatable, e.g. --solver-option r=0.8 "
        "--solver-option epoch=2 for NCS (olmp solvers lists each solver's options)",
    )
    comp.add_argument("--parametrisation", help=f"{', '.join(PARAMETRISATIONS)}")
    comp.add_argument("--seed", type=_seed, help="solver and training seed")
    budget = comp.add_argument_group("budget")
    budget.add_argument("--rounds", type=int, help="most search-and-retrain rounds")
    budget.add_argument("--patience", type=int, help="stop after N rounds without shrinking")
    budget.add_argument(
        "--backtrack-after",
        type=int,
        metavar="N",
        help="after N rounds failing val, resume from the best with half the search tolerance",
    )
    budget.add_argument(
        "--backtracks-per-best",
        type=int,
        metavar="N",
        help="end the run when rounds fail again after N returns to the same best network",
    )
    budget.add_argument(
        "--backtrack-shrink",
        type=_number,
        metavar="FACTOR",
        help="after a backtrack, let a round shrink the network by at most FACTOR "
        "(greater than 1; 0: no limit)",
    )
    budget.add_argument(
        "--racing-z",
        type=_number,
        metavar="Z",
        help="stop scoring a candidate once the tune samples seen put it Z standard errors "
        "above or below the search's requirement (0: only once it cannot pass, "
        "so every decision is exact)",
    )
    budget.add_argument("--evaluations-per-round", type=int, help="candidates per search")
    budget.add_argument("--max-evaluations", type=int, help="total candidate evaluations")
    budget.add_argument(
        "--time-limit",
        type=_number,
        metavar="SECONDS",
        help="wall-time limit of the whole run, final phase included",
    )
    budget.add_argument("--popsize", type=int, help="candidates per solver generation")
    budget.add_argument(
        "--adjust-steps", type=int, help="retraining steps per round (finetune or dns)"
    )
    budget.add_argument("--final-steps", type=int, help="fine-tuning steps at the end")
    budget.add_argument(
        "--final-order",
        help="which rounds below the best the final phase fine-tunes: bisect (the "
        "smallest, then a bisection by size) or smallest-first",
    )
    comp.add_argument("--adjust", help="retraining between searches: finetune or dns")
    comp.add_argument(
        "--augment-shift",
        type=int,
        metavar="PIXELS",
        help="random-shift augmentation while retraining",
    )
    comp.add_argument(
        "--distill",
        type=_number,
        metavar="WEIGHT",
        help="weight of distillation from the dense reference while retraining",
    )
    comp.add_argument(
        "--search-can-grow",
        action="store_true",
        help="let a round's search keep more weights than the network it starts from "
        "(the paper's constraint alone)",
    )
    comp.add_argument("--prune-biases", action="store_true", help="mask biases too")
    comp.add_argument(
        "--include",
        nargs="+",
        metavar="PATTERN",
        help="glob patterns (fnmatch: *, ?, [..]) of the layer names to prune, e.g. 'fc*'",
    )
    comp.add_argument(
        "--exclude",
        nargs="+",
        metavar="PATTERN",
        help="glob patterns of layer names to leave dense, e.g. 'fc3' or 'features.*'",
    )
    again = comp.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true", help="continue the run in RUN_DIR")
    again.add_argument("--force", action="store_true", help="start anew in RUN_DIR")
    _add_common(comp)
    _add_trust(comp)
    _show_defaults(comp)
    comp.set_defaults(run=_compress)

    demo = commands.add_parser(
        "demo",
        help="the main job: train and compress LeNet-300-100 on built-in mnist-5k",
        description="Train LeNet-300-100 on the built-in mnist-5k digits, then compress it "
        "with OLMP's defaults and print the per-layer table. Results go to a new folder "
        "(runs/demo, runs/demo-2, ...): nothing is overwritten.",
        epilog="example:\n  olmp demo --out runs/demo",
        formatter_class=_Formatter,
    )
    demo.add_argument("--out", default="runs/demo", help="results folder (default: runs/demo)")
    demo.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda if available)")
    demo.set_defaults(run=_demo)

    export = commands.add_parser(
        "export",
        help="write a run's pruned network as a small sparse file (and/or ONNX)",
        description="Write the pruned network of a finished run in olmp's sparse format "
        "(safetensors; per tensor the smallest of bitmask + values, block indices + values, "
        "or dense), load it back and measure its accuracy. --onnx also writes ONNX, "
        "checked against PyTorch with onnxruntime on the test images (needs the optional "
        "extra: pip install 'olmp[onnx]').",
        epilog="examples:\n  olmp export runs/demo/compression --out lenet.olmp.safetensors\n"
        "  olmp export runs/r1 --out r1-fp16.safetensors --dtype float16\n"
        "  olmp export runs/r1 --onnx r1.onnx",
        formatter_class=_Formatter,
    )
    export.add_argument("run_dir", metavar="RUN_DIR", help="folder of a finished olmp compress")
    export.add_argument("--out", metavar="FILE", help="sparse safetensors file to write")
    export.add_argument(
        "--dtype", default="float32", choices=list(VALUE_DTYPES), help="stored value type"
    )
    export.add_argument("--onnx", metavar="FILE", help="ONNX file to write (weights dense)")
    export.add_argument("--force", action="store_true", help="overwrite existing files")
    export.add_argument("--json", action="store_true", help="print one JSON object")
    export.add_argument("--data-dir", help="folder searched first for dataset files")
    _add_trust(export)
    export.set_defaults(run=_export)

    report = commands.add_parser(
        "report",
        help="show a finished run: per-layer table, summary, plots",
        description="Print the per-layer table (shape, total, kept, keep %%, threshold) and "
        "the summary of a finished run, and write PNG plots of compression and accuracy per "
        "round and of the per-layer keep ratios (drawn from result.json, so rewriting them "
        "loses nothing).",
        epilog="examples:\n  olmp report runs/demo/compression\n  olmp report runs/r1 --json",
        formatter_class=_Formatter,
    )
    report.add_argument("run_dir", metavar="RUN_DIR", help="folder of a finished olmp compress")
    report.add_argument("--plots", metavar="DIR", help="where the PNGs go (RUN_DIR/report)")
    report.add_argument("--json", action="store_true", help="print the run's record as JSON")
    report.set_defaults(run=_report)

    inspect = commands.add_parser(
        "inspect",
        help="show what an exported file holds",
        description="Print an olmp export's model, per-tensor encodings and sizes.",
        epilog="example:\n  olmp inspect lenet.olmp.safetensors",
        formatter_class=_Formatter,
    )
    inspect.add_argument("file", metavar="FILE", help="file written by olmp export")
    inspect.add_argument("--json", action="store_true", help="print one JSON object")
    inspect.set_defaults(run=_inspect)

    solvers = commands.add_parser(
        "solvers",
        help="list the derivative-free solvers; --check runs the installed ones",
        description="List every solver that olmp compress --solver accepts: what it "
        "supports (variable kinds, candidates per ask, constraints), its backend library "
        "and licence, and whether that is installed. Optional backends install as extras, "
        "e.g. pip install 'olmp[tpe]' or 'olmp[solvers]' for all but bobyqa, whose "
        "Py-BOBYQA is GPL-3.0+ (pip install 'olmp[bobyqa]'). --check runs each installed "
        "solver on a shifted sphere, by default in [-5, 5]^10 with 500 evaluations and "
        "seed 0, and reports the best value each reached.",
        epilog="example:\n  olmp solvers --check",
        formatter_class=_Formatter,
    )
    solvers.add_argument("--check", action="store_true", help="run each installed solver")
    solvers.add_argument("--json", action="store_true", help="print a JSON list")
    solvers.add_argument("--dim", type=_count, default=10, help="--check: dimension (default 10)")
    solvers.add_argument(
        "--budget", type=_count, default=500, help="--check: evaluations per solver (default 500)"
    )
    solvers.add_argument("--seed", type=_seed, default=0, help="--check: seed (default 0)")
    solvers.set_defaults(run=_solvers)

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
    install_warning_printer()
    try:
        return args.run(args)
    except OlmpError as exc:
        console.print(f"[red]olmp: error:[/] {exc}", highlight=False)
        return 2
    except OSError as exc:  # the disk or the system, not the input: one line all the same
        console.print(f"[red]olmp: error:[/] {exc}", highlight=False)
        return 1
    except KeyboardInterrupt:
        hint = ""
        if args.command == "compress":
            hint = f"; finished rounds are saved in {args.out}: run the same command with --resume"
        console.print(f"olmp: interrupted{hint}", highlight=False, soft_wrap=True)
        return 130


if __name__ == "__main__":
    sys.exit(main())
