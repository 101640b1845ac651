"""``tune``: search a network's architecture and training settings on the engine.

Two tasks: ``"cnn"`` (the default) searches a CNN's architecture and training settings
(:mod:`olmp.tune.space`); ``"ensemble"`` a soft vote of scikit-learn models and their
hyper-parameters (:mod:`olmp.tune.ensemble`). Every trial trains on the train split
(optionally a fixed subset of it) and is scored on **val**; the test split is read once, for
the best settings, at the end. ``solver="expsracos"`` with ``experience=`` (a file of
``olmp experience build``) learns from earlier searches: it must have been learned on the
same space and, unless ``force``, not on this dataset (that would test on the training
data). ``out`` holds:

* ``tune.json``: what the search is (dataset, space, solver, seed, epochs, ...), which a
  resume must match, and the budget last asked for.
* ``study.json`` (the engine's record: every trial's parameters, value, time, state), or
  for ``mads`` ``mads.json`` (every evaluation, by phase, for the extended poll's resume).
* ``trials.json``: every trial as complete settings with val accuracy, state, error, time.
* ``best.safetensors`` (task ``cnn``): the best network, a ``tuned-cnn`` checkpoint with its
  spec, that ``olmp compress --weights`` and ``olmp evaluate`` take directly. The ensemble
  task keeps no model file (scikit-learn models are stored only by pickling, which olmp
  never does): its best settings refit in a second.
* ``best_val.png``: best val accuracy against trials and against time.
* ``result.json``: the summary :func:`tune` returns (``seconds``: the search's wall time
  over all its sessions; a resume with nothing left to do leaves the file as it is).

``solver="mads"`` runs :func:`olmp.tune.mads.extended_poll_mads`; every other engine
solver runs on the whole conditional space through :class:`olmp.dfo.Study`. Every CNN
search, whatever its solver, evaluates the default network (:meth:`TuneSpace.start
<olmp.tune.space.TuneSpace.start>`, HyperNOMAD's start) as its first trial and searches
from it. ``solver="uniform"`` is random search (uniform over the space); ``"random"``
samples around the best trial so far.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from olmp.compression.config import flag
from olmp.dfo import Problem, Space, Study
from olmp.dfo.directional import DirectionalModel
from olmp.dfo.sampler import make_sampler
from olmp.dfo.solvers import solver_class
from olmp.dfo.solvers.checks import recorded_options, with_defaults
from olmp.environment import describe_environment
from olmp.errors import OlmpError, check_callback, check_count
from olmp.experience import experience_for_search
from olmp.files import (
    load_checkpoint,
    load_checkpoint_metadata,
    prepare_output_folder,
    refuse_resume_and_force,
    resumed_record,
    save_checkpoint,
    write_json_atomic,
)
from olmp.models import build_model
from olmp.training import accuracy
from olmp.tune.blackbox import TuneObjective, check_search_fits, load_splits, trial_key
from olmp.tune.ensemble import EnsembleObjective, ensemble_space, load_table, test_error
from olmp.tune.records import add_elapsed, empty_summary, plot_best_so_far, write_summary
from olmp.tune.space import TuneSpace, load_space

FORMAT = "olmp-tune"
#: Files this command writes in ``out`` (``force`` removes only these).
OUR_FILES = (
    "tune.json",
    "study.json",
    "mads.json",
    "trials.json",
    "best.safetensors",
    "best_val.png",
    "result.json",
    "weights/*.safetensors",
)
#: Settings a resume must share with the search it continues (the task first: the other
#: settings of another task would differ too, and name the wrong one).
IDENTITY = (
    "task",
    "dataset",
    "split_seed",
    "seed",
    "solver",
    "epochs",
    "train_size",
    "space",
    "trial_time_limit",
    "solver_options",
)

Progress = Callable[[int, int, float | None], None]
#: What ``tune`` searches.
TASKS = ("cnn", "ensemble")
#: What a new search takes for a setting left out (a resume takes the search's own).
DEFAULTS = {"task": "cnn", "solver": "random", "budget": 20, "seed": 0, "split_seed": 0}


def option(name: str) -> str:
    """How errors name setting ``name`` of :func:`tune`: as the option ``olmp tune`` takes
    it by (``time_limit`` -> ``--time-limit``), whose spelling the keyword mirrors; a
    setting of Python's alone by its keyword."""
    own = {
        "solver_options": "--solver-option",
        "solver_options.experience": "--experience",
        "threads": "threads",  # the command sets none
    }
    return own.get(name) or flag(name)


def _check_count(name: str, value: Any, minimum: int = 1, optional: bool = False) -> Any:
    if optional and value is None:
        return None
    return check_count(value, option(name), minimum)


def _check_seconds(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise OlmpError(f"{option(name)} must be a number of seconds > 0, got {value!r}")
    return float(value)


def tune(
    dataset: str,
    out: str | os.PathLike[str],
    *,
    space: TuneSpace | Mapping[str, Any] | str | os.PathLike[str] | None = None,
    solver: str | None = None,
    task: str | None = None,
    budget: int | None = None,
    epochs: int | None = None,
    train_size: int | None = None,
    time_limit: float | None = None,
    trial_time_limit: float | None = None,
    n_jobs: int = 1,
    seed: int | None = None,
    split_seed: int | None = None,
    solver_options: Mapping[str, Any] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    force: bool = False,
    threads: int | None = None,
    keep_weights: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Search ``space`` on ``dataset`` with ``solver`` for ``budget`` trials (or until
    ``time_limit`` seconds); see the module docstring. Returns the summary: best val
    accuracy, its test accuracy (read once), trials, failures, paths.

    ``task`` is ``"cnn"`` (default) or ``"ensemble"`` (which takes no ``space``, ``epochs``
    or ``train_size``); ``solver`` defaults to ``"random"``, ``budget`` to 20 trials, the
    seeds to 0. ``epochs`` (default 2) and ``train_size`` (a fixed subset of train) are each
    CNN trial's training budget. With ``resume`` a setting left out (``None``) is the
    search's own, as ``olmp tune --resume`` takes it: its budget last asked for too, so
    ``tune(dataset, out, resume=True)`` continues a search. ``force`` also allows an
    experience learned on ``dataset`` (``solver_options={"experience": file}``);
    ``trial_time_limit`` ends a trial that runs longer (recorded as failed).
    ``threads`` sets torch's threads in each trial (default: one per worker when
    ``n_jobs > 1``). ``keep_weights`` keeps every trial's weights in ``out/weights``
    (named by :func:`olmp.tune.blackbox.trial_key` of its settings), not only the best's.
    ``progress(done, total, best_val)`` is called after every trial. Errors name a
    setting by its ``olmp tune`` option (``time_limit`` as ``--time-limit``).
    """
    refuse_resume_and_force(resume, force)
    check_callback("progress", progress)
    own = resumed_record(Path(out), "tune.json", FORMAT, "search") if resume else {}
    # What a resume leaves out (None) is the search's own, checked below as if given (another
    # task's search is refused below, by its task); what a new search leaves out, the default.
    ours = task in (None, own.get("task"))
    given = {"task": task, "solver": solver, "budget": budget, "seed": seed,
             "split_seed": split_seed, "epochs": epochs, "train_size": train_size,
             "trial_time_limit": trial_time_limit}  # fmt: skip
    taken = {key: own.get(key) if value is None and ours else value for key, value in given.items()}
    if resume and ours and taken["budget"] is None:  # an older olmp recorded none
        raise OlmpError(f"{Path(out) / 'tune.json'} records no budget: give {option('budget')}")
    task, solver, budget, seed, split_seed, epochs, train_size, trial_time_limit = (
        DEFAULTS[key] if value is None and key in DEFAULTS else value
        for key, value in taken.items()
    )
    if space is None and ours and own.get("task") == "cnn":  # an ensemble's space is its task's
        space = own.get("space")
    if task not in TASKS:
        raise OlmpError(f"unknown task {task!r}; choose one of: {', '.join(TASKS)}")
    if task == "ensemble":
        # A trial of the ensemble task runs in the study's own process: nothing could stop
        # it at a time limit, so one is refused rather than recorded and ignored.
        cnn_only = (("space", space), ("epochs", epochs), ("train_size", train_size),
                    ("trial_time_limit", trial_time_limit))  # fmt: skip
        for name, value in cnn_only:
            if value is not None:
                raise OlmpError(
                    f"{option(name)} is a setting of --task cnn; --task ensemble takes none"
                )
    budget = _check_count("budget", budget)
    epochs = _check_count(
        "epochs", 2 if epochs is None and task == "cnn" else epochs, optional=True
    )
    train_size = _check_count("train_size", train_size, optional=True)
    n_jobs = _check_count("n_jobs", n_jobs)
    threads = _check_count("threads", threads, optional=True)
    seed = _check_count("seed", seed, 0)
    split_seed = _check_count("split_seed", split_seed, 0)
    time_limit = _check_seconds("time_limit", time_limit)
    trial_time_limit = _check_seconds("trial_time_limit", trial_time_limit)
    cls = solver_class(solver)  # OlmpError listing the solvers
    if not cls.available():
        cls.import_backend()
    if task == "ensemble" and solver == "mads":
        raise OlmpError("solver mads (the extended poll) searches task cnn only; pick another")
    if task == "cnn":
        tune_space = load_space(space)
        splits = load_splits(dataset, split_seed, None if data_dir is None else str(data_dir))
        # A resume takes the size its record holds (earlier versions took any as "all").
        check_search_fits(tune_space, splits, dataset, None if resume else train_size)
        engine_space = tune_space.space
    else:
        # Loaded now (once per process), so that a dataset that is not installed stops here
        # with its loader's message instead of failing every trial.
        load_table(dataset, split_seed, None if data_dir is None else str(data_dir))
        engine_space = ensemble_space()
    solver_options = dict(solver_options or {})
    if "max_evaluations" in solver_options:  # declared by ncs, sracos, ... for compress
        raise OlmpError(
            f"{option('solver_options')} max_evaluations sets how long the solver runs in "
            f"each round of olmp compress; the length of a search is its trials: give "
            f"{option('budget')} instead"
        )
    experience = solver_options.get("experience")
    if experience is not None:  # the file read once, here
        solver_options["experience"] = experience_for_search(
            experience, engine_space, dataset, force=force, resume=resume
        )
    # The options, checked before anything is written: mads's too (its phases take them
    # as they are, on parts of this space).
    make_sampler(cls, engine_space, options=solver_options).close()
    out = Path(out)
    config = {
        "format": FORMAT,
        "task": task,
        "dataset": dataset,
        "split_seed": split_seed,
        "seed": seed,
        "solver": solver,
        "budget": budget,
        "epochs": epochs,
        "train_size": train_size,
        "trial_time_limit": trial_time_limit,
        # An experience by its fingerprint: a resume must use the same model, wherever
        # its file lies now.
        "solver_options": recorded_options(cls.options, solver_options),
        "space": tune_space.to_json() if task == "cnn" else engine_space.to_json(),
    }
    if experience is not None:
        config["experience"] = {
            # Where it was, wherever the search is resumed from (a resume leaving
            # --experience out reads it there).
            "file": None
            if isinstance(experience, DirectionalModel)
            else str(Path(experience).resolve()),
            "datasets": solver_options["experience"].datasets,
        }
    resumed = prepare_output_folder(
        out,
        "tune.json",
        config,
        IDENTITY,
        OUR_FILES,
        what="search",
        resume=resume,
        force=force,
        names={key: option(key) for key in (*IDENTITY, "solver_options.experience")},
        compared={"solver_options": lambda given: with_defaults(cls.options, given)},
    )
    if resumed is not None:  # the budget asked for last: a resume leaving --budget out runs to it
        write_json_atomic(out / "tune.json", {**resumed, "budget": budget})
    if threads is None and n_jobs > 1:
        threads = 1
    # The search's own settings; MADS's extended poll and every engine study take
    # the same.
    search = {
        "budget": budget,
        "seed": seed,
        "time_limit": time_limit,
        "n_jobs": n_jobs,
        "resume": resume,
        "options": solver_options,
        "progress": progress,
    }
    if task == "ensemble":
        return _tune_ensemble(
            EnsembleObjective(
                dataset, seed, split_seed, None if data_dir is None else str(data_dir)
            ),
            out,
            config,
            search,
        )
    objective = TuneObjective(
        tune_space,
        dataset,
        epochs,
        seed=seed,
        split_seed=split_seed,
        train_size=train_size,
        time_cap=trial_time_limit,
        weights_dir=str(out / "weights"),
        data_dir=None if data_dir is None else str(data_dir),
        threads=threads,
    )
    if solver == "mads":
        from olmp.tune.mads import extended_poll_mads

        records, stop_reason = extended_poll_mads(objective, out / "mads.json", **search)
        # Each record's elapsed is the search's time, over all its sessions, at its end.
        seconds = max((r["elapsed"] for r in records), default=0.0)
        about: dict[str, Any] = {"stop_reason": stop_reason, "seconds": round(seconds, 2)}
    else:
        # Every solver's first trial is the default network, as MADS's is: a search
        # starts from a sensible network and never returns a worse one.
        records, about = _engine_study(
            objective,
            engine_space,
            out / "study.json",
            solver,
            enqueue=[tune_space.start()],
            **search,
        )
    write_json_atomic(out / "trials.json", records)
    summary = _finish(out, objective, splits, records, config, keep_weights)
    summary = write_summary(out / "result.json", {**summary, **about})
    plot_best_so_far(out / "best_val.png", records, f"{solver} on {dataset}")
    return summary


def _tune_ensemble(
    objective: EnsembleObjective, out: Path, config: dict[str, Any], search: dict[str, Any]
) -> dict[str, Any]:
    """The ensemble task's search and summary (val error per trial, test error once)."""
    records, about = _engine_study(
        objective, objective.space, out / "study.json", config["solver"], **search
    )
    write_json_atomic(out / "trials.json", records)
    complete = [r for r in records if r["state"] == "complete"]
    summary = {"task": "ensemble", **empty_summary(out, records, config, "study.json")}
    if complete:
        best = max(complete, key=lambda r: r["val_accuracy"])
        errors = test_error(objective, best["settings"])  # the one read of test
        summary.update(
            best_val_accuracy=1.0 - errors["val_error"],
            test_accuracy=1.0 - errors["test_error"],
            best_trial=best["id"],
            best_settings=best["settings"],
        )
    summary = write_summary(out / "result.json", {**summary, **about})
    title = f"{config['solver']} on {config['dataset']} (ensemble)"
    plot_best_so_far(out / "best_val.png", records, title)
    return summary


def _engine_study(
    objective: TuneObjective | EnsembleObjective,
    space: Space,
    path: Path,
    solver: str,
    *,
    budget: int,
    seed: int,
    time_limit: float | None,
    n_jobs: int,
    resume: bool,
    options: Mapping[str, Any] | None,
    progress: Progress | None,
    enqueue: list[dict[str, Any]] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run the search as an engine study: its trials' records, and for the summary its
    ``stop_reason`` and, with experience, ``experience_weights`` (how much each source
    dataset's network counted at the end: which earlier searches resembled this one)."""

    def report(study: Study, trial: Any) -> None:
        if progress is not None:
            best = None if study.best is None else 1.0 - float(study.best.value)
            progress(study.n_evaluations, budget, best)

    study = Study(
        Problem(space, objective),
        solver,
        seed=seed,
        options=dict(options or {}),
        max_evaluations=budget,
        max_seconds=time_limit,
        path=path,
        resume=resume and path.exists(),  # tune.json may be written before the first trial
        callbacks=[report],
        enqueue=enqueue or (),
    )
    study.optimize(n_jobs=n_jobs)
    study.sampler.close()
    records = [
        {
            "id": t.id,
            "state": t.state,
            "val_accuracy": None if t.value is None else 1.0 - t.value,
            "error": t.error,
            "seconds": t.seconds,
            "started": t.started,
            "finished": t.finished,
            "elapsed": t.elapsed,
            "settings": objective.full(t.params),
        }
        for t in study.trials
        if t.done
    ]
    add_elapsed(records)
    # The study's own clock: wall time over all its sessions, the solver's included.
    about: dict[str, Any] = {"stop_reason": study.stop_reason, "seconds": round(study.elapsed, 2)}
    solver = getattr(study.sampler, "solver", None)
    if getattr(solver, "reliability", None) is not None:
        weights = solver.reliability.weights
        about["experience_weights"] = {
            name: round(float(w / weights.sum()), 4)
            for name, w in zip(solver.model.network_datasets, weights, strict=True)
        }
    return records, about


def _finish(
    out: Path,
    objective: TuneObjective,
    splits: Any,
    records: list[dict[str, Any]],
    config: dict[str, Any],
    keep_weights: bool = False,
) -> dict[str, Any]:
    complete = [r for r in records if r["state"] == "complete"]
    study = "mads.json" if config["solver"] == "mads" else "study.json"
    summary = empty_summary(out, records, config, study)
    if not complete:
        return summary
    best = max(complete, key=lambda r: r["val_accuracy"])
    space = objective.space
    full = best["settings"]
    spec, recipe = space.architecture(full), space.recipe(full)
    weights = out / "weights" / f"{trial_key(full)}.safetensors"
    kept = out / "best.safetensors"  # an earlier finish's copy of the best trial's network
    if (  # weights/ deleted before a resume, say
        not weights.exists()
        and kept.exists()
        and load_checkpoint_metadata(kept).get("tuned_by", {}).get("trial") == best["id"]
    ):
        weights = kept
    state_dict, _ = load_checkpoint(weights)
    net = build_model("tuned-cnn", splits.input_shape, splits.num_classes, {"spec": spec})
    net.load_state_dict(state_dict)
    net.eval()
    with torch.no_grad():
        val = accuracy(net, splits.val)
        test = accuracy(net, splits.test)  # the one read of test
        tune_acc = accuracy(net, splits.tune)
    metadata = {
        **describe_environment(),
        "model": "tuned-cnn",
        "model_options": {"spec": spec},
        "dataset": config["dataset"],
        "split_seed": config["split_seed"],
        "recipe": {
            **recipe,
            "epochs": config["epochs"],
            "train_size": config["train_size"],
            "seed": config["seed"],
        },
        "tuned_by": {"solver": config["solver"], "trial": best["id"], "trials": len(records)},
        "tune_accuracy": tune_acc,
        "val_accuracy": val,
        "test_accuracy": test,
    }
    checkpoint = out / "best.safetensors"
    save_checkpoint(checkpoint, net.state_dict(), metadata)
    for path in (out / "weights").glob("*.safetensors"):  # keep the best trial's weights only
        if path != weights and not keep_weights:
            path.unlink()
    summary.update(
        best_val_accuracy=val,
        test_accuracy=test,
        best_trial=best["id"],
        best_checkpoint=str(checkpoint),
        best_settings=full,
        best_spec=spec,
        best_recipe=recipe,
    )
    return summary
