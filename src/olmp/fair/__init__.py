"""Fairness: group metrics, constraints, and FNNC's primal-dual training.

>>> from olmp.fair import CONSTRAINTS
>>> sorted(CONSTRAINTS)
['di', 'dp', 'eo']
"""

from olmp.fair.metrics import (
    CONSTRAINTS,
    Constraint,
    constraint_value,
    dp_difference,
    eo_difference,
    fairness_report,
)
from olmp.fair.run import fair_train
from olmp.fair.train import FairFit, FairSettings, fit_fair

__all__ = [
    "CONSTRAINTS",
    "Constraint",
    "FairFit",
    "FairSettings",
    "constraint_value",
    "dp_difference",
    "eo_difference",
    "fair_train",
    "fairness_report",
    "fit_fair",
]
