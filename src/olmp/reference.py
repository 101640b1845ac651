"""Reference models: train one with the default recipe, save it, evaluate a checkpoint.

These functions are the public API behind ``olmp train`` and ``olmp evaluate``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from olmp.data import DatasetSplits, load_dataset
from olmp.dfo.directional import FORMAT as EXPERIENCE_FORMAT
from olmp.environment import describe_environment
from olmp.errors import OlmpError, check_callback, check_type, warn_user
from olmp.export import decode_state_dict, is_export
from olmp.files import check_writable, load_checkpoint, refuse_to_overwrite, save_checkpoint
from olmp.models import build_model, check_recorded_model
from olmp.pruning.masks import split_masks
from olmp.task import SplitsTask
from olmp.training import TrainConfig, accuracy, default_recipe, train


def pick_device(device: str | None = None) -> torch.device:
    """``device`` if given, else CUDA when available, else CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(device)
    except RuntimeError:
        raise OlmpError(f"unknown device {device!r}; use cpu, cuda or cuda:N") from None
    if chosen.type not in ("cpu", "cuda"):
        raise OlmpError(f"unsupported device {device!r}; use cpu, cuda or cuda:N")
    if chosen.type == "cuda":
        if not torch.cuda.is_available():
            raise OlmpError(
                f"device {device!r} is not available: this torch ({torch.__version__}) sees no "
                "CUDA GPU; use cpu"
            )
        if chosen.index is not None and chosen.index >= torch.cuda.device_count():
            raise OlmpError(
                f"device {device!r} does not exist: {torch.cuda.device_count()} CUDA GPU(s), "
                f"cuda:0 to cuda:{torch.cuda.device_count() - 1}"
            )
    return chosen


def train_reference(
    model: str,
    dataset: str,
    out: str | os.PathLike[str] | None = None,
    *,
    config: TrainConfig | None = None,
    split_seed: int = 0,
    data_dir: str | os.PathLike[str] | None = None,
    device: str | None = None,
    force: bool = False,
    on_epoch: Callable[[int, float], None] | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """Train ``model`` on ``dataset`` with the default recipe (or ``config``).

    The model's initialisation and the batch order follow ``config.seed``; the splits follow
    ``split_seed``. When ``out`` is given the weights and their metadata are saved there as
    a safetensors checkpoint (refused if it exists, unless ``force``).

    Returns ``(model, metadata)``; the metadata holds model, dataset, split seed, recipe,
    val and test accuracy, training time, and the versions and torch thread count that
    made it (:func:`olmp.environment.describe_environment`).

    Example:
        >>> model, meta = train_reference("lenet-300-100", "digits")  # doctest: +SKIP
        >>> meta["test_accuracy"] > 0.9  # doctest: +SKIP
        True
    """
    if out is not None:  # before training, not after it
        refuse_to_overwrite(out, force)
        check_writable(out, "out")
    if config is not None:
        check_type("config", config, TrainConfig, "a TrainConfig (olmp.TrainConfig(**options))")
    check_callback("on_epoch", on_epoch)
    config = config or default_recipe(model, dataset)
    splits = load_dataset(dataset, seed=split_seed, data_dir=data_dir)
    started = time.perf_counter()
    net = train_new(model, splits, config, device=device, on_epoch=on_epoch)
    metadata = {
        **describe_environment(),
        "model": model,
        "dataset": dataset,
        "split_seed": split_seed,
        "recipe": config.to_dict(),
        "train_time_s": round(time.perf_counter() - started, 3),
        **split_accuracies(net, splits),
    }
    if out is not None:
        save_checkpoint(Path(out), net.state_dict(), metadata)
    return net, metadata


def train_new(
    model: str,
    splits: DatasetSplits,
    config: TrainConfig,
    *,
    device: str | None = None,
    on_epoch: Callable[[int, float], None] | None = None,
) -> nn.Module:
    """A new ``model`` network for ``splits``, initialised from ``config.seed`` and trained
    on ``splits.train`` with ``config`` (how :func:`train_reference` makes a reference)."""
    torch.manual_seed(config.seed)
    net = build_model(model, splits.input_shape, splits.num_classes).to(pick_device(device))
    SplitsTask(splits).check(net, model)  # the data must fit it: named now, not mid-epoch
    return train(net, splits.train, config, on_epoch=on_epoch)


def split_accuracies(model: nn.Module, splits: DatasetSplits) -> dict[str, float]:
    """Val and test accuracy of ``model`` (tune too, as the search's constraint uses it)."""
    return {
        "tune_accuracy": accuracy(model, splits.tune),
        "val_accuracy": accuracy(model, splits.val),
        "test_accuracy": accuracy(model, splits.test),
    }


def load_weights(
    weights: str | os.PathLike[str],
    model: str | None = None,
    dataset: str | None = None,
    *,
    split_seed: int | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    device: str | None = None,
    trust_model_code: bool = False,
) -> tuple[nn.Module, DatasetSplits, dict[str, Any]]:
    """Rebuild a model from a checkpoint, with the dataset splits it was made on.

    ``weights`` may be a reference checkpoint, a run's pruned checkpoint or an
    ``olmp export`` file.

    ``model``, ``dataset`` and ``split_seed`` default to what the checkpoint's metadata
    records. A recorded model that is a ``package.module:factory`` (code to import) is
    built only with ``trust_model_code=True``; a ``model`` you pass is always built. The
    model comes in eval mode (``.train()`` it to train it further).
    Raises :class:`OlmpError` when the weights do not fit the model.
    """
    if model is not None:  # a name: an instance is loaded into with olmp.load_compressed
        check_type("model", model, str, "a model's name (olmp list), or None")
    state_dict, metadata = load_checkpoint(weights)
    if metadata.get("format") == EXPERIENCE_FORMAT:  # the same file type, no network in it
        raise OlmpError(
            f"{weights} is an olmp experience file (olmp experience build), not a network's "
            "weights: give a reference, a run's pruned file or an export"
        )
    if is_export(metadata):  # olmp export: sparse tensors, decoded to dense
        state_dict = decode_state_dict(state_dict, metadata, str(weights))
    # A pruned checkpoint (olmp compress) carries its masks beside W ⊙ M; the weights
    # alone define the network.
    state_dict, _ = split_masks(state_dict)
    if model is None and metadata.get("model") is not None:
        model = check_recorded_model(metadata["model"], str(weights), trust_model_code)
    made_on = metadata.get("dataset")
    dataset = dataset or made_on
    if model is None or dataset is None:
        raise OlmpError(
            f"{weights} records no model or dataset; pass them (model=, dataset=; "
            "--model, --dataset)"
        )
    asked_seed = split_seed
    if split_seed is None:
        split_seed = int(metadata.get("split_seed", 0))
    splits = load_dataset(dataset, seed=split_seed, data_dir=data_dir)
    try:
        # Options (tuned-cnn's architecture spec) are data, used with the recorded model.
        options = metadata.get("model_options") if model == metadata.get("model") else None
        net = build_model(model, splits.input_shape, splits.num_classes, options)
        check_state_dict_fits(net, state_dict, str(weights), model)
    except OlmpError as error:
        if made_on is None or made_on == dataset:
            raise
        shape = "x".join(map(str, splits.input_shape))
        raise OlmpError(
            f"dataset {dataset!r} ({shape} inputs, {splits.num_classes} classes) does not fit "
            f"the weights in {weights}, which were made on {made_on!r}: {error}"
        ) from None
    net.load_state_dict(state_dict)
    # Warned only once the weights fit: a refusal is one line, with nothing before it.
    _warn_other_data(str(weights), metadata, dataset, asked_seed)
    # In eval mode, as olmp.load_compressed gives it: a model with dropout would otherwise
    # answer one input differently at each call.
    return net.to(pick_device(device)).eval(), splits, metadata


def _warn_other_data(
    weights: str, metadata: dict[str, Any], dataset: str, split_seed: int | None
) -> None:
    """Warn when the data asked for is not what the checkpoint was made on: its accuracies
    then mean something else (another split seed puts training images into val and test)."""
    made_on, recorded_seed = metadata.get("dataset"), metadata.get("split_seed")
    if made_on is not None and dataset != made_on:
        warn_user(f"{weights} was made on dataset {made_on!r}; measuring it on {dataset!r}")
    elif recorded_seed is not None and split_seed is not None and split_seed != recorded_seed:
        warn_user(
            f"{weights} was made on split seed {recorded_seed}; split seed {split_seed}'s val "
            "(and test, where the seed draws it: not an official or held-out test split) may "
            "hold examples it was trained on, so their accuracies may read high"
        )


def check_state_dict_fits(
    net: nn.Module, state_dict: dict[str, torch.Tensor], source: str, model: str
) -> None:
    """Raise an :class:`OlmpError` naming every tensor of ``state_dict`` that ``net`` lacks,
    misses or has in another shape, and any tensor holding NaN or infinite values."""
    expected = net.state_dict()
    problems = [f"missing {k}" for k in expected if k not in state_dict]
    problems += [f"unexpected {k}" for k in state_dict if k not in expected]
    problems += [
        f"{k}: shape {tuple(state_dict[k].shape)}, model expects {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state_dict and state_dict[k].shape != v.shape
    ]
    if problems:
        listed = "; ".join(problems[:6]) + ("; ..." if len(problems) > 6 else "")
        raise OlmpError(f"weights in {source} do not fit model {model!r}: {listed}")
    bad = [
        k for k, t in state_dict.items() if t.is_floating_point() and not torch.isfinite(t).all()
    ]
    if bad:
        raise OlmpError(f"weights in {source} hold NaN or infinite values in: {', '.join(bad)}")


def evaluate_weights(
    weights: str | os.PathLike[str],
    model: str | None = None,
    dataset: str | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """Val and test accuracy of the checkpoint ``weights`` (see :func:`load_weights`).

    When the file records the accuracies it was made with on the same data (a reference
    from :func:`train_reference`, a run's pruned network, an export) and they differ from
    those measured now, the record says so under ``recorded_note``.
    """
    net, splits, metadata = load_weights(weights, model, dataset, **kwargs)
    record = {
        "model": model or metadata["model"],
        "dataset": splits.name,
        "split_seed": splits.split_seed,
        "weights": str(weights),
        **split_accuracies(net, splits),
    }
    note = recorded_accuracy_note(metadata, record)
    if note is not None:
        record["recorded_note"] = note
    return record


def recorded_accuracy_note(metadata: dict[str, Any], measured: dict[str, Any]) -> str | None:
    """A note when ``metadata`` records val/test accuracies on the data of ``measured`` that
    differ from the measured ones (``None`` when they agree or cannot be compared)."""
    same_data = metadata.get("dataset") == measured["dataset"] and int(
        metadata.get("split_seed", 0)
    ) == int(measured["split_seed"])
    differ = [
        f"{split} {metadata[key]:.2%} recorded, {measured[key]:.2%} now"
        for split in ("val", "test")
        if isinstance(metadata.get(key := f"{split}_accuracy"), float)
        and abs(metadata[key] - measured[key]) > 1e-9
    ]
    if not same_data or not differ:
        return None
    note = f"{measured['weights']} does not reproduce the accuracy it records ({'; '.join(differ)})"
    if metadata.get("value_dtype", "float32") != "float32":
        return (
            note + f": its values are stored as {metadata['value_dtype']}, the run's were float32"
        )
    return note + (
        ": the weights differ from those it was made with, or this machine computes "
        "differently (another device or torch version)"
    )
