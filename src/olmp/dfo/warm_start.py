"""Warm start: the complete results of earlier trials, as a study's solver is told them.

:class:`olmp.dfo.Study` takes ``warm_start=`` another study, a study file or trials; each
complete trial must fit the study's problem (its space and constraints), else the error
names it. Failed and running trials say nothing and are left out.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from olmp.dfo.problem import Problem, check_constraints
from olmp.dfo.record import load_study_file
from olmp.dfo.sampler import Told
from olmp.dfo.trial import Trial
from olmp.errors import OlmpError, is_number


def warm_results(source: Any, problem: Problem) -> list[Told]:
    """The complete results in ``source`` (a study file's path or trials) for ``problem``."""
    if isinstance(source, str | os.PathLike):
        trials = [Trial.from_json(t) for t in load_study_file(Path(source)).get("trials", [])]
    else:
        trials = list(source) if isinstance(source, Iterable) else [source]  # named below
    told = []
    for trial in trials:
        if not isinstance(trial, Trial):
            raise OlmpError(f"warm_start takes a Study, a study file or Trials, got {trial!r}")
        if trial.state != "complete":
            continue
        if not is_number(trial.value) or math.isnan(trial.value):
            raise OlmpError(
                f"warm-start trial {trial.id} is complete but its value is {trial.value!r}, "
                "not a number"
            )
        if not isinstance(trial.params, Mapping):
            raise OlmpError(
                f"warm-start trial {trial.id}: params are a mapping of variable names, "
                f"got {trial.params!r}"
            )
        params = problem.space.canonical(trial.params)  # Trials made by hand, too
        try:
            problem.space.validate(params)
            constraints = check_constraints(trial.constraints, problem.n_constraints)
        except OlmpError as error:
            raise OlmpError(
                f"warm-start trial {trial.id} does not fit this study: {error}"
            ) from None
        told.append(Told(params, float(trial.value), tuple(constraints)))
    return told
