"""The training blackbox: one trial builds a ``tuned-cnn``, trains it on the train split
with the trial's optimiser and settings, and returns its **val** error (test is never read
here).

A trial fails (recorded with the reason, the study goes on) when its network cannot be
built (a feature map below 1x1), when training diverges (a loss that is NaN or infinite),
or when it runs past the per-trial time cap.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from olmp.compression.config import flag
from olmp.data import DATASETS, TABULAR_DATASETS, DatasetSplits, load_dataset
from olmp.data.registry import Split
from olmp.errors import OlmpError, unknown_choice
from olmp.files import save_checkpoint
from olmp.models import build_model
from olmp.training import accuracy
from olmp.tune.space import TuneSpace

_SPLITS: dict[tuple[str, int, str | None], DatasetSplits] = {}


def check_dataset(name: str) -> None:
    """Raise unless ``name`` is a dataset of images, which the cnn task searches on; the
    message lists only those."""
    if name in TABULAR_DATASETS:  # rows of features: nothing to convolve
        raise OlmpError(
            f"dataset {name} is tabular; the cnn task needs images "
            f"({', '.join(DATASETS)}): use --task ensemble"
        )
    if name not in DATASETS:
        raise unknown_choice("dataset of the cnn task", name, list(DATASETS))


def load_splits(dataset: str, split_seed: int, data_dir: str | None = None) -> DatasetSplits:
    """The dataset's splits, loaded once per process."""
    check_dataset(dataset)
    key = (dataset, split_seed, data_dir)
    if key not in _SPLITS:
        _SPLITS[key] = load_dataset(dataset, seed=split_seed, data_dir=data_dir)
    return _SPLITS[key]


def trial_key(full: Mapping[str, Any]) -> str:
    """A short digest of a complete setting: the name of its weights file."""
    text = json.dumps(full, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def subset(split: Split, size: int | None, seed: int) -> Split:
    """The first ``size`` samples of a fixed permutation of ``split`` (all when ``None``)."""
    if size is None or size >= len(split):
        return split
    order = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed))[:size]
    return Split(split.x[order], split.y[order])


def make_optimizer(model: nn.Module, recipe: Mapping[str, Any]) -> torch.optim.Optimizer:
    """The optimiser ``recipe`` names, with its settings."""
    params, name = model.parameters(), recipe["optimizer"]
    lr, wd = float(recipe["lr"]), float(recipe["weight_decay"])
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=recipe["momentum"], weight_decay=wd)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=(recipe["beta1"], 0.999), weight_decay=wd)
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr, lr_decay=recipe["lr_decay"], weight_decay=wd)
    if name == "rmsprop":
        return torch.optim.RMSprop(
            params, lr=lr, alpha=recipe["alpha"], momentum=recipe["momentum"], weight_decay=wd
        )
    raise OlmpError(f"unknown optimizer {name!r}")


class Diverged(Exception):
    """Training produced a NaN or infinite loss."""


class OverTime(Exception):
    """Training ran past the per-trial time cap."""


def train_network(
    model: nn.Module,
    data: Split,
    recipe: Mapping[str, Any],
    epochs: int,
    seed: int,
    time_cap: float | None = None,
    cosine: bool = False,
) -> nn.Module:
    """Train ``model`` on ``data`` for ``epochs`` with ``recipe``; raises :class:`Diverged`
    or :class:`OverTime`. Trials train at the recipe's constant learning rate; ``cosine``
    decays it to 0 over the epochs, as ``olmp train`` does (a found network trained in
    full)."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = make_optimizer(model, recipe)
    batch = int(recipe["batch_size"])
    total = epochs * -(-len(data) // batch)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, total) if cosine else None
    began = time.perf_counter()
    model.train()
    for epoch in range(1, epochs + 1):
        order = torch.randperm(len(data), generator=generator)
        for step, start in enumerate(range(0, len(data), batch)):
            index = order[start : start + batch]
            loss = F.cross_entropy(model(data.x[index]), data.y[index])
            if not torch.isfinite(loss):
                raise Diverged(
                    f"training diverged: loss {loss.item()} at epoch {epoch}, step {step}"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if schedule is not None:
                schedule.step()
            if time_cap is not None and time.perf_counter() - began > time_cap:
                raise OverTime(
                    f"trial stopped at the time cap of {time_cap:g} s (epoch {epoch} of {epochs})"
                )
    model.eval()
    return model


@dataclass
class TuneObjective:
    """The objective of a tuning study (picklable, so trials can run in worker processes).

    ``objective(params) -> {"value": val error, "cost": 1}``; the trained weights go to
    ``weights_dir/<key>.safetensors`` with the network's spec.
    """

    space: TuneSpace
    dataset: str
    epochs: int
    seed: int = 0
    split_seed: int = 0
    train_size: int | None = None
    time_cap: float | None = None
    weights_dir: str | None = None
    data_dir: str | None = None
    threads: int | None = None
    pin: Mapping[str, Any] | None = None

    def full(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return self.space.complete(params, self.pin)

    def __call__(self, params: Mapping[str, Any]) -> dict[str, Any]:
        if self.threads is None:
            return self._train_and_score(params)
        # A trial may run in the caller's own process (one worker): it leaves torch's
        # thread count as it found it.
        before = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            return self._train_and_score(params)
        finally:
            torch.set_num_threads(before)

    def _train_and_score(self, params: Mapping[str, Any]) -> dict[str, Any]:
        full = self.full(params)
        spec, recipe = self.space.architecture(full), self.space.recipe(full)
        splits = load_splits(self.dataset, self.split_seed, self.data_dir)
        torch.manual_seed(self.seed)
        model = build_model("tuned-cnn", splits.input_shape, splits.num_classes, {"spec": spec})
        train = subset(splits.train, self.train_size, self.split_seed)
        began = time.perf_counter()
        try:
            train_network(model, train, recipe, self.epochs, self.seed, self.time_cap)
        except (Diverged, OverTime) as stop:
            raise OlmpError(str(stop)) from None
        val = accuracy(model, splits.val)
        if self.weights_dir is not None:
            meta = {
                "spec": spec,
                "recipe": recipe,
                "val_accuracy": val,
                "train_time_s": round(time.perf_counter() - began, 3),
            }
            path = Path(self.weights_dir) / f"{trial_key(full)}.safetensors"
            save_checkpoint(path, model.state_dict(), meta)
        return {"value": 1.0 - val, "cost": 1.0}


def check_search_fits(
    space: TuneSpace, splits: DatasetSplits, dataset: str, train_size: int | None = None
) -> None:
    """Raise OlmpError when ``train_size`` is more than the train split holds, or when even
    the least shrinking network of ``space`` cannot take the dataset's inputs (fewest conv
    layers, smallest kernel and stride, most padding, no pooling where allowed), naming the
    dataset, its input shape and the reason."""
    from olmp.models.tuned import feature_shapes

    if train_size is not None and train_size > len(splits.train):
        raise OlmpError(
            f"{flag('train_size')} must be at most {len(splits.train)}, the training samples "
            f"of {dataset!r}; got {train_size}"
        )

    r = space.ranges
    layers = r["conv_layers"][0]
    layer = {
        "channels": r["conv_channels"][0],
        "kernel": r["conv_kernel"][0],
        "stride": r["conv_stride"][0],
        "padding": r["conv_padding"][-1],
        "pool": False if False in r["conv_pool"] else r["conv_pool"][0],
    }
    spec = {"conv": [layer] * layers, "fc": [], "dropout": 0.0, "activation": "relu"}
    try:
        feature_shapes(spec, splits.input_shape)
    except OlmpError as error:
        shape = "x".join(map(str, splits.input_shape))
        raise OlmpError(
            f"dataset {dataset!r} ({shape} inputs) cannot feed {layers} conv layer(s) with "
            f"this space's settings even at their least shrinking: {error}"
        ) from None


__all__ = ["TuneObjective", "check_search_fits", "load_splits", "train_network", "trial_key"]
