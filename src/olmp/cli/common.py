"""What every ``olmp`` command shares: the parser, argument types, common options."""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, get_args, get_origin

from olmp.compression.config import flag
from olmp.console import StepProgress
from olmp.data import DATASETS, TABULAR_DATASETS
from olmp.errors import OlmpError, unknown_choice
from olmp.models import resolve_factory


def options_given(args: argparse.Namespace, names: Sequence[str]) -> list[str]:
    """The flags of the options ``names`` that the command line gave: not None and not
    False (an option whose default is None stands for "not given"; 0 is given)."""
    return [
        flag(n) for n in names if getattr(args, n) is not None and getattr(args, n) is not False
    ]


def fill_defaults(args: argparse.Namespace, defaults: dict[str, Any]) -> None:
    """Give the options of ``defaults`` that the command line left out (None) their default."""
    for name, default in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, default)


def require_options(args: argparse.Namespace, *names: str) -> None:
    """An error naming the options among ``names`` still left out (None): a new run needs
    them; a resume has taken them from its record before this is asked."""
    missing = ["--" + name.replace("_", "-") for name in names if getattr(args, name) is None]
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        raise OlmpError(f"{' and '.join(missing)} {verb} required (a --resume takes the run's own)")


def typed_over_recorded(
    recorded: dict[str, Any], typed: dict[str, Any], declared: Mapping[str, Any]
) -> dict[str, Any]:
    """A resumed run's options: those ``typed`` over its ``recorded`` ones. One typed at its
    ``declared`` default (``Option.default``) where the run left it out stays out, so the
    run is the one recorded; of the same type only (``1 == True`` in Python, not here)."""
    options = dict(recorded)
    for key, value in typed.items():
        default = declared[key].default if key in declared else object()
        if key in options or type(value) is not type(default) or value != default:
            options[key] = value
    return options


def damaged_record(source: Path, key: str, why: str) -> OlmpError:
    """The error for a resumed run's record ``source`` whose ``key`` ``why`` ("is missing",
    "is 0", ...): said as the file's, not as an option the user never typed."""
    return OlmpError(f"{source} is damaged: its {key} {why}; it is left as it is")


def check_recorded(source: Path, checks: dict[str, Callable[[Any], object]], values: dict) -> None:
    """Run each of ``checks`` on the value of ``values`` (read from the record ``source``) at
    its key, in order; a value one refuses (it returns False or raises OlmpError) is the
    file's damage, said without the check's advice to the user, who never typed it."""
    for key, check in checks.items():
        try:
            refused = check(values[key]) is False
        except OlmpError:
            refused = True
        if refused:
            why = f"is {json.dumps(values[key])[:60]}, which olmp does not take there"
            raise damaged_record(source, key, why)


def recorded_values(
    record: Any, source: Path, kinds: dict[str, Any], *, required: bool = False, within: str = ""
) -> dict[str, Any]:
    """The values of ``record`` (a resumed run's, read from ``source``; ``within``: the
    key it sits under there) at the keys of ``kinds``, for the options a resume leaves out:
    each of its kind (``int``, ``str``, ``list[str]``, ``dict[str, int]``, ...; a bool is no number)
    or absent (``None``; an error when ``required``), else an error that the record is
    damaged, naming the key."""

    def fits(value: Any, kind: Any) -> bool:
        if get_origin(kind) is list:
            return isinstance(value, list) and all(fits(v, get_args(kind)[0]) for v in value)
        if get_origin(kind) is dict:
            key, item = get_args(kind)
            return isinstance(value, dict) and all(
                fits(k, key) and fits(v, item) for k, v in value.items()
            )
        return isinstance(value, kind) and not (isinstance(value, bool) and kind is not bool)

    if not isinstance(record, dict):
        raise damaged_record(
            source, within or "record", f"is {json.dumps(record)[:60]}, not an object"
        )
    for key, kind in kinds.items():
        value, named = record.get(key), f"{within}.{key}" if within else key
        if value is None and required:
            raise damaged_record(source, named, "is missing")
        if value is not None and not fits(value, kind):
            raise damaged_record(source, named, f"is {json.dumps(value)[:60]}")
    return {key: record.get(key) for key in kinds}


def integer(text: str) -> int:
    """An argparse type: an integer (the option's own range is checked later)."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None


def seed(text: str) -> int:
    """An argparse type: a seed, an integer in [0, 2**31)."""
    value = integer(text)
    if not 0 <= value < 2**31:
        raise argparse.ArgumentTypeError(f"must be in [0, 2**31), got {value}")
    return value


def count(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    value = integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def number(text: str) -> float:
    """An argparse type: a finite number (the option's own range is checked later)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def epoch_progress(total: int, label: str) -> tuple[StepProgress, Callable[[int, float], None]]:
    """A progress display over epochs (:class:`olmp.console.StepProgress`) and the
    ``on_epoch(epoch, loss)`` callback that advances it."""
    display = StepProgress(label, "epoch", total)
    return display, lambda epoch, loss: display.update(epoch, f"loss {loss:.4f}")


def check_names(model: str | None, dataset: str | None) -> None:
    """Validate names before any work so bad input fails fast, with the choices listed."""
    if model is not None:
        resolve_factory(model)
    if dataset is not None and dataset not in DATASETS and dataset not in TABULAR_DATASETS:
        raise unknown_choice("dataset", dataset, [*DATASETS, *TABULAR_DATASETS])


def fresh_dir(base: Path) -> Path:
    """``base`` if it does not exist yet, else the first free ``base-2``, ``base-3``, ..."""
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    candidate.mkdir(parents=True)
    return candidate


def add_data_dir(parser: argparse.ArgumentParser) -> None:
    """``--data-dir``: where dataset files are looked for (and downloaded to) first."""
    parser.add_argument("--data-dir", help="folder searched first for dataset files")


def add_data_and_device(parser: argparse.ArgumentParser) -> None:
    add_data_dir(parser)
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda if available)")


def add_solver_option(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--solver-option NAME=VALUE``, repeatable: one of the solver's own options
    (read with :func:`olmp.dfo.solvers.parse_solver_options`)."""
    parser.add_argument(
        "--solver-option",
        action="append",
        metavar="NAME=VALUE",
        help="one of the solver's own options, repeatable, e.g. --solver-option r=0.8 "
        "--solver-option epoch=2 for NCS (olmp solvers lists each solver's options)",
    )


def add_resume_or_force(parser: argparse.ArgumentParser, resume: str, force: str) -> None:
    """``--resume`` and ``--force``, never both (``resume``, ``force``: their help)."""
    again = parser.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true", help=resume)
    again.add_argument("--force", action="store_true", help=force)


def add_trust(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--trust-model-code",
        action="store_true",
        help="build a model that the file records as package.module:factory (this imports "
        "and runs that code; without it only registry models are built from a file)",
    )


def add_weights_options(parser: argparse.ArgumentParser, weights_help: str) -> None:
    """``--weights`` and what may override the checkpoint's record of how to rebuild it
    (``--model``, ``--dataset``, ``--split-seed``), with ``--data-dir``, ``--device`` and
    ``--trust-model-code``: the options of every command that reads a checkpoint."""
    parser.add_argument("--weights", required=True, help=weights_help)
    parser.add_argument("--model", help="model name (default: from the checkpoint)")
    parser.add_argument("--dataset", help="dataset name (default: from the checkpoint)")
    parser.add_argument("--split-seed", type=seed, help="default: from the checkpoint")
    add_data_and_device(parser)
    add_trust(parser)


def weights_arguments(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of :func:`olmp.load_weights` that
    :func:`add_weights_options` collected."""
    return {
        "weights": args.weights,
        "model": args.model,
        "dataset": args.dataset,
        "split_seed": args.split_seed,
        "data_dir": args.data_dir,
        "device": args.device,
        "trust_model_code": args.trust_model_code,
    }
