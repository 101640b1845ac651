"""A study's file: its format, reading it back, and checking it belongs to a study.

A study saved with ``path=`` (see :class:`olmp.dfo.Study`) is one JSON object: the format
and version, the fields of :data:`IDENTITY` (what a resume must share with the study that
wrote it), the budgets, warm-start results, every trial and the log of asks and tells.
A file that cannot be read, is not a study's, or was written for another study is named
and left as it is.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from olmp.errors import OlmpError, is_integer

FORMAT = "olmp-study"
VERSION = 1
#: What a resumed file must share with the study resuming it.
IDENTITY = ("space", "solver", "seed", "options", "n_constraints", "fidelities", "enqueue")


def load_study_file(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``; OlmpError unless it is a study file."""
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise OlmpError(
            f"study file {path} is damaged or unreadable ({error}); it is left as it is"
        ) from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise OlmpError(
            f'{path} is not an olmp study file (no "format": "{FORMAT}"); it is left as it is'
        )
    version = record.get("version", VERSION)
    if not is_integer(version) or not 1 <= version <= VERSION:
        raise OlmpError(
            f"study file {path} has version {version!r}; this olmp reads versions up to "
            f"{VERSION} (a newer olmp wrote it?); it is left as it is"
        )
    return record


def check_written_for(
    record: dict[str, Any],
    identity: dict[str, Any],
    path: Path,
    compared: Mapping[str, Callable[[Any], Any]] | None = None,
) -> None:
    """OlmpError naming the first field of :data:`IDENTITY` where the file ``record`` differs
    from the study's ``identity`` (both sides of a field in ``compared`` through its
    function: the options with the defaults of those not given, say)."""
    mine = json.loads(json.dumps(identity))  # as it reads back from JSON
    compared = compared or {}
    for key in IDENTITY:
        same = compared.get(key, lambda value: value)
        # Files written before enqueue existed enqueued nothing.
        was = record.get(key, [] if key == "enqueue" else None)
        if same(was) != same(mine[key]):
            differ = f" ({was!r}, here {mine[key]!r})" if key != "space" else ""
            raise OlmpError(
                f"study file {path} was written for another {key}{differ}; it is left as it "
                "is: resume with the same problem, solver, seed and options, or start a study "
                "at another path"
            )
