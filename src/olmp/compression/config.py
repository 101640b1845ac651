"""What decides a compression run: :class:`CompressConfig` (stored whole in the run
record) and :class:`RunState`, what a run carries from one round to the next."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from olmp.errors import OlmpError, OptionError, unknown_choice
from olmp.pruning.thresholds import PARAMETRISATIONS
from olmp.solvers import SOLVERS, check_solver_options
from olmp.training import TrainConfig

ADJUST_MODES = ("dns", "finetune")
FINAL_ORDERS = ("bisect", "smallest-first")
FALLBACK_BATCH_SIZE = 64  # retraining batch when the reference's recipe is not known
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
        batch_size, augment_shift: the retraining's batch size and random-shift
            augmentation (pixels). ``None`` (the default): the reference's own training
            recipe (``recipe=`` of :func:`compress`, which the CLI reads from the
            checkpoint), else 64 and 0 — so a network is retrained as it was trained, and
            the CLI, the Python API and the demo make the same run from the same file.
            The learning rates are OLMP's own (``adjust_lr``, ``final_lr``): a pruned
            network's retraining is gentler than training from scratch (higher rates
            measured worse, BENCHMARKS.md).
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
    batch_size: int | None = None
    augment_shift: int | None = None
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
        ):
            check(name, getattr(self, name) >= 1, "at least 1")
        if self.batch_size is not None:
            check("batch_size", self.batch_size >= 1, "at least 1, or None for the recipe's")
        for name in ("final_steps", "final_candidates"):
            check(name, getattr(self, name) >= 0, "at least 0")
        if self.augment_shift is not None:
            check("augment_shift", self.augment_shift >= 0, "at least 0, or None for the recipe's")
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

    def with_recipe(self, recipe: TrainConfig | dict[str, Any] | None) -> CompressConfig:
        """This config with the options left to the reference's training recipe
        (``None``) taken from ``recipe`` (a :class:`~olmp.training.TrainConfig` or its
        dict, as checkpoints record it), or their fallbacks (batch 64, no shift)."""
        if isinstance(recipe, TrainConfig):
            recipe = recipe.to_dict()
        recipe = recipe or {}
        shift = self.augment_shift
        batch = self.batch_size
        return replace(
            self,
            augment_shift=int(recipe.get("max_shift", 0)) if shift is None else shift,
            batch_size=int(recipe.get("batch_size", FALLBACK_BATCH_SIZE))
            if batch is None
            else batch,
        )

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
