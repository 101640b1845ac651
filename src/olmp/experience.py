"""Experience: the directional model of ``expsracos`` learned from recorded studies.

>>> from olmp.experience import build_experience
>>> model = build_experience(["runs/wine", "runs/iris"], "ensemble.exp")  # doctest: +SKIP
>>> model.datasets  # doctest: +SKIP
['iris', 'wine']

A *study* is what the engine records (:class:`olmp.dfo.Study`, ``study.json``): its space and
every trial in the order results were told; ``olmp tune --out DIR`` leaves one in ``DIR``,
with the dataset it searched in ``DIR/tune.json``. Any solver's study will do. Every study
must have the same space (the model learns in its unit box); the dataset of each is recorded
in the model file, so that ``olmp tune`` can refuse to use it on one of them. The model
itself, its training and its file are :mod:`olmp.dfo.directional`.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from olmp.dfo.directional import (
    DirectionalModel,
    History,
    as_model,
    space_difference,
    train_directional_model,
)
from olmp.dfo.record import load_study_file
from olmp.dfo.space import Space
from olmp.dfo.trial import Trial
from olmp.errors import OlmpError, check_seed
from olmp.files import check_writable, refuse_to_overwrite

StudyPath = str | os.PathLike[str]


def read_study(source: StudyPath) -> tuple[Space, History, dict[str, Any]]:
    """A recorded study's space, its history (trials in the order told) and a record of
    where it came from (``study``, ``dataset``, ``solver``, ``trials``). ``source`` is a
    study file or a folder holding ``study.json``; the dataset is the ``dataset`` of
    ``tune.json`` beside it, else the name of a study file named otherwise (``iris.json``:
    ``iris``), else the folder's (``iris/study.json``: ``iris``)."""
    path = Path(source)
    if path.is_dir():
        path = path / "study.json"
    if not path.is_file():
        if (path.parent / "mads.json").is_file():
            raise OlmpError(
                f"{source} is a search of solver mads, which records no study (mads.json "
                "instead); experience is learned from the other solvers' searches"
            )
        raise OlmpError(
            f"{source} holds no study: {path} does not exist (olmp tune --out makes one)"
        )
    record = load_study_file(path)  # its format, or the file named
    try:
        space = Space.from_json(record["space"])
        trials = {int(t["id"]): t for t in record["trials"]}
        told = [int(i) for op, i in record["log"] if op == "t"]
        if len(set(told)) != len(told):  # as a resume would refuse it
            raise ValueError("a trial is told twice")
        history = []
        for i in told:
            trial = Trial.from_json(trials[i])
            space.validate(trial.params)  # a trial's settings must be a point of the space
            # A failed or infeasible trial improves on nothing, whatever its value.
            history.append((trial.params, float(trial.value) if trial.feasible else math.inf))
    except (OSError, ValueError, KeyError, TypeError, AttributeError, OlmpError) as error:
        detail = f"no {error}" if isinstance(error, KeyError) else error
        raise OlmpError(f"study {path} is damaged or not an olmp study ({detail})") from None
    # A loose file's folder names no dataset: studies/iris.json and studies/wine.json
    # would otherwise merge as one dataset, "studies", and pass the held-out check.
    dataset = path.parent.name if path.name == "study.json" else path.stem
    tune_record = path.parent / "tune.json"
    if tune_record.is_file():
        try:
            dataset = str(json.loads(tune_record.read_text()).get("dataset", dataset))
        except (OSError, ValueError, AttributeError) as error:
            raise OlmpError(f"{tune_record} is damaged ({error})") from None
    source_record = {
        # Resolved, so that ./runs/wine and runs/wine make one experience (one fingerprint).
        "study": str(path.resolve()),
        "dataset": dataset,
        "solver": record.get("solver"),
        "trials": len(history),
    }
    return space, history, source_record


def build_experience(
    studies: Sequence[StudyPath],
    out: StudyPath | None = None,
    *,
    force: bool = False,
    seed: int = 0,
) -> DirectionalModel:
    """Train a directional model on ``studies`` (see the module docstring) and save it to
    ``out`` (an existing file only with ``force``); returns the model. Studies with
    different spaces are refused, naming the first that differs and how."""
    seed = check_seed(seed)
    if isinstance(studies, str | os.PathLike):  # one study, not its characters
        studies = [studies]
    if not studies:
        raise OlmpError("experience needs at least one study (--from STUDY ...)")
    if out is not None:
        if Path(out).is_dir():  # --force replaces a file, never a folder
            raise OlmpError(f"--out {out} is a folder; give the experience file's name")
        refuse_to_overwrite(out, force)
        check_writable(out, "experience file")
    read = [read_study(source) for source in studies]
    seen: dict[Path, StudyPath] = {}
    for source, (_, _, record) in zip(studies, read, strict=True):
        where = Path(record["study"]).resolve()
        if where in seen:  # it would count twice, as if two searches had found the same
            raise OlmpError(f"study {where} is given twice ({seen[where]} and {source})")
        seen[where] = source
    space = read[0][0]
    for other, _, record in read[1:]:
        differ = space_difference(space, other, (read[0][2]["study"], record["study"]))
        if differ:
            raise OlmpError(
                f"studies {read[0][2]['study']} and {record['study']} searched different "
                f"spaces ({differ}); experience is learned from studies of one space"
            )
    model = train_directional_model(
        space, [history for _, history, _ in read], sources=[r for _, _, r in read], seed=seed
    )
    if out is not None:
        model.save(out, force=force)
    return model


def experience_for_search(
    experience: DirectionalModel | StudyPath,
    space: Space,
    dataset: str,
    *,
    force: bool = False,
    resume: bool = False,
) -> DirectionalModel:
    """The model an ``expsracos`` search on ``dataset`` uses: ``experience`` itself, or the
    model in that file (read once, here). It must have been learned on ``space`` and,
    unless ``force``, not on ``dataset`` (that would test on the training data); a
    ``resume`` continues with the model its search began with (its records hold the
    model's :attr:`~olmp.dfo.directional.DirectionalModel.fingerprint`), so it is not
    checked again."""
    model = as_model(experience)
    if resume:
        return model
    model.check_space(space, "this search")
    if dataset in model.datasets and not force:
        named = "" if isinstance(experience, DirectionalModel) else f" {experience}"
        raise OlmpError(
            f"the experience{named} was learned on dataset {dataset!r} (among "
            f"{', '.join(model.datasets)}): tuning it there tests on the training data; "
            "pass --force (force=True) to do it anyway"
        )
    return model


__all__ = ["build_experience", "experience_for_search", "read_study"]
