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
    table = Table(title="tabular datasets (olmp fair)")
    for column in ("name", "description", "protected attributes"):
        table.add_column(column)
    for tabular in TABULAR_DATASETS.values():
        table.add_row(tabular.name, tabular.description, ", ".join(tabular.protected))
    print_table(table)
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
