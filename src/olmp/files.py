"""Files on disk: atomic writes and checkpoints with an integrity hash.

A checkpoint is a safetensors file holding tensors (a model's ``state_dict``, a round
snapshot, an export's encoded parts) plus a JSON metadata record (model, dataset, split
seed, accuracies, ...). The record carries ``content_sha256``, a SHA-256 of the record
itself and of every tensor's name, dtype, shape and bytes; :func:`load_checkpoint` checks
it, so a flipped byte anywhere in the values, the index or the metadata is an error naming
the file rather than a silently different network. Files without the hash (a plain
safetensors ``state_dict`` from elsewhere) load unchecked.

Writes go to a temporary file in the target's directory and are then renamed over the
target, so a crash never leaves a half-written file behind; the file gets the permissions
the umask gives a new file, as with ``open()``.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from olmp.errors import OlmpError

METADATA_KEY = "olmp"
HASH_KEY = "content_sha256"

#: Errors that reading a malformed safetensors file raises, besides its own.
_READ_ERRORS = (SafetensorError, OSError, ValueError, RuntimeError, OverflowError, MemoryError)


def _new_file_mode() -> int:
    """The permissions ``open()`` gives a new file under the current umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; rename it onto ``target`` on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp makes the file 0600; a result file should be as readable as any other.
        os.chmod(tmp, _new_file_mode())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


# What atomic_path names its temporary files: ".{target}.{mkstemp's 8 characters}.tmp".
_TEMPORARY_NAME = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp")


def remove_interrupted_writes(folder: Path, of: str | None = None) -> None:
    """Remove the temporary files that writes killed halfway (SIGKILL, power loss: no
    ``finally`` ran) left in ``folder`` and its direct subfolders, or only those of its
    file ``of``: nothing reads them, and a checkpoint's can be as large as the model.
    Called only on a folder known to be a run's (it holds the run's record), or for ``of``
    a study file, once its resume or restart is accepted."""
    # The folder and its direct subfolders (rounds/, weights/, eps-*/, report/): no deeper.
    patterns = [f".{glob.escape(of)}.*.tmp"] if of else [".*.tmp", "*/.*.tmp"]
    for path in (path for pattern in patterns for path in folder.glob(pattern)):
        if _TEMPORARY_NAME.fullmatch(path.name) and path.is_file():
            path.unlink(missing_ok=True)


def write_text_atomic(target: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``target`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(text)


def write_json_atomic(target: str | os.PathLike[str], record: Any) -> None:
    """Write ``record`` as indented JSON to ``target`` atomically."""
    write_text_atomic(target, json.dumps(record, indent=2, sort_keys=True) + "\n")


def check_writable(path: str | os.PathLike[str], what: str = "output") -> None:
    """Raise unless a file or folder could be created at ``path``: checked before any work,
    so that a run does not fail at its end on a read-only or mistyped folder. Creates
    nothing that stays (a probe file in the nearest existing folder is removed at once)."""
    path = Path(path)
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise OlmpError(f"cannot write {what} {path}: {folder} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".olmp-write-check.", dir=folder)
    except OSError as exc:
        raise OlmpError(
            f"cannot write {what} {path}: no file can be created in {folder} ({exc.strerror})"
        ) from None
    os.close(fd)
    os.unlink(probe)


def refuse_resume_and_force(resume: bool, force: bool) -> None:
    """A run folder is either continued (``resume``) or replaced (``force``): never both,
    whichever command or function is asked."""
    if resume and force:
        raise OlmpError(
            "choose one of --resume and --force (resume=True, force=True in Python), not both"
        )


def refuse_to_overwrite(path: str | os.PathLike[str], force: bool) -> None:
    """Raise unless ``path`` is free or the user passed ``force``; a folder is never
    overwritten (a file cannot replace it), nor, even with ``force``, a file of a command's
    run folder or of its subfolders (``rounds/``, ``eps-0.05/``): the run reads its own
    files again (``olmp export`` of a compress run whose ``pruned.safetensors`` another
    command replaced fails), and ``--force`` replaces only what the command itself writes."""
    path = Path(path)
    if path.is_dir():
        raise OlmpError(f"{path} is a folder; give the path of a file to write")
    if not path.exists():
        return
    for folder in path.parents[:2]:
        found = command_record_in(folder)
        if found is not None:
            raise OlmpError(
                f"{path} belongs to the {found[1]} in {folder} (it holds {found[0]}), whose "
                "files --force (force=True) does not replace; give another path"
            )
    if not force:
        raise OlmpError(f"{path} already exists; pass --force (force=True) to overwrite it")


def check_output_files(
    folder: Path, names: Sequence[str], *, force: bool, option: str, what: str
) -> None:
    """Raise unless ``folder`` (given as ``option``) can take the files ``names`` (``what``
    they are): it is a folder or not there yet, holds none of them unless ``force``, and
    can be written."""
    if folder.exists() and not folder.is_dir():
        raise OlmpError(f"{option} {folder} is a file; give a folder for {what}")
    there = [name for name in names if (folder / name).exists()]
    if there and not force:
        raise OlmpError(
            f"{folder} already holds {', '.join(there)}; pass --force (force=True) to replace "
            f"them, or another {option}"
        )
    check_writable(folder / names[0], what)


def setting_difference(key: str, was: Any, now: Any, given: Any, names: Mapping[str, str]) -> str:
    """Setting ``key`` as an error names it (``names``: its option, say) with the recorded
    value ``was`` and the one ``given`` now (``now`` is it as JSON reads it back);
    a record by the fields that differ, one that is an option of its own
    (``names["key.field"]``) by that name; a space without values (too long to show)."""
    shown = names.get(key, key)
    if key == "space":
        return shown
    if not (isinstance(was, dict) and isinstance(now, dict)):
        return f"{shown} ({was!r}, here {given!r})"
    fields = sorted(k for k in was.keys() | now.keys() if was.get(k) != now.get(k))
    own = names.get(f"{key}.{fields[0]}")
    if len(fields) == 1 and own:
        return f"{own} ({was.get(fields[0])!r}, here {now.get(fields[0])!r})"
    listed = ", ".join(f"{k} {was.get(k)!r}, here {now.get(k)!r}" for k in fields)
    return f"{shown} ({listed})"


def other_settings(out: Path | str, what: str, shown: str) -> OlmpError:
    """The error for a resume of the ``what`` in ``out`` with a setting other than its own
    (``shown``: as :func:`setting_difference` names it)."""
    return OlmpError(
        f"{out} holds a {what} with another {shown}; it is left as it is: resume with the "
        "same settings, start it anew with --force (force=True), or use another folder"
    )


#: Per command, the record it writes first in its output folder (what ``--resume`` needs)
#: and what such a folder is. A folder that holds another command's record is that
#: command's, even where no file name is shared.
COMMAND_RECORDS = {
    "compress": ("state.json", "olmp compress run"),
    "tune": ("tune.json", "olmp tune search"),
    "fair": ("fair.json", "olmp fair train run"),
    "attack": ("config.json", "olmp attack run"),
}


#: Fields each command's record holds: what tells it from a file of the same name that is
#: not olmp's (a project's own config.json).
RECORD_FIELDS = {
    "state.json": ("config", "state", "reference_sha256"),
    "tune.json": ("format", "space", "solver"),
    "fair.json": ("format", "epsilons", "protected"),
    "config.json": ("method", "eps", "weights_sha256"),
}


def command_record_in(folder: Path) -> tuple[str, str] | None:
    """``(record, what its folder is)`` of the olmp command whose record ``folder`` holds,
    told by the record's name and its fields (:data:`RECORD_FIELDS`), or ``None``."""
    for record, whose in COMMAND_RECORDS.values():
        try:
            held = json.loads((folder / record).read_text())
        except (OSError, ValueError):
            continue
        if isinstance(held, dict) and all(key in held for key in RECORD_FIELDS[record]):
            return record, whose
    return None


def other_commands_record(folder: Path, record_name: str) -> tuple[str, str] | None:
    """``(record, what its folder is)`` of another olmp command whose record ``folder``
    holds (:data:`COMMAND_RECORDS`), or ``None``."""
    for other, whose in COMMAND_RECORDS.values():
        if other != record_name and (folder / other).is_file():
            return other, whose
    return None


def nothing_to_resume(folder: Path, record_name: str) -> OlmpError:
    """The error of a resume in ``folder`` without the command's record ``record_name``,
    naming the command whose folder it is when another's record is there."""
    other = other_commands_record(folder, record_name)
    whose = f"; it is an {other[1]}'s folder" if other else ""
    return OlmpError(f"nothing to resume: {folder / record_name} does not exist{whose}")


def folder_in_use(folder: Path, record_name: str, what: str) -> OlmpError:
    """The error of a run asked, without ``--resume`` or ``--force``, to write into
    ``folder``, which already holds files: it offers only what the folder allows (a resume
    needs the command's record ``record_name``; ``--force`` never touches another
    command's folder)."""
    if (folder / record_name).is_file():
        return OlmpError(
            f"{folder} already holds a {what}; pass --resume (resume=True) to continue it, "
            "--force (force=True) to start it again, or give another folder"
        )
    other = other_commands_record(folder, record_name)
    if other is not None:
        return OlmpError(
            f"{folder} holds {other[0]}, the record of an {other[1]}; give another folder"
        )
    return OlmpError(
        f"{folder} already holds files but no {what} (no {record_name}); pass --force "
        f"(force=True) to start one there beside them, or give another folder"
    )


def refuse_foreign_files(folder: Path, names: Sequence[str], record_name: str, what: str) -> None:
    """Raise when ``folder`` holds another olmp command's record (:data:`COMMAND_RECORDS`),
    or files of the names a command writes (``names``, names or glob patterns) but not its
    record ``record_name``, which the command writes first (and ``--force`` removes last):
    they are another command's, which ``--force`` must neither delete nor write beside."""
    other = other_commands_record(folder, record_name)
    if other is not None:
        raise OlmpError(
            f"{folder} holds {other[0]}, the record of an {other[1]}; --force replaces only "
            "this command's own files, so give another folder"
        )
    present = sorted({p.relative_to(folder).as_posix() for n in names for p in folder.glob(n)})
    if present and not (folder / record_name).exists():
        raise OlmpError(
            f"{folder} holds {', '.join(present)} but no {record_name}: it is not an olmp "
            f"{what}'s folder, and --force only starts one again; give another folder"
        )


def resumed_record(out: Path, record_name: str, fmt: str, what: str) -> dict[str, Any]:
    """The record ``out/record_name`` of the olmp ``what`` (``"format": fmt``) that a resume
    continues; else an error saying why (no folder, no record or another command's, a
    damaged one), which leaves everything as it is."""
    record = out / record_name
    if out.exists() and not out.is_dir():
        raise OlmpError(f"--out {out} is a file; give a folder")
    if not record.exists():
        raise nothing_to_resume(out, record_name)
    try:
        old = json.loads(record.read_text())
    except (OSError, ValueError, RecursionError) as error:  # ValueError: not UTF-8 too
        raise OlmpError(f"{record} is damaged ({error}); it is left as it is") from None
    if not isinstance(old, dict) or old.get("format") != fmt:
        raise OlmpError(
            f'{record} is not an olmp {what} record (no "format": "{fmt}"); it is left as it is'
        )
    return old


def prepare_output_folder(
    out: Path,
    record_name: str,
    config: dict[str, Any],
    identity: Sequence[str],
    our_files: Sequence[str],
    *,
    what: str,
    resume: bool,
    force: bool,
    names: Mapping[str, str] | None = None,
    compared: Mapping[str, Callable[[Any], Any]] | None = None,
) -> dict[str, Any] | None:
    """Make ``out`` ready for a command that records ``config`` in ``out/record_name``;
    returns the record a resume continues (``None`` otherwise, once ``config`` is written).

    With ``resume`` the folder must hold a record of the same ``format`` whose ``identity``
    settings equal ``config``'s, a setting in ``compared`` as its function makes both sides
    (solver options with the defaults of those not given, say). Else nothing changes and the
    error names the first that differs, as ``names`` calls it: its option, say; else by its
    key; a setting that is a record by the fields that differ, ``names["setting.field"]``
    naming one of its own.
    Without it the folder must be new or empty, or ``force`` removes ``our_files`` (only
    those files; names or glob patterns, relative to ``out``: ``eps-*/result.json``) and the
    folders that leaves empty, and the command starts again — unless some of
    them are there but not the record: then they are another command's, and the folder is
    refused. Either way the folder must be one that can be written in (or made), checked
    before anything is removed.
    """
    record = out / record_name
    if resume:
        old = resumed_record(out, record_name, config["format"], what)
    elif out.exists() and not out.is_dir():
        raise OlmpError(f"--out {out} is a file; give a folder")
    # An existing folder must take the record; a new one must be possible to make.
    check_writable(record if out.is_dir() else out, "--out")
    if resume:
        for key in identity:
            same = (compared or {}).get(key, lambda value: value)
            was, now = same(old.get(key)), same(json.loads(json.dumps(config[key])))
            if was != now:
                shown = setting_difference(key, was, now, config[key], names or {})
                raise other_settings(out, what, shown)
        remove_interrupted_writes(out)
        return old
    if out.exists() and any(out.iterdir()):
        if not force:
            raise folder_in_use(out, record_name, what)
        refuse_foreign_files(out, our_files, record_name, what)
        if record.exists():  # a folder of ours: what a killed write left goes too
            remove_interrupted_writes(out)
        # The record last: a --force killed halfway leaves a folder the next one still
        # knows as ours. Files only, then the folders they leave empty: a file of the
        # user's in one of ours (notes beside a trial's weights) stays, and its folder too.
        emptied = set()
        for pattern in sorted(our_files, key=lambda pattern: pattern == record_name):
            for path in out.glob(pattern):
                if path.is_file():
                    path.unlink()
                    emptied.add(path.parent)
        for folder in sorted(emptied - {out}, key=lambda f: len(f.parts), reverse=True):
            with contextlib.suppress(OSError):  # not empty: it holds the user's files
                folder.rmdir()
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(record, config)
    return None


def content_hash(tensors: dict[str, torch.Tensor], metadata: dict[str, Any]) -> str:
    """SHA-256 of ``metadata`` (canonical JSON) and every tensor's name, dtype, shape and
    bytes, in name order: what :func:`save_checkpoint` records and
    :func:`load_checkpoint` checks."""
    digest = hashlib.sha256(json.dumps(metadata, sort_keys=True).encode())
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        digest.update(f"\0{name}\0{tensor.dtype}\0{list(tensor.shape)}\0".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def save_checkpoint(
    path: str | os.PathLike[str], state_dict: dict[str, torch.Tensor], metadata: dict[str, Any]
) -> None:
    """Save tensors and their metadata record to ``path`` atomically, with the record's
    ``content_sha256`` (see :func:`content_hash`)."""
    tensors, storages = {}, set()
    for name, tensor in state_dict.items():
        tensor = tensor.detach().cpu().contiguous()
        storage = tensor.untyped_storage().data_ptr()
        # safetensors refuses two names on one storage (a buffer two modules share): each
        # name gets its own copy, which loads back into the shared buffer just the same.
        tensors[name] = tensor.clone() if storage in storages and tensor.numel() else tensor
        storages.add(storage)
    record = {k: v for k, v in metadata.items() if k != HASH_KEY}
    record[HASH_KEY] = content_hash(tensors, record)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={METADATA_KEY: json.dumps(record)})


def _check_is_file(path: Path, what: str) -> None:
    if path.is_dir():
        raise OlmpError(f"{what} {path} is a folder, not a file")
    if not path.is_file():
        raise OlmpError(f"{what} {path} does not exist")


def _read_metadata(path: Path) -> dict[str, Any]:
    """The olmp record in ``path``'s header, hash included ({} when there is none)."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            raw = (handle.metadata() or {}).get(METADATA_KEY)
    except _READ_ERRORS as exc:
        raise OlmpError(f"{path} is not a readable safetensors checkpoint: {exc}") from None
    if not raw:
        return {}
    try:
        record = json.loads(raw)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise OlmpError(f"{path} is damaged: its olmp metadata is not valid JSON ({exc})") from None
    if not isinstance(record, dict):
        raise OlmpError(
            f"{path} is damaged: its olmp metadata is a JSON {type(record).__name__}, not an object"
        )
    return record


def load_checkpoint_metadata(
    path: str | os.PathLike[str], what: str = "weights file"
) -> dict[str, Any]:
    """The metadata record of a checkpoint written by :func:`save_checkpoint`, without
    reading its tensors (empty for a plain safetensors ``state_dict``). The content hash is
    not checked here (that needs the tensors): use it to look, :func:`load_checkpoint` to
    use."""
    path = Path(path)
    _check_is_file(path, what)
    record = _read_metadata(path)
    record.pop(HASH_KEY, None)
    return record


#: The advice that ends the error of a checkpoint whose content fails its hash (a resume,
#: which sets such a file aside, drops it).
USE_AN_INTACT_COPY = "; use an intact copy"


def load_checkpoint(
    path: str | os.PathLike[str], what: str = "weights file"
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Load ``(tensors, metadata)`` from a checkpoint written by :func:`save_checkpoint`,
    checking its content hash.

    Files without olmp metadata (a plain safetensors ``state_dict``) load with empty
    metadata and unchecked. ``what`` names the file in errors ("weights file", "round
    snapshot", ...). Raises :class:`OlmpError` naming the file when it is missing,
    unreadable, or its content does not match its hash.
    """
    path = Path(path)
    _check_is_file(path, what)
    record = _read_metadata(path)
    try:
        tensors = load_file(str(path))
    except _READ_ERRORS as exc:
        raise OlmpError(f"{path} is not a readable safetensors checkpoint: {exc}") from None
    recorded = record.pop(HASH_KEY, None)
    if recorded is not None and recorded != content_hash(tensors, record):
        raise OlmpError(
            f"{path} is damaged: its content does not match the hash recorded when it was "
            f"written (a changed or corrupted byte){USE_AN_INTACT_COPY}"
        )
    return tensors, record
