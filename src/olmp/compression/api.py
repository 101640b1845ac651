"""The public entry point: :func:`compress`."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from torch import nn

from olmp.compression.compressor import Compressor
from olmp.compression.config import RESUMABLE_BUDGETS, CompressConfig, RunState, flag
from olmp.compression.resume import recorded_config
from olmp.compression.run_folder import (
    PLOT_PNG,
    PRUNED_CHECKPOINT,
    RESULT_JSON,
    ROUND_FILES,
    STATE_JSON,
    prepare_run_dir,
    snapshot_path,
    write_run_outputs,
)
from olmp.data.registry import DatasetSplits
from olmp.errors import OlmpError, check_callback, check_type, warn_user
from olmp.files import refuse_resume_and_force, remove_interrupted_writes
from olmp.models import check_finite_weights
from olmp.reference import load_weights
from olmp.report import REPORT_PLOTS
from olmp.task import CallableTask, SplitsTask, Task
from olmp.training import TrainConfig


def compress(
    model: nn.Module | str | os.PathLike[str],
    splits: DatasetSplits | None = None,
    config: CompressConfig | None = None,
    *,
    evaluate: Callable[[nn.Module, str], float] | None = None,
    train: Callable[..., None] | None = None,
    task: Task | None = None,
    run_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    force: bool = False,
    metadata: dict[str, Any] | None = None,
    on_round: Callable[[dict[str, Any], RunState], None] | None = None,
    recipe: TrainConfig | dict[str, Any] | None = None,
    constraints: Sequence[str] = (),
    protected: str | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """Compress a trained ``model`` with OLMP; returns ``(pruned model, result record)``.

    Args:
        model: any trained ``nn.Module``; its Linear and Conv layers (filtered by
            ``config.include`` / ``config.exclude``) are pruned in place (a call that
            fails or is interrupted leaves its weights as they were). Or a checkpoint's
            path (``olmp train``, ``olmp.train_reference``): the run ``olmp compress
            --weights PATH`` makes, with the model, splits, training recipe and record
            the file names (:func:`load_for_compression`; call it yourself for its load
            options, such as ``data_dir`` or ``trust_model_code``, and pass what it gives).
        splits: the data; the search checks accuracy on ``splits.tune``, the result is
            chosen on ``splits.val``, ``splits.test`` is only reported. Build one from
            your own tensors or loaders with :func:`olmp.data.splits_from_tensors` or
            :func:`olmp.data.splits_from_loaders`.
        config: the run's settings (:class:`CompressConfig`); defaults when ``None``.
        evaluate, train: instead of ``splits``, your own functions (see
            :class:`olmp.task.CallableTask`): ``evaluate(model, split) -> float`` for
            ``split`` in ``"tune"``, ``"val"``, ``"test"`` (higher is better; the
            tolerances are subtracted from it, so a fraction such as 0.95, not 95 %), and
            optionally ``train(model, *, steps, lr, seed, on_step)``. The config's
            ``batch_size`` and ``augment_shift`` then do not apply, and the default steps
            per round are 500 (2,000 under constraints): no train split to take an epoch of.
        task: any :class:`olmp.task.Task`, for full control (instead of the above); as
            with ``evaluate``, the default steps per round are 500.
        run_dir: folder for the run record, resumable state, pruned checkpoint and plot.
        resume: continue the run in ``run_dir`` with its own config (``config=None``) or
            one that differs only in the budgets (``max_rounds``, ``patience``,
            ``max_evaluations``, ``time_limit``; options left ``None`` take the run's
            values): an interrupted run, or a finished one given a larger budget (its
            result files go until it ends again).
        force: start anew in a non-empty ``run_dir``.
        metadata: extra fields for the run record. ``{"model": NAME}`` (a registry name
            or ``package.module:factory``) lets ``olmp export`` and
            :func:`olmp.load_weights` rebuild the pruned model from the run folder; the
            dataset is recorded from ``splits``.
        on_round: called with each round's history entry and the run state.
        recipe: how ``model`` was trained (what :func:`olmp.load_weights` returns as
            ``metadata["recipe"]``): retraining uses its batch size and augmentation unless
            ``config`` sets them. A checkpoint's path brings its own (as the CLI's run);
            with a model in hand, pass it for that same run.
        constraints, protected: fairness constraints such as ``"dp<=0.05"`` between the
            groups of attribute ``protected`` (``splits`` from
            :func:`olmp.data.load_tabular`): retraining holds them and the kept network
            must meet them on train and val (:class:`olmp.fair.compress.FairTask`); the
            record's ``constraints`` reports them for the reference and the result.

    The pruned model has ``W ⊙ M`` in its parameters. Result fields include
    ``compression_ratio`` (weights only), ``compression_ratio_with_biases``,
    ``reference_val_accuracy``, ``val_accuracy``, ``reference_test_accuracy``,
    ``test_accuracy``, ``paired_change`` (per split, val and test: the change against the
    reference with its paired standard error and the counts of examples now right and
    now wrong; ``None`` with your own ``evaluate``) and ``layers`` (per-layer totals and
    kept counts). The ratios count the layers pruned; when ``include`` / ``exclude`` leave
    some out, ``whole_network`` gives the ratios with those counted dense.

    Example:
        >>> import olmp
        >>> pruned, result = olmp.compress("ref.safetensors", run_dir="runs/r1")  # doctest: +SKIP
        >>> result["compression_ratio"]  # doctest: +SKIP
    """
    refuse_resume_and_force(resume, force)  # before a path's model and data are loaded
    check_callback("on_round", on_round)
    if metadata is not None:
        check_type("metadata", metadata, dict, 'a dict of record fields ({"model": NAME})')
    if resume and run_dir is None:
        raise OlmpError("resume=True continues a run folder: pass run_dir= too")
    if not isinstance(config, CompressConfig | None):
        raise OlmpError(
            f"config must be a CompressConfig, got a {type(config).__name__}: build one with "
            "olmp.CompressConfig(**options)"
        )
    if isinstance(model, str | os.PathLike):
        if not Path(model).is_file():  # a model's name, say
            raise OlmpError(
                f"model {str(model)!r} is no checkpoint file: give an nn.Module "
                "(olmp.load_weights, olmp.build_model) or a checkpoint's path"
            )
        if any(given is not None for given in (splits, evaluate, train, task)):
            raise OlmpError(
                "a checkpoint path brings its own data: to compress it on other data, load "
                "it with olmp.load_weights and pass the model"
            )
        try:
            model, splits, recorded_recipe, recorded = load_for_compression(model)
        except OlmpError as error:  # its hints name load options compress does not take
            raise OlmpError(
                f"{error} (load options: model, splits, recipe, metadata = "
                "olmp.load_for_compression(path, ...), then compress(model, splits, "
                "recipe=recipe, metadata=metadata))"
            ) from None
        recipe = recorded_recipe if recipe is None else recipe
        metadata = {**recorded, **(metadata or {})}
    check_type(
        "model", model, nn.Module, "an nn.Module (olmp.load_weights, olmp.build_model) or a path"
    )
    if task is not None:
        check_type("task", task, Task, "an olmp.task.Task (or pass splits=)")
    if isinstance(constraints, str):  # one constraint, as fit_fair takes one name
        constraints = [constraints]
    unused = [k for k in ("batch_size", "augment_shift") if getattr(config, k, None) is not None]
    if unused and splits is None:  # your own train() or task retrains as it does
        warn_user(
            f"config sets {' and '.join(unused)}, which olmp's own retraining on splits= uses; "
            "with evaluate= / train= or task= they do not apply (they are recorded as given)"
        )
    if resume and run_dir is not None and (Path(run_dir) / STATE_JSON).is_file():
        recorded = recorded_config(run_dir)  # the run's own settings
        config = recorded if config is None else config.continuing(recorded)
    train_size = len(splits.train) if isinstance(splits, DatasetSplits) else None
    config = (config or CompressConfig()).resolved(
        recipe, constrained=bool(constraints), train_size=train_size
    )
    path = Path(run_dir) if run_dir is not None else None
    if isinstance(splits, DatasetSplits):  # the record names its data, as the CLI's does
        metadata = {"dataset": splits.name, **(metadata or {})}
    model_name = (metadata or {}).get("model", type(model).__name__)
    check_finite_weights(model, model_name)
    _refuse_tied_weights(model, model_name)
    task = _make_task(splits, evaluate, train, task, config, constraints, protected)
    task.check(model, model_name)
    compressor = Compressor(model, task, config, run_dir=path, metadata=metadata, on_round=on_round)
    task.check_layers(model, compressor.layers, model_name)
    # The run prunes and retrains ``model`` in place (a resume first loads its last round):
    # a failed or interrupted call (Ctrl-C in a notebook) gives it back as it came.
    given = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}  # not GPU
    try:
        if path is not None:
            _prepare(compressor, path, resume, force)
        # Once the run starts; a resume keeps the names its run started with.
        if path is not None and not resume and "model" not in (metadata or {}):
            warn_user(
                "the run records no model name, so olmp export cannot measure its file and "
                "olmp.load_weights / olmp evaluate need it given (model=, --model); pass "
                "metadata={'model': NAME} (a registry name or package.module:factory) to "
                "record it"
            )
        result = compressor.run()
        pruned = compressor.model  # result() has baked the best network's W ⊙ M into it
        if path is not None:
            write_run_outputs(path, pruned, compressor.masks, result)
            if not result.get("best_fine_tuned"):  # an extended run's earlier final network
                snapshot_path(path, "final").unlink(missing_ok=True)
    except BaseException:
        model.load_state_dict(given)
        raise
    return pruned, result


def load_for_compression(
    weights: str | os.PathLike[str], model: str | None = None, **load_options: Any
) -> tuple[nn.Module, DatasetSplits, dict[str, Any] | None, dict[str, Any]]:
    """What a run from checkpoint ``weights`` starts from: the model, its splits, its
    training recipe (``None`` when the file records none) and the run record's fields
    naming model, dataset and weights. ``model`` and ``load_options`` as
    :func:`olmp.load_weights` takes them. ``olmp compress`` and ``compress(path)`` both
    start here, so they make the same run."""
    net, splits, recorded = load_weights(weights, model, **load_options)
    metadata = {
        "model": model or recorded["model"],
        "dataset": splits.name,
        "weights": str(weights),
    }
    if recorded.get("model_options") and not model:  # a tuned-cnn's architecture spec
        metadata["model_options"] = recorded["model_options"]
    return net, splits, recorded.get("recipe"), metadata


def _prepare(compressor: Compressor, path: Path, resume: bool, force: bool) -> None:
    """Make ``path`` ready: the interrupted run loaded for a resume, else a clean start."""
    if prepare_run_dir(path, resume=resume, force=force):
        path.mkdir(parents=True, exist_ok=True)
        given = compressor.config
        compressor.load_state()
        remove_interrupted_writes(path)
        if not compressor.state.finished:  # it goes on: a finished one's results are old now
            for stale in (RESULT_JSON, PRUNED_CHECKPOINT, PLOT_PNG):
                (path / stale).unlink(missing_ok=True)
        elif compressor.config != given:  # load_state kept the budgets it finished with
            ignored = [
                f"{flag(k)} {getattr(given, k)}"
                for k in RESUMABLE_BUDGETS
                if getattr(given, k) != getattr(compressor.config, k)
            ]
            warn_user(
                f"the run in {path} ended by {compressor.state.stop_reason}, which "
                f"{', '.join(ignored)} does not lift: it stands as it finished, with its own "
                "budgets"
            )
        return
    path.mkdir(parents=True, exist_ok=True)
    if (path / STATE_JSON).exists():  # a run's folder: what a killed write left goes too,
        remove_interrupted_writes(path)  # and olmp report's plots of the old run
        _remove_own(path / "report", tuple(REPORT_PLOTS))
    # Only olmp's own files (a user's beside them stay), state.json last: a start killed
    # halfway leaves a folder still known as a run's.
    for stale in (RESULT_JSON, PRUNED_CHECKPOINT, PLOT_PNG):
        (path / stale).unlink(missing_ok=True)
    _remove_own(path / "rounds", ROUND_FILES)
    (path / STATE_JSON).unlink(missing_ok=True)


def _remove_own(folder: Path, patterns: tuple[str, ...]) -> None:
    """Remove the files matching ``patterns`` in ``folder``, and the folder once empty."""
    for pattern in patterns:
        for file in folder.glob(pattern):
            file.unlink()
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()


def _refuse_tied_weights(model: nn.Module, model_name: str) -> None:
    """Tied weights (one parameter under two names) would be pruned as two layers, counted
    twice and could not be saved (safetensors refuses shared tensors): refused up front,
    not after the whole run. Parameters that are only views of one storage are not tied."""
    owner: dict[int, str] = {}
    for name, parameter in model.named_parameters(remove_duplicate=False):
        if id(parameter) in owner:
            raise OlmpError(
                f"model {model_name!r} ties {owner[id(parameter)]} and {name} (one parameter "
                "under two names), which olmp cannot prune or save; untie them first (give "
                "each its own copy)"
            )
        owner[id(parameter)] = name


def _make_task(
    splits: DatasetSplits | None,
    evaluate: Callable[[nn.Module, str], float] | None,
    train: Callable[..., None] | None,
    task: Task | None,
    config: CompressConfig,
    constraints: Sequence[str] = (),
    protected: str | None = None,
) -> Task:
    """The one task that ``compress``'s data arguments describe."""
    if (constraints or protected is not None) and splits is None:
        raise OlmpError("fairness constraints need splits= (a tabular dataset with groups)")
    if bool(constraints) != (protected is not None):
        raise OlmpError("fairness constraints need both constraints= and protected=")
    given = [
        name
        for name, value in (("splits", splits), ("evaluate", evaluate), ("task", task))
        if value is not None
    ]
    if len(given) != 1:
        raise OlmpError(
            "give compress() exactly one of splits=, evaluate= (with optional train=) or "
            f"task=; got {', '.join(given) if given else 'none'}"
        )
    if splits is not None and not isinstance(splits, DatasetSplits):
        raise OlmpError(
            f"splits must be a DatasetSplits (olmp.load_dataset, olmp.data.splits_from_tensors), "
            f"got a {type(splits).__name__}"
        )
    if train is not None and evaluate is None:
        raise OlmpError("train= needs evaluate= beside it (splits= brings its own training)")
    if task is not None:
        return task
    if evaluate is not None:
        return CallableTask(evaluate, train)
    return splits_task(splits, config, constraints, protected)


def splits_task(
    splits: DatasetSplits,
    config: CompressConfig,
    constraints: Sequence[str] = (),
    protected: str | None = None,
) -> SplitsTask:
    """The task of a run on ``splits``, retraining and scoring as ``config`` says, under
    fairness ``constraints`` between the groups of ``protected`` when given."""
    options = {
        "batch_size": config.batch_size,
        "augment_shift": config.augment_shift,
        "racing_z": config.racing_z,
    }
    if not constraints:
        return SplitsTask(splits, **options)
    from olmp.fair.compress import FairTask, fairness_constraints

    assert protected is not None
    return FairTask(
        splits, protected=protected, constraints=fairness_constraints(constraints), **options
    )
