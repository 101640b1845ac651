"""The tabular fairness datasets: files, checksums, downloads and splits."""

import io
import shutil

import pytest
import torch
from conftest import FAIRNESS

from olmp.data import fetch, load_tabular, tabular
from olmp.errors import OlmpError

pytestmark = pytest.mark.skipif(
    not FAIRNESS.is_dir(), reason=f"needs the shared fairness data at {FAIRNESS}"
)


@pytest.fixture(autouse=True)
def fresh_cache():
    tabular._read.cache_clear()
    yield
    tabular._read.cache_clear()


def _rows(split):
    return {tuple(row.tolist()) for row in split.x}


@pytest.mark.parametrize(
    ("name", "sizes", "attributes"),
    [
        ("adult", (24130, 3016, 3016, 15060), {"sex": ("Female", "Male")}),
        ("compas", (3949, 494, 494, 1235), {"race": ("Caucasian", "other")}),
        ("german", (640, 80, 80, 200), {"age": ("25 or under", "over 25")}),
        ("credit-default", (19200, 2400, 2400, 6000), {"sex": ("female", "male")}),
    ],
)
def test_each_set_loads_into_disjoint_stratified_splits(name, sizes, attributes):
    splits = load_tabular(name, seed=0, data_dir=FAIRNESS)
    parts = [splits.train, splits.tune, splits.val, splits.test]
    assert tuple(len(p) for p in parts) == sizes
    for attribute, groups in attributes.items():
        assert splits.group_names[attribute] == groups
        for part in parts:
            assert set(part.groups[attribute].tolist()) == {0, 1}
    # Stratified: each carved split keeps the training part's positive rate.
    rate = float(splits.train.y.float().mean())
    for part in (splits.tune, splits.val):
        assert abs(float(part.y.float().mean()) - rate) < 0.01
    # Numeric columns are standardised on train.
    numeric = len(tabular.TABULAR_DATASETS[name].numeric)
    assert torch.allclose(splits.train.x[:, :numeric].mean(0), torch.zeros(numeric), atol=1e-4)
    assert splits.input_shape == (len(splits.feature_names),)
    if name == "german":  # small enough to compare every row (German has no duplicates)
        seen = [_rows(p) for p in parts]
        assert sum(map(len, seen)) == len(set().union(*seen)) == 1000


def test_the_split_seed_moves_train_tune_val_but_not_test():
    a = load_tabular("german", seed=0, data_dir=FAIRNESS)
    b = load_tabular("german", seed=1, data_dir=FAIRNESS)
    assert torch.equal(a.test.y, b.test.y)
    assert not torch.equal(a.val.y, b.val.y) or not torch.equal(a.val.x, b.val.x)
    again = load_tabular("german", seed=0, data_dir=FAIRNESS)
    assert torch.equal(a.val.x, again.val.x)


def test_adult_keeps_its_official_test_split():
    splits = load_tabular("adult", seed=3, data_dir=FAIRNESS)
    assert len(splits.test) == 15060  # adult.test's complete rows
    assert abs(float(splits.test.y.float().mean()) - 0.2457) < 0.001


def test_a_damaged_file_is_named(tmp_path, isolated_data):
    shutil.copy(FAIRNESS / "german.data", tmp_path / "german.data")
    data = bytearray((tmp_path / "german.data").read_bytes())
    data[100] ^= 1
    (tmp_path / "german.data").write_bytes(bytes(data))
    with pytest.raises(OlmpError, match="md5") as info:
        load_tabular("german", data_dir=tmp_path, download=False)
    assert str(tmp_path / "german.data") in str(info.value)


def test_a_file_with_missing_columns_is_refused(tmp_path):
    path = tmp_path / "credit.csv"
    path.write_text("LIMIT_BAL,AGE,default payment next month\n1,2,0\n")
    expected = r"missing columns PAY_0, .*, SEX, EDUCATION, MARRIAGE$"
    with pytest.raises(OlmpError, match=expected) as info:
        tabular.read_credit([path])
    assert str(path) in str(info.value)


def test_missing_files_offline_say_where(isolated_data):
    with pytest.raises(OlmpError, match=r"german\.data not found") as info:
        load_tabular("german", data_dir=isolated_data / "none", download=False)
    typo = f"--data-dir {isolated_data / 'none'} is not a folder; give the folder that holds it"
    assert typo in str(info.value)
    (isolated_data / "empty").mkdir()
    with pytest.raises(OlmpError, match=r"german\.data not found") as info:
        load_tabular("german", data_dir=isolated_data / "empty", download=False)
    assert "give --data-dir (or set OLMP_DATA) to the folder that holds it" in str(info.value)
    with pytest.raises(OlmpError, match=r"german\.data not found") as info:
        load_tabular("german", download=False)
    assert "pass --data-dir (or set OLMP_DATA) to the folder that holds it" in str(info.value)


def test_a_failed_download_says_where_files_can_be_given(isolated_data, monkeypatch):
    def no_network(*args, **kwargs):
        raise OlmpError("could not download german.data: no route to host")

    monkeypatch.setattr(tabular, "_download", no_network)
    with pytest.raises(OlmpError, match=r"german\.data not found") as info:
        load_tabular("german", data_dir=isolated_data / "none")
    message = str(info.value)
    assert (
        "--data-dir" in message and "is not a folder" in message and "no route to host" in message
    )


def test_unknown_dataset_lists_the_allowed_ones():
    with pytest.raises(OlmpError, match="adult") as info:
        load_tabular("adults")
    assert "compas" in str(info.value)


class _Response(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_download_checks_the_checksum_and_converts_compas(isolated_data, monkeypatch):
    # ProPublica's file has four personal columns the local copy dropped: serve them back.
    local = (FAIRNESS / "compas-scores-two-years.csv").read_text().splitlines()
    upstream = [
        ",".join(["id", "name", "first", "last", *local[0].split(",")[1:3], "dob"])
        + ","
        + ",".join(local[0].split(",")[3:])
    ]
    for line in local[1:]:
        cells = line.split(",", 3)
        upstream.append(
            ",".join([cells[0], "A B", "A", "B", cells[1], cells[2], "1990-01-01", cells[3]])
        )
    served = {
        "compas-scores-two-years.csv": ("\n".join(upstream) + "\n").encode(),
        "german.data": b"not the german data",
    }
    monkeypatch.setattr(
        fetch.urllib.request,
        "urlopen",
        lambda url, timeout: _Response(served[url.rsplit("/", 1)[1]]),
    )
    empty = isolated_data / "empty"
    served["compas-scores-two-years.csv"], first = b"", served["compas-scores-two-years.csv"]
    with pytest.raises(OlmpError, match=r"compas.*downloading it failed.*the file is empty"):
        load_tabular("compas", data_dir=empty)  # not an IndexError; no folder left
    assert not empty.exists()
    served["compas-scores-two-years.csv"] = first
    splits = load_tabular("compas", seed=0, data_dir=isolated_data / "d")
    assert len(splits.test) == 1235
    assert (isolated_data / "d" / "compas" / "compas-scores-two-years.csv").is_file()

    with pytest.raises(OlmpError, match="checksum mismatch"):
        load_tabular("german", data_dir=isolated_data / "d")
    assert not list((isolated_data / "d").rglob("german.data*"))
