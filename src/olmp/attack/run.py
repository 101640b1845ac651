"""Attacks on a dataset: pick images and targets, attack every pair, record, resume.

:func:`attack_image` attacks one image through a fresh :class:`~olmp.attack.oracle.Oracle`
and judges the returned image with a forward pass of its own, after checking that it lies in
the ε-ball and the pixel box. :func:`run_attack` does that for ``images`` test images that
the model classifies correctly (the others are skipped and counted) and their targets (one at
random, or all other classes), appending one record per pair to ``OUT/records.jsonl`` as it
goes, so that an interrupted run resumes where it stopped; then it writes the summary
(``result.json``) and the success curve (``curve.csv``, ``curve.png``).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from olmp.attack.blocks import DEFAULT_SOLVER
from olmp.attack.folder import (
    RECORDS,
    RESULT,
    check_out,
    output_folder,
    prepare_out,
    read_config,
)
from olmp.attack.methods import METHODS, check_options, run_method
from olmp.attack.oracle import Oracle, margin
from olmp.attack.summary import summarize, write_curve
from olmp.data.registry import DATASETS, get_spec
from olmp.dfo.solvers import SOLVERS
from olmp.errors import (
    OlmpError,
    OptionError,
    check_callback,
    check_count,
    check_seed,
    check_type,
    is_integer,
    is_number,
    unknown_choice,
    warn_user,
)
from olmp.files import content_hash, write_json_atomic

#: Slack on the ε-ball and the pixel box when judging a returned image (float32 rounding).
TOLERANCE = 1e-6
#: Slack on the pixel range of a dataset's images after undoing the normalisation.
PIXEL_SLACK = 1e-4


def check_settings(
    method: str,
    eps: float,
    budget: int,
    solver: str | None = None,
    targets: Any = "random",
    options: dict[str, Any] | None = None,
) -> None:
    """Raise :class:`OlmpError` for an unknown method, a solver that is unknown or not
    installed, a bad option value, or a bad ε, budget or targets option, before any work."""
    if method not in METHODS:
        raise unknown_choice("attack method", method, list(METHODS))
    check_type("options", options or {}, dict, "a dict of option names and values")
    check_options(method, dict(options or {}))
    if solver is not None and solver not in SOLVERS:
        raise unknown_choice("solver", solver, list(SOLVERS))
    if solver is not None and method != "bobyqa":
        raise OlmpError(f"--solver only applies to --method bobyqa, not {method!r}")
    backend = SOLVERS[solver or DEFAULT_SOLVER] if method == "bobyqa" else None
    if backend is not None and not backend.available():
        backend.import_backend()  # an optional extra: the error names it, before any file
    if not (is_number(eps) and math.isfinite(eps) and 0 < eps <= 1):
        raise OptionError("eps", f"must be in (0, 1] (pixel units), got {eps!r}")
    if not is_integer(budget) or budget < 1:
        raise OptionError("budget", f"must be an integer of at least 1 query, got {budget!r}")
    if not (isinstance(targets, str) and targets in ("all", "random")) and not is_integer(targets):
        raise OlmpError(f"targets must be 'all', 'random' or a class number, got {targets!r}")


def check_model_output(model: nn.Module, x: torch.Tensor, num_classes: int) -> None:
    """Raise unless ``model`` gives one finite score per class for each input."""
    with torch.no_grad():
        out = model(x[:1])
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (1, num_classes):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise OlmpError(
            f"the model must output one score per class, shape (N, {num_classes}); got {shape}"
        )


def predict(model: nn.Module, image: np.ndarray, mean: float, std: float) -> int:
    """The model's class for one pixel-space image: a forward pass outside any oracle."""
    device = next(model.parameters(), torch.zeros(0)).device
    with torch.no_grad():
        x = (torch.from_numpy(np.asarray(image, dtype=np.float32)[None]).to(device) - mean) / std
        return int(model(x).argmax(dim=1).item())


def attack_image(
    model: nn.Module,
    image: np.ndarray,
    label: int,
    target: int,
    *,
    method: str,
    eps: float,
    budget: int,
    mean: float = 0.0,
    std: float = 1.0,
    seed: int = 0,
    solver: str | None = None,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Attack one pixel-space ``image`` (``C x H x W`` in ``[0, 1]``) of class ``label`` towards
    ``target``; returns its record (success, queries, final :func:`margin`, positive when the
    target won, ‖δ‖∞) and ``image``."""
    check_settings(method, eps, budget, solver, options=options)
    x0 = np.asarray(image, dtype=np.float32)
    if x0.ndim != 3:
        raise OlmpError(f"an image must be C x H x W, got shape {x0.shape}")
    if x0.min() < 0 or x0.max() > 1:
        raise OlmpError(
            f"image pixels must lie in the pixel range [0, 1]; got [{x0.min():.4g}, {x0.max():.4g}]"
        )
    device = next(model.parameters(), torch.zeros(0)).device
    model.eval()
    with torch.no_grad():
        out = model((torch.from_numpy(x0[None]).to(device) - mean) / std)
    if out.ndim != 2 or out.shape[0] != 1:
        raise OlmpError(f"the model must output one score per class; got shape {tuple(out.shape)}")
    classes = int(out.shape[1])
    for name, value in (("label", label), ("target", target)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise OlmpError(f"{name} must be a class number, got {value!r}")
        if not 0 <= value < classes:
            raise OlmpError(f"{name} must be a class in 0..{classes - 1}, got {value}")
    if target == label:
        raise OlmpError(f"target {target} is the image's true class; choose another class")
    opts = dict(options or {})
    if solver is not None:
        opts["solver"] = solver
    oracle = Oracle(model, mean, std, target, budget, device)
    started = time.perf_counter()
    x_adv = run_method(method, oracle, x0, eps, np.random.default_rng(seed), **opts)
    seconds = time.perf_counter() - started
    x_adv = np.asarray(x_adv, dtype=np.float32)
    linf = float(np.abs(x_adv.astype(np.float64) - x0).max())
    if x_adv.shape != x0.shape or linf > eps + TOLERANCE:
        raise AssertionError(f"{method} returned an image outside the ε-ball: {linf} > {eps}")
    if x_adv.min() < -TOLERANCE or x_adv.max() > 1 + TOLERANCE:
        raise AssertionError(f"{method} returned an image outside the pixel range [0, 1]")
    predicted = predict(model, x_adv, mean, std)  # fresh, outside the oracle
    with torch.no_grad():
        scores = model((torch.from_numpy(x_adv[None]).to(device) - mean) / std)
    final_margin = float(margin(torch.softmax(scores.double(), 1).cpu().numpy(), target)[0])
    success = predicted == target
    return {
        "label": int(label),
        "target": int(target),
        "success": bool(success),
        "queries": int(oracle.success_at if success and oracle.success_at else oracle.queries),
        "margin": final_margin,
        # The images are float32: a perturbation clipped at eps reads up to ~1e-8 above it.
        "linf": round(linf, 6),
        "predicted": predicted,
        "seconds": round(seconds, 4),
        "image": x_adv,
    }


def weights_hash(model: nn.Module) -> str:
    """What tells a network's weights on resume: the hash of its values, with ``-0.0`` (a
    masked negative weight in a run's checkpoint) and ``0.0`` (the same weight read back
    from its exported file) one value."""
    state = model.state_dict()
    return content_hash({k: v + 0 if v.is_floating_point() else v for k, v in state.items()}, {})


def pixel_images(x: torch.Tensor, mean: float, std: float) -> np.ndarray:
    """A split's normalised images back in the pixel space ``[0, 1]``, checked."""
    pixels = (x.detach().cpu().double() * std + mean).numpy()
    low, high = float(pixels.min()), float(pixels.max())
    if low < -PIXEL_SLACK or high > 1 + PIXEL_SLACK:
        raise OlmpError(
            f"the dataset's images lie in [{low:.4g}, {high:.4g}] after undoing its "
            "normalisation, outside the pixel range [0, 1]"
        )
    return np.clip(pixels, 0.0, 1.0).astype(np.float32)


def _as_recorded(
    images: int, found: int, old: dict[str, Any] | None, count_all: Callable[[], int]
) -> int:
    """``images`` for a resumed run, or the number its record holds where that asked for
    another number but attacked the same images (the split holds fewer than one of them):
    the run as recorded, not a smaller or larger one. ``found``: the images this run
    attacks; ``count_all()``: how many the split holds (computed only when needed)."""
    recorded = (old or {}).get("images")
    if not is_integer(recorded) or recorded == images:
        return images
    if found < images:  # every image the split holds
        held = found
    elif recorded > images:  # does the split hold more than these?
        held = count_all()
    else:
        return images  # a larger run than recorded
    return recorded if min(recorded, held) == found else images


def choose_pairs(
    model: nn.Module,
    images: np.ndarray,
    labels: np.ndarray,
    mean: float,
    std: float,
    n_images: int,
    targets: str | int,
    seed: int,
    classes: int,
) -> tuple[list[tuple[int, int]], int]:
    """(image index, target) pairs over the first ``n_images`` images, in an order drawn with
    ``seed``, that the model gets right (and whose class is not a fixed target); and how many
    misclassified images were skipped.

    A random target is drawn for every image up front, so that an image gets the same
    target whichever network is attacked: a dense network and its compressed versions,
    which misclassify different images, are attacked on the same pairs where they share
    an image (drawn as the images are chosen, one skip shifted every later target)."""
    if isinstance(targets, int) and not 0 <= targets < classes:
        raise OptionError("targets", f"must be a class in 0..{classes - 1}, got {targets}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(labels))
    # label + 1..classes-1, wrapped: uniform over the other classes.
    random_target = (labels + rng.integers(1, classes, size=len(labels))) % classes
    device = next(model.parameters(), torch.zeros(0)).device
    with torch.no_grad():
        x = (torch.from_numpy(images).to(device) - mean) / std
        predicted = torch.cat([model(b).argmax(1) for b in x.split(512)]).cpu().numpy()
    pairs: list[tuple[int, int]] = []
    chosen = skipped = 0
    for i in order:
        if chosen == n_images:
            break
        label = int(labels[i])
        if isinstance(targets, int) and label == targets:
            continue
        if predicted[i] != label:
            skipped += 1
            continue
        chosen += 1
        others = [c for c in range(classes) if c != label]
        if targets == "all":
            pairs += [(int(i), c) for c in others]
        elif targets == "random":
            pairs.append((int(i), int(random_target[i])))
        else:
            pairs.append((int(i), int(targets)))
    return pairs, skipped


def compression_ratio(model: nn.Module) -> float:
    """Weights of the linear and convolution layers over those that are not zero."""
    total = kept = 0
    for module in model.modules():
        if isinstance(module, nn.Linear | nn.Conv1d | nn.Conv2d | nn.Conv3d):
            total += module.weight.numel()
            kept += int(torch.count_nonzero(module.weight).item())
    return total / max(kept, 1)


def run_attack(
    weights: str | os.PathLike[str],
    *,
    method: str,
    eps: float,
    budget: int,
    images: int = 100,
    targets: str | int = "random",
    seed: int = 0,
    out: str | os.PathLike[str] | None = None,
    resume: bool = False,
    force: bool = False,
    solver: str | None = None,
    options: dict[str, Any] | None = None,
    split: str = "test",
    model_name: str | None = None,
    dataset: str | None = None,
    device: str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    trust_model_code: bool = False,
    on_pair: Callable[[int, int, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Attack ``images`` images of ``split`` (and their targets) of the model in ``weights``.

    Returns the summary (see :func:`olmp.attack.summary.summarize`) with the settings, the
    records and the per-pair ``queries``; with ``out`` also writes it (see the module
    docstring). ``model_name`` and ``dataset`` default to what the checkpoint records.
    ``on_pair(done, total, record)`` is called after each pair. ``resume`` continues the
    run in ``out`` with the same settings, or more ``images`` (only the new ones attacked).
    """
    from olmp.reference import load_weights

    check_type("weights", weights, str | os.PathLike, "a checkpoint's path")
    check_callback("on_pair", on_pair)
    check_seed(seed)
    check_settings(method, eps, budget, solver, targets, options)
    eps, budget = float(eps), int(budget)  # numpy's too: the record is JSON
    targets = targets if isinstance(targets, str) else int(targets)
    images = check_count(images, "images")
    if split not in ("train", "tune", "val", "test"):
        raise unknown_choice("split", split, ["train", "tune", "val", "test"])
    if resume and out is None:
        raise OlmpError("resume=True continues an attack folder: pass out= too")
    folder = output_folder(out) if out is not None else None
    if folder is not None:  # before the model and data load: a refused --out fails at once
        check_out(folder, resume=resume, force=force)
    model, splits, metadata = load_weights(
        weights,
        model_name,
        dataset,
        device=device,
        data_dir=data_dir,
        trust_model_code=trust_model_code,
    )
    model.eval()
    if splits.name not in DATASETS:  # get_spec would call it unknown, listing it
        raise OlmpError(
            f"olmp attack perturbs images; {weights} is a model of the tabular dataset "
            f"{splits.name!r}: attack one of an image dataset ({', '.join(DATASETS)})"
        )
    spec = get_spec(splits.name)
    mean, std = spec.mean, spec.std
    data = getattr(splits, split)
    check_model_output(model, data.x[:1].to(next(model.parameters()).device), splits.num_classes)
    pixels = pixel_images(data.x, mean, std)
    labels = data.y.numpy()
    pairs, skipped = choose_pairs(
        model, pixels, labels, mean, std, images, targets, seed, splits.num_classes
    )
    found = len({index for index, _ in pairs})
    if found < images:
        warn_user(
            f"--images {images}: the {split} split has only {found} correctly classified "
            f"images{'' if isinstance(targets, str) else f' not of class {targets}'}; "
            "attacking those"
        )
    if resume and folder is not None:
        walked: list = []  # the pairs and skips of a walk over the whole split, once needed

        def held() -> int:  # the images of the split a run of all of them attacks
            walked[:] = choose_pairs(
                model, pixels, labels, mean, std, len(labels), targets, seed, splits.num_classes
            )
            return len({index for index, _ in walked[0]})

        recorded = _as_recorded(images, found, read_config(folder), held)
        if recorded != images:  # the run as recorded: the same pairs, and the images
            images = recorded  # skipped as its count walked the whole split
            if walked:  # (else this run's own walk already went through all of it)
                pairs, skipped = walked
    config = {
        "weights": str(weights),
        "weights_sha256": weights_hash(model),
        "model": model_name or metadata.get("model"),
        "dataset": splits.name,
        "split": split,
        "method": method,
        "solver": solver or (DEFAULT_SOLVER if method == "bobyqa" else None),
        "options": options or {},
        "eps": eps,
        "budget": budget,
        "images": images,
        "targets": targets,
        "seed": seed,
    }
    records: list[dict[str, Any]] = []
    if folder is not None:
        records = prepare_out(folder, config, resume=resume, force=force)
    done = {(r["index"], r["target"]) for r in records}
    strangers = done - set(pairs)
    if strangers:  # a run begun by an olmp that drew its random targets otherwise
        index, target = min(strangers)
        raise OlmpError(
            f"cannot resume {folder}: its records attack image {index} towards class {target}, "
            "a pair this olmp does not draw for its settings (it began under another version); "
            "start it anew with --force (force=True)"
        )
    sink = open(folder / RECORDS, "a") if folder is not None else None  # noqa: SIM115
    with contextlib.ExitStack() as stack:
        if sink is not None:
            stack.enter_context(sink)
        for n, (index, target) in enumerate(pairs, start=1):
            if (index, target) in done:
                continue
            record = attack_image(
                model,
                pixels[index],
                int(labels[index]),
                target,
                method=method,
                eps=eps,
                budget=budget,
                mean=mean,
                std=std,
                seed=int(np.random.default_rng([seed, index, target]).integers(2**31)),
                solver=solver,
                options=options,
            )
            record.pop("image")
            record = {"index": index, **record}
            records.append(record)
            if sink is not None:
                sink.write(json.dumps(record) + "\n")
                sink.flush()
                os.fsync(sink.fileno())
            if on_pair is not None:
                on_pair(n, len(pairs), record)
    order = {pair: k for k, pair in enumerate(pairs)}
    records.sort(key=lambda r: order.get((r["index"], r["target"]), len(order)))
    result = {
        **config,
        "compression_ratio": compression_ratio(model),
        "skipped_misclassified": skipped,
        **summarize(records, budget),
        "records": records,
    }
    if folder is not None:
        write_json_atomic(folder / RESULT, result)
        write_curve(folder, [(f"{method}", result)])
    return result
