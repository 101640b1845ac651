"""fairlearn 0.15's reductions on one split that ``benchmarks/fair.py`` exported: runs in
fairlearn's own environment and never imports olmp.

    /tmp/fairenv/bin/python benchmarks/fair_fairlearn.py SPLIT.npz OUT.json DATASET SEED

Methods, each fitted on train and scored on test (val is not used: the reductions have no
selection step):

- ``ExponentiatedGradient`` with ``DemographicParity`` / ``EqualizedOdds`` whose
  ``difference_bound`` is epsilon = 0.01, 0.05, 0.1 (since fairlearn 0.5 the bound lives in
  the moment; EG's own ``eps`` only sets the multipliers' L1 bound and keeps its default),
  fairlearn's defaults otherwise, predictions from its own randomised ``predict`` with a
  fixed ``random_state``, around ``LogisticRegression`` and around the MLP below;
- ``ThresholdOptimizer`` around ``LogisticRegression`` (``demographic_parity`` /
  ``equalized_odds``; it has no epsilon: it aims at exact parity on train);
- a cross-check: fairlearn's ``demographic_parity_difference`` and
  ``equalized_odds_difference`` of FNNC's test predictions (from the .npz), with the
  largest absolute difference from the values ``olmp.fair.metrics`` computed for the same
  predictions (also in the .npz).

The MLP is the one ``olmp fair train`` trains by default (100-100 ReLU, two logits, Adam at
1e-3, batches of 256), made a scikit-learn classifier that takes ``sample_weight`` (the
weighted mean of the per-row cross-entropy), trained for a fixed 10 epochs (the reductions
fit it many times and give it no val split to stop on).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference
from fairlearn.postprocessing import ThresholdOptimizer
from fairlearn.reductions import DemographicParity, EqualizedOdds, ExponentiatedGradient
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from torch import nn

EPSILONS = (0.01, 0.05, 0.1)


class TorchMLP(ClassifierMixin, BaseEstimator):
    """100-100 ReLU MLP with two logits, trained on weighted cross-entropy."""

    def __init__(self, epochs: int = 10, lr: float = 1e-3, batch_size: int = 256, seed: int = 0):
        self.epochs, self.lr, self.batch_size, self.seed = epochs, lr, batch_size, seed

    def fit(self, X, y, sample_weight=None):
        torch.manual_seed(self.seed)
        x = torch.as_tensor(np.array(X), dtype=torch.float32)
        t = torch.as_tensor(np.array(y), dtype=torch.int64)
        w = (
            torch.ones(len(t))
            if sample_weight is None
            else torch.as_tensor(np.array(sample_weight), dtype=torch.float32)
        )
        self.classes_ = np.array([0, 1])
        self.net_ = nn.Sequential(
            nn.Linear(x.shape[1], 100), nn.ReLU(), nn.Linear(100, 100), nn.ReLU(), nn.Linear(100, 2)
        )
        optimizer = torch.optim.Adam(self.net_.parameters(), lr=self.lr)
        g = torch.Generator().manual_seed(self.seed)
        for _ in range(self.epochs):
            order = torch.randperm(len(t), generator=g)
            for start in range(0, len(t), self.batch_size):
                rows = order[start : start + self.batch_size]
                losses = nn.functional.cross_entropy(self.net_(x[rows]), t[rows], reduction="none")
                weight = w[rows]
                loss = (losses * weight).sum() / weight.sum().clamp(min=1e-12)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        return self

    def predict_proba(self, X):
        with torch.no_grad():
            logits = self.net_(torch.as_tensor(np.asarray(X), dtype=torch.float32))
        return torch.softmax(logits, 1).numpy()

    def predict(self, X):
        return self.predict_proba(X).argmax(1)


def main() -> None:
    split, out, dataset, seed = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    data = np.load(split)
    # float64: ThresholdOptimizer's pandas code cannot put its float64 scores in float32.
    x_train, y_train, g_train = data["x_train"].astype(np.float64), data["y_train"], data["g_train"]
    x_test, y_test, g_test = data["x_test"].astype(np.float64), data["y_test"], data["g_test"]
    record = json.loads(out.read_text()) if out.exists() else {"runs": [], "fairlearn": None}
    import fairlearn

    record["fairlearn"] = fairlearn.__version__
    done = {
        (r["dataset"], r["seed"], r["method"], r["constraint"], r.get("epsilon"))
        for r in record["runs"]
    }

    def value(constraint: str, pred: np.ndarray) -> float:
        if constraint == "dp":
            return float(demographic_parity_difference(y_test, pred, sensitive_features=g_test))
        return float(equalized_odds_difference(y_test, pred, sensitive_features=g_test))

    def add(method: str, constraint: str, eps: float | None, fit) -> None:
        if (dataset, seed, method, constraint, eps) in done:
            return
        began = time.perf_counter()
        pred = fit()
        record["runs"].append({
            "dataset": dataset, "seed": seed, "method": method, "constraint": constraint,
            "epsilon": eps, "accuracy": float((pred == y_test).mean()),
            "value": value(constraint, pred), "seconds": round(time.perf_counter() - began, 2),
        })  # fmt: skip
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=1) + "\n")
        tmp.replace(out)
        print(
            f"{dataset} seed {seed} {method} {constraint} {eps}: {record['runs'][-1]}", flush=True
        )

    moments = {"dp": DemographicParity, "eo": EqualizedOdds}
    estimators = {
        "LogisticRegression": lambda: LogisticRegression(max_iter=1000),
        "MLP": lambda: TorchMLP(seed=seed),
    }
    for constraint, moment in moments.items():
        for name, make in estimators.items():
            for eps in EPSILONS:

                def fit(make=make, moment=moment, eps=eps):
                    reduction = ExponentiatedGradient(make(), moment(difference_bound=eps))
                    reduction.fit(x_train, y_train, sensitive_features=g_train)
                    return reduction.predict(x_test, random_state=seed)

                add(f"ExponentiatedGradient({name})", constraint, eps, fit)

        def post(constraint=constraint):
            kind = {"dp": "demographic_parity", "eo": "equalized_odds"}[constraint]
            optimizer = ThresholdOptimizer(
                estimator=LogisticRegression(max_iter=1000),
                constraints=kind,
                predict_method="predict_proba",
            )
            optimizer.fit(x_train, y_train, sensitive_features=g_train)
            return optimizer.predict(x_test, sensitive_features=g_test, random_state=seed)

        add("ThresholdOptimizer(LogisticRegression)", constraint, None, post)

    # Cross-check: fairlearn's metrics of FNNC's own test predictions.
    for key in data.files:
        if not key.startswith("fnnc_"):
            continue
        _, constraint, eps = key.split("_")
        tag = ("crosscheck", constraint, float(eps))
        if (dataset, seed, *tag) in done:
            continue
        pred = data[key]
        dp, eo = data["olmp_" + key]  # what olmp.fair.metrics computed for them
        ours = {"dp_difference": float(dp), "eo_difference": float(eo)}
        theirs = {
            "dp_difference": float(
                demographic_parity_difference(y_test, pred, sensitive_features=g_test)
            ),
            "eo_difference": float(
                equalized_odds_difference(y_test, pred, sensitive_features=g_test)
            ),
        }
        record["runs"].append({
            "dataset": dataset, "seed": seed, "method": "crosscheck", "constraint": constraint,
            "epsilon": float(eps), "fairlearn": theirs, "recomputed": ours,
            "max_abs_difference": max(abs(theirs[k] - ours[k]) for k in theirs),
        })  # fmt: skip
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1) + "\n")
    tmp.replace(out)


if __name__ == "__main__":
    main()
