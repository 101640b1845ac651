"""Tabular datasets of fairness research: features, a binary label, protected attributes.

``load_tabular("adult", seed=0, data_dir=...)`` returns :class:`TabularSplits`: disjoint
train / tune / val / test splits, each with float32 features, integer labels and, per
protected attribute, every row's group. The usual protocol of the literature:

- rows with a missing value are dropped;
- numeric columns are standardised with the mean and standard deviation of the **train**
  split; categorical columns are one-hot encoded over the categories the data file holds;
- the protected attributes stay among the inputs (as in FNNC and fairlearn's examples) and
  are also kept apart, as group codes, for the fairness metrics and constraints;
- Adult keeps its official test split; the other sets carve a stratified test split with
  a fixed seed (the same for every split seed), and every set carves stratified tune and
  val splits from the rest with the split seed.

Files are found as in :mod:`olmp.data.fetch` (``--data-dir``, ``$OLMP_DATA``,
``~/.cache/olmp``) and are checked against the MD5s of the copies the README of
``../shared/data/fairness`` lists; a missing file is downloaded when allowed.
"""

from __future__ import annotations

import csv
import functools
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from olmp.data.fetch import data_dir_hint, download_file, md5_of, search_roots
from olmp.data.registry import TEST_CARVE_SEED, DatasetSplits, Split, check_split_seed
from olmp.errors import OlmpError, unknown_choice

Table = dict[str, np.ndarray]
"""Column name -> the column's values as strings, one per row."""

TUNE_FRACTION = 0.1
VAL_FRACTION = 0.1
TEST_FRACTION = 0.2  # for the sets without an official test split


@dataclass(frozen=True)
class SourceFile:
    """One data file: its name, the MD5 of the copy we read, and where to download it."""

    name: str
    md5: str
    urls: tuple[str, ...] = ()
    # Turns the downloaded bytes into the file we read (None: they are that file).
    convert: Callable[[bytes], bytes] | None = None


@dataclass(frozen=True)
class TabularSpec:
    """How to read one tabular dataset and turn its columns into features."""

    name: str
    description: str
    files: tuple[SourceFile, ...]
    read: Callable[[list[Path]], tuple[Table, np.ndarray, np.ndarray]]
    """Paths -> (columns, 0/1 labels, True where the row belongs to the official test)."""
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    protected: dict[str, Callable[[Table], np.ndarray]]
    """Attribute name -> each row's group name."""
    label: str  # what label 1 means


@dataclass(frozen=True)
class GroupedSplit(Split):
    """A :class:`Split` that also knows each row's group, per protected attribute."""

    groups: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass(frozen=True)
class TabularSplits(DatasetSplits):
    """:class:`DatasetSplits` of a tabular set, with what its columns and groups mean."""

    feature_names: tuple[str, ...] = ()
    group_names: dict[str, tuple[str, ...]] = field(default_factory=dict)
    label: str = ""


TABULAR_DATASETS: dict[str, TabularSpec] = {}


def register_tabular(spec: TabularSpec) -> TabularSpec:
    """Add ``spec`` to :data:`TABULAR_DATASETS`."""
    TABULAR_DATASETS[spec.name] = spec
    return spec


# -- reading ------------------------------------------------------------------------------


def _csv_rows(path: Path, delimiter: str = ",", skip: int = 0) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle, delimiter=delimiter, skipinitialspace=True))
    return [row for row in rows[skip:] if row]


def _columns(path: Path, header: list[str], rows: list[list[str]]) -> Table:
    bad = [i for i, row in enumerate(rows) if len(row) != len(header)]
    if bad:
        raise OlmpError(
            f"{path}: row {bad[0] + 1} has {len(rows[bad[0]])} fields, expected "
            f"{len(header)}; the file is damaged or not the expected one"
        )
    values = np.array(rows, dtype=object).reshape(len(rows), len(header))
    return {name: values[:, i].astype(str) for i, name in enumerate(header)}


def _with_header(path: Path, required: tuple[str, ...]) -> Table:
    rows = _csv_rows(path)
    header, body = rows[0], rows[1:]
    missing = [name for name in required if name not in header]
    if missing:
        raise OlmpError(f"{path}: missing columns {', '.join(missing)}")
    return _columns(path, header, body)


ADULT_COLUMNS = [
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education-num",
    "marital-status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "capital-gain",
    "capital-loss",
    "hours-per-week",
    "native-country",
    "income",
]


def read_adult(paths: list[Path]) -> tuple[Table, np.ndarray, np.ndarray]:
    parts = []
    for path, skip in zip(paths, (0, 1), strict=True):  # adult.test opens with a comment
        parts.append(_columns(path, ADULT_COLUMNS, _csv_rows(path, skip=skip)))
    table = {name: np.concatenate([p[name] for p in parts]) for name in ADULT_COLUMNS}
    is_test = np.arange(len(table["age"])) >= len(parts[0]["age"])
    complete = np.all([table[name] != "?" for name in ADULT_COLUMNS], axis=0)
    table = {name: column[complete] for name, column in table.items()}
    labels = np.char.startswith(table["income"].astype(str), ">50K").astype(np.int64)
    return table, labels, is_test[complete]


COMPAS_COLUMNS = [
    "sex",
    "age",
    "race",
    "juv_fel_count",
    "juv_misd_count",
    "juv_other_count",
    "priors_count",
    "c_charge_degree",
    "days_b_screening_arrest",
    "is_recid",
    "score_text",
    "two_year_recid",
]


def read_compas(paths: list[Path]) -> tuple[Table, np.ndarray, np.ndarray]:
    table = _with_header(paths[0], tuple(COMPAS_COLUMNS))
    # ProPublica's own filter: a screening within 30 days of the arrest, a known
    # recidivism outcome, no ordinary traffic offences, a COMPAS score on file.
    days = np.array([float(v) if v else np.nan for v in table["days_b_screening_arrest"]])
    keep = (
        (np.abs(days) <= 30)
        & (table["is_recid"] != "-1")
        & (table["c_charge_degree"] != "O")
        & (table["score_text"] != "N/A")
    )
    table = {name: column[keep] for name, column in table.items()}
    return table, table["two_year_recid"].astype(np.int64), np.zeros(int(keep.sum()), bool)


GERMAN_COLUMNS = [
    "status",
    "duration",
    "credit_history",
    "purpose",
    "amount",
    "savings",
    "employment",
    "installment_rate",
    "personal_status",
    "other_debtors",
    "residence",
    "property",
    "age",
    "other_plans",
    "housing",
    "credits",
    "job",
    "dependents",
    "telephone",
    "foreign_worker",
    "credit",
]


def read_german(paths: list[Path]) -> tuple[Table, np.ndarray, np.ndarray]:
    table = _columns(paths[0], GERMAN_COLUMNS, _csv_rows(paths[0], delimiter=" "))
    labels = (table["credit"] == "1").astype(np.int64)  # 1 = good credit, 2 = bad
    return table, labels, np.zeros(len(labels), bool)


CREDIT_LABEL = "default payment next month"
CREDIT_NUMERIC = (
    ["LIMIT_BAL", "AGE"]
    + [f"PAY_{i}" for i in (0, 2, 3, 4, 5, 6)]
    + [f"BILL_AMT{i}" for i in range(1, 7)]
    + [f"PAY_AMT{i}" for i in range(1, 7)]
)


def read_credit(paths: list[Path]) -> tuple[Table, np.ndarray, np.ndarray]:
    required = (*CREDIT_NUMERIC, "SEX", "EDUCATION", "MARRIAGE", CREDIT_LABEL)
    table = _with_header(paths[0], required)
    labels = table[CREDIT_LABEL].astype(np.int64)
    return table, labels, np.zeros(len(labels), bool)


def drop_personal_columns(upstream: bytes) -> bytes:
    """ProPublica's file without ``name``, ``first``, ``last`` and ``dob`` (the local copy)."""
    rows = list(csv.reader(io.StringIO(upstream.decode("utf-8"))))
    if not rows:
        raise ValueError("the file is empty")
    drop = {i for i, name in enumerate(rows[0]) if name in ("name", "first", "last", "dob")}
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(
        [[v for i, v in enumerate(row) if i not in drop] for row in rows]
    )
    return out.getvalue().encode("utf-8")


ADULT_MD5 = {"data": "5d7c39d7b8804f071cdd1f2a7c460872", "test": "35238206dfdf7f1fe215bbb874adecdc"}
CREDIT_MD5 = "4a819c60b1b949a1cd4d690d8b186625"
UCI = "https://archive.ics.uci.edu/ml/machine-learning-databases/"

register_tabular(
    TabularSpec(
        name="adult",
        description="UCI Adult (census income), official train/test, 45,222 complete rows",
        files=(
            SourceFile("adult.data", ADULT_MD5["data"], (UCI + "adult/adult.data",)),
            SourceFile("adult.test", ADULT_MD5["test"], (UCI + "adult/adult.test",)),
        ),
        read=read_adult,
        # fnlwgt is the census's sampling weight, not something about the person.
        numeric=("age", "education-num", "capital-gain", "capital-loss", "hours-per-week"),
        categorical=(
            "workclass", "education", "marital-status", "occupation", "relationship",
            "race", "sex", "native-country",
        ),
        protected={
            "sex": lambda t: t["sex"],
            "race": lambda t: np.where(t["race"] == "White", "White", "non-White"),
        },
        label="income > 50K",
    )
)  # fmt: skip
register_tabular(
    TabularSpec(
        name="compas",
        description="ProPublica COMPAS two-year recidivism, ProPublica's filter, 6,172 rows",
        files=(
            SourceFile(
                "compas-scores-two-years.csv",
                "0cc477bd5303b523ff770895de4500dd",
                (
                    "https://raw.githubusercontent.com/propublica/compas-analysis/master/"
                    "compas-scores-two-years.csv",
                ),
                convert=drop_personal_columns,
            ),
        ),
        read=read_compas,
        numeric=(
            "age", "juv_fel_count", "juv_misd_count", "juv_other_count", "priors_count",
        ),
        categorical=("sex", "race", "c_charge_degree"),
        protected={
            "race": lambda t: np.where(t["race"] == "Caucasian", "Caucasian", "other"),
            "sex": lambda t: t["sex"],
        },
        label="reoffended within two years",
    )
)  # fmt: skip
register_tabular(
    TabularSpec(
        name="german",
        description="UCI Statlog German credit, 1,000 applicants",
        files=(
            SourceFile(
                "german.data",
                "6b94c2e35480e671545e52a808a8a549",
                (UCI + "statlog/german/german.data",),
            ),
        ),
        read=read_german,
        numeric=(
            "duration", "amount", "installment_rate", "residence", "age", "credits",
            "dependents",
        ),
        categorical=(
            "status", "credit_history", "purpose", "savings", "employment",
            "personal_status", "other_debtors", "property", "other_plans", "housing", "job",
            "telephone", "foreign_worker",
        ),
        protected={
            # Attribute 9 codes sex with marital status: A92 and A95 are the women.
            "sex": lambda t: np.where(
                np.isin(t["personal_status"], ["A92", "A95"]), "female", "male"
            ),
            "age": lambda t: np.where(t["age"].astype(int) > 25, "over 25", "25 or under"),
        },
        label="good credit",
    )
)  # fmt: skip
register_tabular(
    TabularSpec(
        name="credit-default",
        description="UCI default of credit card clients (Taiwan), 30,000 clients",
        # UCI publishes an .xls inside a zip; the CSV is its conversion, so there is no
        # download here (see load_tabular's error).
        files=(SourceFile("default-of-credit-card-clients.csv", CREDIT_MD5),),
        read=read_credit,
        numeric=tuple(CREDIT_NUMERIC),
        categorical=("SEX", "EDUCATION", "MARRIAGE"),
        protected={"sex": lambda t: np.where(t["SEX"] == "1", "male", "female")},
        label="defaults next month",
    )
)  # fmt: skip


# -- files --------------------------------------------------------------------------------


def _download(source: SourceFile, folder: Path) -> Path:
    return download_file(source.urls, folder / source.name, source.md5, convert=source.convert)


def find_files(spec: TabularSpec, data_dir: Path | None, download: bool) -> list[Path]:
    """The dataset's files, checked against their MD5s; downloaded when missing and allowed."""
    roots = search_roots(data_dir)
    paths = []
    for source in spec.files:
        found = next(
            (
                folder / source.name
                for root in roots
                for folder in (root / spec.name, root)
                if (folder / source.name).is_file()
            ),
            None,
        )
        if found is None:
            where = ", ".join(str(root) for root in roots)
            hint = f"{spec.name}: {source.name} not found in {where}"
            if not download or not source.urls:
                how = "" if source.urls else " (it has no download: see the dataset's docs)"
                raise OlmpError(f"{hint}; {data_dir_hint('it', data_dir)}{how}")
            try:
                found = _download(source, roots[0] / spec.name)
            except OlmpError as exc:
                raise OlmpError(
                    f"{hint}; {data_dir_hint('it', data_dir)}; downloading it failed "
                    f"(no network?): {exc}"
                ) from None
        actual = md5_of(found)
        if actual != source.md5:
            raise OlmpError(
                f"{found}: md5 {actual}, expected {source.md5}; the file is damaged or "
                f"not the {spec.name} file olmp knows"
            )
        paths.append(found)
    return paths


@functools.lru_cache(maxsize=4)
def _read(name: str, data_dir: Path | None, download: bool) -> tuple[Table, np.ndarray, np.ndarray]:
    spec = TABULAR_DATASETS[name]
    return spec.read(find_files(spec, data_dir, download))


# -- splits -------------------------------------------------------------------------------


def _stratified_carve(labels: np.ndarray, fractions: list[float], seed: int) -> list[np.ndarray]:
    """Row indices of ``len(fractions)`` carved parts and the rest, each label in proportion."""
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in range(len(fractions) + 1)]
    for value in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == value))
        cuts = np.cumsum([round(f * len(rows)) for f in fractions])
        for part, chunk in zip(parts, np.split(rows, cuts), strict=True):
            part.append(chunk)
    return [np.sort(np.concatenate(part)) for part in parts]


def load_tabular(
    name: str,
    *,
    seed: int = 0,
    data_dir: str | Path | None = None,
    download: bool = True,
) -> TabularSplits:
    """Load tabular dataset ``name`` (a key of :data:`TABULAR_DATASETS`) cut with ``seed``.

    Example:
        >>> splits = load_tabular("german", seed=0, data_dir="../shared/data/fairness")
        >>> splits.sizes(), splits.group_names["sex"]
        ({'train': 640, 'tune': 80, 'val': 80, 'test': 200}, ('female', 'male'))
    """
    if name not in TABULAR_DATASETS:
        raise unknown_choice("dataset", name, list(TABULAR_DATASETS))
    check_split_seed(seed)
    spec = TABULAR_DATASETS[name]
    root = Path(data_dir).expanduser().resolve() if data_dir is not None else None
    table, labels, is_test = _read(name, root, download)

    if is_test.any():
        test, rest = np.flatnonzero(is_test), np.flatnonzero(~is_test)
    else:
        test, rest = _stratified_carve(labels, [TEST_FRACTION], TEST_CARVE_SEED)
    tune, val, train = (
        rest[part] for part in _stratified_carve(labels[rest], [TUNE_FRACTION, VAL_FRACTION], seed)
    )

    columns, feature_names = [], []
    for column in spec.numeric:
        values = table[column].astype(np.float64)
        mean, std = values[train].mean(), values[train].std()
        columns.append((values - mean) / (std if std > 0 else 1.0))
        feature_names.append(column)
    for column in spec.categorical:
        for category in sorted(set(table[column])):
            columns.append((table[column] == category).astype(np.float64))
            feature_names.append(f"{column}={category}")
    features = torch.as_tensor(np.stack(columns, axis=1), dtype=torch.float32)
    targets = torch.as_tensor(labels, dtype=torch.int64)

    group_names, codes = {}, {}
    for attribute, groups_of in spec.protected.items():
        names, code = np.unique(groups_of(table), return_inverse=True)
        group_names[attribute] = tuple(str(n) for n in names)
        codes[attribute] = torch.as_tensor(code, dtype=torch.int64)

    def split(rows: np.ndarray) -> GroupedSplit:
        index = torch.as_tensor(rows)
        return GroupedSplit(
            features[index], targets[index], {a: c[index] for a, c in codes.items()}
        )

    return TabularSplits(
        name=name,
        train=split(train),
        tune=split(tune),
        val=split(val),
        test=split(test),
        input_shape=(features.shape[1],),
        num_classes=2,
        split_seed=seed,
        feature_names=tuple(feature_names),
        group_names=group_names,
        label=spec.label,
    )
