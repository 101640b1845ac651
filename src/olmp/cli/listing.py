"""``olmp list``: the built-in models and datasets."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.table import Table

from olmp.cli.parser import COMMAND_HELP, Formatter
from olmp.console import print_table
from olmp.data import DATASETS, TABULAR_DATASETS
from olmp.models import MODELS
from olmp.tune.ensemble import ENSEMBLE_DATASETS

#: A table's column header where it says more than the JSON key.
HEADERS = {"protected": "protected attributes"}


def _sections() -> dict[str, tuple[str, list[dict[str, Any]]]]:
    """What ``olmp list`` shows: key -> (table title, rows)."""

    def named(items: Any) -> list[dict[str, Any]]:
        return [{"name": name, "description": description} for name, description in items]

    return {
        "models": ("models", named((m.name, m.description) for m in MODELS.values())),
        "datasets": ("datasets", named((d.name, d.description) for d in DATASETS.values())),
        "tabular_datasets": (
            "tabular datasets (olmp fair)",
            [
                {"name": t.name, "description": t.description, "protected": list(t.protected)}
                for t in TABULAR_DATASETS.values()
            ],
        ),
        "ensemble_datasets": (
            "ensemble task datasets (olmp tune --task ensemble)",
            named((name, description) for name, (description, _) in ENSEMBLE_DATASETS.items()),
        ),
    }


def _list(args: argparse.Namespace) -> int:
    sections = _sections()
    if args.json:
        print(json.dumps({key: rows for key, (_, rows) in sections.items()}))
        return 0
    for title, rows in sections.values():
        table = Table(title=title)
        for column in rows[0]:
            table.add_column(HEADERS.get(column, column))
        for row in rows:
            table.add_row(*(", ".join(v) if isinstance(v, list) else v for v in row.values()))
        print_table(table)
    return 0


def add_command(commands: argparse._SubParsersAction) -> None:
    """Add this module's command(s) to the ``olmp`` parser."""
    listing = commands.add_parser(
        "list",
        help=COMMAND_HELP["list"],
        description="List the built-in models and datasets.",
        epilog="example:\n  olmp list\n  olmp list --json",
        formatter_class=Formatter,
    )
    listing.add_argument("--json", action="store_true", help="print one JSON object")
    listing.set_defaults(run=_list)
