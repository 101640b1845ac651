"""The OLMP algorithm: layer-wise magnitude pruning with thresholds found by
derivative-free search, inside an iterative prune-then-adjust loop.

One round:

1. **Search.** A solver proposes per-layer thresholds (through a parametrisation, see
   :mod:`olmp.pruning.thresholds`). A candidate's fitness is the fraction of weights it
   keeps when its tune-split accuracy is at least ``reference tune accuracy -
   search_tolerance``, and ``1 + shortfall`` otherwise (worse than any feasible candidate,
   but still pointing towards feasibility); the requirement is capped at the starting
   network's own tune accuracy, so a round never grows the network (``search_can_grow``).
   On a GPU a population is evaluated in one batched pass; a candidate stops being
   evaluated once it has made too many errors to be feasible, or once the samples seen
   make its feasibility clear by ``racing_z`` standard errors (its accuracy is then
   estimated from the samples it saw).
2. **Adjust.** Retrain through ``W ⊙ M``: with the masks frozen (``adjust="finetune"``,
   the default), or as Dynamic Network Surgery (``adjust="dns"``: straight-through
   gradients to every weight, masks re-derived with hysteresis — prune at
   ``|w| <= 0.9 t``, splice back at ``|w| > 1.1 t`` — every few steps).
3. **Select.** Measure val accuracy of ``W ⊙ M``; the smallest network whose val accuracy
   is at least ``reference val accuracy - tolerance`` is the best so far (keep-best).

After ``backtrack_after`` rounds in a row that fail the val rule, the run goes back to the
best network and searches with half the tolerance. Rounds stop when the network has not
shrunk by 1 % for ``patience`` rounds, when rounds fail again after ``backtracks_per_best``
returns to the same best network, or when a budget (rounds, candidate evaluations, wall
time) is spent; the result's ``stop_reason`` names which. Then the final phase fine-tunes,
with frozen masks, up to ``final_candidates`` rounds smaller than the best whose val accuracy
came close to the threshold (the smallest first, then a bisection by size), and keeps the
smallest that holds val; when none does, the best itself is fine-tuned and kept if that
raises its val accuracy. The test split is read once, for the report.

Every round's end state is saved in the run folder, so an interrupted run resumes from the
last finished round and, being seeded per round, ends where an uninterrupted run would.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import itertools
import json
import math
import os
import shutil
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from olmp.data.registry import DatasetSplits
from olmp.environment import describe_environment
from olmp.errors import OlmpError, OptionError, unknown_choice
from olmp.files import (
    check_writable,
    content_hash,
    load_checkpoint,
    save_checkpoint,
    write_json_atomic,
)
from olmp.pruning.layers import PrunableLayer, find_prunable_layers
from olmp.pruning.masks import (
    Masks,
    apply_masks,
    compression_ratios,
    count_kept,
    current_masks,
    dense_tensor,
    layer_counts,
    magnitude_masks,
    remove_masks,
    split_masks,
    update_masks_with_hysteresis,
    with_masks,
)
from olmp.pruning.thresholds import PARAMETRISATIONS, Parametrisation, make_parametrisation
from olmp.solvers import SOLVERS, check_solver_options, make_solver
from olmp.task import (
    CallableTask,
    SplitsTask,
    Task,
    expected_standard_error,
    paired_changes,
    reported_outcomes,
)
from olmp.training import model_device

STATE_JSON = "state.json"
RESULT_JSON = "result.json"
PRUNED_CHECKPOINT = "pruned.safetensors"
HISTORY_JSON = "history.json"
PLOT_PNG = "progress.png"
ADJUST_MODES = ("dns", "finetune")
#: Val's expected paired standard error (a fraction) above which, when it is also above
#: the tolerance, a run warns that val is too small (see ``_warn_if_val_is_small``).
SMALL_VAL_ERROR = 0.01
FINAL_ORDERS = ("bisect", "smallest-first")
#: CompressConfig fields added after runs were already being recorded, with the value that
#: reproduces what a run recorded without the field did.
FIELDS_ADDED_LATER: dict[str, Any] = {
    "backtrack_after": None,
    "backtracks_per_best": None,
    "search_can_grow": True,
    "racing_z": None,
    "backtrack_shrink": None,
    "final_order": "smallest-first",
}


@dataclass(frozen=True)
class CompressConfig:
    """Everything that decides a compression run (a run record stores it whole).

    Attributes:
        tolerance: allowed val-accuracy loss of the result against the reference (0 = none).
        search_tolerance: allowed tune-accuracy loss of a candidate during the search,
            before adjusting recovers it; the search's constraint.
        solver: a key of :data:`olmp.solvers.SOLVERS`.
        solver_options: the solver's own options (:func:`olmp.solvers.solver_options`),
            e.g. ``{"r": 0.8, "epoch": 2}`` for NCS; empty: the solver's defaults.
        parametrisation: ``keep-ratio`` (log keep fraction per layer) or ``mean-std``.
        popsize: candidates per solver generation.
        search_step: the solver's initial step, as a fraction of each variable's range.
            Small, because each round starts from the incumbent and near it most large
            moves break the accuracy constraint.
        evaluations_per_round: candidate evaluations of one round's search.
        max_rounds: most search-and-adjust rounds.
        patience: stop after this many rounds that did not shrink the network by 1 %.
        backtrack_after: after this many rounds in a row that fail the val rule, go back to
            the best network and halve the search tolerance, so the search takes smaller
            steps from the last network that held its accuracy (``None``: never). Measured
            in BENCHMARKS.md: on fashion-mnist it lifts LeNet-300-100 from 9.3× to 15.1×
            (median of two seeds) in a third of the time; on mnist-5k the median stays.
        backtracks_per_best: how often the run may go back to the same best network; when
            the rounds after the last of them fail the val rule again, the run ends
            (``None``: no limit). Each halving makes the search stricter than tune
            accuracy can measure, and then it keeps weights rather than pruning them: in
            BENCHMARKS.md, unlimited retries spent the last seven of 35 LeNet-5 rounds
            growing the network from 39× back to 1.1×.
        backtrack_shrink: after a backtrack, a round may shrink the network by at most
            this factor: when the search's choice is smaller, the step is shortened along
            the line from the starting network to it (``None``: no limit). For a
            reference that is lucky on val, where the first, large steps all fail the val
            rule and a smaller one may hold it: on two such LeNet-5 / fashion-mnist seeds
            (BENCHMARKS.md) a factor of 2 gave the final phase networks of 2–8× to choose
            from where without it the run kept nothing.
        search_can_grow: let a round's search return a network larger than the one it
            starts from. With ``False`` (the default) the search's accuracy requirement is
            capped at the tune accuracy of the network it starts from, so that network is
            always feasible and a round never grows it: after a backtrack, or when
            retraining has not recovered the tolerance, the search prunes only what keeps
            tune accuracy where it is, instead of re-growing weights towards the reference.
            ``True`` is the paper's constraint alone (relative to the reference).
        racing_z: stop scoring a candidate on the tune split once the part seen puts its
            accuracy more than this many standard errors above or below the search's
            requirement (a sequential test, see
            :func:`olmp.pruning.evaluate.racing_decided`); ``None``: stop only once it
            cannot reach the requirement for certain, so feasibility is decided exactly.
            At the default 3 a LeNet-5 search on fashion-mnist runs 2.2× faster and its
            600 feasibility decisions all agree with the exact ones (BENCHMARKS.md).
        max_evaluations: total candidate evaluation budget (``None``: no limit).
        max_time_s: wall-time budget, in seconds, for the whole run: scoring the reference,
            the rounds and the final phase (``None``: no limit). It is checked between
            candidates of a search and after every training step, so a round is cut short
            when the time is spent (its best candidate so far stands, its retraining stops)
            and the final phase fine-tunes only while time is left. Beyond the limit come
            only the last val score and the result's val and test scores (seconds).
        adjust: how a round retrains: ``finetune`` (masks frozen; the default, because it
            reached smaller networks in our measurements, see BENCHMARKS.md) or ``dns``
            (Dynamic Network Surgery: pruned weights keep learning and can be spliced back).
        adjust_steps: training steps per round; ``adjust_lr`` their peak learning rate.
        mask_update_every: steps between DNS mask updates.
        final_steps: fine-tuning steps with frozen masks at the end; ``final_lr`` their
            peak learning rate.
        final_candidates, final_margin: how many rounds smaller than the best the final
            phase fine-tunes, and how far below the val threshold they may start.
        final_order: which of those rounds the final phase fine-tunes. ``bisect`` (the
            default): the smallest first, then a bisection over the rest by size, so the
            attempts home in on the size where fine-tuning stops holding val wherever it
            lies (:func:`smallest_passing`); ``smallest-first``: the smallest ones in
            order, which spends every attempt on networks far below that size when the
            last rounds overshot it.
        distill: weight of knowledge distillation from the dense reference in every
            retraining (0 turns it off).
        batch_size: training batch size.
        augment_shift: random-shift augmentation (pixels) while retraining; use the
            reference recipe's value (the CLI does).
        prune_biases: mask biases with their layer's threshold too (the paper did).
        include, exclude: name patterns choosing the prunable layers.
        min_keep: smallest keep fraction the ``keep-ratio`` search may give a layer.
        seed: seeds the solver and the training order, per round.
    """

    tolerance: float = 0.0
    search_tolerance: float = 0.02
    solver: str = "ncs"
    solver_options: dict[str, Any] = field(default_factory=dict)
    parametrisation: str = "keep-ratio"
    popsize: int = 10
    search_step: float = 0.02
    evaluations_per_round: int = 300
    max_rounds: int = 60
    patience: int = 8
    backtrack_after: int | None = 3
    backtracks_per_best: int | None = 1
    backtrack_shrink: float | None = 2.0
    search_can_grow: bool = False
    racing_z: float | None = 3.0
    max_evaluations: int | None = None
    max_time_s: float | None = None
    adjust: str = "finetune"
    adjust_steps: int = 500
    adjust_lr: float = 0.01
    mask_update_every: int = 10
    final_steps: int = 1500
    final_lr: float = 0.01
    final_candidates: int = 4
    final_margin: float = 0.01
    final_order: str = "bisect"
    distill: float = 0.0
    batch_size: int = 64
    augment_shift: int = 0
    prune_biases: bool = False
    include: tuple[str, ...] = ("*",)
    exclude: tuple[str, ...] = ()
    min_keep: float = 1e-4
    seed: int = 0

    def __post_init__(self) -> None:
        def check(name: str, ok: bool, allowed: str) -> None:
            if not ok:
                raise OptionError(name, f"must be {allowed}, got {getattr(self, name)!r}")

        def finite(name: str) -> bool:
            value = getattr(self, name)
            return isinstance(value, int | float) and math.isfinite(value)

        check("tolerance", finite("tolerance") and 0 <= self.tolerance < 1, "in [0, 1)")
        check(
            "search_tolerance",
            finite("search_tolerance") and 0 <= self.search_tolerance < 1,
            "in [0, 1)",
        )
        if self.solver not in SOLVERS:
            raise unknown_choice("solver", self.solver, list(SOLVERS))
        if not SOLVERS[self.solver].available():  # fail before a run folder is started
            solver = SOLVERS[self.solver]
            raise OlmpError(
                f"solver {self.solver!r} needs {solver.backend_package}, which is not "
                f"installed: {solver.install_hint()}"
            )
        check_solver_options(self.solver, self.solver_options)
        if self.parametrisation not in PARAMETRISATIONS:
            raise unknown_choice(
                "threshold parametrisation", self.parametrisation, list(PARAMETRISATIONS)
            )
        for name in (
            "popsize",
            "evaluations_per_round",
            "max_rounds",
            "patience",
            "adjust_steps",
            "mask_update_every",
            "batch_size",
        ):
            check(name, getattr(self, name) >= 1, "at least 1")
        for name in ("final_steps", "final_candidates", "augment_shift"):
            check(name, getattr(self, name) >= 0, "at least 0")
        for name in ("adjust_lr", "final_lr"):
            check(name, finite(name) and getattr(self, name) > 0, "a positive number")
        if self.backtrack_after is not None:
            check("backtrack_after", self.backtrack_after >= 1, "at least 1 or None")
        if self.backtrack_shrink is not None:
            check(
                "backtrack_shrink",
                finite("backtrack_shrink") and self.backtrack_shrink > 1,
                "greater than 1 or None",
            )
        if self.backtracks_per_best is not None:
            check("backtracks_per_best", self.backtracks_per_best >= 0, "at least 0 or None")
        if self.max_evaluations is not None:
            check("max_evaluations", self.max_evaluations >= 1, "at least 1 or None")
        if self.max_time_s is not None:
            check(
                "max_time_s",
                finite("max_time_s") and self.max_time_s > 0,
                "a positive number of seconds or None",
            )
        check("search_step", finite("search_step") and 0 < self.search_step <= 1, "in (0, 1]")
        check("final_margin", finite("final_margin") and self.final_margin >= 0, "at least 0")
        check("min_keep", finite("min_keep") and 0 < self.min_keep <= 1, "in (0, 1]")
        if self.final_order not in FINAL_ORDERS:
            raise unknown_choice("final order", self.final_order, list(FINAL_ORDERS))
        if self.adjust not in ADJUST_MODES:
            raise unknown_choice("adjust mode", self.adjust, list(ADJUST_MODES))
        check("distill", finite("distill") and 0 <= self.distill <= 1, "in [0, 1]")
        if self.racing_z is not None:
            check(
                "racing_z",
                finite("racing_z") and self.racing_z > 0,
                "positive, or None for exact decisions",
            )
        check("seed", 0 <= self.seed < 2**31, "in [0, 2**31)")

    def __hash__(self) -> int:
        # Frozen, so hashable like any value; solver_options is a dict, hence by the record.
        return hash(json.dumps(self.to_dict(), sort_keys=True))

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> CompressConfig:
        """Rebuild a config from :meth:`to_dict` output (lists back to tuples).

        A field the record lacks, because it was written before the field existed, gets
        the value that reproduces how such runs behaved (:data:`FIELDS_ADDED_LATER`), not
        today's default: a resumed old run ends as it would have.
        """
        known = {f.name for f in fields(cls)}
        values = {
            k: tuple(v) if isinstance(v, list) else v for k, v in record.items() if k in known
        }
        for name, old_behaviour in FIELDS_ADDED_LATER.items():
            values.setdefault(name, old_behaviour)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The config as JSON-friendly values."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


@dataclass
class RunState:
    """What a run carries from one round to the next (saved after every round)."""

    round: int = 0
    evaluations: int = 0
    elapsed_s: float = 0.0
    stale_rounds: int = 0
    smallest_size: float = 1.0
    failed_rounds: int = 0  # rounds in a row that failed the val rule
    search_tolerance: float | None = None  # the current one, once backtracking halved it
    backtracks_to_best: int = 0  # times the run went back to the current best network
    stop_reason: str | None = None  # which rule or budget ended the rounds
    history: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] = field(default_factory=dict)  # size, val accuracy, round
    final_attempts: list[dict[str, Any]] = field(default_factory=list)
    finished: bool = False


# ---------------------------------------------------------------------------------------
# Small pieces


def masked_score(
    task: Task, model: nn.Module, layers: list[PrunableLayer], masks: Masks, split: str
) -> float:
    """The task's score of ``W ⊙ M`` on ``split``; the model is left unmasked afterwards."""
    apply_masks(layers, masks, straight_through=False)
    try:
        return task.score(model, split)
    finally:
        remove_masks(layers, bake=False)


def adjust(
    model: nn.Module,
    layers: list[PrunableLayer],
    masks: Masks,
    task: Task,
    *,
    steps: int,
    lr: float,
    seed: int,
    thresholds: torch.Tensor | None,
    update_every: int = 10,
    out_of_time: Callable[[], bool] | None = None,
) -> Masks:
    """Retrain ``model`` with ``masks`` through ``task``; returns the masks at the end.

    With ``thresholds`` this is Dynamic Network Surgery (straight-through gradients, masks
    re-derived with hysteresis every ``update_every`` steps); without, plain fine-tuning
    with frozen masks. The model's dense weights are updated in place and left unmasked.
    When ``out_of_time()`` turns true after a step, training stops there.
    """
    dns = thresholds is not None
    apply_masks(layers, masks, straight_through=dns)

    def on_step(step: int) -> None:
        if dns and step % update_every == 0:
            update_masks_with_hysteresis(layers, thresholds)
        if out_of_time is not None and out_of_time():
            raise OutOfTime

    hook = on_step if dns or out_of_time is not None else None
    with contextlib.suppress(OutOfTime):
        task.retrain(model, steps=steps, lr=lr, seed=seed, on_step=hook)
    try:
        return current_masks(layers)
    finally:
        remove_masks(layers, bake=False)


def search_fitness(size: np.ndarray, score: np.ndarray, required: float) -> np.ndarray:
    """The search's objective, to minimise: the kept fraction ``size`` of a candidate whose
    tune ``score`` reaches ``required``, else ``1 + shortfall`` — worse than any feasible
    candidate, yet still telling the solver which infeasible one is closer."""
    return np.where(score >= required, size, 1.0 + np.maximum(required - score, 0.0))


def kept_fraction(param: Parametrisation, total: float, thresholds: torch.Tensor) -> np.ndarray:
    """Fraction of ``total`` weights kept by each row of ``thresholds``."""
    return (param.kept_counts(thresholds).sum(1).double() / total).numpy()


def points_kept_fraction(param: Parametrisation, total: float, z: np.ndarray) -> np.ndarray:
    """Fraction of ``total`` weights kept by each row of ``z`` (points of ``param``)."""
    return kept_fraction(param, total, param.thresholds(z))


def shortened_step(
    size_of: Callable[[np.ndarray], np.ndarray],
    start: np.ndarray,
    end: np.ndarray,
    min_size: float,
    iterations: int = 30,
) -> np.ndarray:
    """``end``, or the point of the segment ``start -> end`` nearest to it whose size is at
    least ``min_size`` (bisection; ``size_of`` maps rows of points to sizes, and ``start``
    must be at least ``min_size``)."""
    if size_of(end[None, :])[0] >= min_size:
        return end
    low, high = 0.0, 1.0  # the size at `low` is >= min_size, at `high` below it
    for _ in range(iterations):
        middle = (low + high) / 2
        if size_of((start + middle * (end - start))[None, :])[0] >= min_size:
            low = middle
        else:
            high = middle
    return start + low * (end - start)


def smallest_passing(
    count: int, attempts: int, passes: Callable[[int], bool], order: str = "bisect"
) -> int | None:
    """The index of the smallest network found to pass, probing at most ``attempts`` of
    ``count`` candidates sorted from the smallest (index 0) up; ``None`` if none passed.

    ``passes(i)`` fine-tunes and checks candidate ``i``. A larger network passes more
    often, so after the smallest fails, ``bisect`` halves the rest: a pass sends it to
    the smaller half, a failure to the larger. ``smallest-first`` tries them in order.
    """
    if order == "smallest-first":
        return next((i for i in range(min(count, attempts)) if passes(i)), None)
    if count == 0 or attempts == 0:
        return None
    if passes(0):
        return 0
    lo, hi, found = 1, count, None
    for _ in range(attempts - 1):
        if lo >= hi:
            break
        mid = (lo + hi) // 2
        if passes(mid):
            found, hi = mid, mid
        else:
            lo = mid + 1
    return found


class OutOfTime(Exception):
    """Raised inside a search or a retraining when ``max_time_s`` is spent, to stop it."""


class DamagedRunFile(OlmpError):
    """A file of a run folder that cannot be read back (named in the message)."""


def read_state_record(path: Path) -> dict[str, Any]:
    """The run state record in ``path`` (``state.json``); :class:`DamagedRunFile` when it
    is truncated or not a run state."""
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DamagedRunFile(f"{path} is damaged ({exc})") from None
    if not isinstance(record, dict) or not {"config", "reference", "state"} <= record.keys():
        raise DamagedRunFile(f"{path} is damaged (not an olmp run state)")
    return record


def snapshot_path(run_dir: Path, key: int | str) -> Path:
    """Where a run folder keeps round ``key``'s network (an int) or the ``final`` one."""
    name = f"round-{key:03d}" if isinstance(key, int) else str(key)
    return Path(run_dir) / "rounds" / f"{name}.safetensors"


def keep_fractions(layers: list[PrunableLayer], masks: Masks) -> np.ndarray:
    """Fraction of each layer's weights that ``masks`` keep."""
    return np.array([r["kept_weights"] / r["total_weights"] for r in layer_counts(layers, masks)])


def split_snapshot(
    tensors: dict[str, torch.Tensor],
) -> tuple[dict[str, torch.Tensor], Masks]:
    """``(state_dict, masks)`` of a round snapshot (keys ``model/...`` and ``mask/...``)."""
    others, masks = split_masks(tensors)
    return {k.removeprefix("model/"): v for k, v in others.items()}, masks


def _size(layers: list[PrunableLayer], masks: Masks) -> float:
    counts = count_kept(layers, masks)
    return counts["kept_weights"] / counts["weights"]


# ---------------------------------------------------------------------------------------
# The run


class Compressor:
    """One OLMP run on ``model`` for ``task``, recorded in ``run_dir`` (optional).

    Every round's network (dense weights and masks) is kept as a snapshot — in memory, and
    with a ``run_dir`` also in ``rounds/round-NNN.safetensors`` — so the final phase can
    walk back from the smallest networks, and a resumed run has the same history.
    Snapshot ``0`` is the reference; it is also the distillation teacher.
    """

    def __init__(
        self,
        model: nn.Module,
        task: Task,
        config: CompressConfig,
        *,
        run_dir: Path | None = None,
        metadata: dict[str, Any] | None = None,
        on_round: Callable[[dict[str, Any], RunState], None] | None = None,
    ) -> None:
        self.model = model
        self.task = task
        self.config = config
        self.run_dir = run_dir
        self.metadata = metadata or {}
        self.on_round = on_round
        self.layers = find_prunable_layers(model, config.include, config.exclude)
        self.masks: Masks = {}
        self.snapshots: dict[int, dict[str, torch.Tensor]] = {}
        self.final: dict[str, torch.Tensor] | None = None  # the fine-tuned result, if any
        self.state = RunState()
        self.reference: dict[str, float] = {}
        self._deadline: float | None = None  # perf_counter() time when max_time_s is spent
        # Identifies the weights the run starts from, so a resume cannot switch them.
        self.reference_sha256 = content_hash(model.state_dict(), {})

    # -- persistence ---------------------------------------------------------------------

    def _snapshot_path(self, key: int | str) -> Path:
        assert self.run_dir is not None
        return snapshot_path(self.run_dir, key)

    def _state_record(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "metadata": self.metadata,
            "reference": self.reference,
            "reference_sha256": self.reference_sha256,
            "state": asdict(self.state),
        }

    def _save_snapshot(self, key: int | str, tensors: dict[str, torch.Tensor]) -> None:
        """Write a snapshot with the run state as it stands, so that a run whose
        ``state.json`` or later snapshots are damaged can resume from this one."""
        if self.run_dir is None:
            return
        record = {"kind": "olmp-round", "run_state": self._state_record()}
        save_checkpoint(self._snapshot_path(key), tensors, record)

    def _save_state(self) -> None:
        """Write the run state; the round snapshots it refers to are already on disk."""
        if self.run_dir is None:
            return
        write_json_atomic(self.run_dir / STATE_JSON, self._state_record())

    def load_state(self) -> None:
        """Continue from the state saved in ``run_dir`` (see :func:`compress` ``resume``).

        When ``state.json`` or a round snapshot is damaged (a crash mid-write on a disk
        without atomic renames, a truncated copy), the run resumes from the last round
        whose snapshots are all intact, with a warning naming the damaged file; rounds
        after it are run again. With no intact round the error names the file.
        """
        assert self.run_dir is not None
        state_file = self.run_dir / STATE_JSON
        try:
            record = read_state_record(state_file)
            self._check_resumable(record)
            self.load_rounds(self.run_dir, record)
        except DamagedRunFile as damaged:
            record = self._last_intact_state(damaged)
            self._check_resumable(record)
            self.load_rounds(self.run_dir, record)
        if self.state.finished and self._snapshot_path("final").is_file():
            try:
                self.final, _ = load_checkpoint(self._snapshot_path("final"), "final snapshot")
            except OlmpError as exc:  # the final phase is run again from the rounds
                record = self._last_intact_state(DamagedRunFile(str(exc)))
                self.load_rounds(self.run_dir, record)
        self._restore(self.snapshots[self.state.round])

    def _check_resumable(self, record: dict[str, Any]) -> None:
        """Refuse to resume with another config or from other reference weights."""
        saved = CompressConfig.from_dict(record["config"])
        if saved != self.config:
            diff = sorted(k for k, v in asdict(saved).items() if getattr(self.config, k) != v)
            raise OlmpError(
                f"cannot resume {self.run_dir}: its config differs from this one in "
                f"{diff}; resume with the same options or start anew with --force"
            )
        recorded = record.get("reference_sha256")
        if recorded is not None and recorded != self.reference_sha256:
            started = record.get("metadata", {}).get("weights", "other weights")
            given = self.metadata.get("weights", "the model given now")
            raise OlmpError(
                f"cannot resume {self.run_dir}: it started from {started}, and the weights "
                f"given now ({given}) are different; resume with the weights it started "
                "from, or start anew with --force"
            )

    def _last_intact_state(self, damaged: DamagedRunFile) -> dict[str, Any]:
        """The run state saved with the last round whose snapshots, and all before it,
        are intact; raises an :class:`OlmpError` naming the damaged file when none is."""
        assert self.run_dir is not None
        record = None
        for r in itertools.count():
            path = self._snapshot_path(r)
            if not path.is_file():
                break
            try:
                _, meta = load_checkpoint(path, "round snapshot")
            except OlmpError:
                break
            if not isinstance(meta.get("run_state"), dict):
                break
            record = meta["run_state"]
        if record is None:
            raise OlmpError(
                f"cannot resume: {damaged}; no intact round to resume from. "
                "Start the run anew with --force"
            ) from None
        round_index = record["state"]["round"]
        warnings.warn(
            f"{damaged}; resuming {self.run_dir} from round {round_index}, the last round "
            "whose files are intact (the rounds after it run again)",
            stacklevel=3,
        )
        return record

    def load_rounds(self, run_dir: Path, record: dict[str, Any] | None = None) -> None:
        """Take the reference scores, run state and round networks recorded in ``run_dir``
        (its ``state.json``, or ``record`` when already read). ``run_dir`` is only read, so
        a finished run can be replayed elsewhere, e.g. its final phase with other settings
        (:meth:`reopen_final_phase`). A damaged snapshot raises :class:`DamagedRunFile`."""
        if record is None:
            record = read_state_record(Path(run_dir) / STATE_JSON)
        try:
            self.reference = record["reference"]
            self.state = RunState(**record["state"])
        except (KeyError, TypeError) as exc:
            raise DamagedRunFile(f"{run_dir}'s run state lacks or garbles {exc}") from None
        self.snapshots = {}
        for r in range(self.state.round + 1):
            try:
                self.snapshots[r], _ = load_checkpoint(snapshot_path(run_dir, r), "round snapshot")
            except OlmpError as exc:
                raise DamagedRunFile(str(exc)) from None
        self._make_teacher()

    # -- small helpers -------------------------------------------------------------------

    def _snapshot(self) -> dict[str, torch.Tensor]:
        """Copies of the current dense weights and masks."""
        tensors = {f"model/{k}": v.detach().clone() for k, v in self.model.state_dict().items()}
        return with_masks(tensors, {k: v.clone() for k, v in self.masks.items()})

    def _restore(self, tensors: dict[str, torch.Tensor]) -> None:
        device = model_device(self.model)
        weights, masks = split_snapshot(tensors)
        self.model.load_state_dict(weights)
        self.masks = {k: v.to(device) for k, v in masks.items()}

    def _make_teacher(self) -> None:
        """The dense reference, frozen, as the distillation teacher of a SplitsTask."""
        if self.config.distill > 0 and isinstance(self.task, SplitsTask):
            teacher = copy.deepcopy(self.model)
            teacher.load_state_dict(split_snapshot(self.snapshots[0])[0])
            self.task.teacher = teacher.eval().requires_grad_(False)

    def _retrain(self, steps: int, lr: float, salt: int, thresholds: torch.Tensor | None) -> None:
        """Retrain the current network in place (DNS with ``thresholds``, else frozen)."""
        self.masks = adjust(
            self.model,
            self.layers,
            self.masks,
            self.task,
            steps=steps,
            lr=lr,
            seed=self.config.seed * 100_003 + salt,
            thresholds=thresholds,
            update_every=self.config.mask_update_every,
            out_of_time=self._out_of_time if self._deadline is not None else None,
        )

    def _start_clock(self) -> float:
        """Start timing a stretch of the run; sets the deadline that ``max_time_s`` leaves."""
        now = time.perf_counter()
        if self.config.max_time_s is not None:
            self._deadline = now + self.config.max_time_s - self.state.elapsed_s
        return now

    def _out_of_time(self) -> bool:
        return self._deadline is not None and time.perf_counter() >= self._deadline

    def _score(self, split: str) -> float:
        """The task's score of the current ``W ⊙ M`` on ``split``."""
        return masked_score(self.task, self.model, self.layers, self.masks, split)

    def _stop_reason(self) -> str | None:
        """The config field whose rule or budget ends the rounds now (``None``: go on)."""
        cfg, s = self.config, self.state
        retries = cfg.backtracks_per_best
        ended = {
            "max_rounds": s.round >= cfg.max_rounds,
            "patience": s.stale_rounds >= cfg.patience,
            "backtracks_per_best": self._backtrack_due()
            and retries is not None
            and s.backtracks_to_best >= retries,
            "max_evaluations": cfg.max_evaluations is not None
            and s.evaluations >= cfg.max_evaluations,
            "max_time_s": cfg.max_time_s is not None and s.elapsed_s >= cfg.max_time_s,
        }
        return next((name for name, now in ended.items() if now), None)

    def _search_tolerance(self) -> float:
        if self.state.search_tolerance is None:
            return self.config.search_tolerance
        return self.state.search_tolerance

    def _val_threshold(self) -> float:
        return self.reference["val_accuracy"] - self.config.tolerance

    # -- the algorithm -------------------------------------------------------------------

    def _search(self, round_index: int) -> tuple[torch.Tensor, dict[str, Any]]:
        """One round's search; returns the chosen thresholds and a summary."""
        cfg = self.config
        abs_weights = [dense_tensor(layer, "weight").detach().abs().cpu() for layer in self.layers]
        options = {"min_keep": cfg.min_keep} if cfg.parametrisation == "keep-ratio" else {}
        param = make_parametrisation(cfg.parametrisation, abs_weights, **options)
        lower, upper = param.bounds()
        start = np.clip(param.encode(keep_fractions(self.layers, self.masks)), lower, upper)
        required = self.reference["tune_accuracy"] - self._search_tolerance()
        scorer = self.task.population_scorer(self.model, self.layers, cfg.prune_biases)
        incumbent, incumbent_accuracy = start[None, :], None
        if not cfg.search_can_grow:  # the starting network must stay feasible
            incumbent_accuracy = scorer(param.thresholds(incumbent))
            required = min(required, float(incumbent_accuracy[0]))
        total = float(sum(layer.n_weights for layer in self.layers))
        best = {"fitness": math.inf, "z": start, "accuracy": float("nan")}

        def fitness(z: np.ndarray, acc: np.ndarray | None = None) -> np.ndarray:
            """Search fitness of the rows of ``z`` (``acc``: their tune scores, if known)."""
            if acc is None and self._out_of_time():
                raise OutOfTime
            thresholds = param.thresholds(z)
            size = kept_fraction(param, total, thresholds)
            if acc is None:
                acc = scorer(thresholds, floor=required)
            values = search_fitness(size, acc, required)
            i = int(np.argmin(values))
            if values[i] < best["fitness"]:
                best.update(fitness=float(values[i]), z=np.array(z[i]), accuracy=float(acc[i]))
            return values

        budget = cfg.evaluations_per_round
        if cfg.max_evaluations is not None:
            budget = min(budget, cfg.max_evaluations - self.state.evaluations)
        # The incumbent first (scored once), so the search never ends worse than it began.
        fitness(incumbent, incumbent_accuracy)
        solver = make_solver(
            cfg.solver,
            lower,
            upper,
            x0=start,
            popsize=cfg.popsize,
            seed=cfg.seed * 1_000 + round_index,
            sigma0=cfg.search_step * (upper - lower),
            **cfg.solver_options,
        )
        cut_short = False
        if budget > 1:
            try:
                solver.minimize(fitness, budget - 1)
            except OutOfTime:  # the best candidate so far stands
                cut_short = True
        self.state.evaluations += max(budget, 1)
        feasible = best["fitness"] <= 1.0
        limit = self._shrink_limit()
        if feasible and limit is not None:
            size_of = functools.partial(points_kept_fraction, param, total)
            start_size = float(size_of(start[None, :])[0])
            z = shortened_step(size_of, start, best["z"], start_size / limit)
            if z is not best["z"]:  # the shortened step's tune accuracy, for the record
                self.state.evaluations += 1
                shortened = param.thresholds(z[None, :])
                size = float(kept_fraction(param, total, shortened)[0])
                best.update(fitness=size, z=z, accuracy=float(scorer(shortened)[0]))
        thresholds = param.thresholds(best["z"][None, :])[0]
        return thresholds, {
            "search_feasible": feasible,
            "search_size": best["fitness"] if feasible else None,
            "search_tune_accuracy": best["accuracy"],
            "search_required_accuracy": required,
            "search_cut_short": cut_short,
        }

    def _shrink_limit(self) -> float | None:
        """The most a round may shrink the network now: ``backtrack_shrink`` once the run
        has backtracked (its search tolerance was halved), otherwise no limit."""
        if self.state.search_tolerance is None:
            return None
        return self.config.backtrack_shrink

    def _backtrack_due(self) -> bool:
        after = self.config.backtrack_after
        return after is not None and self.state.failed_rounds >= after

    def _maybe_backtrack(self) -> int | None:
        """After ``backtrack_after`` rounds in a row that failed val, continue from the best
        network with half the search tolerance; returns the round gone back to."""
        if not self._backtrack_due():
            return None
        best_round = self.state.best["round"]
        self._restore(self.snapshots[best_round])
        self.state.search_tolerance = self._search_tolerance() / 2
        self.state.failed_rounds = 0
        self.state.backtracks_to_best += 1
        # Shrinking is measured from here again, or patience would end the run at once.
        self.state.smallest_size = self.state.best["size"]
        self.state.stale_rounds = 0
        return best_round

    def _consider_best(self, val_acc: float, round_index: int, size: float) -> bool:
        """Make round ``round_index``'s network (``size`` kept) the best if it is feasible
        on val and smaller."""
        if val_acc + 1e-12 < self._val_threshold():
            return False
        if size >= self.state.best.get("size", 1.0 + 1e-9):
            return False
        self.state.best = {"size": size, "val_accuracy": val_acc, "round": round_index}
        return True

    def _start(self) -> None:
        started = self._start_clock()
        self.reference = {
            "tune_accuracy": self.task.score(self.model, "tune"),
            "val_accuracy": self.task.score(self.model, "val"),
            # Reported beside the result's test accuracy; no decision reads it.
            "test_accuracy": self.task.score(self.model, "test"),
        }
        self._warn_if_val_is_small()
        self.masks = magnitude_masks(
            self.layers, torch.zeros(len(self.layers)), self.config.prune_biases
        )
        self.snapshots[0] = self._snapshot()
        self._make_teacher()
        self._consider_best(self.reference["val_accuracy"], 0, _size(self.layers, self.masks))
        self.state.elapsed_s += time.perf_counter() - started  # scoring the reference counts
        self._save_snapshot(0, self.snapshots[0])
        self._save_state()

    def _warn_if_val_is_small(self) -> None:
        """Warn before the rounds when val is too small to see a loss of the tolerance: its
        expected paired standard error is above both the tolerance and one point, so that
        networks losing several points can pass the val rule by luck."""
        examples = self.task.split_size("val")
        if examples is None:
            return
        error = expected_standard_error(self.reference["val_accuracy"], examples)
        if error > max(self.config.tolerance, SMALL_VAL_ERROR):
            warnings.warn(
                f"the val split has only {examples} examples: a change of val accuracy has "
                f"a paired standard error of about {100 * error:.1f} points, more than the "
                f"tolerance of {100 * self.config.tolerance:g} points, so networks that "
                "lose more can pass val by luck; give a larger val split for a result to "
                "trust (test accuracy will show the loss)",
                stacklevel=4,
            )

    def _round(self) -> None:
        cfg = self.config
        started = self._start_clock()
        r = self.state.round + 1
        backtracked_to = self._maybe_backtrack()
        thresholds, summary = self._search(r)
        self.masks = magnitude_masks(self.layers, thresholds, cfg.prune_biases)
        self._retrain(
            cfg.adjust_steps, cfg.adjust_lr, r, thresholds if cfg.adjust == "dns" else None
        )
        val_acc = self._score("val")
        size = _size(self.layers, self.masks)
        improved = self._consider_best(val_acc, r, size)
        if improved:  # a new best earns its own returns
            self.state.backtracks_to_best = 0
        feasible = val_acc + 1e-12 >= self._val_threshold()
        self.state.failed_rounds = 0 if feasible else self.state.failed_rounds + 1
        shrunk = size < 0.99 * self.state.smallest_size
        self.state.stale_rounds = 0 if shrunk else self.state.stale_rounds + 1
        self.state.smallest_size = min(self.state.smallest_size, size)
        self.state.round = r
        self.state.elapsed_s += time.perf_counter() - started
        ratio, ratio_b = compression_ratios(self.layers, self.masks)
        entry = {
            "round": r,
            "size": size,
            "compression_ratio": ratio,
            "compression_ratio_with_biases": ratio_b,
            "val_accuracy": val_acc,
            "keep_fractions": keep_fractions(self.layers, self.masks).tolist(),
            "thresholds": thresholds.tolist(),
            "evaluations": self.state.evaluations,
            "elapsed_s": round(self.state.elapsed_s, 3),
            "new_best": improved,
            "search_tolerance": self._search_tolerance(),
            "backtracked_to": backtracked_to,
            **summary,
        }
        self.state.history.append(entry)
        self.snapshots[r] = self._snapshot()
        self._save_snapshot(r, self.snapshots[r])
        self._save_state()
        if self.on_round is not None:
            self.on_round(entry, self.state)

    def run(self) -> dict[str, Any]:
        """Run (or finish) the compression; returns the result record."""
        if not self.snapshots:
            self._start()
        while not self.state.finished and self._stop_reason() is None:
            self._round()
        if not self.state.finished:
            self.state.stop_reason = self._stop_reason()
            self._finish()
        return self.result()

    def reopen_final_phase(self) -> None:
        """Undo the final phase of a finished run, so that :meth:`run` does it again (with
        this compressor's ``final_*`` settings) from where the rounds ended: the best goes
        back to the smallest round that held the val rule, as the rounds left it."""
        if self._stop_reason() is None:
            raise OlmpError("the rounds of this run did not end; finish the run first")
        self.state.best = {}
        self._consider_best(self.reference["val_accuracy"], 0, 1.0)  # the dense network
        for h in self.state.history:
            self._consider_best(h["val_accuracy"], h["round"], h["size"])
        self.state.final_attempts, self.state.finished, self.final = [], False, None

    def _finish(self) -> None:
        """Fine-tune candidates with frozen masks and keep the smallest that is feasible on
        val; otherwise the loop's best stands.

        Candidates are the rounds smaller than the best so far whose val accuracy is within
        ``final_margin`` of the threshold (fine-tuning recovers about that much); at most
        ``final_candidates`` are fine-tuned, chosen by ``final_order``
        (:func:`smallest_passing`). When none passes, the best itself is fine-tuned and
        kept if that raises its val accuracy.
        """
        cfg = self.config
        started = self._start_clock()
        threshold = self._val_threshold()
        best_size = self.state.best["size"]
        near = [
            h
            for h in self.state.history
            if h["size"] < best_size and h["val_accuracy"] >= threshold - cfg.final_margin
        ]
        candidates = [h["round"] for h in sorted(near, key=lambda h: h["size"])]

        def fine_tune(r: int) -> float:
            self._restore(self.snapshots[r])
            if cfg.final_steps > 0:
                salt = 1_000_000 + len(self.state.final_attempts)
                self._retrain(cfg.final_steps, cfg.final_lr, salt, None)
            return self._score("val")

        def keep(r: int, val_acc: float) -> None:
            size = _size(self.layers, self.masks)
            self.state.best = {
                "size": size,
                "val_accuracy": val_acc,
                "round": r,
                "fine_tuned": True,
            }
            self.final = self._snapshot()
            self._save_snapshot("final", self.final)

        def passes(i: int) -> bool:
            if self._out_of_time():
                raise OutOfTime
            r = candidates[i]
            val_acc = fine_tune(r)
            feasible = val_acc + 1e-12 >= threshold
            self.state.final_attempts.append(
                {"round": r, "val_accuracy": val_acc, "accepted": feasible}
            )
            if feasible:  # a later pass is smaller (see smallest_passing) and replaces it
                keep(r, val_acc)
            return feasible

        try:
            found = smallest_passing(len(candidates), cfg.final_candidates, passes, cfg.final_order)
        except OutOfTime:  # what passed so far is kept
            found = next((a["round"] for a in self.state.final_attempts if a["accepted"]), None)
        best_round = self.state.best["round"]
        if found is None and best_round > 0 and not self._out_of_time():  # round 0: dense
            val_acc = fine_tune(best_round)
            better = val_acc > self.state.best["val_accuracy"]
            self.state.final_attempts.append(
                {"round": best_round, "val_accuracy": val_acc, "accepted": better}
            )
            if better:
                keep(best_round, val_acc)
        self.state.elapsed_s += time.perf_counter() - started
        self.state.finished = True
        self._save_state()

    def _reference_outcomes(self) -> dict[str, np.ndarray] | None:
        """The reference's per-example outcomes on the reported splits, from snapshot 0
        (the reference, unmasked as when the run scored it). ``None`` when the task gives
        none, or, with a warning, when they no longer reproduce the scores recorded at the
        start (other data on a resume, or an evaluation that is not deterministic): no
        change is reported against a reference that the run did not score."""
        self._restore(self.snapshots[0])
        outcomes = reported_outcomes(self.task, self.model)
        for split, values in (outcomes or {}).items():
            recorded = self.reference[f"{split}_accuracy"]
            if abs(float(values.mean()) - recorded) > 1e-9:
                warnings.warn(
                    f"the reference now scores {float(values.mean()):.6g} on {split}, not "
                    f"the {recorded:.6g} recorded when the run started; the result gives "
                    "no paired_change",
                    stacklevel=3,
                )
                return None
        return outcomes

    def _best_tensors(self) -> dict[str, torch.Tensor]:
        if self.state.best.get("fine_tuned") and self.final is not None:
            return self.final
        return self.snapshots[self.state.best["round"]]

    def pruned_model(self) -> nn.Module:
        """The best network with ``W ⊙ M`` baked into its parameters (masks removed)."""
        self._restore(self._best_tensors())
        apply_masks(self.layers, self.masks, straight_through=False)
        remove_masks(self.layers, bake=True)
        return self.model

    def _layer_rows(self) -> list[dict[str, Any]]:
        """Per-layer counts of the result, with the magnitude threshold its round applied
        (0 for the unpruned reference)."""
        rows = layer_counts(self.layers, self.masks)
        best = self.state.best.get("round", 0)
        entry = next((h for h in self.state.history if h["round"] == best), {})
        thresholds = entry.get("thresholds", [0.0] * len(rows))
        return [row | {"threshold": t} for row, t in zip(rows, thresholds, strict=True)]

    def result(self) -> dict[str, Any]:
        """The result record (``result.json``); reads the test split, to report only."""
        reference_outcomes = self._reference_outcomes()
        model = self.pruned_model()
        ratio, ratio_b = compression_ratios(self.layers, self.masks)
        return {
            **self.metadata,
            **describe_environment(),
            "seed": self.config.seed,
            "solver": self.config.solver,
            "config": self.config.to_dict(),
            **self.task.describe(),
            "metric": self.task.metric,
            "compression_ratio": ratio,
            "compression_ratio_with_biases": ratio_b,
            "reference_tune_accuracy": self.reference["tune_accuracy"],
            "reference_val_accuracy": self.reference["val_accuracy"],
            "reference_test_accuracy": self.reference["test_accuracy"],
            "val_accuracy": self.task.score(model, "val"),
            "test_accuracy": self.task.score(model, "test"),
            "paired_change": paired_changes(
                reference_outcomes, reported_outcomes(self.task, model)
            ),
            "rounds": self.state.round,
            "stop_reason": self.state.stop_reason,
            "best_round": self.state.best.get("round"),
            "best_fine_tuned": bool(self.state.best.get("fine_tuned")),
            "evaluations": self.state.evaluations,
            "wall_time_s": round(self.state.elapsed_s, 3),
            "layers": self._layer_rows(),
            "history": self.state.history,
            "final_attempts": self.state.final_attempts,
        }


# ---------------------------------------------------------------------------------------
# Public API


def prepare_run_dir(run_dir: Path, *, resume: bool, force: bool) -> bool:
    """Check ``run_dir`` against ``resume``/``force``; returns whether to resume."""
    if resume and force:
        raise OlmpError("choose one of --resume and --force, not both")
    if run_dir.exists() and not run_dir.is_dir():  # even --force must not delete a file
        raise OlmpError(f"{run_dir} is a file, not a folder; give --out a folder for the run")
    check_writable(run_dir / STATE_JSON, "the run folder's files in")
    exists = run_dir.exists() and any(run_dir.iterdir())
    if resume:
        if not (run_dir / STATE_JSON).is_file():
            raise OlmpError(f"cannot resume: {run_dir} holds no {STATE_JSON} of an olmp run")
        return True
    if exists and not force:
        raise OlmpError(
            f"{run_dir} already exists and is not empty; pass --resume to continue the run "
            "there or --force to start it anew (its olmp files are replaced)"
        )
    return False


def compress(
    model: nn.Module,
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
) -> tuple[nn.Module, dict[str, Any]]:
    """Compress a trained ``model`` with OLMP; returns ``(pruned model, result record)``.

    Args:
        model: any trained ``nn.Module``; its Linear and Conv layers (filtered by
            ``config.include`` / ``config.exclude``) are pruned in place.
        splits: the data; the search checks accuracy on ``splits.tune``, the result is
            chosen on ``splits.val``, ``splits.test`` is only reported. Build one from
            your own tensors or loaders with :func:`olmp.data.splits_from_tensors` or
            :func:`olmp.data.splits_from_loaders`.
        config: the run's settings (:class:`CompressConfig`); defaults when ``None``.
        evaluate, train: instead of ``splits``, your own functions (see
            :class:`olmp.task.CallableTask`): ``evaluate(model, split) -> float`` for
            ``split`` in ``"tune"``, ``"val"``, ``"test"`` (higher is better), and
            optionally ``train(model, *, steps, lr, seed, on_step)``. The config's
            ``batch_size``, ``augment_shift`` and ``distill`` then do not apply.
        task: any :class:`olmp.task.Task`, for full control (instead of the above).
        run_dir: folder for the run record, resumable state, pruned checkpoint and plot.
        resume: continue the interrupted run in ``run_dir``.
        force: start anew in a non-empty ``run_dir``.
        metadata: extra fields for the run record (model name, dataset, ...).
        on_round: called with each round's history entry and the run state.

    The pruned model has ``W ⊙ M`` in its parameters. Result fields include
    ``compression_ratio`` (weights only), ``compression_ratio_with_biases``,
    ``reference_val_accuracy``, ``val_accuracy``, ``reference_test_accuracy``,
    ``test_accuracy``, ``paired_change`` (per split, val and test: the change against the
    reference with its paired standard error and the counts of examples now right and
    now wrong; ``None`` with your own ``evaluate``) and ``layers`` (per-layer totals and
    kept counts).

    Example:
        >>> import olmp
        >>> model, splits, _ = olmp.load_weights("ref.safetensors")  # doctest: +SKIP
        >>> pruned, result = olmp.compress(model, splits, run_dir="runs/r1")  # doctest: +SKIP
        >>> result["compression_ratio"]  # doctest: +SKIP
    """
    config = config or CompressConfig()
    path = Path(run_dir) if run_dir is not None else None
    model_name = (metadata or {}).get("model", type(model).__name__)
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise OlmpError(f"model {model_name!r} holds NaN or infinite values in {name}")
    task = _make_task(splits, evaluate, train, task, config)
    task.check(model, model_name)
    compressor = Compressor(model, task, config, run_dir=path, metadata=metadata, on_round=on_round)
    if path is not None:
        resuming = prepare_run_dir(path, resume=resume, force=force)
        path.mkdir(parents=True, exist_ok=True)
        if resuming:
            compressor.load_state()
        else:
            for stale in (STATE_JSON, RESULT_JSON, PRUNED_CHECKPOINT, PLOT_PNG):
                (path / stale).unlink(missing_ok=True)
            shutil.rmtree(path / "rounds", ignore_errors=True)
    result = compressor.run()
    pruned = compressor.model  # result() has baked the best network's W ⊙ M into it
    if path is not None:
        write_run_outputs(path, pruned, compressor.masks, result)
    return pruned, result


def _make_task(
    splits: DatasetSplits | None,
    evaluate: Callable[[nn.Module, str], float] | None,
    train: Callable[..., None] | None,
    task: Task | None,
    config: CompressConfig,
) -> Task:
    """The one task that ``compress``'s data arguments describe."""
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
    if train is not None and evaluate is None:
        raise OlmpError("train= needs evaluate= beside it (splits= brings its own training)")
    if task is not None:
        return task
    if evaluate is not None:
        return CallableTask(evaluate, train)
    return splits_task(splits, config)


def splits_task(splits: DatasetSplits, config: CompressConfig) -> SplitsTask:
    """The task of a run on ``splits``, retraining and scoring as ``config`` says."""
    return SplitsTask(
        splits,
        batch_size=config.batch_size,
        augment_shift=config.augment_shift,
        distill=config.distill,
        racing_z=config.racing_z,
    )


def write_run_outputs(
    run_dir: Path, pruned: nn.Module, masks: Masks, result: dict[str, Any]
) -> None:
    """The pruned checkpoint (``W ⊙ M`` plus masks), the plot and ``result.json``
    (written last: its presence means the run finished)."""
    from olmp.report import plot_history

    tensors = with_masks(pruned.state_dict(), masks)
    meta_keys = (
        "model",
        "dataset",
        "split_seed",
        "compression_ratio",
        "val_accuracy",
        "test_accuracy",
    )
    save_checkpoint(
        run_dir / PRUNED_CHECKPOINT,
        tensors,
        {k: result.get(k) for k in meta_keys}
        | {k: result[k] for k in ("model_options",) if result.get(k)}  # tuned-cnn's spec
        | {"kind": "olmp-pruned"},
    )
    plot_history(result, run_dir / PLOT_PNG)
    write_json_atomic(run_dir / RESULT_JSON, result)


def read_result(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The result record of the finished run in ``run_dir``; :class:`OlmpError` when there
    is none."""
    run_dir = Path(run_dir)
    if not (run_dir / RESULT_JSON).is_file():
        if run_dir.is_file():
            raise OlmpError(f"{run_dir} is a file; give the folder of an olmp compress run")
        if not run_dir.is_dir():
            raise OlmpError(f"run folder {run_dir} does not exist")
        unfinished = (run_dir / STATE_JSON).is_file()
        raise OlmpError(
            f"{run_dir} holds no finished olmp run (no {RESULT_JSON})"
            + ("; finish it with `olmp compress ... --resume`" if unfinished else "")
        )
    try:
        return json.loads((run_dir / RESULT_JSON).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise OlmpError(f"{run_dir / RESULT_JSON} is not a readable run record: {exc}") from None


def load_run(
    run_dir: str | os.PathLike[str],
) -> tuple[dict[str, Any], dict[str, torch.Tensor], Masks]:
    """``(result record, pruned state_dict, masks)`` of the finished run in ``run_dir``.

    The state_dict holds ``W ⊙ M``; masks are keyed by parameter name. Raises
    :class:`OlmpError` when ``run_dir`` holds no finished run.
    """
    result = read_result(run_dir)
    tensors, _ = load_checkpoint(Path(run_dir) / PRUNED_CHECKPOINT)
    state_dict, masks = split_masks(tensors)
    return result, state_dict, masks
