import hashlib
import http.client
import io
import urllib.error

import numpy as np
import pytest
import torch
from conftest import write_fake_mnist

from olmp.data import DATASETS, fetch, idx_sets, load_dataset
from olmp.errors import OlmpError


def _row_keys(x: torch.Tensor) -> set[bytes]:
    return {hashlib.sha1(row.numpy().tobytes()).digest() for row in x.reshape(len(x), -1)}


def test_registry_lists_the_builtin_datasets():
    assert {"mnist", "fashion-mnist", "mnist-5k", "digits"} <= set(DATASETS)


def test_unknown_dataset_lists_choices():
    with pytest.raises(OlmpError, match=r"unknown dataset 'nope'.*digits.*mnist-5k"):
        load_dataset("nope")


def test_mnist_from_idx_files_sizes_and_normalisation(isolated_data):
    write_fake_mnist(isolated_data / "data" / "mnist", n_train=12000, n_test=40)
    splits = load_dataset("mnist", seed=0, data_dir=isolated_data / "data")
    assert splits.sizes() == {"train": 2000, "tune": 5000, "val": 5000, "test": 40}
    assert splits.input_shape == (1, 28, 28)
    assert splits.train.x.dtype == torch.float32
    spec = DATASETS["mnist"]
    assert splits.test.x.min() == pytest.approx((0 - spec.mean) / spec.std, abs=1e-5)


def test_splits_are_deterministic_disjoint_and_test_is_untouched(isolated_data):
    write_fake_mnist(isolated_data / "mnist", n_train=10300, n_test=50, compress=False)
    a = load_dataset("mnist", seed=1, data_dir=isolated_data)
    b = load_dataset("mnist", seed=1, data_dir=isolated_data)
    c = load_dataset("mnist", seed=2, data_dir=isolated_data)
    for split in ("train", "tune", "val", "test"):
        assert torch.equal(getattr(a, split).x, getattr(b, split).x)
        assert torch.equal(getattr(a, split).y, getattr(b, split).y)
    assert not torch.equal(a.tune.x, c.tune.x)
    assert torch.equal(a.test.x, c.test.x)
    keys = {s: _row_keys(getattr(a, s).x) for s in ("train", "tune", "val", "test")}
    assert sum(len(k) for k in keys.values()) == 10300 + 50
    assert len(set().union(*keys.values())) == 10300 + 50


def test_carved_test_split_does_not_depend_on_split_seed():
    a, b = load_dataset("digits", seed=0), load_dataset("digits", seed=5)
    assert torch.equal(a.test.x, b.test.x)
    assert not torch.equal(a.val.x, b.val.x)
    assert a.sizes() == {"train": 1077, "tune": 180, "val": 180, "test": 360}
    assert len(a.train) + len(a.tune) + len(a.val) + len(a.test) == 1797


def test_mnist_5k_is_real_and_balanced():
    splits = load_dataset("mnist-5k", seed=0)
    assert splits.sizes() == {"train": 2000, "tune": 1000, "val": 1000, "test": 1000}
    labels = torch.cat([splits.train.y, splits.tune.y, splits.val.y, splits.test.y])
    assert torch.bincount(labels).tolist() == [500] * 10


def test_olmp_data_environment_variable_is_searched(isolated_data):
    write_fake_mnist(isolated_data / "olmp_data" / "fashion-mnist", n_train=10100)
    splits = load_dataset("fashion-mnist", seed=0)
    assert len(splits.train) == 100
    # A --data-dir without the files is said, not passed over in silence (a typo).
    with pytest.warns(UserWarning, match=r"fashion-mnist: not all four files in --data-dir"):
        load_dataset("fashion-mnist", seed=0, data_dir=isolated_data / "typo")


def test_missing_files_offline_say_where_to_put_them(isolated_data):
    with pytest.raises(OlmpError) as info:
        load_dataset("mnist", data_dir=isolated_data / "here", download=False)
    message = str(info.value)
    assert "train-images-idx3-ubyte" in message
    assert str(isolated_data / "here" / "mnist") in message
    assert str(isolated_data / "olmp_data" / "mnist") in message


def test_failed_download_gives_the_same_advice(isolated_data, monkeypatch):
    def no_network(url, timeout):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(fetch.urllib.request, "urlopen", no_network)
    with pytest.raises(OlmpError, match=r"files not found.*downloading them failed") as info:
        load_dataset("mnist", data_dir=isolated_data / "d")
    assert "\n" not in str(info.value)  # one line
    assert (
        f"--data-dir {isolated_data / 'd'} is not a folder; give the folder that holds them"
        in str(info.value)
    )
    assert not (isolated_data / "d").exists()  # no folder left behind


def test_a_data_dir_that_is_a_file_or_a_dropped_download_is_named(isolated_data, monkeypatch):
    afile = isolated_data / "afile"
    afile.write_text("")
    with pytest.raises(OlmpError, match=r"--data-dir .*afile is not a folder"):
        load_dataset("mnist", data_dir=afile)  # was errno 20, exit 1

    def dropped(url, timeout):
        raise http.client.IncompleteRead(b"abc", 100)

    monkeypatch.setattr(fetch.urllib.request, "urlopen", dropped)
    with pytest.raises(OlmpError, match=r"downloading them failed.*IncompleteRead"):
        load_dataset("mnist", data_dir=isolated_data / "d")
    assert not (isolated_data / "d").exists()


def test_idx_files_of_another_type_or_image_size_are_named(isolated_data):
    from olmp.data.idx import write_idx

    folder = write_fake_mnist(isolated_data / "mnist", n_train=10010, compress=False)
    write_idx(folder / "t10k-images-idx3-ubyte", np.zeros((40, 32, 32), np.uint8))
    with pytest.raises(OlmpError, match=r"holds 28x28 images and .*t10k-images-idx3-ubyte 32x32"):
        load_dataset("mnist", data_dir=isolated_data)
    write_idx(folder / "t10k-images-idx3-ubyte", np.zeros((40, 28, 28), np.float32))
    with pytest.raises(OlmpError, match=r"t10k-images-idx3-ubyte holds float32 values; mnist's"):
        load_dataset("mnist", data_dir=isolated_data)


class _Response(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _serve(files):
    def urlopen(url, timeout):
        return _Response(files[url.rsplit("/", 1)[1]])

    return urlopen


def test_download_verifies_checksums_and_keeps_no_bad_file(isolated_data, monkeypatch):
    served = write_fake_mnist(isolated_data / "served", n_train=10010)
    files = {p.name: p.read_bytes() for p in served.iterdir()}
    monkeypatch.setattr(fetch.urllib.request, "urlopen", _serve(files))
    with pytest.raises(OlmpError, match="checksum mismatch"):
        load_dataset("mnist", data_dir=isolated_data / "d")
    assert not list((isolated_data / "d").rglob("*.gz"))

    good = {
        key: fetch.md5_of(served / (idx_sets.FILE_NAMES[key] + ".gz")) for key in idx_sets.FILE_KEYS
    }
    source = idx_sets.SOURCES["mnist"]
    monkeypatch.setitem(idx_sets.SOURCES, "mnist", idx_sets.IdxSource(source.mirrors, good))
    splits = load_dataset("mnist", data_dir=isolated_data / "d")
    assert len(splits.train) == 10
    assert len(list((isolated_data / "d" / "mnist").glob("*.gz"))) == 4


def test_corrupted_idx_file_names_the_file(isolated_data):
    folder = write_fake_mnist(isolated_data / "mnist", n_train=10010, compress=False)
    labels = folder / "train-labels-idx1-ubyte"
    labels.write_bytes(labels.read_bytes()[:-5])
    with pytest.raises(OlmpError, match="truncated IDX data") as info:
        load_dataset("mnist", data_dir=isolated_data)
    assert str(labels) in str(info.value)


def test_mismatched_images_and_labels_are_reported(isolated_data):
    from olmp.data.idx import write_idx

    folder = write_fake_mnist(isolated_data / "mnist", n_train=10010, compress=False)
    write_idx(folder / "t10k-labels-idx1-ubyte", torch.zeros(3, dtype=torch.uint8).numpy())
    with pytest.raises(OlmpError, match="do not match"):
        load_dataset("mnist", data_dir=isolated_data)
