"""Training and evaluation of classifiers on in-memory tensors.

Batches are cut from tensors already in memory (no ``DataLoader`` workers, which cost
more than they save for data this small). Shuffling and augmentation draw from one seeded
``torch.Generator``, so a run is reproducible on the same machine and thread count.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel

from olmp.data.registry import Split
from olmp.errors import OlmpError, OptionError, check_callback, check_count, check_type, is_number

StepHook = Callable[[nn.Module, int], None]
"""Called as ``hook(model, step)`` after every optimiser step (used to re-apply masks)."""


@dataclass(frozen=True)
class TrainConfig:
    """A training recipe: SGD with Nesterov momentum, weight decay, cosine learning rate.

    ``max_shift`` > 0 adds random translations of up to that many pixels (filled with
    the background value).
    ``max_rotation`` (degrees) and ``max_scale`` (a fraction) > 0 add random rotations
    and scalings about the image centre, before the shift.
    ``max_steps``, when set, ends training after that many optimiser steps (epochs are
    repeated as needed) and the learning-rate schedule spans those steps.
    ``average_last`` > 0 ends with the mean of the weights after each of that fraction of
    the last steps instead of the last step's weights (stochastic weight averaging along
    the tail of the cosine schedule, Izmailov et al. 2018). Masks that change during those
    steps would be averaged over, so use it where masks are frozen.
    """

    epochs: int = 20
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    max_shift: int = 0
    max_rotation: float = 0.0
    max_scale: float = 0.0
    seed: int = 0
    max_steps: int | None = None
    average_last: float = 0.0

    def __post_init__(self) -> None:
        whole = {"epochs": 1, "batch_size": 1, "max_steps": 1, "max_shift": 0, "seed": 0}
        for field, least in whole.items():
            value = getattr(self, field)
            if field == "max_steps" and value is None:
                continue
            object.__setattr__(self, field, check_count(value, field, least))  # numpy's: int
        for field in (
            "lr",
            "momentum",
            "weight_decay",
            "max_rotation",
            "max_scale",
            "average_last",
        ):
            value = getattr(self, field)
            if not is_number(value) or not math.isfinite(value):
                raise OlmpError(f"{field} must be a finite number, got {value!r}")
            object.__setattr__(self, field, float(value))  # numpy's too: the recipe is JSON
        if not self.lr > 0:
            raise OptionError("lr", f"(learning rate) must be positive, got {self.lr}")
        if not 0 <= self.momentum < 1 or not self.weight_decay >= 0:
            raise OlmpError(
                f"momentum must lie in [0, 1) and weight_decay be at least 0; got "
                f"{self.momentum} and {self.weight_decay}"
            )
        if not 0 <= self.max_rotation <= 180:
            raise OlmpError(f"max_rotation is in degrees, in [0, 180]; got {self.max_rotation}")
        if not 0 <= self.max_scale < 1:
            raise OlmpError(f"max_scale is a fraction in [0, 1); got {self.max_scale}")
        if not 0 <= self.average_last < 1:
            raise OlmpError(
                f"average_last is the fraction of the last steps to average, in [0, 1); "
                f"got {self.average_last}"
            )

    def to_dict(self) -> dict:
        """The recipe as a plain dict (for run records)."""
        return asdict(self)


# Per (model, dataset) recipes, measured to meet the accuracy targets in BENCHMARKS.md.
# Keys may use "*" for any model or dataset; the most specific match wins.
_RECIPES: dict[tuple[str, str], TrainConfig] = {
    ("*", "*"): TrainConfig(epochs=20),
    ("*", "mnist-5k"): TrainConfig(epochs=40, max_shift=2),
    ("*", "digits"): TrainConfig(epochs=60, batch_size=32),
    ("lenet-300-100", "fashion-mnist"): TrainConfig(epochs=30, lr=0.05),
    # LeNet-5 diverges at 0.05 on mnist-5k (NaN by epoch 9, seed 0); 0.02 reaches 97.7 % test.
    ("lenet-5", "mnist-5k"): TrainConfig(epochs=40, lr=0.02, max_shift=2),
    ("lenet-5", "fashion-mnist"): TrainConfig(epochs=20, lr=0.02),
    ("conv-small", "fashion-mnist"): TrainConfig(epochs=20, lr=0.02, max_shift=2),
}


def default_recipe(model: str, dataset: str) -> TrainConfig:
    """The default training recipe for ``model`` on ``dataset`` (names unknown here get the
    general recipe: a model of your own has none of its own)."""
    for key in ((model, dataset), ("*", dataset), (model, "*"), ("*", "*")):
        if key in _RECIPES:
            return _RECIPES[key]
    raise AssertionError("unreachable: the ('*', '*') recipe always matches")


def random_shift(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image in ``x`` (N x C x H x W) by its own random offset of at most
    ``max_shift`` pixels in each direction, filling with the background value."""
    n, _, height, width = x.shape
    background = x.amin()
    padded = F.pad(x, (max_shift,) * 4, value=float(background))
    dy = torch.randint(0, 2 * max_shift + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * max_shift + 1, (n,), generator=generator)
    rows = (dy[:, None] + torch.arange(height)[None, :]).to(x.device)  # N x H
    cols = (dx[:, None] + torch.arange(width)[None, :]).to(x.device)  # N x W
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    channel = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return padded[batch, channel, rows[:, None, :, None], cols[:, None, None, :]]


def random_affine(
    x: torch.Tensor, max_rotation: float, max_scale: float, generator: torch.Generator
) -> torch.Tensor:
    """Rotate each image in ``x`` (N x C x H x W) about its centre by its own random angle
    of at most ``max_rotation`` degrees and scale it by a random factor in ``1 ± max_scale``
    (bilinear, filling with the background value)."""
    n = x.shape[0]
    angle = (2 * torch.rand(n, generator=generator) - 1) * math.radians(max_rotation)
    scale = 1 + (2 * torch.rand(n, generator=generator) - 1) * max_scale
    # affine_grid maps output to input coordinates, so the inverse transform goes in. Its
    # coordinates run from -1 to 1 across width and height alike, so on a non-square
    # image the off-diagonal terms carry the aspect ratio for the turn to stay a rotation.
    height, width = x.shape[-2:]
    cos, sin, zero = torch.cos(angle) / scale, torch.sin(angle) / scale, torch.zeros(n)
    theta = torch.stack(
        [
            torch.stack([cos, -sin * height / width, zero], 1),
            torch.stack([sin * width / height, cos, zero], 1),
        ],
        1,
    )
    grid = F.affine_grid(theta.to(x), list(x.shape), align_corners=False)
    background = x.amin()
    return F.grid_sample(x - background, grid, align_corners=False) + background


def prefers_channels_last(model: nn.Module) -> bool:
    """Whether ``model`` runs faster with channels-last images: a 2-D convolutional network
    on a CPU, where PyTorch's convolution and pooling kernels are about twice as fast on
    that layout (measured for LeNet-5: see BENCHMARKS.md)."""
    return model_device(model).type == "cpu" and any(
        isinstance(m, nn.Conv2d) for m in model.modules()
    )


def to_channels_last(tensor: torch.Tensor) -> torch.Tensor:
    """A 4-D tensor copied into channels-last strides (others returned as they are).

    A copy into fresh strides, because with one channel a tensor already counts as
    channels-last and ``contiguous(memory_format=...)`` would keep its old layout.
    """
    if tensor.dim() != 4:
        return tensor
    return torch.empty_like(tensor, memory_format=torch.channels_last).copy_(tensor)


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (CPU for a model without parameters)."""
    return next((p.device for p in model.parameters()), torch.device("cpu"))


@contextlib.contextmanager
def seeded_torch_rng(seed: int, device: torch.device) -> Iterator[None]:
    """torch's global generators seeded with ``seed`` inside, and given back as they were
    after: what draws from them while retraining (dropout) repeats with the seed, whatever
    ran before in the process, and the caller's own stream is left untouched."""
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def train(
    model: nn.Module,
    data: Split,
    config: TrainConfig,
    *,
    on_step: StepHook | None = None,
    on_epoch: Callable[[int, float], None] | None = None,
    teacher: nn.Module | None = None,
    distill_weight: float = 0.5,
    temperature: float = 4.0,
) -> nn.Module:
    """Train ``model`` in place on ``data`` with ``config``; returns the model.

    With a ``teacher`` (for example the dense reference of a pruned network) the loss is
    ``distill_weight * T² * KL(teacher || student at temperature T) + (1 - distill_weight) *
    cross-entropy`` (knowledge distillation, Hinton et al. 2015).

    ``on_step(model, step)`` runs after each optimiser step; ``on_epoch(epoch, loss)``
    after each epoch with its mean training loss. A loss that is not finite at the end of an
    epoch (the learning rate is too large for the model) raises :class:`OlmpError`.
    """
    check_type("data", data, Split, "one split (splits.train), not all of them")
    check_type("config", config, TrainConfig, "a TrainConfig (olmp.TrainConfig(**options))")
    check_callback("on_step", on_step)
    check_callback("on_epoch", on_epoch)
    device = model_device(model)
    x_all, y_all = data.x.to(device), data.y.to(device)
    generator = torch.Generator().manual_seed(config.seed)
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=config.lr,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
        nesterov=config.momentum > 0,
    )
    steps_per_epoch = math.ceil(len(data) / config.batch_size)
    total_steps = config.max_steps or config.epochs * steps_per_epoch
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    channels_last = prefers_channels_last(model)
    if channels_last:  # the parameters' strides change, not their values
        model.to(memory_format=torch.channels_last)
    averaged_from = total_steps - round(config.average_last * total_steps)
    averaged = AveragedModel(model) if averaged_from < total_steps else None
    model.train()
    step = 0
    for epoch in range(math.ceil(total_steps / steps_per_epoch)):
        order = torch.randperm(len(data), generator=generator).to(device)
        loss_sum, seen = torch.zeros((), device=device), 0
        for start in range(0, len(data), config.batch_size):
            index = order[start : start + config.batch_size]
            x = x_all[index]
            if (config.max_rotation > 0 or config.max_scale > 0) and x.ndim == 4:
                x = random_affine(x, config.max_rotation, config.max_scale, generator)
            if config.max_shift > 0 and x.ndim == 4:
                x = random_shift(x, config.max_shift, generator)
            if channels_last:
                x = to_channels_last(x)
            logits = model(x)
            loss = F.cross_entropy(logits, y_all[index])
            if teacher is not None:
                loss = (1 - distill_weight) * loss + distill_weight * distillation_loss(
                    logits, teacher, x, temperature
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1
            if on_step is not None:
                on_step(model, step)
            if averaged is not None and step > averaged_from:
                averaged.update_parameters(model)
            loss_sum += loss.detach() * len(index)
            seen += len(index)
            if step == total_steps:
                break
        mean_loss = float(loss_sum) / seen
        if not math.isfinite(mean_loss):  # weights are NaN from here on: nothing to save
            raise OlmpError(
                f"training diverged: the mean loss of epoch {epoch + 1} is {mean_loss}; "
                f"use a smaller learning rate than {config.lr} (olmp train --lr)"
            )
        if on_epoch is not None:
            on_epoch(epoch + 1, mean_loss)
    if averaged is not None:
        with torch.no_grad():
            for param, mean in zip(model.parameters(), averaged.module.parameters(), strict=True):
                param.copy_(mean)
    model.eval()
    return model


def distillation_loss(
    logits: torch.Tensor, teacher: nn.Module, x: torch.Tensor, temperature: float
) -> torch.Tensor:
    """``T² * KL(softmax(teacher / T) || softmax(student / T))``, batch mean."""
    with torch.no_grad():
        target = F.log_softmax(teacher(x) / temperature, dim=1)
    student = F.log_softmax(logits / temperature, dim=1)
    return F.kl_div(student, target, log_target=True, reduction="batchmean") * temperature**2


@torch.inference_mode()
def correct(model: nn.Module, data: Split, batch_size: int = 2000) -> torch.Tensor:
    """Per example of ``data``, whether ``model`` classifies it correctly (a bool tensor on
    the CPU; the model is left in eval mode)."""
    check_type("data", data, Split, "one split (splits.val, say), not all of them")
    model.eval()
    device = model_device(model)
    channels_last = prefers_channels_last(model)
    hits = []
    for start in range(0, len(data), batch_size):
        x = data.x[start : start + batch_size].to(device)
        x = to_channels_last(x) if channels_last else x
        y = data.y[start : start + batch_size].to(device)
        hits.append((model(x).argmax(dim=1) == y).cpu())
    return torch.cat(hits) if hits else torch.zeros(0, dtype=torch.bool)


def accuracy(model: nn.Module, data: Split, batch_size: int = 2000) -> float:
    """Fraction of ``data`` that ``model`` classifies correctly (model left in eval mode)."""
    return int(correct(model, data, batch_size).sum()) / len(data)


def with_overrides(config: TrainConfig, **overrides: object) -> TrainConfig:
    """``config`` with the given fields replaced; ``None`` values are ignored."""
    return replace(config, **{k: v for k, v in overrides.items() if v is not None})
