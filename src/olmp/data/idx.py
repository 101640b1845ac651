"""Reader for the IDX format used by MNIST and Fashion-MNIST.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of
dimensions), one big-endian uint32 per dimension, then the data in C order. Files may be
gzipped. Every way a file can be wrong is reported with the file's name and the problem.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np

from olmp.errors import OlmpError

# type code -> big-endian numpy dtype
_IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _read_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise OlmpError(f"{path}: corrupted gzip data ({exc})") from None


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (raw or gzipped) into a numpy array of its stored shape.

    Raises :class:`OlmpError` naming the file when the header is malformed or the data is
    shorter or longer than the header promises.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise OlmpError(f"{path}: truncated IDX file ({len(data)} bytes, no complete header)")
    zero0, zero1, type_code, ndim = data[:4]
    if zero0 != 0 or zero1 != 0:
        raise OlmpError(f"{path}: not an IDX file (magic number {data[:4].hex()})")
    if type_code not in _IDX_DTYPES:
        allowed = ", ".join(f"0x{code:02x}" for code in _IDX_DTYPES)
        raise OlmpError(f"{path}: unknown IDX type code 0x{type_code:02x}; allowed: {allowed}")
    if ndim == 0:
        raise OlmpError(f"{path}: IDX header declares 0 dimensions")
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise OlmpError(f"{path}: truncated IDX header ({len(data)} of {header_len} bytes)")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = _IDX_DTYPES[type_code]
    expected = math.prod(shape) * dtype.itemsize  # Python's ints: no overflow
    body = len(data) - header_len
    if body < expected:
        raise OlmpError(
            f"{path}: truncated IDX data: header shape {shape} needs {expected} bytes, "
            f"file has {body}"
        )
    if body > expected:
        raise OlmpError(
            f"{path}: corrupted IDX file: {body - expected} bytes beyond the {expected} "
            f"that header shape {shape} describes"
        )
    array = np.frombuffer(data, dtype=dtype, count=expected // dtype.itemsize, offset=header_len)
    return array.reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path: str | os.PathLike[str], array: np.ndarray, compress: bool = False) -> None:
    """Write ``array`` as an IDX file (used by tests and by users preparing their own data)."""
    codes = {dtype.newbyteorder("="): code for code, dtype in _IDX_DTYPES.items()}
    native = np.asarray(array)
    code = codes.get(native.dtype.newbyteorder("="))
    if code is None:
        raise OlmpError(f"cannot write dtype {native.dtype} as IDX; allowed: {sorted(codes)}")
    header = bytes([0, 0, code, native.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in native.shape
    )
    payload = header + native.astype(_IDX_DTYPES[code]).tobytes()
    Path(path).write_bytes(gzip.compress(payload) if compress else payload)
