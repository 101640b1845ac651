"""A run folder on disk: its files, the round snapshots, and reading them back.

``RUN_DIR`` holds ``state.json`` (the run state after the last finished round),
``rounds/round-NNN.safetensors`` (each round's dense weights and masks, with the run state
as it stood then in the file's metadata, so a run whose ``state.json`` or later snapshots
are damaged resumes from the last intact round), ``rounds/final.safetensors`` (the final
phase's network), and once finished ``result.json`` (written last), ``pruned.safetensors``
and ``progress.png``. Every safetensors file carries a content hash checked on load
(:mod:`olmp.files`).
"""

from __future__ import annotations

import itertools
import json
import math
import os
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from olmp.compression.config import CompressConfig, RunState
from olmp.errors import OlmpError, is_integer, is_number, warn_user
from olmp.files import (
    USE_AN_INTACT_COPY,
    check_writable,
    folder_in_use,
    load_checkpoint,
    load_checkpoint_metadata,
    nothing_to_resume,
    refuse_foreign_files,
    refuse_resume_and_force,
    save_checkpoint,
    write_json_atomic,
)
from olmp.pruning.masks import Masks, split_masks, with_masks
from olmp.task import scores_accuracy

STATE_JSON = "state.json"
RESULT_JSON = "result.json"
PRUNED_CHECKPOINT = "pruned.safetensors"
HISTORY_JSON = "history.json"
PLOT_PNG = "progress.png"


class DamagedRunFile(OlmpError):
    """A file of a run folder that cannot be read back (named in the message; ``path``
    when the file is known)."""

    def __init__(self, message: str, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path

    @classmethod
    def of(cls, error: OlmpError, path: Path) -> DamagedRunFile:
        """``error`` from reading ``path``, without its advice to use an intact copy: a
        resume sets the file aside and goes on from the rounds before it (or says there
        are none)."""
        return cls(str(error).removesuffix(USE_AN_INTACT_COPY), path)


def read_state_record(path: Path) -> dict[str, Any]:
    """The run state record in ``path`` (``state.json``); :class:`DamagedRunFile` when it
    is truncated or not a run state."""
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise DamagedRunFile(f"{path} is damaged ({exc})", path) from None
    return check_state_record(record, path)


def check_state_record(record: Any, source: Path) -> dict[str, Any]:
    """``record``, the run state read from ``source``, when every part that a resume reads
    is there and of the right type; else :class:`DamagedRunFile` naming ``source`` and
    the part."""
    if not isinstance(record, dict) or not {"config", "reference", "state"} <= record.keys():
        raise DamagedRunFile(f"{source} is damaged (not an olmp run state)", source)
    problem = next(
        (
            f"its {part} must be an object, got {json.dumps(record[part])[:60]}"
            for part in ("config", "reference", "state", "task", "metadata")
            if part in record and not isinstance(record[part], dict)
        ),
        None,
    )
    if problem is None:
        problem = _state_problem(record)
    if problem is not None:
        raise DamagedRunFile(f"{source} is damaged ({problem})", source)
    return record


def _state_problem(record: dict[str, Any]) -> str | None:
    """What is wrong in the parts of a run state record that are objects, or ``None``."""
    for part, read in (("config", CompressConfig.from_dict), ("state", RunState.from_dict)):
        try:
            read(record[part])
        except OlmpError as error:
            return f"its {part}'s {error}"
    for key in ("tune_accuracy", "val_accuracy"):
        if not _number(record["reference"].get(key)):
            return f"its reference's {key} must be a finite number"
    if not isinstance(record.get("reference_sha256", ""), str):
        return "its reference_sha256 must be a string"
    state = RunState.from_dict(record["state"])
    if not _rounds(state.history):
        return f"its state's history must be {RESULT_FIELDS['history'][1]}"
    best = state.best
    if not (
        isinstance(best.get("round"), int)
        and 0 <= best["round"] <= state.round
        and all(_number(best.get(k)) for k in ("size", "val_accuracy"))
    ):
        return (
            f"its state's best must name a round up to {state.round} with its size and val_accuracy"
        )
    return None


# What the final phase changes in the run state after a snapshot was saved, the best aside
# (the final one's when the phase kept a network, else the last round's).
_FINAL_PHASE_FIELDS = ("elapsed_s", "stop_reason", "final_attempts", "finished")


def _first_difference(record: dict[str, Any], saved: Any, skipped: tuple[str, ...]) -> str | None:
    """The first part that a resume reads of run state ``record`` which ``saved`` (a
    snapshot's copy) does not hold alike: the reference's scores and hash, the config as it
    is read (a field added since compares by the value it stands for), the state's fields
    but ``skipped``. ``None`` when they agree, or when ``saved`` is no run state to compare
    with (snapshots from before they carried one). The record's ``metadata`` is not compared:
    a resume may name the same weights by another path."""
    try:
        theirs = check_state_record(saved, Path("snapshot"))
        configs = [CompressConfig.from_dict(r["config"]).to_dict() for r in (record, theirs)]
        states = [asdict(RunState.from_dict(r["state"])) for r in (record, theirs)]
    except OlmpError:
        return None
    if _text(record["reference"]) != _text(theirs["reference"]):
        return "reference"
    if {"reference_sha256"} <= record.keys() & theirs.keys() and (
        record["reference_sha256"] != theirs["reference_sha256"]
    ):
        return "reference_sha256"
    if _text(configs[0]) != _text(configs[1]):
        return "config"
    for key in states[0]:
        if key not in skipped and _text(states[0][key]) != _text(states[1][key]):
            return f"state's {key}"
    return None


def _text(value: Any) -> str:
    """``value`` as JSON text: equal for equal records, NaN included (NaN != NaN)."""
    return json.dumps(value, sort_keys=True)


#: The files of ``rounds/``: snapshots and the damaged ones set aside (:func:`_move_aside`).
ROUND_FILES = ("round-*.safetensors", "final.safetensors", "*.safetensors.damaged*")


def snapshot_path(run_dir: Path, key: int | str) -> Path:
    """Where a run folder keeps round ``key``'s network (an int) or the ``final`` one."""
    name = f"round-{key:03d}" if isinstance(key, int) else str(key)
    return Path(run_dir) / "rounds" / f"{name}.safetensors"


class RunFolder:
    """Reads and writes the files of the run folder ``path``."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def snapshot(self, key: int | str) -> Path:
        return snapshot_path(self.path, key)

    def save_snapshot(
        self, key: int | str, tensors: dict[str, torch.Tensor], run_state: dict[str, Any]
    ) -> None:
        """Write round ``key``'s network with the run state as it stands."""
        save_checkpoint(self.snapshot(key), tensors, {"kind": "olmp-round", "run_state": run_state})

    def save_state(self, run_state: dict[str, Any]) -> None:
        """Write ``state.json``; the round snapshots it refers to are already on disk."""
        write_json_atomic(self.path / STATE_JSON, run_state)

    def read_state(self) -> dict[str, Any]:
        """The run state of ``state.json`` (:class:`DamagedRunFile` when damaged, or when it
        disagrees with the copy its round's snapshot carries: that copy is under the
        snapshot's content hash, ``state.json`` under none, so a hand-edited or mixed-up
        ``state.json`` shows here and the run resumes from the snapshots instead)."""
        record = read_state_record(self.path / STATE_JSON)
        state = RunState.from_dict(record["state"])
        # The final phase changes these after the last round; when it kept a network, the
        # best is the final snapshot's.
        fine_tuned = state.finished and bool(state.best.get("fine_tuned"))
        last_round: tuple[str, ...] = ()
        if state.finished:
            last_round = _FINAL_PHASE_FIELDS + (("best",) if fine_tuned else ())
        compared = [(self.snapshot(state.round), last_round)]
        if fine_tuned:
            compared.append((self.snapshot("final"), _FINAL_PHASE_FIELDS))
        for snapshot, skipped in compared:
            try:
                saved = load_checkpoint_metadata(snapshot, "round snapshot").get("run_state")
            except OlmpError as exc:
                raise DamagedRunFile.of(exc, snapshot) from None
            differs = _first_difference(record, saved, skipped)
            if differs is not None:
                raise DamagedRunFile(
                    f"{self.path / STATE_JSON} is damaged (its {differs} is not what "
                    f"{snapshot.name} recorded)",
                    self.path / STATE_JSON,
                )
        return record

    def state_before_final(self, state: RunState) -> RunState:
        """Finished ``state`` as its last round left it, before the final phase changed
        the best (the copy that round's snapshot carries), with the time spent since."""
        path = self.snapshot(state.round)
        saved = check_state_record(
            load_checkpoint_metadata(path, "snapshot").get("run_state"), path
        )
        return replace(RunState.from_dict(saved["state"]), elapsed_s=state.elapsed_s)

    def read_rounds(self, last: int) -> dict[int, dict[str, torch.Tensor]]:
        """The snapshots of rounds ``0..last`` (:class:`DamagedRunFile` when one is damaged)."""
        snapshots = {}
        for r in range(last + 1):
            try:
                snapshots[r], _ = load_checkpoint(self.snapshot(r), "round snapshot")
            except OlmpError as exc:
                raise DamagedRunFile.of(exc, self.snapshot(r)) from None
        return snapshots

    def read_final(self) -> dict[str, torch.Tensor] | None:
        """The final phase's network, if it was saved (:class:`DamagedRunFile` if damaged)."""
        if not self.snapshot("final").is_file():
            return None
        try:
            return load_checkpoint(self.snapshot("final"), "final snapshot")[0]
        except OlmpError as exc:
            raise DamagedRunFile.of(exc, self.snapshot("final")) from None

    def last_intact_state(
        self, damaged: DamagedRunFile
    ) -> tuple[dict[str, Any], list[DamagedRunFile]]:
        """The run state saved with the last round whose snapshot, and every one before
        it, is intact, and the damaged files: ``damaged`` and the snapshot that ends the
        intact rounds, if any (:meth:`set_aside` moves them once the resume is accepted).
        An :class:`OlmpError` that names them, and changes nothing, when no round is intact."""
        record, problems = None, [damaged]
        for r in itertools.count():
            if not self.snapshot(r).is_file():
                break
            try:
                _, meta = load_checkpoint(self.snapshot(r), "round snapshot")
                record = check_state_record(meta.get("run_state"), self.snapshot(r))
            except OlmpError as exc:
                if self.snapshot(r) != damaged.path:
                    problems.append(DamagedRunFile.of(exc, self.snapshot(r)))
                break
        if record is None:
            raise OlmpError(
                f"cannot resume: {'; '.join(map(str, problems))}; no intact round to resume "
                "from. Start the run anew with --force (force=True)"
            ) from None
        return record, problems

    def set_aside(self, problems: list[DamagedRunFile], resumed_round: int) -> None:
        """Warn that the run resumes from ``resumed_round`` because of ``problems``; move each
        damaged file aside (``NAME.damaged``) rather than let the rounds run again overwrite it."""
        kept = [name for name in (_move_aside(p.path) for p in problems) if name]
        warn_user(
            f"{'; '.join(map(str, problems))}; resuming {self.path} from round {resumed_round}, "
            "the last round whose files are intact (the rounds after it run again)"
            + (f"; the damaged files are kept as {', '.join(kept)}" if kept else "")
        )


def _move_aside(path: Path | None) -> str:
    """Rename the damaged file ``path`` to ``NAME.damaged`` (``NAME.damaged-2``, ... when
    that is taken: none is overwritten); the new name, or "" when there is no such file."""
    if path is None or not path.is_file():
        return ""
    aside = path.with_name(path.name + ".damaged")
    for n in itertools.count(2):
        if not aside.exists():
            break
        aside = path.with_name(f"{path.name}.damaged-{n}")
    path.rename(aside)
    return aside.name


def prepare_run_dir(run_dir: Path, *, resume: bool, force: bool) -> bool:
    """Check ``run_dir`` against ``resume``/``force``; returns whether to resume."""
    refuse_resume_and_force(resume, force)
    if run_dir.exists() and not run_dir.is_dir():  # even --force must not delete a file
        raise OlmpError(f"{run_dir} is a file, not a folder; give --out a folder for the run")
    check_writable(run_dir / STATE_JSON, "the run folder's files in")
    exists = run_dir.exists() and any(run_dir.iterdir())
    if resume:
        if not (run_dir / STATE_JSON).is_file():
            raise nothing_to_resume(run_dir, STATE_JSON)
        return True
    if exists and not force:
        raise folder_in_use(run_dir, STATE_JSON, "compress run")
    if exists:  # state.json is saved from the first round on, before any of these
        refuse_foreign_files(
            run_dir, (RESULT_JSON, PRUNED_CHECKPOINT, PLOT_PNG), STATE_JSON, "compress run"
        )
    return False


def write_run_outputs(
    run_dir: Path, pruned: nn.Module, masks: Masks, result: dict[str, Any]
) -> None:
    """The pruned checkpoint (``W ⊙ M`` plus masks), the plot and ``result.json``
    (written last: its presence means the run finished)."""
    from olmp.report import plot_history

    tensors = with_masks(pruned.state_dict(), masks)
    meta_keys = ("model", "dataset", "split_seed", "compression_ratio")
    if scores_accuracy(result):  # olmp evaluate compares them with the file's accuracy
        meta_keys += ("val_accuracy", "test_accuracy")
    save_checkpoint(
        run_dir / PRUNED_CHECKPOINT,
        tensors,
        {k: result[k] for k in meta_keys if result.get(k) is not None}
        | {k: result[k] for k in ("model_options",) if result.get(k)}  # tuned-cnn's spec
        | {"kind": "olmp-pruned"},
    )
    plot_history(result, run_dir / PLOT_PNG)
    write_json_atomic(run_dir / RESULT_JSON, result)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _rounds(value: Any) -> bool:
    def valid(entry: Any) -> bool:
        return (
            isinstance(entry, dict)
            and is_integer(entry.get("round"))
            and all(_number(entry.get(k)) for k in ("size", "compression_ratio", "val_accuracy"))
        )

    return isinstance(value, list) and all(valid(h) for h in value)


def _layer_rows(value: Any) -> bool:
    def valid(row: Any) -> bool:
        return (
            isinstance(row, dict)
            and isinstance(row.get("name"), str)
            and _number(row.get("kept_weights"))
            and _number(row.get("total_weights"))
            and row["total_weights"] > 0
        )

    return isinstance(value, list) and len(value) > 0 and all(valid(r) for r in value)


#: What every finished run's record holds, as the readers of a run folder (report, export)
#: rely on it: field -> (check, what it must be).
RESULT_FIELDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "config": (
        lambda v: isinstance(v, dict) and _number(v.get("tolerance", 0.0)),
        "an object (with a numeric tolerance)",
    ),
    "solver": (lambda v: isinstance(v, str), "a solver's name"),
    "compression_ratio": (_number, "a finite number"),
    "compression_ratio_with_biases": (_number, "a finite number"),
    "val_accuracy": (_number, "a finite number"),
    "test_accuracy": (_number, "a finite number"),
    "reference_val_accuracy": (_number, "a finite number"),
    "reference_test_accuracy": (_number, "a finite number"),
    "history": (
        _rounds,
        "a list of rounds, each with its round number and a finite size, compression_ratio "
        "and val_accuracy",
    ),
    "layers": (
        _layer_rows,
        "a non-empty list of layers, each with a name, kept_weights and total_weights > 0",
    ),
}


def read_result(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The result record of the finished run in ``run_dir``; :class:`OlmpError` when there
    is none."""
    run_dir = Path(run_dir)
    if not (run_dir / RESULT_JSON).is_file():
        if run_dir.is_file():
            raise OlmpError(f"{run_dir} is a file; give the folder of an olmp compress run")
        if not run_dir.is_dir():
            raise OlmpError(f"run folder {run_dir} does not exist")
        unfinished = (run_dir / STATE_JSON).is_file()
        raise OlmpError(
            f"{run_dir} holds no finished olmp run (no {RESULT_JSON})"
            + ("; finish it with `olmp compress ... --resume`" if unfinished else "")
        )
    try:
        result = json.loads((run_dir / RESULT_JSON).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise OlmpError(f"{run_dir / RESULT_JSON} is not a readable run record: {exc}") from None
    # Another command's result.json (an attack's, say) in a folder given as a run, or a
    # damaged one: say so here, before anything is written, rather than fail halfway.
    missing = [k for k in RESULT_FIELDS if k not in result] if isinstance(result, dict) else []
    if missing or not isinstance(result, dict):
        lacks = f" (it lacks {', '.join(missing)})" if missing else ""
        raise OlmpError(f"{run_dir / RESULT_JSON} is not the record of an olmp compress run{lacks}")
    for name, (valid, what) in RESULT_FIELDS.items():
        if not valid(result[name]):
            raise OlmpError(
                f"{run_dir / RESULT_JSON} is damaged: {name} must be {what}, got "
                f"{json.dumps(result[name])[:60]}"
            )
    return result


def load_run(
    run_dir: str | os.PathLike[str],
) -> tuple[dict[str, Any], dict[str, torch.Tensor], Masks]:
    """``(result record, pruned state_dict, masks)`` of the finished run in ``run_dir``.

    The state_dict holds ``W ⊙ M``; masks are keyed by parameter name. Raises
    :class:`OlmpError` when ``run_dir`` holds no finished run.
    """
    result = read_result(run_dir)
    path = Path(run_dir) / PRUNED_CHECKPOINT
    tensors, metadata = load_checkpoint(path)
    state_dict, masks = split_masks(tensors)
    # Another file saved over it (olmp train --out ... --force, a copy) is not the run's.
    recorded = metadata.get("compression_ratio", result.get("compression_ratio"))
    if not masks or recorded != result.get("compression_ratio"):

        def ratio(value: Any) -> str:
            return f"{value:.2f}x" if is_number(value) else repr(value)

        raise OlmpError(
            f"{path} is not the pruned network of the run in {run_dir} (it "
            + ("carries no masks" if not masks else f"records {ratio(recorded)}")
            + f", the run {ratio(result.get('compression_ratio'))}): it was replaced after "
            "the run; restore it, or run the compression again"
        )
    return result, state_dict, masks
