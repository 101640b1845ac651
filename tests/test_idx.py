import gzip

import numpy as np
import pytest

from olmp.data.idx import read_idx, write_idx
from olmp.errors import OlmpError


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int32, np.float32])
def test_roundtrip(tmp_path, compress, dtype):
    array = (np.arange(2 * 3 * 4) - 5).astype(dtype).reshape(2, 3, 4)
    if dtype is np.uint8:
        array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / "a.idx"
    write_idx(path, array, compress=compress)
    back = read_idx(path)
    assert back.shape == (2, 3, 4)
    assert back.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(back, array)


def test_header_bytes_follow_the_format(tmp_path):
    path = tmp_path / "labels"
    write_idx(path, np.array([3, 1, 4], dtype=np.uint8))
    assert path.read_bytes() == bytes([0, 0, 8, 1, 0, 0, 0, 3, 3, 1, 4])


def _valid(tmp_path):
    path = tmp_path / "images-idx3-ubyte"
    write_idx(path, np.zeros((5, 4, 4), dtype=np.uint8))
    return path


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b[:-3], "truncated IDX data"),
        (lambda b: b[:10], "truncated IDX header"),
        (lambda b: b[:2], "truncated IDX file"),
        (lambda b: b + b"\x00\x01", "bytes beyond"),
        (lambda b: b"\x01\x02" + b[2:], "not an IDX file"),
        (lambda b: b[:2] + b"\x07" + b[3:], "unknown IDX type code 0x07"),
        (lambda b: b[:3] + b"\x00" + b[4:], "0 dimensions"),
        # sizes whose product overflows 64 bits: a count of bytes, not a reshape error
        (lambda b: b[:3] + b"\x04" + b"\x00\x01\x00\x00" * 4 + b[16:], r"needs \d{20} bytes"),
    ],
)
def test_bad_files_name_the_file_and_the_problem(tmp_path, mutate, message):
    path = _valid(tmp_path)
    path.write_bytes(mutate(path.read_bytes()))
    with pytest.raises(OlmpError, match=message) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_truncated_gzip_is_reported(tmp_path):
    path = tmp_path / "images.gz"
    payload = gzip.compress(_valid(tmp_path).read_bytes())
    path.write_bytes(payload[: len(payload) // 2])
    with pytest.raises(OlmpError, match="corrupted gzip") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_gzipped_idx_with_short_data_is_reported(tmp_path):
    path = tmp_path / "images.gz"
    path.write_bytes(gzip.compress(_valid(tmp_path).read_bytes()[:-1]))
    with pytest.raises(OlmpError, match="truncated IDX data"):
        read_idx(path)
