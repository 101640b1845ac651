"""``olmp list``: the built-in models and datasets."""

from __future__ import annotations

import argparse

from rich.table import Table

from olmp.cli.common import (
    Formatter,
)
from olmp.console import print_table
from olmp.data import DATASETS, TABULAR_DATASETS
from olmp.models import MODELS
from olmp.tune.ensemble import ENSEMBLE_DATASETS


def _print_listing(title: str, columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    print_table(table)


def _list(args: argparse.Namespace) -> int:
    named = ("name", "description")
    _print_listing("models", named, [(m.name, m.description) for m in MODELS.values()])
    _print_listing("datasets", named, [(d.name, d.description) for d in DATASETS.values()])
    _print_listing(
        "tabular datasets (olmp fair)",
        (*named, "protected attributes"),
        [(t.name, t.description, ", ".join(t.protected)) for t in TABULAR_DATASETS.values()],
    )
    _print_listing(
        "ensemble task datasets (olmp tune --task ensemble)",
        named,
        [(name, description) for name, (description, _) in ENSEMBLE_DATASETS.items()],
    )
    return 0


def add_command(commands: argparse._SubParsersAction) -> None:
    """Add this module's command(s) to the ``olmp`` parser."""
    listing = commands.add_parser(
        "list",
        help="list the built-in models and datasets",
        description="List the built-in models and datasets.",
        epilog="example:\n  olmp list",
        formatter_class=Formatter,
    )
    listing.set_defaults(run=_list)
