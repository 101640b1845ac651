"""Files on disk: atomic writes and reference checkpoints.

A checkpoint is a safetensors file holding the model's ``state_dict`` plus a JSON metadata
record (model, dataset, split seed, accuracies, ...). Writes go to a temporary file in the
target's directory and are then renamed over the target, so a crash never leaves a
half-written file behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from olmp.errors import OlmpError

METADATA_KEY = "olmp"


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
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(target: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``target`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(text)


def write_json_atomic(target: str | os.PathLike[str], record: Any) -> None:
    """Write ``record`` as indented JSON to ``target`` atomically."""
    write_text_atomic(target, json.dumps(record, indent=2, sort_keys=True) + "\n")


def refuse_to_overwrite(path: str | os.PathLike[str], force: bool) -> None:
    """Raise unless ``path`` is free or the user passed ``force``."""
    if Path(path).exists() and not force:
        raise OlmpError(f"{path} already exists; pass --force (force=True) to overwrite it")


def save_checkpoint(
    path: str | os.PathLike[str], state_dict: dict[str, torch.Tensor], metadata: dict[str, Any]
) -> None:
    """Save a ``state_dict`` and its metadata record to ``path`` atomically."""
    tensors = {name: t.detach().cpu().contiguous() for name, t in state_dict.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={METADATA_KEY: json.dumps(metadata)})


def load_checkpoint_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The metadata record of a checkpoint written by :func:`save_checkpoint`, without
    reading its tensors (empty for a plain safetensors ``state_dict``)."""
    path = Path(path)
    if not path.is_file():
        raise OlmpError(f"weights file {path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as handle:
            raw = (handle.metadata() or {}).get(METADATA_KEY)
    except (SafetensorError, OSError, ValueError) as exc:
        raise OlmpError(f"{path} is not a readable safetensors checkpoint: {exc}") from None
    return json.loads(raw) if raw else {}


def load_checkpoint(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Load ``(state_dict, metadata)`` from a checkpoint written by :func:`save_checkpoint`.

    Files without olmp metadata (a plain safetensors ``state_dict``) load with empty metadata.
    """
    metadata = load_checkpoint_metadata(path)
    try:
        state_dict = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise OlmpError(f"{path} is not a readable safetensors checkpoint: {exc}") from None
    return state_dict, metadata
