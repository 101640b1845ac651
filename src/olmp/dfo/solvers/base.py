"""The solver interface and the machinery every solver shares.

A solver minimises a function of ``dim`` bounded continuous variables through an ask/tell
loop: :meth:`Solver.ask` proposes a population of candidates (one per row), the caller
evaluates them however it likes (in one batched pass, on a GPU, ...), and
:meth:`Solver.tell` hands the fitness values back. Lower fitness is better.

Conventions shared by all solvers (enforced here, once):

* Configuration is validated in the constructor; bad input raises
  :class:`~olmp.errors.OlmpError` naming the bad value and what is allowed.
* Every row returned by :meth:`~Solver.ask` lies inside ``[lower, upper]``.
* ``tell`` receives the rows of the latest ``ask`` in the same order, or only the first
  ``k`` of them (a partial population, e.g. when the evaluation budget runs out).
* Fitness ``NaN`` and ``+inf`` are accepted and mean "as bad as it gets" (a failed
  evaluation); ``-inf`` is rejected because no minimisation can make sense of it.
* The same ``seed`` gives the same sequence of populations.

Two optional hooks widen the problem without changing the default above:

* ``space``: one kind per variable, ``"real"`` (the default), ``"integer"`` or
  ``"categorical"`` (choices numbered ``lower..upper``). Bounds of the non-real variables
  must be integers. Every asked row has those coordinates rounded to integers; a solver
  whose backend handles a kind natively (:attr:`Solver.native_kinds`) proposes integers
  itself, the others propose reals and the rounding is all they get (categorical variables
  are then treated as ordered, which they are not).
* ``tell(candidates, fitness, constraints)``: ``m`` constraint values per candidate, each
  satisfied when ``<= 0``. Solvers with native support (:attr:`Solver.native_constraints`)
  receive them as such; the others are told the penalised fitness
  ``fitness + constraint_penalty * sum(max(c, 0))``. Best-so-far prefers the smallest
  total violation, then the smallest fitness, for every solver.

A solver's own options are declared as data (``options = {"r": Option(0.99, check)}``,
see :mod:`olmp.dfo.solvers.checks`): the one constructor here stores and checks them, so no
solver repeats it. What the engine (:mod:`olmp.dfo`) needs to know is declared beside them:
:attr:`Solver.kind_handling`, :attr:`Solver.native_constraints`,
:attr:`Solver.native_fidelities`, :attr:`Solver.parallel_asks`,
:attr:`Solver.order_dependent` and :attr:`Solver.sampler`.

Solvers whose library is an optional extra say so through :meth:`Solver.available` and
raise :class:`~olmp.errors.OlmpError` with the ``pip install`` line when built without it.
"""

from __future__ import annotations

import abc
import importlib
import importlib.util
import math
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike

from olmp.closing import Closing
from olmp.dfo.solvers.checks import (
    Option,
    as_vector,
    check_fitness,
    check_float,
    check_int,
    check_options,
    is_numeric,
)
from olmp.errors import OlmpError

__all__ = ["VARIABLE_KINDS", "Option", "Solver", "check_float", "check_int", "clip_into_box"]

#: What :meth:`Solver.minimize` evaluates: a batch ``(k, dim)`` in, ``k`` fitness values out.
BatchObjective = Callable[[np.ndarray], ArrayLike]

#: Default initial step as a fraction of the box width, per coordinate.
DEFAULT_SIGMA_FRACTION = 0.2

#: Kinds of variable a ``space`` may name.
VARIABLE_KINDS = ("real", "integer", "categorical")


def clip_into_box(x: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Project points onto the box ``[lower, upper]`` coordinate by coordinate."""
    return np.clip(x, lower, upper)


class Solver(Closing, abc.ABC):
    """Base class of the derivative-free minimisers: ask for candidates, tell their fitness.

    Args:
        lower: Lower bound of every variable (1-D, finite).
        upper: Upper bound of every variable (same length, strictly greater than ``lower``).
        x0: Starting point, inside the box; defaults to the box centre (rounded for
            integer and categorical variables).
        sigma0: Initial step size in the variables' own units, a scalar or one value per
            variable; defaults to ``0.2 * (upper - lower)``.
        popsize: Candidates per :meth:`ask`; ``None`` picks the solver's default. Solvers
            with :attr:`variable_batch` return at most this many; solvers with a
            :attr:`fixed_popsize` validate the value and use their own.
        seed: Seed of the solver's private random generator (``numpy.random.default_rng``).
        space: Kind of each variable (see :data:`VARIABLE_KINDS`); ``None`` means all real.

    Subclasses implement :meth:`_ask` and :meth:`_tell`; bounds, validation, best-so-far
    tracking, the constraint fold and the :meth:`minimize` loop live here.
    """

    #: Registry key, e.g. ``"ncs"``.
    name: ClassVar[str]
    #: One line saying what the method is.
    summary: ClassVar[str] = ""
    #: What the adapter handles: variables, batches, constraints (for listings).
    supports: ClassVar[str] = ""
    #: Module imported to run the solver (``None``: numpy only).
    backend: ClassVar[str | None] = None
    #: Distribution that provides :attr:`backend` and its licence, e.g. ``"optuna (MIT)"``.
    backend_package: ClassVar[str] = ""
    #: Optional extra of olmp that installs the backend (``None``: a core dependency).
    extra: ClassVar[str | None] = None
    #: Smallest population the method can work with.
    min_popsize: ClassVar[int] = 1
    #: Population size the method always uses, whatever ``popsize`` says (``None``: any).
    fixed_popsize: ClassVar[int | None] = None
    #: Whether :meth:`ask` may return fewer than ``popsize`` rows (at least one).
    variable_batch: ClassVar[bool] = False
    #: Variable kinds the backend handles itself (the others are rounded, see above).
    native_kinds: ClassVar[frozenset[str]] = frozenset({"real"})
    #: Whether constraint values reach the backend (else they are folded into fitness).
    native_constraints: ClassVar[bool] = False
    #: Weight of the total violation in the penalised fitness of the constraint fold.
    constraint_penalty: float = 1e6
    #: The solver's own options (beyond the common arguments), declared as data.
    options: ClassVar[dict[str, Option]] = {}
    #: How the engine (:mod:`olmp.dfo`) treats each kind of variable for this solver.
    kind_handling: ClassVar[dict[str, str]] = {
        "real": "native (unit box)",
        "log-real": "native (unit box in log scale)",
        "integer": "rounded (one cell of the unit box per value)",
        "categorical": "one-hot, arg-max (unordered)",
        "conditional": "inactive variables ignored",
    }
    #: Whether results at a cheaper fidelity are told as such (``False``: told alike).
    native_fidelities: ClassVar[bool] = False
    #: How many trials may be out at once in the engine, in words.
    parallel_asks: ClassVar[str] = "popsize"
    #: Whether the trials a study asks depend on the order results come back in.
    order_dependent: ClassVar[bool] = False
    #: Which engine sampler runs the solver on a space (see :func:`olmp.dfo.sampler.make_sampler`).
    sampler: ClassVar[str] = "box"

    def __init__(
        self,
        lower: ArrayLike,
        upper: ArrayLike,
        *,
        x0: ArrayLike | None = None,
        sigma0: float | ArrayLike | None = None,
        popsize: int | None = None,
        seed: int = 0,
        space: Sequence[str] | None = None,
        **options: Any,
    ) -> None:
        # First, so that a missing optional library is what the user hears about.
        self._backend = self.import_backend()
        self.lower = as_vector("lower", lower)
        self.upper = as_vector("upper", upper)
        if self.lower.size != self.upper.size:
            raise OlmpError(
                f"lower and upper must have the same length, got {self.lower.size} "
                f"and {self.upper.size}"
            )
        bad = np.flatnonzero(self.lower >= self.upper)
        if bad.size:
            i = int(bad[0])
            raise OlmpError(
                f"lower must be < upper in every coordinate; coordinate {i} has "
                f"lower={self.lower[i]} >= upper={self.upper[i]}"
            )
        self.dim: int = int(self.lower.size)
        #: Kind of every variable, one of :data:`VARIABLE_KINDS`.
        self.kinds: tuple[str, ...] = self._check_space(space)
        self._integral = np.array([kind != "real" for kind in self.kinds])

        if x0 is None:
            self.x0 = self._round(0.5 * (self.lower + self.upper))
        else:
            self.x0 = as_vector("x0", x0)
            if self.x0.size != self.dim:
                raise OlmpError(
                    f"x0 must have {self.dim} values (one per bound), got {self.x0.size}"
                )
            outside = np.flatnonzero((self.x0 < self.lower) | (self.x0 > self.upper))
            if outside.size:
                i = int(outside[0])
                raise OlmpError(
                    f"x0 must lie inside the bounds; x0[{i}]={self.x0[i]} is outside "
                    f"[{self.lower[i]}, {self.upper[i]}]"
                )
            fractional = np.flatnonzero(self._integral & (self.x0 != np.round(self.x0)))
            if fractional.size:
                i = int(fractional[0])
                raise OlmpError(
                    f"x0[{i}]={self.x0[i]} must be a whole number: variable {i} is {self.kinds[i]}"
                )

        self.sigma0 = self._check_sigma0(sigma0)
        if popsize is None:
            popsize = self._default_popsize()
        self.popsize = self.check_popsize(popsize)
        if self.fixed_popsize is not None:
            self.popsize = self.fixed_popsize
        self.seed = check_int("seed", seed, 0)
        self.rng = np.random.default_rng(self.seed)

        #: Number of fitness values told so far.
        self.n_evaluations = 0
        #: Constraint values per candidate, fixed by the first tell (0: unconstrained).
        self.n_constraints: int | None = None
        self._best_x: np.ndarray | None = None
        self._best_f = math.inf
        self._best_violation = math.inf
        self._best_constraints: np.ndarray | None = None
        self._asked: np.ndarray | None = None
        for key, value in check_options(self.name, self.options, options).items():
            setattr(self, key, value)
        self._setup()

    def _setup(self) -> None:
        """Called at the end of the constructor, options set: build the solver's state."""
        return None

    def _check_space(self, space: Sequence[str] | None) -> tuple[str, ...]:
        if space is None:
            return ("real",) * self.dim
        if isinstance(space, str) or not isinstance(space, Sequence):
            raise OlmpError(
                f"space must be a sequence of {self.dim} kinds ({', '.join(VARIABLE_KINDS)}), "
                f"got {space!r}"
            )
        kinds = tuple(space)
        if len(kinds) != self.dim:
            raise OlmpError(f"space must name one kind per variable ({self.dim}), got {len(kinds)}")
        for i, kind in enumerate(kinds):
            if kind not in VARIABLE_KINDS:
                raise OlmpError(
                    f"space[{i}] is {kind!r}; a variable kind is one of: "
                    f"{', '.join(VARIABLE_KINDS)}"
                )
            for name, bound in (("lower", self.lower), ("upper", self.upper)):
                if kind != "real" and bound[i] != round(bound[i]):
                    raise OlmpError(
                        f"{name}[{i}]={bound[i]} must be a whole number: variable {i} is {kind}"
                    )
        return kinds

    def _check_sigma0(self, sigma0: float | ArrayLike | None) -> np.ndarray:
        if sigma0 is None:
            return DEFAULT_SIGMA_FRACTION * (self.upper - self.lower)
        sigma = np.asarray(sigma0, dtype=float) if is_numeric(sigma0) else None
        if sigma is None or sigma.ndim > 1 or (sigma.ndim == 1 and sigma.size != self.dim):
            raise OlmpError(
                f"sigma0 must be a positive number or {self.dim} positive numbers, got {sigma0!r}"
            )
        sigma = np.broadcast_to(sigma, (self.dim,)).copy()
        bad = np.flatnonzero(~(np.isfinite(sigma) & (sigma > 0)))
        if bad.size:
            i = int(bad[0])
            raise OlmpError(f"sigma0 must be positive and finite; sigma0[{i}] is {sigma[i]}")
        return sigma

    def _default_popsize(self) -> int:
        """Population size used when the caller passes ``popsize=None``."""
        return 10

    def _round(self, x: np.ndarray) -> np.ndarray:
        """``x`` with its integer and categorical coordinates rounded to whole numbers."""
        if not self._integral.any():
            return x
        return np.where(self._integral, np.round(x), x)

    @classmethod
    def check_popsize(cls, popsize: object) -> int:
        """``popsize`` if the method can work with it, else an error naming its least: the
        one rule for the solver, a search's options and the compressor's config, so that a
        bad value stops before a run folder is written."""
        return check_int(f"popsize of {cls.__name__}", popsize, cls.min_popsize)

    # -- optional backends --------------------------------------------------------------

    @classmethod
    def available(cls) -> bool:
        """Whether the solver's backend library is installed (without importing it)."""
        return cls.backend is None or importlib.util.find_spec(cls.backend) is not None

    @classmethod
    def install_hint(cls) -> str:
        """The command that installs the backend, e.g. ``pip install 'olmp[tpe]'``."""
        return f"pip install 'olmp[{cls.extra}]'" if cls.extra else "pip install olmp"

    @classmethod
    def import_backend(cls) -> ModuleType | None:
        """Import the backend, or raise OlmpError saying which extra installs it."""
        if cls.backend is None:
            return None
        try:
            return importlib.import_module(cls.backend)
        except ImportError as error:
            raise OlmpError(
                f"solver {cls.name!r} needs {cls.backend_package}, which is not installed: "
                f"{cls.install_hint()}"
            ) from error

    # -- public API -------------------------------------------------------------------

    @property
    def best_x(self) -> np.ndarray | None:
        """Best candidate told so far (a copy), ``None`` before the first :meth:`tell`."""
        return None if self._best_x is None else self._best_x.copy()

    @property
    def best_f(self) -> float:
        """Fitness of :attr:`best_x`; ``inf`` before the first :meth:`tell`."""
        return self._best_f

    @property
    def best_violation(self) -> float:
        """Total constraint violation of :attr:`best_x` (0: feasible or unconstrained)."""
        return self._best_violation if self._best_x is not None else math.inf

    def ask(self) -> np.ndarray:
        """Propose the next population, an array of shape ``(popsize, dim)`` inside the box.

        Solvers with :attr:`variable_batch` may return fewer rows (at least one). Asking
        again before telling discards the untold population (solvers that cannot take a
        proposal back offer it again; their docstrings say so).
        """
        population = np.asarray(self._ask(), dtype=float)
        rows = population.shape[0] if population.ndim == 2 else -1
        rows_ok = 1 <= rows <= self.popsize if self.variable_batch else rows == self.popsize
        if not rows_ok or population.shape[1] != self.dim:  # a bug in a subclass
            expected = f"(1..{self.popsize}, {self.dim})" if self.variable_batch else None
            raise RuntimeError(
                f"{type(self).__name__}._ask returned shape {population.shape}, "
                f"expected {expected or (self.popsize, self.dim)}"
            )
        if not np.isfinite(population).all():  # NaN would later fail tell() as "other rows"
            raise RuntimeError(f"{type(self).__name__}._ask returned NaN or infinite values")
        # Guard against round-off a hair outside the box; solvers already stay inside.
        population = self._round(clip_into_box(population, self.lower, self.upper))
        self._asked = population
        return population.copy()

    def tell(
        self, candidates: ArrayLike, fitness: ArrayLike, constraints: ArrayLike | None = None
    ) -> None:
        """Report the fitness of the last population (lower is better).

        Args:
            candidates: The rows returned by the latest :meth:`ask`, in the same order, or
                only its first ``k`` rows when not all were evaluated.
            fitness: ``k`` values. ``NaN`` and ``+inf`` mean a failed or worst-possible
                evaluation; ``-inf`` is not allowed.
            constraints: Optional ``(k, m)`` values (``(k,)`` for ``m = 1``), each satisfied
                when ``<= 0``; ``NaN`` counts as violated without limit. The first tell
                fixes ``m`` (none: 0) for the rest of the run.
        """
        if self._asked is None:
            raise OlmpError("tell() needs a population from ask() first (one tell per ask)")
        rows = np.asarray(candidates, dtype=float)
        n_asked = self._asked.shape[0]
        if rows.ndim != 2 or rows.shape[1] != self.dim or not 1 <= rows.shape[0] <= n_asked:
            raise OlmpError(
                f"candidates must have shape (k, {self.dim}) with 1 <= k <= {n_asked} "
                f"(the rows returned by ask()), got shape {rows.shape}"
            )
        k = rows.shape[0]
        if not np.array_equal(rows, self._asked[:k]):
            raise OlmpError(
                "candidates must be the rows returned by the last ask(), in the same order "
                f"(or its first k rows); the {k} rows given differ from them"
            )
        values = check_fitness(fitness, k)
        limits = self._check_constraints(constraints, k)
        violation = np.zeros(k) if limits is None else np.maximum(limits, 0.0).sum(axis=1)
        self._asked = None
        self.n_constraints = 0 if limits is None else limits.shape[1]
        self.n_evaluations += k
        i = int(np.lexsort((values, violation))[0])  # least violation, then least fitness
        # `best_x is None` also records something when every value told is +inf, so that
        # best_x is a real candidate after the first tell.
        better = (violation[i], values[i]) < (self._best_violation, self._best_f)
        if better or self._best_x is None:
            self._best_f = float(values[i])
            self._best_violation = float(violation[i])
            self._best_x = rows[i].copy()
            self._best_constraints = None if limits is None else limits[i].copy()
        self._tell_constrained(rows, values, limits)

    def minimize(self, f: BatchObjective, budget: int) -> tuple[np.ndarray, float]:
        """Run ask/evaluate/tell until ``budget`` evaluations have been spent.

        Args:
            f: Evaluates a batch ``(k, dim)`` and returns ``k`` fitness values.
            budget: Number of evaluations to spend in this call (>= 1). It is never
                exceeded: the last population is cut to the budget left and told partially.

        Returns:
            ``(best_x, best_f)``, the best candidate told so far (over all calls).
        """
        budget = check_int("budget", budget, 1)
        self._plan(budget)
        spent = 0
        while spent < budget:
            batch = self.ask()[: budget - spent]
            self.tell(batch, f(batch))
            spent += batch.shape[0]
        assert self._best_x is not None  # at least one evaluation was told
        return self._best_x.copy(), self._best_f

    def plan(self, budget: int) -> None:
        """Say how many evaluations the run will spend (what :meth:`minimize` does itself):
        solvers with a schedule over the run use it when none was configured."""
        self._plan(check_int("budget", budget, 1))

    def close(self) -> None:
        """Release what the backend holds (threads, temporary files); idempotent.

        Solvers that hold nothing do nothing. A closed solver must not be asked again.
        """
        return None

    # -- hooks for subclasses ------------------------------------------------------------

    def _plan(self, budget: int) -> None:
        """Called by :meth:`minimize` with the evaluations it is about to spend.

        Solvers with a schedule over the run (NCS anneals a parameter) use it as the run
        length when none was configured; the default ignores it.
        """
        return None

    @abc.abstractmethod
    def _ask(self) -> np.ndarray:
        """Return the next population, shape ``(popsize, dim)``, inside the box."""

    @abc.abstractmethod
    def _tell(self, candidates: np.ndarray, fitness: np.ndarray) -> None:
        """Learn from the first ``k`` rows of the last population.

        ``fitness`` is already validated: shape ``(k,)``, ``NaN`` replaced by ``+inf``, no
        ``-inf``. Best-so-far and :attr:`n_evaluations` are already updated. With
        constraints and no native support, ``fitness`` is the penalised fitness.
        """

    def _tell_constrained(
        self, candidates: np.ndarray, fitness: np.ndarray, constraints: np.ndarray | None
    ) -> None:
        """Learn from a tell with its constraint values ``(k, m)`` (``None``: none told).

        The default folds the constraints into the fitness (see the module docstring) and
        calls :meth:`_tell`; solvers with :attr:`native_constraints` override this.
        """
        if constraints is not None:
            violation = np.maximum(constraints, 0.0).sum(axis=1)
            with np.errstate(invalid="ignore"):  # inf * 0 cannot happen: penalty > 0
                fitness = fitness + self.constraint_penalty * violation
        self._tell(candidates, fitness)

    def _check_constraints(self, constraints: ArrayLike | None, k: int) -> np.ndarray | None:
        expected = self.n_constraints
        if constraints is None:
            if expected:
                raise OlmpError(
                    f"constraints must be told with every population once told: {expected} "
                    "values per candidate, as in the first tell"
                )
            return None
        try:
            values = np.asarray(constraints, dtype=float)
        except (TypeError, ValueError) as error:
            raise OlmpError(f"constraints must be numbers, got {constraints!r}") from error
        if values.ndim == 1:
            values = values[:, None]
        if values.ndim != 2 or values.shape[0] != k or values.shape[1] == 0:
            raise OlmpError(
                f"constraints must have shape ({k}, m) or ({k},), one row per candidate "
                f"told, got shape {np.shape(constraints)}"
            )
        if expected is not None and values.shape[1] != expected:
            told = f"{expected} values per candidate" if expected else "no constraints"
            raise OlmpError(
                f"constraints must keep the shape of the first tell ({told}), got "
                f"{values.shape[1]} per candidate"
            )
        return np.where(np.isnan(values), np.inf, values)
