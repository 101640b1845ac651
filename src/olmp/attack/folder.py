"""An attack run's folder: its files, how to tell one, and how an ``--out`` is made ready.

A run writes ``config.json`` (its settings) first, then one line per (image, target) pair to
``records.jsonl``, and at the end ``result.json`` and the success curve. A folder is an
attack run when its ``config.json`` is one: ``--force`` deletes a run's files, so it only
ever redoes such a folder (another command's folder, an ``olmp compress`` run say, has a
``result.json`` of its own). A comparison writes ``compare.json``, ``compare.csv`` and
``compare.png`` in a folder of its own, never over an earlier one without ``--force``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from olmp.attack.methods import METHODS, method_options
from olmp.errors import OlmpError, is_integer, is_number
from olmp.files import (
    check_output_files,
    check_writable,
    command_record_in,
    refuse_resume_and_force,
    remove_interrupted_writes,
    setting_difference,
    write_json_atomic,
)

#: Files a run writes in its folder.
CONFIG, RECORDS, RESULT = "config.json", "records.jsonl", "result.json"
OUTPUTS = (CONFIG, RECORDS, RESULT, "curve.csv", "curve.png")
#: Files a comparison writes in its folder.
COMPARE_OUTPUTS = ("compare.json", "compare.csv", "compare.png")
#: The settings a run's config.json records (and its result.json repeats); it also records
#: ``weights_sha256``, which folders from before it lack, so recognising one needs only these.
SETTINGS = (
    "weights",
    "model",
    "dataset",
    "split",
    "method",
    "solver",
    "options",
    "eps",
    "budget",
    "images",
    "targets",
    "seed",
)


def output_folder(out: str | os.PathLike[str]) -> Path:
    """``out`` as a folder path; an empty name is refused (``Path("")`` is the current
    folder, which a run would then fill or, with ``--force``, clear)."""
    if not os.fspath(out).strip():
        raise OlmpError(f"--out must name a folder, got {os.fspath(out)!r}")
    return Path(out)


def read_config(folder: Path) -> dict[str, Any] | None:
    """The attack settings recorded in ``folder``, or ``None`` when it is no attack run."""
    try:
        record = json.loads((folder / CONFIG).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("method") not in METHODS:
        return None
    return record if all(key in record for key in SETTINGS) else None


def _holds_files(folder: Path) -> bool:
    return folder.is_dir() and any(folder.iterdir())


def check_out(folder: Path, *, resume: bool, force: bool) -> None:
    """Refuse an ``--out`` this run may not use, before any work: a file, a folder that holds
    files but no attack run, an attack run without ``--resume`` or ``--force``."""
    refuse_resume_and_force(resume, force)
    if folder.exists() and not folder.is_dir():
        raise OlmpError(f"{folder} is a file; --out must be a folder")
    if resume and not _holds_files(folder):  # a mistyped folder would silently start anew
        raise OlmpError(f"nothing to resume: {folder} does not exist or is empty")
    if _holds_files(folder):
        if read_config(folder) is None:
            raise OlmpError(
                f"{folder} holds files but is not an attack run (no {CONFIG} of olmp attack); "
                "give --out a new or empty folder"
            )
        if not (resume or force):
            raise OlmpError(
                f"{folder} already exists; pass --resume (resume=True) to continue it or --force "
                "(force=True) to redo it"
            )
    check_writable(folder / CONFIG, "attack folder")


def _is_record(record: Any) -> bool:
    """Whether ``record`` has the fields and kinds of one pair's record."""
    whole = ("index", "label", "target", "queries", "predicted")
    return (
        isinstance(record, dict)
        and all(is_integer(record.get(key)) for key in whole)
        and isinstance(record.get("success"), bool)
        and all(is_number(record.get(key)) for key in ("margin", "linf", "seconds"))
    )


def read_records(path: Path) -> list[dict[str, Any]]:
    """The records of a run's records file. Each is written as one line ending in a newline,
    so only a last line without one can be cut by an interruption: it is dropped (and cut
    from the file), and its pair attacked again. Any other line that is no record, or a
    pair recorded twice, is named and the file left as it is."""
    if not path.exists():
        return []
    data = path.read_bytes()
    *lines, cut = data.split(b"\n")
    records: list[dict[str, Any]] = []
    pairs: set[tuple[int, int]] = set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():  # a blank line (an editor's last newline, say) holds nothing
            continue
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        what = "is not an attack record"
        if _is_record(record):
            pair = (record["index"], record["target"])
            what = "" if pair not in pairs else f"attacks image {pair[0]} towards {pair[1]} again"
            pairs.add(pair)
        if what:
            raise OlmpError(
                f"{path} line {number} {what}; the file is left as it is: repair it, or pass "
                "--force (force=True) to start the run anew"
            )
        records.append(record)
    if cut:
        with open(path, "r+b") as f:
            f.truncate(len(data) - len(cut))
    return records


def prepare_out(
    folder: Path, config: dict[str, Any], *, resume: bool, force: bool
) -> list[dict[str, Any]]:
    """Make ``folder`` ready for the run ``config`` describes; returns the records to resume
    from. Deletes only a run's own files, and only with ``force``."""
    check_out(folder, resume=resume, force=force)
    if _holds_files(folder) and resume:
        old = read_config(folder) or {}
        # The weights are told by their content: a path may hold other weights now, or
        # name the same ones otherwise. Runs from before the hash was kept compare paths.
        ignored = "weights" if "weights_sha256" in old else "weights_sha256"
        now = json.loads(json.dumps(config))  # as the record reads back
        # More images extend the run: its pairs are a prefix of the larger run's.
        more = isinstance(old.get("images"), int) and now["images"] > old["images"]
        # A method's options as it ran with them: an option left at its default or typed
        # as that default is the same run.
        defaults = {k: o.default for k, o in method_options(config["method"]).items()}
        if isinstance(old.get("options"), dict):
            old = {**old, "options": {**defaults, **old["options"]}}
        now["options"] = {**defaults, **now["options"]}
        differ = sorted(
            k
            for k in config
            if k not in (ignored, "images" if more else "") and old.get(k) != now[k]
        )
        if differ:
            named = [
                "weights (their content)"
                if k == "weights_sha256"
                else setting_difference(k, old.get(k), now[k], now[k], {})
                for k in differ
            ]
            raise OlmpError(
                f"{folder} was run with other settings ({', '.join(named)}); "
                "use another --out, or --force to start it again"
            )
        remove_interrupted_writes(folder)
        if more:  # its summary and curve are of fewer images: gone until the run ends again
            for name in (RESULT, "curve.csv", "curve.png"):
                (folder / name).unlink(missing_ok=True)
            write_json_atomic(folder / CONFIG, config)
        return read_records(folder / RECORDS)
    if read_config(folder) is not None:  # a run's folder: what a killed write left goes too
        remove_interrupted_writes(folder)
    for name in OUTPUTS:
        (folder / name).unlink(missing_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    write_json_atomic(folder / CONFIG, config)
    return []


def check_compare_out(folder: Path, *, force: bool) -> None:
    """Refuse a comparison's ``--out`` that is a file, a command's run folder (an attack's,
    a compress run's, ...) or one of its subfolders, or that holds an earlier comparison
    (unless ``force``, which never makes a run's folder a comparison's)."""
    for run in (folder, folder.parent):
        found = command_record_in(run)
        if found is not None:
            where = "" if run == folder else f"in {run}, "
            raise OlmpError(
                f"{folder} is {where}an {found[1]}'s folder (it holds {found[0]}); give "
                "--compare an --out of its own"
            )
    check_output_files(folder, COMPARE_OUTPUTS, force=force, option="--out", what="the comparison")
