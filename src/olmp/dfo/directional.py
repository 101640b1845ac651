"""The directional model of experienced optimisation (Hu, Yu & Zhou, IJCAI 2018).

Earlier searches on other tasks of the same kind of space are *experience*. From each
recorded search's trials, in the order they were told, every trial after the first gives one
example: the best point so far ``b`` and the trial's point ``c``, labelled 1 when ``c`` was
better than ``b`` (it improved on the best at that time) and 0 otherwise. A small network
learns ``P(c improves on b)`` from features of ``(b, c)`` in the space's unit box;
:class:`~olmp.dfo.solvers.expsracos.ExpSRacos` then samples several candidates and evaluates
the one the model rates best.

One network is trained **per source dataset** (the searches of one dataset together). For a
new search the networks' probabilities are averaged, each weighted by how well it has
predicted that search's own trials so far (:class:`Reliability`): which direction is good
differs between datasets, and the search itself tells which sources resemble it. On the
leave-one-dataset-out ensemble job one network trained on every source pooled ranked the
held-out dataset's improvements barely better than chance (median ROC AUC 0.53 over twelve
held-out datasets), the plain mean of the per-dataset networks 0.63 and the weighted mean
0.65; with five searches of experience per dataset instead of three, 0.59, 0.60 and 0.67.
BENCHMARKS.md ("Experienced optimisation") has the measurement
(``benchmarks/experience.py auc``).

>>> from olmp.dfo import Real, Space
>>> space = Space([Real("x", 0.0, 1.0), Real("y", 0.0, 1.0)])
>>> # a history: (params, value) in the order told; the larger x, the better
>>> xs = [0.5, 0.2, 0.7, 0.1, 0.9, 0.3, 0.95, 0.4, 0.6, 0.99, 0.05, 0.8]
>>> history = [({"x": x, "y": 0.5}, -x) for x in xs]
>>> model = train_directional_model(space, [history], sources=["toy"])
>>> int(model.score([0.6, 0.5], [[0.9, 0.5], [0.1, 0.5]]).argmax())
0

Points are *canonical* unit-box points: ``space.to_unit(space.from_unit(u))``, so an
integer is at the centre of its cell and a categorical choice one-hot-like (0.6 / 0.4),
whatever raw coordinates a solver drew. Features are ``[c, c - b]`` (``2 * dim`` numbers).

**The file** (:meth:`DirectionalModel.save`) is data, never code: a safetensors file with the
network's weights and a JSON record (format, the space, the sources it learned from, how it
was trained), written through :func:`olmp.files.save_checkpoint`, whose content hash
:meth:`DirectionalModel.load` checks. A damaged file, another file, or one with the wrong
shapes is an :class:`~olmp.errors.OlmpError` naming the file.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from olmp.dfo.space import Space
from olmp.errors import OlmpError

#: What an experience file says it is.
FORMAT = "olmp-experience"
#: Version 2 stacks one network per source dataset; version 1 files (one network) still load.
VERSION = 2
#: Each network's tensors, in order: ``hidden = tanh(x @ w1 + b1)``,
#: ``logit = hidden @ w2 + b2``. The model stacks its networks along a first axis.
TENSORS = ("w1", "b1", "w2", "b2")

#: One search's trials in the order they were told: ``(params, value)``, ``value`` ``inf``
#: or ``None`` for a failed trial.
History = Sequence[tuple[Mapping[str, Any], float | None]]


def canonical(space: Space, unit: ArrayLike) -> np.ndarray:
    """Unit-box points (rows) as the parameters they decode to encode them."""
    rows = np.atleast_2d(np.asarray(unit, dtype=float))
    return np.array([space.to_unit(space.from_unit(row)) for row in rows])


def features(best: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """``[c, c - b]`` for every candidate row ``c`` against the best point ``b``."""
    candidates = np.atleast_2d(candidates)
    return np.hstack([candidates, candidates - np.asarray(best)[None, :]])


def pairs(space: Space, history: History) -> tuple[np.ndarray, np.ndarray]:
    """The examples of one history: features of (best so far, trial) and whether the trial
    improved on that best (see the module docstring). Trials before the first finite value
    have no best to compare with and give no example."""
    X, y = [], []
    best_value, best_point = math.inf, None
    for params, value in history:
        value = math.inf if value is None or not math.isfinite(value) else float(value)
        point = space.to_unit(params)
        if best_point is not None:
            X.append(features(best_point, point)[0])
            y.append(1.0 if value < best_value else 0.0)
        if value < best_value:
            best_value, best_point = value, point
    if not X:
        return np.empty((0, 2 * space.dim)), np.empty(0)
    return np.array(X), np.array(y)


class DirectionalModel:
    """A trained directional model: scores candidates against the best point so far.

    Args:
        space: The space it was trained on.
        weights: :data:`TENSORS` as numpy arrays, stacked over the networks (``w1`` of shape
            ``(networks, 2 * dim, hidden)``); one network's unstacked arrays are taken as a
            stack of one.
        info: What the file records besides: ``sources`` (one record per search learned
            from, with its ``dataset``), ``training`` (examples, positives, seconds, and one
            record per network: its dataset, examples, accuracy on them).
    """

    def __init__(
        self, space: Space, weights: Mapping[str, np.ndarray], info: Mapping[str, Any]
    ) -> None:
        self.space = space
        arrays = {name: np.asarray(weights[name], dtype=np.float64) for name in TENSORS}
        if arrays["w1"].ndim == 2:
            arrays = {name: array[None] for name, array in arrays.items()}
        self.weights = arrays
        self.info = dict(info)

    @property
    def dim(self) -> int:
        """Width of the unit box of :attr:`space`."""
        return self.space.dim

    @property
    def networks(self) -> int:
        """How many networks (source datasets) the score averages."""
        return int(self.weights["w1"].shape[0])

    @property
    def network_datasets(self) -> list[str]:
        """The source dataset of each network, in order (``network i`` when not recorded)."""
        trained = self.info.get("training", {}).get("networks", [])
        if len(trained) == self.networks:
            return [str(n["dataset"]) for n in trained]
        return [f"network {i}" for i in range(self.networks)]

    @property
    def datasets(self) -> list[str]:
        """The datasets (tasks) of the searches it learned from, each once, sorted."""
        return sorted({str(s.get("dataset")) for s in self.info.get("sources", [])})

    def network_scores(self, best: ArrayLike, candidates: ArrayLike) -> np.ndarray:
        """Each network's ``P(candidate improves on best)``, shape ``(networks, candidates)``,
        for unit-box points (canonicalised here)."""
        b = canonical(self.space, best)[0]
        c = canonical(self.space, candidates)
        w = self.weights
        hidden = np.tanh(np.einsum("nf,mfh->mnh", features(b, c), w["w1"]) + w["b1"][:, None])
        logits = np.einsum("mnh,mho->mn", hidden, w["w2"]) + w["b2"]
        return 1.0 / (1.0 + np.exp(-logits))

    def score(
        self, best: ArrayLike, candidates: ArrayLike, weights: ArrayLike | None = None
    ) -> np.ndarray:
        """``P(candidate improves on best)`` for unit-box points: the networks' probabilities
        averaged, equally or with ``weights`` (one per network, see :class:`Reliability`)."""
        return np.average(self.network_scores(best, candidates), axis=0, weights=weights)

    def check_space(self, space: Space, where: str = "this search") -> None:
        """Raise OlmpError unless ``space`` is the space the model learned on, naming the
        variables that differ."""
        differ = space_difference(self.space, space, ("the experience's", f"{where}'s"))
        if differ:
            raise OlmpError(f"the experience was learned on another space than {where}'s: {differ}")

    # -- the file ------------------------------------------------------------------------

    def _file_content(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The tensors and the record :meth:`save` writes."""
        import torch

        tensors = {
            name: torch.as_tensor(self.weights[name], dtype=torch.float64) for name in TENSORS
        }
        record = {"format": FORMAT, "version": VERSION, "space": self.space.to_json(), **self.info}
        return tensors, record

    @property
    def fingerprint(self) -> str:
        """``sha256:`` and the hash of the model's content (its weights, space and record,
        less the training's wall time, ``training/seconds``): what names an experience in a
        search's records, so that a resume compares the experience itself, wherever its
        file lies now; two builds from the same studies and seed have the same. (The
        file's ``content_sha256`` checks its bytes, wall time included.)"""
        from olmp.files import content_hash

        tensors, record = self._file_content()
        if isinstance(record.get("training"), Mapping):  # a copy: self.info stays whole
            record["training"] = {k: v for k, v in record["training"].items() if k != "seconds"}
        return "sha256:" + content_hash(tensors, record)

    def save(self, path: str | os.PathLike[str], force: bool = False) -> None:
        """Write the model to ``path`` atomically; an existing file only with ``force``."""
        from olmp.files import refuse_to_overwrite, save_checkpoint

        refuse_to_overwrite(path, force)
        save_checkpoint(path, *self._file_content())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> DirectionalModel:
        """Read a model written by :meth:`save`, checking its hash, format and shapes."""
        from olmp.files import load_checkpoint

        tensors, record = load_checkpoint(path, what="experience file")
        if record.get("format") != FORMAT:
            raise OlmpError(f'{path} is not an olmp experience file (no "format": "{FORMAT}")')
        if record.get("version") not in (1, VERSION):
            raise OlmpError(
                f"{path} is an experience file of version {record.get('version')!r}; this olmp "
                f"reads versions 1 to {VERSION}"
            )
        try:
            space = Space.from_json(record["space"])
            weights = {name: tensors[name].double().numpy() for name in TENSORS}
        except (KeyError, TypeError, OlmpError) as error:
            raise OlmpError(f"experience file {path} is damaged ({error})") from None
        # Version 1 held one network, unstacked.
        stack = () if record.get("version") == 1 else weights["w1"].shape[:1]
        # The hidden width from b1, else from w1, so that the tensor with the wrong shape
        # is the one named below.
        if weights["b1"].ndim == len(stack) + 1:
            hidden = weights["b1"].shape[-1]
        else:
            hidden = weights["w1"].shape[-1] if weights["w1"].ndim == len(stack) + 2 else -1
        shapes = {"w1": (2 * space.dim, hidden), "b1": (hidden,), "w2": (hidden, 1), "b2": (1,)}
        for name, shape in shapes.items():
            shape = (*stack, *shape)
            if weights[name].shape != shape:
                raise OlmpError(
                    f"experience file {path} is damaged: {name} has shape "
                    f"{weights[name].shape}, expected {shape}"
                )
            if not np.isfinite(weights[name]).all():
                raise OlmpError(f"experience file {path} is damaged: {name} holds NaN or inf")
        info = {k: v for k, v in record.items() if k not in ("format", "version", "space")}
        model = cls(space, weights, info)
        try:  # the datasets it learned from decide where it may be used: they must be there
            if not isinstance(info["sources"], list):
                raise TypeError("sources is not a list")
            model.datasets, model.network_datasets  # noqa: B018
        except (KeyError, TypeError, AttributeError) as error:
            raise OlmpError(f"experience file {path} is damaged ({error})") from None
        return model


class Reliability:
    """How well each network of a model has predicted one search's own trials so far: its
    weight in :meth:`DirectionalModel.score` for that search.

    After each trial (that had a best before it) :meth:`observe` takes the networks'
    probabilities for it and whether it improved. A network's *balanced agreement* is the
    mean of its average probability on the trials that improved and its average ``1 - p`` on
    those that did not, each starting at 1/2 with one pseudo-trial; its weight is how far
    that is above chance (1/2), floored at a small positive value so that all networks
    count equally until the search has told something apart.
    """

    #: The weight of a network no better than chance.
    FLOOR = 1e-3

    def __init__(self, networks: int) -> None:
        self._agreement = np.zeros((2, networks))  # rows: trials that improved, the others
        self._trials = np.zeros(2)

    def observe(self, probabilities: np.ndarray, improved: bool) -> None:
        row = 0 if improved else 1
        self._agreement[row] += probabilities if improved else 1.0 - probabilities
        self._trials[row] += 1

    @property
    def weights(self) -> np.ndarray:
        balanced = ((self._agreement + 0.5) / (self._trials[:, None] + 1.0)).mean(axis=0)
        return np.maximum(balanced - 0.5, 0.0) + self.FLOOR


def space_difference(
    a: Space, b: Space, names: tuple[str, str] = ("the first", "the second")
) -> str:
    """What differs between spaces ``a`` and ``b`` (called ``names`` in the text), in words;
    ``""`` when they are the same."""
    if a == b:
        return ""
    va = {v.name: v.to_json() for v in a}
    vb = {v.name: v.to_json() for v in b}
    parts = []
    if only := [n for n in va if n not in vb]:
        parts.append(f"only in {names[0]}: {', '.join(only)}")
    if only := [n for n in vb if n not in va]:
        parts.append(f"only in {names[1]}: {', '.join(only)}")
    if changed := [n for n in va if n in vb and va[n] != vb[n]]:
        # Each with the fields that differ: a range, the choices, a condition (when), ...
        listed = ", ".join(
            f"{n} ({', '.join(k for k in va[n] | vb[n] if va[n].get(k) != vb[n].get(k))})"
            for n in changed
        )
        parts.append(f"variables set up otherwise: {listed}")
    if not parts:
        parts.append("the same variables in another order")
    return "; ".join(parts)


def train_directional_model(
    space: Space,
    histories: Sequence[History],
    *,
    sources: Sequence[Any] | None = None,
    hidden: int = 32,
    epochs: int = 300,
    lr: float = 0.01,
    seed: int = 0,
) -> DirectionalModel:
    """Train a model on the examples of ``histories`` (all on ``space``): one network per
    source dataset (see the module docstring).

    ``sources`` describe the histories, one each: a dataset name or a record with at least
    ``"dataset"`` (the file keeps them, and ``olmp tune`` refuses to use the model on one
    of those datasets); without them all histories are one source. A dataset whose searches
    never improved on their best (or always did) teaches no direction and gets no network;
    the record names it. Each network: full-batch Adam on the cross-entropy, positives
    weighted by the ratio of negatives to positives (improvements are rarer than failures),
    seeded from ``seed`` and its place in the sorted datasets.
    """
    sources = list(sources) if sources is not None else ["unknown"] * len(histories)
    if len(sources) != len(histories):
        raise OlmpError(f"give one source per history: {len(sources)} for {len(histories)}")
    records = [s if isinstance(s, Mapping) else {"dataset": str(s)} for s in sources]
    by_dataset: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for record, history in zip(records, histories, strict=True):
        by_dataset.setdefault(str(record.get("dataset")), []).append(pairs(space, history))
    began = time.perf_counter()
    networks, trained, untaught = [], [], []
    for n, (dataset, parts) in enumerate(sorted(by_dataset.items())):
        X = np.vstack([p[0] for p in parts])
        y = np.concatenate([p[1] for p in parts])
        positives = int(y.sum())
        if positives in (0, len(y)):
            untaught.append(dataset)
            continue
        weights, accuracy = _fit_network(X, y, hidden, epochs, lr, seed + n)
        networks.append(weights)
        trained.append({"dataset": dataset, "examples": len(y), "positives": positives,
                        "accuracy": accuracy})  # fmt: skip
    examples = sum(len(p[1]) for parts in by_dataset.values() for p in parts)
    positives = int(sum(p[1].sum() for parts in by_dataset.values() for p in parts))
    if not networks:
        raise OlmpError(
            f"the histories give {examples} examples with {positives} improvements, and no "
            "source has both: a directional model needs searches with some trials that "
            "improved on the best and some that did not"
        )
    info = {
        "sources": [dict(r) for r in records],
        "training": {
            "examples": examples,
            "positives": positives,
            "hidden": hidden,
            "epochs": epochs,
            "lr": lr,
            "seed": seed,
            "networks": trained,
            "untaught": untaught,
            "accuracy": float(np.average([t["accuracy"] for t in trained],
                                         weights=[t["examples"] for t in trained])),
            "seconds": round(time.perf_counter() - began, 3),
        },
    }  # fmt: skip
    stacked = {name: np.stack([w[name] for w in networks]) for name in TENSORS}
    return DirectionalModel(space, stacked, info)


def _fit_network(
    X: np.ndarray, y: np.ndarray, hidden: int, epochs: int, lr: float, seed: int
) -> tuple[dict[str, np.ndarray], float]:
    """One network's :data:`TENSORS` trained on examples ``(X, y)``, and its accuracy on them."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    width = X.shape[1]
    w1 = torch.randn(width, hidden, generator=generator, dtype=torch.float64)
    w1 = (w1 / math.sqrt(width)).requires_grad_()
    b1 = torch.zeros(hidden, dtype=torch.float64, requires_grad=True)
    w2 = torch.randn(hidden, 1, generator=generator, dtype=torch.float64) / math.sqrt(hidden)
    w2 = w2.requires_grad_()
    b2 = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    inputs, labels = torch.as_tensor(X), torch.as_tensor(y)
    positives = float(labels.sum())
    weight = torch.tensor((len(y) - positives) / positives, dtype=torch.float64)
    optimizer = torch.optim.Adam([w1, b1, w2, b2], lr=lr)

    def net() -> torch.Tensor:
        return (torch.tanh(inputs @ w1 + b1) @ w2 + b2)[:, 0]

    for _ in range(epochs):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            net(), labels, pos_weight=weight
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        accuracy = float(((net() > 0).double() == labels).double().mean())
    weights = {"w1": w1, "b1": b1, "w2": w2, "b2": b2}
    return {name: t.detach().numpy() for name, t in weights.items()}, accuracy


def as_model(experience: DirectionalModel | str | os.PathLike[str]) -> DirectionalModel:
    """A model, or the model in the file ``experience``."""
    if isinstance(experience, DirectionalModel):
        return experience
    if isinstance(experience, str | os.PathLike):
        return DirectionalModel.load(Path(experience))
    raise OlmpError(
        f"experience must be a DirectionalModel or an experience file, got {experience!r}"
    )


__all__ = [
    "DirectionalModel",
    "History",
    "Reliability",
    "as_model",
    "canonical",
    "features",
    "pairs",
    "space_difference",
    "train_directional_model",
]
