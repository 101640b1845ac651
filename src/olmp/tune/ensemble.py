"""The heterogeneous-ensemble task of ``olmp tune`` (``task="ensemble"``).

A soft vote of four scikit-learn models, each with its own hyper-parameters, and the vote
weights, searched together as one mixed engine space (:func:`ensemble_space`): a tree
ensemble (random forest or extra trees: trees, depth, features per split), a logistic
regression (``C``), an RBF SVM (``C``, ``gamma`` as a multiple of scikit-learn's
``"scale"``) and k-nearest neighbours (``k``, uniform or distance weights). The vote is the
weighted mean of the members' class probabilities (the SVM's are a softmax of its decision
values; a member of weight 0 is not fitted; all weights 0 means equal weights). This is the
first job of Hu, Yu & Zhou (IJCAI 2018).

Datasets (:data:`ENSEMBLE_DATASETS`) are tables of features: scikit-learn's bundled sets,
the tabular sets of :mod:`olmp.data.tabular` (label as given, no fairness constraint; their
files are found in ``data_dir``) and flattened image sets (2x2-pooled), each subsampled to
:data:`MAX_SAMPLES` so that one trial fits in well under a second. Every dataset is cut
into disjoint **train / val / test**: test (a quarter) with a fixed seed, val (a third of
the rest) with the split seed. A trial fits on train and
returns its val error; :func:`test_error` reads test once, for the chosen settings.
Features are standardised with train's mean and deviation.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from olmp.dfo import Categorical, Integer, Real, Space
from olmp.errors import unknown_choice

#: Samples kept of a larger dataset (a fixed subsample), so that a trial stays fast.
MAX_SAMPLES = 1200
#: Seed of the test carve (the same for every split seed).
TEST_SEED = 20180713
MEMBERS = ("forest", "linear", "svm", "knn")


Loader = Callable[[str | None], tuple[np.ndarray, np.ndarray]]


def _sklearn(loader: str) -> Loader:
    def load(data_dir: str | None) -> tuple[np.ndarray, np.ndarray]:
        import sklearn.datasets

        bunch = getattr(sklearn.datasets, loader)()
        return np.asarray(bunch.data, dtype=np.float64), np.asarray(bunch.target)

    return load


def _images(name: str, classes: tuple[int, ...] | None = None) -> Loader:
    def load(data_dir: str | None) -> tuple[np.ndarray, np.ndarray]:
        import torch

        from olmp.data import load_dataset

        splits = load_dataset(name, seed=0, data_dir=data_dir)
        parts = [getattr(splits, s) for s in ("train", "tune", "val", "test")]
        x = torch.cat([p.x for p in parts])
        y = torch.cat([p.y for p in parts]).numpy()
        keep = np.ones(len(y), bool) if classes is None else np.isin(y, classes)
        order = np.random.default_rng(TEST_SEED).permutation(np.flatnonzero(keep))[:MAX_SAMPLES]
        pooled = torch.nn.functional.avg_pool2d(x[order], 2)
        return pooled.reshape(len(order), -1).double().numpy(), y[order]

    return load


def _tabular(name: str) -> Loader:
    def load(data_dir: str | None) -> tuple[np.ndarray, np.ndarray]:
        import torch

        from olmp.data.tabular import load_tabular

        splits = load_tabular(name, seed=0, data_dir=data_dir)
        parts = [getattr(splits, s) for s in ("train", "tune", "val", "test")]
        x = torch.cat([p.x.reshape(len(p.x), -1) for p in parts]).double().numpy()
        return x, torch.cat([p.y for p in parts]).numpy()

    return load


#: Datasets of the ensemble task: name -> (description, loader of ``(features, labels)``
#: from a data folder, ``None``: the default places).
ENSEMBLE_DATASETS: dict[str, tuple[str, Loader]] = {
    "iris": ("scikit-learn's iris (150 x 4, 3 classes)", _sklearn("load_iris")),
    "wine": ("scikit-learn's wine (178 x 13, 3 classes)", _sklearn("load_wine")),
    "breast-cancer": (
        "scikit-learn's breast cancer (569 x 30, 2 classes)",
        _sklearn("load_breast_cancer"),
    ),
    "digits": ("scikit-learn's 8x8 digits (1,797 x 64, 10 classes)", _sklearn("load_digits")),
    "mnist-5k": ("mnist-5k, 14x14 pooled, 1,200 of 5,000", _images("mnist-5k")),
    "fashion-mnist": ("fashion-mnist, 14x14 pooled, 1,200 of 70,000", _images("fashion-mnist")),
    "fashion-mnist-tops": (
        "fashion-mnist's t-shirts, pullovers, coats and shirts, 14x14 pooled, 1,200",
        _images("fashion-mnist", (0, 2, 4, 6)),
    ),
    "fashion-mnist-shoes": (
        "fashion-mnist's sandals, sneakers and ankle boots, 14x14 pooled, 1,200",
        _images("fashion-mnist", (5, 7, 9)),
    ),
    "adult": ("UCI Adult, income > 50K, 1,200 of 45,222 complete rows", _tabular("adult")),
    "compas": ("ProPublica COMPAS, two-year recidivism, 1,200 of 6,172", _tabular("compas")),
    "german": ("UCI German credit, good or bad, 1,000", _tabular("german")),
    "credit-default": (
        "UCI default of credit card clients, 1,200 of 30,000",
        _tabular("credit-default"),
    ),
}


def ensemble_space() -> Space:
    """The search space: vote weights and every member's hyper-parameters."""
    return Space(
        [
            *(Real(f"weight_{member}", 0.0, 1.0) for member in MEMBERS),
            Categorical("forest", ["random", "extra"]),
            Integer("forest_trees", 5, 100, log=True),
            Integer("forest_depth", 1, 20),
            Real("forest_features", 0.05, 1.0),
            Real("linear_c", 1e-4, 1e3, log=True),
            Real("svm_c", 1e-3, 1e3, log=True),
            Real("svm_gamma", 1e-3, 1e2, log=True),
            Integer("knn_k", 1, 50, log=True),
            Categorical("knn_weights", ["uniform", "distance"]),
        ]
    )


@dataclass(frozen=True)
class Table:
    """Standardised features and labels of train, val and test."""

    train: tuple[np.ndarray, np.ndarray]
    val: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]
    classes: np.ndarray


def check_dataset(name: str) -> None:
    if name not in ENSEMBLE_DATASETS:
        raise unknown_choice("dataset of the ensemble task", name, list(ENSEMBLE_DATASETS))


@functools.lru_cache(maxsize=16)
def load_table(name: str, split_seed: int = 0, data_dir: str | None = None) -> Table:
    """``name``'s train / val / test (see the module docstring), loaded once per process;
    ``data_dir`` is searched first for its files."""
    check_dataset(name)
    x, y = ENSEMBLE_DATASETS[name][1](data_dir)
    if len(y) > MAX_SAMPLES:
        keep = np.random.default_rng(TEST_SEED).permutation(len(y))[:MAX_SAMPLES]
        x, y = x[keep], y[keep]
    order = np.random.default_rng(TEST_SEED).permutation(len(y))
    n_test = len(y) // 4
    test, rest = order[:n_test], order[n_test:]
    rest = np.random.default_rng(split_seed).permutation(rest)
    n_val = len(rest) // 3
    val, train = rest[:n_val], rest[n_val:]
    mean, std = x[train].mean(axis=0), x[train].std(axis=0)
    std[std == 0] = 1.0
    z = (x - mean) / std
    return Table((z[train], y[train]), (z[val], y[val]), (z[test], y[test]), np.unique(y))


def _members(params: Mapping[str, Any], n_features: int, seed: int) -> dict[str, Any]:
    from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import SVC

    forest = RandomForestClassifier if params["forest"] == "random" else ExtraTreesClassifier
    return {
        "forest": forest(
            n_estimators=params["forest_trees"],
            max_depth=params["forest_depth"],
            max_features=params["forest_features"],
            random_state=seed,
        ),
        "linear": LogisticRegression(C=params["linear_c"], max_iter=200),
        "svm": SVC(C=params["svm_c"], gamma=params["svm_gamma"] / n_features),
        "knn": KNeighborsClassifier(n_neighbors=params["knn_k"], weights=params["knn_weights"]),
    }


def _probabilities(model: Any, x: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Class probabilities over ``classes`` (columns for classes unseen in training: 0)."""
    if hasattr(model, "predict_proba"):
        p = model.predict_proba(x)
    else:  # the SVM: a softmax of its one-vs-rest decision values
        d = model.decision_function(x)
        d = np.stack([-d, d], axis=1) if d.ndim == 1 else d
        e = np.exp(d - d.max(axis=1, keepdims=True))
        p = e / e.sum(axis=1, keepdims=True)
    out = np.zeros((len(x), len(classes)))
    out[:, np.searchsorted(classes, model.classes_)] = p
    return out


def fit_vote(params: Mapping[str, Any], table: Table, seed: int = 0) -> Callable[[np.ndarray], Any]:
    """Fit the ensemble ``params`` on train; returns ``predict(features) -> labels``."""
    x, y = table.train
    weights = {m: float(params[f"weight_{m}"]) for m in MEMBERS}
    if sum(weights.values()) <= 0:
        weights = dict.fromkeys(MEMBERS, 1.0)
    members = _members(params, x.shape[1], seed)
    fitted = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings of weak settings
        for name, model in members.items():
            if weights[name] > 0:
                fitted.append((weights[name], model.fit(x, y)))

    def predict(features: np.ndarray) -> np.ndarray:
        vote = sum(w * _probabilities(m, features, table.classes) for w, m in fitted)
        return table.classes[np.argmax(vote, axis=1)]

    return predict


@dataclass(frozen=True)
class EnsembleObjective:
    """A trial of the ensemble task: ``objective(params) -> {"value": val error}``
    (picklable, for worker processes)."""

    dataset: str
    seed: int = 0
    split_seed: int = 0
    data_dir: str | None = None

    @property
    def space(self) -> Space:
        return ensemble_space()

    def full(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return dict(params)

    def __call__(self, params: Mapping[str, Any]) -> dict[str, Any]:
        table = load_table(self.dataset, self.split_seed, self.data_dir)
        predict = fit_vote(params, table, self.seed)
        x, y = table.val
        return {"value": float(np.mean(predict(x) != y)), "cost": 1.0}


def test_error(objective: EnsembleObjective, params: Mapping[str, Any]) -> dict[str, float]:
    """Val and test error of ``params`` refitted on train (the one read of test)."""
    table = load_table(objective.dataset, objective.split_seed, objective.data_dir)
    predict = fit_vote(params, table, objective.seed)
    return {
        "val_error": float(np.mean(predict(table.val[0]) != table.val[1])),
        "test_error": float(np.mean(predict(table.test[0]) != table.test[1])),
    }


__all__ = [
    "ENSEMBLE_DATASETS",
    "EnsembleObjective",
    "check_dataset",
    "ensemble_space",
    "fit_vote",
    "load_table",
    "test_error",
]
