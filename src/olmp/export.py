"""Pruned networks that are small on disk: the olmp sparse file format.

An export is a safetensors file. Each tensor of the pruned network's ``state_dict`` is
stored in whichever of three encodings takes the fewest bytes:

``dense``
    the tensor itself, under its own name (small or barely pruned tensors).
``bitmask``
    ``NAME::bitmask``: one bit per entry, set where the entry is non-zero (row-major order,
    packed eight to a byte), and ``NAME::values``: the non-zero entries in that order.
    Costs ``n / 8`` bytes of index; wins between about 6 % and 97 % density.
``indices``
    the flattened positions of the non-zero entries, cut into blocks of 65,536 entries:
    ``NAME::counts`` (int32, non-zeros per block) and ``NAME::offsets`` (uint16, position
    within the block), and ``NAME::values``. Costs 2 bytes per kept entry; wins at the high
    sparsity OLMP reaches.

The file's metadata (the safetensors header's ``olmp`` entry, JSON) records ``kind:
"olmp-export"``, the format version, the model (registry name or ``package.module:factory``)
with its input shape and class count, the dataset and split seed it was compressed on, the
stored value dtype, each tensor's shape, dtype and encoding, and the run's headline numbers.

Only the non-zero entries of ``W ⊙ M`` are stored, so a weight that training drove to
exactly zero is pruned in the file too; it contributes nothing to the outputs either way.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from olmp.errors import OlmpError, check_type, unknown_choice
from olmp.files import check_writable, load_checkpoint, refuse_to_overwrite, save_checkpoint
from olmp.task import scores_accuracy

EXPORT_KIND = "olmp-export"
FORMAT_VERSION = 1
BLOCK = 1 << 16  # entries per block of the ``indices`` encoding: offsets fit in uint16
ENCODINGS = ("dense", "bitmask", "indices")
VALUE_DTYPES = {"float32": torch.float32, "float16": torch.float16}
#: The dtypes an export may record for a tensor, by the name it records: a name read from a
#: file looks up only these (never any attribute of torch).
_KNOWN_DTYPES = (torch.float64, torch.float32, torch.float16, torch.bfloat16, torch.int64)
_KNOWN_DTYPES += (torch.int32, torch.int16, torch.int8, torch.uint8, torch.bool)
TENSOR_DTYPES = {str(dtype).removeprefix("torch."): dtype for dtype in _KNOWN_DTYPES}
_PART_SEPARATOR = "::"


# ---------------------------------------------------------------------------------------
# Encoding one tensor


def encoded_sizes(numel: int, nonzero: int, value_bytes: int) -> dict[str, int]:
    """Bytes of tensor data each encoding needs for ``nonzero`` of ``numel`` entries."""
    return {
        "dense": numel * value_bytes,
        "bitmask": math.ceil(numel / 8) + nonzero * value_bytes,
        "indices": 4 * math.ceil(numel / BLOCK) + nonzero * (2 + value_bytes),
    }


def encode_tensor(
    name: str, tensor: torch.Tensor, value_dtype: torch.dtype
) -> tuple[str, dict[str, torch.Tensor], int]:
    """``(encoding, stored tensors, non-zero count)`` for ``tensor``, in the smallest of the
    three encodings.

    Floating-point tensors are stored as ``value_dtype`` (the count is of entries non-zero
    in that dtype); other tensors (integer buffers such as BatchNorm's step counter) are
    stored dense and unchanged.
    """
    tensor = tensor.detach().cpu()
    if not tensor.is_floating_point():
        return "dense", {name: tensor.contiguous()}, int(torch.count_nonzero(tensor))
    flat = tensor.reshape(-1).to(value_dtype)
    keep = flat != 0
    nonzero = int(keep.sum())
    sizes = encoded_sizes(flat.numel(), nonzero, flat.element_size())
    encoding = min(ENCODINGS, key=sizes.__getitem__)  # ties go to the simpler encoding
    if encoding == "dense":
        return encoding, {name: flat.reshape(tensor.shape).contiguous()}, nonzero
    parts = {f"{name}{_PART_SEPARATOR}values": flat[keep].contiguous()}
    if encoding == "bitmask":
        bits = np.packbits(keep.numpy())
        parts[f"{name}{_PART_SEPARATOR}bitmask"] = torch.from_numpy(bits)
    else:
        positions = torch.nonzero(keep).reshape(-1)
        blocks = math.ceil(flat.numel() / BLOCK)
        counts = torch.bincount(positions // BLOCK, minlength=blocks).to(torch.int32)
        offsets = (positions % BLOCK).to(torch.int32).numpy().astype(np.uint16)
        parts[f"{name}{_PART_SEPARATOR}counts"] = counts
        parts[f"{name}{_PART_SEPARATOR}offsets"] = torch.from_numpy(offsets)
    return encoding, parts, nonzero


def decode_tensor(
    name: str, entry: dict[str, Any], stored: dict[str, torch.Tensor], source: str
) -> torch.Tensor:
    """Rebuild the tensor ``name`` described by its metadata ``entry`` from ``stored``."""
    shape = tuple(entry["shape"])
    recorded = entry.get("dtype")
    dtype = TENSOR_DTYPES.get(recorded) if isinstance(recorded, str) else None
    if dtype is None:
        raise OlmpError(
            f"{source} is damaged: tensor {name} records dtype {recorded!r}, not one of "
            f"{', '.join(TENSOR_DTYPES)}"
        )
    numel = math.prod(shape)
    encoding = entry["encoding"]

    def part(suffix: str) -> torch.Tensor:
        key = f"{name}{_PART_SEPARATOR}{suffix}" if suffix else name
        if key not in stored:
            raise OlmpError(f"{source} is damaged: tensor {key} is missing")
        return stored[key]

    if encoding == "dense":
        dense = part("")
        if dense.numel() != numel:
            raise OlmpError(f"{source} is damaged: {name} has {dense.numel()} entries, not {numel}")
        return dense.to(dtype).reshape(shape)
    values = part("values").to(dtype)
    if encoding == "bitmask":
        bits = np.unpackbits(part("bitmask").numpy(), count=numel).astype(bool)
        positions = torch.from_numpy(np.flatnonzero(bits))
    elif encoding == "indices":
        counts = part("counts").to(torch.int64)
        offsets = torch.from_numpy(part("offsets").numpy().astype(np.int64))
        if int(counts.sum()) != offsets.numel():
            raise OlmpError(f"{source} is damaged: the block counts of {name} do not add up")
        starts = torch.repeat_interleave(torch.arange(counts.numel()) * BLOCK, counts)
        positions = starts + offsets
    else:
        raise unknown_choice(f"encoding of {name} in {source}", encoding, list(ENCODINGS))
    if positions.numel() != values.numel() or (positions.numel() and positions.max() >= numel):
        raise OlmpError(f"{source} is damaged: the index of {name} does not match its values")
    flat = torch.zeros(numel, dtype=dtype)
    flat[positions] = values
    return flat.reshape(shape)


# ---------------------------------------------------------------------------------------
# Whole files


def encode_state_dict(
    state_dict: dict[str, torch.Tensor], dtype: str = "float32"
) -> tuple[dict[str, torch.Tensor], dict[str, dict[str, Any]]]:
    """Encode every tensor; returns ``(stored tensors, per-tensor metadata entries)``."""
    if dtype not in VALUE_DTYPES:
        raise unknown_choice("dtype", dtype, list(VALUE_DTYPES))
    stored: dict[str, torch.Tensor] = {}
    entries: dict[str, dict[str, Any]] = {}
    for name, tensor in state_dict.items():
        if _PART_SEPARATOR in name:
            raise OlmpError(f"tensor name {name!r} contains {_PART_SEPARATOR!r}; cannot export")
        encoding, parts, nonzero = encode_tensor(name, tensor, VALUE_DTYPES[dtype])
        stored.update(parts)
        entries[name] = {
            "shape": list(tensor.shape),
            "dtype": str(tensor.dtype).removeprefix("torch."),
            "encoding": encoding,
            "numel": tensor.numel(),
            "nonzero": nonzero,
            "stored_bytes": sum(p.numel() * p.element_size() for p in parts.values()),
        }
    return stored, entries


def is_export(metadata: dict[str, Any]) -> bool:
    """Whether a checkpoint's metadata says the file is an olmp export."""
    return metadata.get("kind") == EXPORT_KIND


def decode_state_dict(
    stored: dict[str, torch.Tensor], metadata: dict[str, Any], source: str
) -> dict[str, torch.Tensor]:
    """The dense ``state_dict`` of an export (its stored tensors and metadata)."""
    version = metadata.get("format_version")
    if version != FORMAT_VERSION:
        raise OlmpError(
            f"{source} is olmp export format version {version}; this olmp reads version "
            f"{FORMAT_VERSION}"
        )
    return {
        name: decode_tensor(name, entry, stored, source)
        for name, entry in metadata["tensors"].items()
    }


def read_export(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``(dense state_dict, metadata)`` of the export at ``path``.

    Raises :class:`OlmpError` when the file is missing, unreadable, truncated or not an
    olmp export.
    """
    stored, metadata = load_checkpoint(path)
    if not is_export(metadata):
        raise OlmpError(
            f"{path} is not an olmp export (no '{EXPORT_KIND}' metadata); make one with "
            "`olmp export RUN_DIR --out FILE`"
        )
    return decode_state_dict(stored, metadata, str(path)), metadata


def load_compressed(
    path: str | os.PathLike[str],
    model: nn.Module | None = None,
    *,
    device: str | torch.device | None = None,
    trust_model_code: bool = False,
) -> nn.Module:
    """The network stored in the export ``path``, ready for inference (``eval()`` mode).

    ``model`` is built from the file's metadata unless you pass an instance to load into.
    A registry name is built as is; a recorded ``package.module:factory`` would import and
    run code that the file names, so it is refused unless ``trust_model_code=True``.

    Example:
        >>> import olmp
        >>> net = olmp.load_compressed("lenet.olmp.safetensors")  # doctest: +SKIP
        >>> logits = net(images)  # doctest: +SKIP
    """
    from olmp.reference import check_state_dict_fits, pick_device

    if device is not None:  # before reading: a device this torch cannot use is bad input
        device = pick_device(device)
    if model is not None:  # a name is not needed: the file's recorded model is built
        check_type("model", model, nn.Module, "an nn.Module to load into, or None")
    state_dict, metadata = read_export(path)
    name = metadata.get("model", "?")
    if model is None:
        model = build_recorded_model(metadata, str(path), trust_model_code)
    check_state_dict_fits(model, state_dict, str(path), name)
    model.load_state_dict(state_dict)
    if device is not None:
        model = model.to(device)
    return model.eval()


def build_recorded_model(
    metadata: dict[str, Any], source: str, trust_model_code: bool = False
) -> nn.Module:
    """Build the (untrained) model that ``metadata`` names, for its input shape and classes
    (a ``package.module:factory`` only with ``trust_model_code``)."""
    from olmp.models import build_model, check_recorded_model

    missing = [k for k in ("model", "input_shape", "num_classes") if metadata.get(k) is None]
    if missing:
        raise OlmpError(
            f"{source} does not record the model's {', '.join(missing)}; pass the model to "
            "load into: load_compressed(FILE, model=MyNet())"
        )
    name = check_recorded_model(metadata["model"], source, trust_model_code)
    try:
        return build_model(
            name,
            tuple(metadata["input_shape"]),
            int(metadata["num_classes"]),
            metadata.get("model_options"),
        )
    except (OlmpError, TypeError, ValueError) as exc:
        raise OlmpError(
            f"{source} records model {metadata['model']!r}, which cannot be built here ({exc}); "
            "pass the model to load into: load_compressed(FILE, model=MyNet())"
        ) from None


def write_export(
    path: str | os.PathLike[str],
    state_dict: dict[str, torch.Tensor],
    metadata: dict[str, Any],
    *,
    dtype: str = "float32",
    force: bool = False,
) -> dict[str, Any]:
    """Write ``state_dict`` (a pruned network, zeros where pruned) as an export.

    ``metadata`` should name the model (``model``, ``input_shape``, ``num_classes``) so
    :func:`load_compressed` can rebuild it. Returns the file's size record (see
    :func:`size_record`). The write is atomic; an existing ``path`` needs ``force``.
    """
    refuse_to_overwrite(path, force)
    stored, entries = encode_state_dict(state_dict, dtype)
    record = metadata | {
        "kind": EXPORT_KIND,
        "format_version": FORMAT_VERSION,
        "value_dtype": dtype,
        "tensors": entries,
    }
    save_checkpoint(path, stored, record)
    return size_record(path, record)


def size_record(path: str | os.PathLike[str], metadata: dict[str, Any]) -> dict[str, Any]:
    """Sizes of an export: the file, its dense float32 equivalent and what the bytes hold."""
    entries = metadata["tensors"]
    floating = [e for e in entries.values() if e["dtype"].startswith(("float", "bfloat"))]
    value_bytes = np.dtype(metadata["value_dtype"]).itemsize
    kept = sum(e["nonzero"] for e in floating)
    file_bytes = Path(path).stat().st_size
    return {
        "file": str(path),
        "file_bytes": file_bytes,
        "dense_float32_bytes": 4 * sum(e["numel"] for e in floating),
        "kept_values": kept,
        "kept_value_bytes": kept * value_bytes,
        "value_dtype": metadata["value_dtype"],
        "encodings": {name: e["encoding"] for name, e in entries.items()},
    }


def inspect_export(path: str | os.PathLike[str]) -> dict[str, Any]:
    """What the export at ``path`` holds: its metadata, sizes and per-tensor encodings."""
    _, metadata = read_export(path)  # decodes everything: a damaged file fails here
    return {"metadata": metadata, "sizes": size_record(path, metadata)}


def summarise_sizes(sizes: dict[str, Any]) -> str:
    """One line: file size beside the dense float32 size and the kept values alone."""
    file_bytes, dense = sizes["file_bytes"], sizes["dense_float32_bytes"]
    # A network pruned little is stored dense, plus its header: then the file is the larger.
    than = f"{dense / file_bytes:.1f}x larger" if dense >= file_bytes else "smaller than the file"
    return (
        f"{file_bytes:,} bytes ({sizes['value_dtype']}, {sizes['kept_values']:,} kept values); "
        f"dense float32: {dense:,} bytes, {than}; "
        f"the file is {file_bytes / sizes['kept_value_bytes']:.2f}x its kept values' bytes"
    )


def export_metadata(run_metadata: dict[str, Any]) -> dict[str, Any]:
    """The fields of a run's record that an export carries along."""
    keys = (
        "model",
        "input_shape",
        "num_classes",
        "dataset",
        "split_seed",
        "compression_ratio",
        "compression_ratio_with_biases",
        "reference_val_accuracy",
        "reference_test_accuracy",
        "val_accuracy",
        "test_accuracy",
        "olmp_version",
        "model_options",
    )
    if not scores_accuracy(run_metadata):
        keys = tuple(k for k in keys if not k.endswith("_accuracy"))
    return {k: run_metadata[k] for k in keys if k in run_metadata}


# ---------------------------------------------------------------------------------------
# From a run folder


def export_run(
    run_dir: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    *,
    dtype: str = "float32",
    onnx: str | os.PathLike[str] | None = None,
    force: bool = False,
    data_dir: str | os.PathLike[str] | None = None,
    model: str | None = None,
    trust_model_code: bool = False,
) -> dict[str, Any]:
    """Export the pruned network of the finished run in ``run_dir``.

    ``out`` gets the sparse safetensors file (values in ``dtype``); ``onnx`` an ONNX file
    checked with onnxruntime on the run's test images. When the run's model and dataset
    can be rebuilt (registry names or ``package.module:factory``), the written file is
    loaded back and its val and test accuracy are measured, so the record shows what
    float16 storage costs. A run of a ``package.module:factory`` model is rebuilt only when
    you name it (``model``) or pass ``trust_model_code`` (see
    :func:`olmp.reference.load_weights`). Nothing is written when
    an input is bad or a check fails.

    Returns a record with the sizes (``file_bytes``, ``dense_float32_bytes``,
    ``kept_values``, ``kept_value_bytes``, per-tensor ``encodings``) and accuracies.
    """
    from olmp.compression import PRUNED_CHECKPOINT, load_run
    from olmp.reference import load_weights
    from olmp.training import accuracy

    if out is None and onnx is None:
        raise OlmpError("nothing to export to: give an output file (--out) and/or --onnx FILE")
    if dtype not in VALUE_DTYPES:
        raise unknown_choice("dtype", dtype, list(VALUE_DTYPES))
    if out is None and dtype != "float32":  # ONNX holds dense float32 weights
        raise OlmpError(
            f"dtype {dtype} sets the sparse file's values: give an output file (--out) too; "
            "the ONNX file holds dense float32 weights"
        )
    if out is not None and onnx is not None and Path(out).resolve() == Path(onnx).resolve():
        raise OlmpError(
            f"{out} is given as both outputs (--out and --onnx); give each its own file"
        )
    run_files = {f.resolve() for f in Path(run_dir).glob("**/*") if f.is_file()}
    for target in (out, onnx):
        if target is not None:
            if Path(target).resolve() in run_files:  # not even with force: the run is the input
                raise OlmpError(
                    f"{target} is a file of the run being exported; write the export elsewhere"
                )
            refuse_to_overwrite(target, force)
            check_writable(target, "export")
    result, state_dict, _ = load_run(run_dir)
    if model is not None:  # a name the user gave that names no model is an error, not a note
        from olmp.models import resolve_factory

        resolve_factory(model)
    # The run's own scores, when they are accuracies (your own evaluate() may give another
    # metric, or none): the file's measured accuracy is compared with them.
    accuracies = scores_accuracy(result)
    record: dict[str, Any] = {
        "run_dir": str(run_dir),
        "run_val_accuracy": result.get("val_accuracy") if accuracies else None,
        "run_test_accuracy": result.get("test_accuracy") if accuracies else None,
    }
    # The network is built before anything is written, when ONNX needs it or the user named
    # a model: weights that do not fit it are bad input. (A recorded model only the user's
    # code knows is measured after writing, as a note.)
    if onnx is not None or (model is not None and "dataset" in result):
        net, splits, _ = load_weights(
            Path(run_dir) / PRUNED_CHECKPOINT,
            model,
            data_dir=data_dir,
            trust_model_code=trust_model_code,
        )
    if onnx is not None:  # first: its checks may fail, and then nothing is written
        from olmp.onnx_export import export_onnx

        record |= export_onnx(net, splits.test.x[:2000], onnx, force=force)
    if out is not None:
        record |= write_export(out, state_dict, export_metadata(result), dtype=dtype, force=force)
        if "dataset" not in result:  # your own evaluate(): no data olmp could load
            record["accuracy_note"] = (
                "accuracy of the file not measured: the run records no dataset olmp could load "
                "(it was scored by your own evaluate() or task)"
            )
            return record
        try:
            net, splits, _ = load_weights(
                out, model, data_dir=data_dir, trust_model_code=trust_model_code
            )
        except OlmpError as exc:  # a model or dataset only the user's code knows
            record["accuracy_note"] = f"accuracy of the file not measured: {exc}"
        else:
            record["val_accuracy"] = accuracy(net, splits.val)
            record["test_accuracy"] = accuracy(net, splits.test)
    return record
