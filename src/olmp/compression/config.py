"""What decides a compression run: :class:`CompressConfig` (stored whole in the run
record) and :class:`RunState`, what a run carries from one round to the next.

Each config field is declared once, with its command-line option (:func:`option`):
``olmp compress`` builds its options from these declarations, so a flag, its help and
its default cannot drift from the field. The loop's fixed rules (backtracking, the final
phase) are not options; they are :class:`~olmp.compression.compressor.Compressor`'s
class attributes, each with its measured reason.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from olmp.errors import OlmpError, OptionError, is_integer, unknown_choice
from olmp.pruning.thresholds import PARAMETRISATIONS
from olmp.solvers import SOLVERS, check_solver_options
from olmp.training import TrainConfig

ADJUST_MODES = ("dns", "finetune")
FALLBACK_BATCH_SIZE = 64  # retraining batch when the reference's recipe is not known
#: Retraining steps per round (``adjust_steps=None``) at the least, and under fairness
#: constraints, whose primal-dual retraining starts its Lagrange multipliers at 0 every round
#: and needs longer to settle them: with 500 steps (batch 64, about 1.3 epochs of Adult) the
#: rounds of a ``dp <= 0.05`` run ended about 0.4 val points below FNNC's reference and
#: overshot the bound (dp 0.03 against an aim of 0.035), so at tolerance 0 every seed kept
#: the reference (benchmarks/fair.py compress at bb93f39, references trained at dp <= 0.05;
#: BENCHMARKS.md in git at a753e0c).
ADJUST_STEPS = 500
CONSTRAINED_ADJUST_STEPS = 2000
#: A round retrains at least one epoch of the train split: 500 steps of 64 images are 16
#: epochs of mnist-5k's 2,000 train images, where the 500 were measured, but 0.6 of an epoch
#: of fashion-mnist's 50,000, where runs then kept less at both tolerances (medians of three
#: seeds: 12.5x against 17.0x at tolerance 0; BENCHMARKS.md, LeNet-300-100 / fashion-mnist).
MIN_EPOCHS_PER_ROUND = 1
#: The fields whose ``None`` leaves them to the run's context (:meth:`CompressConfig.resolved`):
#: a resume takes them from the run's record, the context as it was reckoned when it started.
CONTEXT_FIELDS = ("augment_shift", "batch_size", "adjust_steps")
#: CompressConfig fields added after runs were already being recorded, with the value that
#: reproduces what a run recorded without the field did.
FIELDS_ADDED_LATER: dict[str, Any] = {"racing_z": None}
#: Fields renamed since runs were recorded: old name -> new name.
FIELDS_RENAMED = {"max_time_s": "time_limit"}
#: Option groups of ``olmp compress --help``, in order.
OPTION_GROUPS = ("search", "budget", "retraining", "layers")
#: The budgets a resume may change, as :func:`olmp.tune.tune`'s may: they only say when the
#: rounds end. A larger one continues a finished run's rounds (its final phase runs again).
RESUMABLE_BUDGETS = ("max_rounds", "patience", "max_evaluations", "time_limit")
#: What a field of each annotation (a string: annotations are postponed) may hold, and how
#: an error says it; ``X | None`` also takes ``None``.
FIELD_TYPES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "int": (lambda v: isinstance(v, numbers.Integral) and not isinstance(v, bool), "an integer"),
    "float": (lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool), "a number"),
    "str": (lambda v: isinstance(v, str), "a string"),
    "bool": (lambda v: isinstance(v, bool), "True or False"),
    "dict[str, Any]": (lambda v: isinstance(v, dict), "a mapping"),
    "tuple[str, ...]": (
        lambda v: isinstance(v, tuple) and all(isinstance(x, str) for x in v),
        "a tuple of strings",
    ),
    "list[dict[str, Any]]": (
        lambda v: isinstance(v, list) and all(isinstance(x, dict) for x in v),
        "a list of mappings",
    ),
}


def type_problem(value: Any, annotation: str) -> str | None:
    """Why ``value`` cannot be a field annotated ``annotation`` (a key of
    :data:`FIELD_TYPES`, optionally ``| None``), or ``None`` when it can."""
    base = annotation.removesuffix(" | None")
    optional = base != annotation
    fits, words = FIELD_TYPES[base]
    if (optional and value is None) or fits(value):
        return None
    return f"must be {words}{' or None' if optional else ''}, got {value!r}"


def option(
    help: str,
    group: str = "search",
    *,
    metavar: str | None = None,
    zero_means_none: bool = False,
) -> dict[str, Any]:
    """A field's command-line option, as field metadata: ``--name-with-dashes``, ``help``,
    its ``group`` (one of :data:`OPTION_GROUPS`); ``zero_means_none``: 0 on the command
    line means ``None`` (no limit)."""
    assert group in OPTION_GROUPS, group
    return {"help": help, "group": group, "metavar": metavar, "zero_means_none": zero_means_none}


def flag(name: str) -> str:
    """The command-line flag of config field ``name``: ``max_rounds`` -> ``--max-rounds``;
    ``solver_options`` -> ``--solver-option`` (repeated, one option each)."""
    return "--solver-option" if name == "solver_options" else "--" + name.replace("_", "-")


@dataclass(frozen=True)
class CompressConfig:
    """Everything a user decides about a compression run (a run record stores it whole).

    Attributes:
        tolerance: allowed val-accuracy loss of the result against the reference (0 = none),
            subtracted from the reference's score: with your own ``evaluate`` it is in that
            metric's units, so return fractions (0.95, not 95 %).
        search_tolerance: allowed tune-accuracy loss of a candidate during the search,
            before adjusting recovers it; the search's constraint (units as ``tolerance``).
        solver: a key of :data:`olmp.solvers.SOLVERS`.
        solver_options: the solver's own options (:func:`olmp.solvers.solver_options`),
            e.g. ``{"r": 0.8, "epoch": 2}`` for NCS; empty: the solver's defaults.
        parametrisation: ``keep-ratio`` (log keep fraction per layer) or ``mean-std``.
        popsize: candidates per solver generation.
        search_step: the solver's initial step, as a fraction of each variable's range.
            Small, because each round starts from the incumbent and near it most large
            moves break the accuracy constraint.
        min_keep: smallest keep fraction the ``keep-ratio`` search may give a layer.
        racing_z: stop scoring a candidate on the tune split once the part seen puts its
            accuracy more than this many standard errors above or below the search's
            requirement (a sequential test, see
            :func:`olmp.pruning.evaluate.racing_decided`); ``None``: stop only once it
            cannot reach the requirement for certain, so feasibility is decided exactly.
            At the default 3 a LeNet-5 search on fashion-mnist runs 2.2× faster and its
            600 feasibility decisions all agree with the exact ones (BENCHMARKS.md).
        seed: seeds the solver and the training order, per round.
        evaluations_per_round: candidate evaluations of one round's search.
        max_rounds: most search-and-adjust rounds.
        patience: stop after this many rounds that did not shrink the network by 1 %.
        max_evaluations: total candidate evaluation budget (``None``: no limit).
        time_limit: wall-time budget, in seconds, for the whole run: scoring the reference,
            the rounds and the final phase (``None``: no limit). It is checked between
            candidates of a search and after every training step, so a round is cut short
            when the time is spent (its best candidate so far stands, its retraining stops)
            and the final phase fine-tunes only while time is left. Beyond the limit come
            only the last val score and the result's val and test scores (seconds).
        adjust: how a round retrains: ``finetune`` (masks frozen; the default, because it
            reached smaller networks in our measurements, see BENCHMARKS.md) or ``dns``
            (Dynamic Network Surgery: pruned weights keep learning and can be spliced back).
        adjust_steps: training steps per round (``None``, the default: one epoch of the
            train split, at least 500, and at least 2,000 under fairness constraints, see
            :data:`MIN_EPOCHS_PER_ROUND`, :data:`CONSTRAINED_ADJUST_STEPS`; 500 / 2,000 when
            :func:`compress` is given ``task=`` or ``evaluate=``, no train split); ``adjust_lr``
            their peak learning rate.
        final_steps: fine-tuning steps with frozen masks at the end; ``final_lr`` their
            peak learning rate.
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
    """

    tolerance: float = field(
        default=0.0,
        metadata=option("allowed val-accuracy loss as a fraction, 0.005 = half a point"),
    )
    search_tolerance: float = field(
        default=0.02,
        metadata=option("allowed tune-accuracy loss of a candidate before retraining"),
    )
    solver: str = field(default="ncs", metadata=option(", ".join(SOLVERS)))
    solver_options: dict[str, Any] = field(default_factory=dict)  # --solver-option
    parametrisation: str = field(default="keep-ratio", metadata=option(", ".join(PARAMETRISATIONS)))
    popsize: int = field(default=10, metadata=option("candidates per solver generation"))
    search_step: float = field(
        default=0.02,
        metadata=option("the solver's first step, as a fraction of each variable's range"),
    )
    min_keep: float = field(
        default=1e-4,
        metadata=option("smallest keep fraction the keep-ratio search may give a layer"),
    )
    racing_z: float | None = field(
        default=3.0,
        metadata=option(
            "stop scoring a candidate once the tune samples seen put it Z standard errors "
            "above or below the search's requirement (0: only once it cannot pass, so every "
            "decision is exact)",
            metavar="Z",
            zero_means_none=True,
        ),
    )
    seed: int = field(default=0, metadata=option("solver and training seed"))
    evaluations_per_round: int = field(
        default=300, metadata=option("candidates per search", "budget")
    )
    max_rounds: int = field(default=60, metadata=option("most search-and-retrain rounds", "budget"))
    patience: int = field(
        default=8, metadata=option("stop after N rounds without shrinking by 1 %", "budget")
    )
    max_evaluations: int | None = field(
        default=None, metadata=option("total candidate evaluations", "budget")
    )
    time_limit: float | None = field(
        default=None,
        metadata=option(
            "wall-time limit of the whole run, final phase included", "budget", metavar="SECONDS"
        ),
    )
    adjust: str = field(
        default="finetune",
        metadata=option("retraining between searches: finetune or dns", "retraining"),
    )
    adjust_steps: int | None = field(
        default=None,
        metadata=option(
            f"retraining steps per round (default: one epoch of the train split, at least "
            f"{ADJUST_STEPS}; at least {CONSTRAINED_ADJUST_STEPS} under fairness constraints)",
            "retraining",
        ),
    )
    adjust_lr: float = field(
        default=0.01, metadata=option("peak learning rate of a round's retraining", "retraining")
    )
    final_steps: int = field(
        default=1500, metadata=option("fine-tuning steps at the end", "retraining")
    )
    final_lr: float = field(
        default=0.01, metadata=option("peak learning rate of the final fine-tuning", "retraining")
    )
    batch_size: int | None = field(
        default=None,
        metadata=option(
            "retraining batch size (default: the checkpoint's training recipe, 64 when it "
            "records none)",
            "retraining",
        ),
    )
    augment_shift: int | None = field(
        default=None,
        metadata=option(
            "random-shift augmentation while retraining (default: the checkpoint's training "
            "recipe, 0 when it records none)",
            "retraining",
            metavar="PIXELS",
        ),
    )
    prune_biases: bool = field(default=False, metadata=option("mask biases too", "layers"))
    include: tuple[str, ...] = field(
        default=("*",),
        metadata=option(
            "glob patterns (fnmatch: *, ?, [..]) of the layer names to prune, e.g. 'fc*' for "
            "a model of your own (the built-in ones are Sequentials: lenet-300-100's layers "
            "are 1, 3 and 5)",
            "layers",
            metavar="PATTERN",
        ),
    )
    exclude: tuple[str, ...] = field(
        default=(),
        metadata=option(
            "glob patterns of layer names to leave dense, e.g. '5' (lenet-300-100's last)",
            "layers",
            metavar="PATTERN",
        ),
    )

    def __post_init__(self) -> None:
        for f in fields(self):  # types first: the checks below compare values
            value = getattr(self, f.name)
            if isinstance(value, list) and f.type == "tuple[str, ...]":  # a list will do
                object.__setattr__(self, f.name, value := tuple(value))
            problem = type_problem(value, str(f.type))
            if problem is not None:
                raise OptionError(f.name, problem)
            # numpy's scalars pass as numbers, but neither JSON nor the range checks take them.
            base = str(f.type).removesuffix(" | None")
            if value is not None and base in ("int", "float") and type(value) not in (int, float):
                object.__setattr__(self, f.name, int(value) if base == "int" else float(value))

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
        engine = {"popsize", "sigma0"} & set(self.solver_options)  # olmp tune takes them so
        if engine:
            raise OlmpError(
                f"solver option {sorted(engine)[0]!r}: the population size and step size are "
                "this config's popsize and search_step (--popsize, --search-step)"
            )
        check_solver_options(self.solver, self.solver_options)
        if self.parametrisation not in PARAMETRISATIONS:
            raise unknown_choice(
                "threshold parametrisation", self.parametrisation, list(PARAMETRISATIONS)
            )
        try:  # the solver's least, in the words of the option given
            SOLVERS[self.solver].check_popsize(self.popsize)
        except OlmpError:
            least = SOLVERS[self.solver].min_popsize
            check("popsize", False, f"an integer >= {least} for solver {self.solver}")
        for name in ("evaluations_per_round", "max_rounds", "patience"):
            check(name, getattr(self, name) >= 1, "at least 1")
        if self.adjust_steps is not None:
            check("adjust_steps", self.adjust_steps >= 1, "at least 1, or None for the default")
        if self.batch_size is not None:
            check("batch_size", self.batch_size >= 1, "at least 1, or None for the recipe's")
        check("final_steps", self.final_steps >= 0, "at least 0")
        if self.augment_shift is not None:
            check("augment_shift", self.augment_shift >= 0, "at least 0, or None for the recipe's")
        for name in ("adjust_lr", "final_lr"):
            check(name, finite(name) and getattr(self, name) > 0, "a positive number")
        if self.max_evaluations is not None:
            check("max_evaluations", self.max_evaluations >= 1, "at least 1 or None")
        if self.time_limit is not None:
            check(
                "time_limit",
                finite("time_limit") and self.time_limit > 0,
                "a positive number of seconds or None",
            )
        check("search_step", finite("search_step") and 0 < self.search_step <= 1, "in (0, 1]")
        # keep-ratio searches down to log10(min_keep): 1 would leave it no room (mean-std
        # runs do not read it and may have recorded 1, once allowed)
        unread = self.parametrisation != "keep-ratio" and self.min_keep == 1
        check("min_keep", finite("min_keep") and (0 < self.min_keep < 1 or unread), "in (0, 1)")
        if self.adjust not in ADJUST_MODES:
            raise unknown_choice("adjust mode", self.adjust, list(ADJUST_MODES))
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
        today's default; renamed fields are read under their new names. Fields that are
        no longer options (the loop's rules, distillation) are ignored: such a run
        resumes under today's rules.
        """
        known = {f.name for f in fields(cls)}
        renamed = {FIELDS_RENAMED.get(k, k): v for k, v in record.items()}
        values = {
            k: tuple(v) if isinstance(v, list) else v for k, v in renamed.items() if k in known
        }
        for name, old_behaviour in FIELDS_ADDED_LATER.items():
            values.setdefault(name, old_behaviour)
        return cls(**values)

    def resolved(
        self,
        recipe: TrainConfig | dict[str, Any] | None,
        *,
        constrained: bool = False,
        train_size: int | None = None,
    ) -> CompressConfig:
        """This config with the options left to the run's context (``None``) filled in: the
        batch size and shift from the reference's training ``recipe`` (a
        :class:`~olmp.training.TrainConfig` or its dict, as checkpoints record it), or
        their fallbacks (batch 64, no shift); the steps per round: one epoch of the
        ``train_size`` rows retraining draws from (unknown: ``None``), at least 500, or
        2,000 when the run is ``constrained`` (fairness constraints;
        :data:`CONSTRAINED_ADJUST_STEPS`)."""
        recipe = _recipe_dict(recipe)
        shift, batch, steps = self.augment_shift, self.batch_size, self.adjust_steps
        if batch is None:
            batch = recipe.get("batch_size", FALLBACK_BATCH_SIZE)
        if steps is None and is_integer(batch) and batch >= 1:  # else replace() names it
            epoch = math.ceil(MIN_EPOCHS_PER_ROUND * (train_size or 0) / batch)
            steps = max(CONSTRAINED_ADJUST_STEPS if constrained else ADJUST_STEPS, epoch)
        return replace(
            self,
            augment_shift=int(recipe.get("max_shift", 0)) if shift is None else shift,
            batch_size=batch,
            adjust_steps=steps,
        )

    def continuing(self, recorded: CompressConfig) -> CompressConfig:
        """This config for a resume of a run that recorded ``recorded``: the options left to
        the context (``None``, :data:`CONTEXT_FIELDS`) take the run's values, so that the run
        goes on as it started even where the context is reckoned otherwise now (a run
        recorded at 500 steps a round, before rounds retrained at least an epoch)."""
        kept = {k: getattr(recorded, k) for k in CONTEXT_FIELDS if getattr(self, k) is None}
        return replace(self, **kept)

    def to_dict(self) -> dict[str, Any]:
        """The config as JSON-friendly values."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def _recipe_dict(recipe: object) -> dict[str, Any]:
    """``recipe`` as a dict, or an error: a wrong dict (a checkpoint's whole metadata, a
    misspelt key) would otherwise be read as "no recipe" and silently change the
    retraining. Other keys may come along (``olmp tune`` records its optimiser's)."""
    if recipe is None:
        return {}
    if isinstance(recipe, TrainConfig):
        return recipe.to_dict()
    if not isinstance(recipe, dict):
        raise OlmpError(
            f"recipe must be a TrainConfig or its dict (a checkpoint's metadata['recipe']), "
            f"got a {type(recipe).__name__}"
        )
    if "recipe" in recipe:
        raise OlmpError("recipe= takes a checkpoint's metadata['recipe'], not its whole metadata")
    known = sorted(f.name for f in fields(TrainConfig))
    if recipe and not set(recipe) & set(known):
        raise OlmpError(
            f"recipe has none of a training recipe's keys ({', '.join(known)}); got "
            f"{', '.join(map(str, recipe))}"
        )
    return recipe


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

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> RunState:
        """Rebuild a state from :func:`dataclasses.asdict` output (a field it lacks keeps
        its default); :class:`OptionError` naming a field that is unknown, of the wrong
        type, or a negative round."""
        annotations = {f.name: str(f.type) for f in fields(cls)}
        for name, value in record.items():
            if name not in annotations:
                raise OptionError(name, "is not a field of a run state")
            problem = type_problem(value, annotations[name])
            if problem is not None:
                raise OptionError(name, problem)
        if record.get("round", 0) < 0:
            raise OptionError("round", f"must be at least 0, got {record['round']}")
        return cls(**record)
