"""Negatively Correlated Search (Tang, Yang & Yao, IEEE JSAC 34(3), 2016; arXiv:1504.04914).

NCS runs ``N`` (1+1) searches side by side. Search ``i`` is the Gaussian
``N(x_i, diag(sigma_i**2))``. In every generation each search draws one child
``x'_i = x_i + sigma_i * N(0, I)`` and keeps it instead of ``x_i`` when

    lambda * C'_i > F'_i,

where, with ``f*`` the best fitness seen so far (this generation's children included),

    F'_i = (f(x'_i) - f*) / ((f(x_i) - f*) + (f(x'_i) - f*))    # how bad the child is
    C'_i = Corr(p'_i) / (Corr(p_i) + Corr(p'_i))                 # how different it is

``Corr(p)`` is the smallest Bhattacharyya distance from the Gaussian ``p`` to the other
searches' Gaussians (``p_i`` is the parent's, ``p'_i`` the same Gaussian centred on the
child) and ``lambda ~ N(1, lambda_sigma)`` with ``lambda_sigma`` annealed linearly from its
initial value (0.1) to 0 over the run. So a child may replace its parent while being worse,
if it moves the search away from the others; this is what keeps the searches apart on
multimodal functions. Every ``epoch`` generations each ``sigma_i`` follows the 1/5 rule:
divided by ``r`` (0.99) when more than a fifth of its children were accepted in the epoch,
multiplied by ``r`` when fewer.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from olmp.dfo.solvers.base import Option, Solver, clip_into_box
from olmp.dfo.solvers.checks import integer, one_of, optional, real

#: The named settings: ``adaptive`` (the default) fits N, ``epoch`` and ``r`` to the
#: planned run; ``paper`` is Tang, Yang & Yao's N = 10, epoch = N, r = 0.99.
PRESETS = ("adaptive", "paper")
PAPER_POPSIZE = 10
PAPER_R = 0.99
#: How far the 1/5 rule can shrink a step over an adaptive run (every epoch a failure).
ADAPTIVE_SHRINK = 1e-6


def adaptive_settings(budget: int, dim: int) -> tuple[int, int, float]:
    """``(N, epoch, r)`` of the ``adaptive`` preset for a run of ``budget`` evaluations.

    The paper's settings suit runs of hundreds of thousands of evaluations: with r = 0.99
    per epoch of N = 10 generations, a step changes by a few per cent within 100
    evaluations per variable (BENCHMARKS.md, "NCS's step-size rule"). Here each search gets
    as many generations as the budget allows: N = budget / (50 dim), between 4 and 10; the
    1/5 rule runs every 2 generations, with r such that a step could shrink by
    :data:`ADAPTIVE_SHRINK` over the run, kept in [0.8, 0.99].
    """
    n = int(min(PAPER_POPSIZE, max(4, budget // (50 * dim))))
    epoch = 2
    updates = max(1.0, budget / n / epoch)
    r = float(min(PAPER_R, max(0.8, ADAPTIVE_SHRINK ** (1.0 / updates))))
    return n, epoch, r


def normalised_fitness(f_parent: np.ndarray, f_child: np.ndarray, f_best: float) -> np.ndarray:
    """NCS's normalised child fitness ``F'`` in ``[0, 1]`` (0: the child is the best so far).

    ``f_best`` must not exceed any finite value given. Cases the formula leaves open:

    * parent and child both equal ``f_best`` (zero denominator): 0.5, neither is worse, so
      diversity alone decides;
    * non-finite child (failed evaluation): 1 against a finite parent, 0.5 against a
      non-finite one;
    * finite child against a non-finite parent: 0.
    """
    f_parent = np.asarray(f_parent, dtype=float)
    f_child = np.asarray(f_child, dtype=float)
    child_ok = np.isfinite(f_child)
    parent_ok = np.isfinite(f_parent)
    both_ok = child_ok & parent_ok
    with np.errstate(invalid="ignore", divide="ignore"):
        above_parent = f_parent - f_best
        above_child = f_child - f_best
        denominator = above_parent + above_child
        ratio = np.where(denominator > 0, above_child / denominator, 0.5)
    return np.select(
        [both_ok, child_ok & ~parent_ok, ~child_ok & parent_ok],
        [ratio, 0.0, 1.0],
        default=0.5,
    )


def normalised_diversity(corr_parent: np.ndarray, corr_child: np.ndarray) -> np.ndarray:
    """NCS's normalised child diversity ``C'`` in ``[0, 1]``; 0.5 when both distances are 0."""
    corr_parent = np.asarray(corr_parent, dtype=float)
    corr_child = np.asarray(corr_child, dtype=float)
    denominator = corr_parent + corr_child
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, corr_child / denominator, 0.5)


def nearest_bhattacharyya(
    means: np.ndarray,
    variances: np.ndarray,
    owners: np.ndarray,
    ref_means: np.ndarray,
    ref_variances: np.ndarray,
) -> np.ndarray:
    """Smallest Bhattacharyya distance from each Gaussian to the reference Gaussians.

    All Gaussians have diagonal covariance. Row ``m`` of ``means``/``variances`` belongs to
    search ``owners[m]``, whose own reference Gaussian is left out of the minimum.
    """
    diff = means[:, None, :] - ref_means[None, :, :]
    var_mean = 0.5 * (variances[:, None, :] + ref_variances[None, :, :])
    mahalanobis = 0.125 * np.sum(diff * diff / var_mean, axis=-1)
    # ln(det S / sqrt(det S1 det S2)) summed per coordinate, in logs for stability.
    log_det = np.sum(
        np.log(var_mean)
        - 0.5 * (np.log(variances)[:, None, :] + np.log(ref_variances)[None, :, :]),
        axis=-1,
    )
    distance = mahalanobis + 0.5 * log_det
    distance[np.arange(len(owners)), owners] = np.inf
    return distance.min(axis=1)


class NCS(Solver):
    """Negatively Correlated Search: ``popsize`` parallel (1+1) searches kept apart.

    Args:
        lower, upper, x0, sigma0, popsize, seed, space: See
            :class:`~olmp.dfo.solvers.base.Solver`.
            ``popsize`` is the number of searches ``N`` (default 10, at least 2 because
            diversity is measured against the other searches).
        max_evaluations: Planned length of the run, over which ``lambda_sigma`` is annealed
            to 0. If ``None``, :meth:`minimize` uses its budget; with plain ask/tell and no
            value, ``lambda_sigma`` stays at its initial value (no annealing).
        epoch: Generations between step-size updates; by default set by ``preset``.
        r: Step-size factor of the 1/5 rule, in (0, 1] (1 turns adaptation off); by default
            set by ``preset``.
        lambda_sigma: Initial standard deviation of ``lambda``; default 0.1.
        preset: ``"adaptive"`` (default): ``popsize`` (when not given), ``epoch`` and ``r``
            fit the planned run length (``max_evaluations``, else the budget of
            :meth:`minimize` or of a study), see :func:`adaptive_settings`; with no run
            length known they are the paper's. ``"paper"``: N = 10, epoch = N, r = 0.99,
            the settings of Tang, Yang & Yao, which ``olmp.solvers.make_solver`` (the
            compressor's) keeps as its default.

    Choices where the paper leaves room:

    * The first :meth:`ask` returns the initial searches: ``x0`` and ``popsize - 1`` points
      drawn from ``N(x0, sigma0**2)``. Later asks return one child per search (a search
      whose start point was not yet told re-offers that point instead).
    * Children (and start points) leaving the box are clipped onto its faces, as in the
      other solvers, so an optimum on a bound (e.g. "do not prune this layer") is reached
      exactly rather than only approached.
    * All replacement decisions of a generation compare against the parents as they were
      at the start of that generation, so the outcome does not depend on the row order;
      one ``lambda`` is drawn per generation.
    * A child with non-finite fitness never replaces a parent with finite fitness.
    * The 1/5 rule counts a replacement as a success (a child can be accepted for its
      diversity, so this is not the same as "better than its parent"), divided by the
      children that search actually had evaluated in the epoch (partial tells evaluate fewer).
    * ``sigma_i = s_i * sigma0`` keeps the per-coordinate shape of ``sigma0``; the 1/5 rule
      scales ``s_i``.
    """

    name = "ncs"
    summary = "Negatively Correlated Search (Tang, Yang & Yao 2016), parallel (1+1) searches"
    supports = "real (int/cat rounded); batch = popsize >= 2; constraints: penalty"
    min_popsize = 2
    options: ClassVar[dict[str, Option]] = {
        "max_evaluations": Option(None, integer(1, optional=True), "planned run length"),
        "epoch": Option(None, integer(1, optional=True), "generations per step update"),
        "r": Option(None, optional(real(0.0, 1.0, open_low=True)), "1/5-rule factor"),
        "lambda_sigma": Option(0.1, real(0.0), "initial spread of lambda"),
        "preset": Option("adaptive", one_of(*PRESETS), "adaptive or paper defaults"),
    }

    def _default_popsize(self) -> int:
        self._auto_popsize = True  # the adaptive preset may pick another, see _settle
        return PAPER_POPSIZE

    def _setup(self) -> None:
        self._auto_popsize = getattr(self, "_auto_popsize", False)
        #: Times a child replaced its parent, over the whole run.
        self.n_replacements = 0
        #: Generations of children told so far.
        self.generation = 0
        self._horizon = self.max_evaluations
        # f* of the replacement rule: the least fitness this search was told. It is
        # best_f, except with constraints folded into fitness (best_f is then the raw
        # fitness of the least violating candidate).
        self._f_star = math.inf
        self._parents: np.ndarray | None = None  # drawn at the first ask (see _settle)
        if self.preset == "paper" or self._horizon is not None:
            self._settle()

    def _settle(self) -> None:
        """Fix N, ``epoch`` and ``r`` (now that the run length is known, if it is) and draw
        the start points."""
        if self._parents is not None:
            return
        if self.preset == "adaptive" and self._horizon is not None:
            n, epoch, r = adaptive_settings(self._horizon, self.dim)
            if self._auto_popsize:
                self.popsize = n
            self.epoch = self.epoch or epoch
            self.r = self.r or r
        self.epoch = self.epoch or self.popsize  # the paper's, also without a known budget
        self.r = self.r or PAPER_R
        starts = self.x0 + self.sigma0 * self.rng.standard_normal((self.popsize, self.dim))
        starts[0] = self.x0
        self._parents = clip_into_box(starts, self.lower, self.upper)
        # NaN marks a start point whose fitness has not been told yet.
        self._parent_f = np.full(self.popsize, np.nan)
        self._scale = np.ones(self.popsize)
        self._accepted = np.zeros(self.popsize, dtype=int)
        self._tried = np.zeros(self.popsize, dtype=int)

    @property
    def parents(self) -> np.ndarray:
        """Current centres ``x_i`` of the searches, shape ``(popsize, dim)`` (a copy)."""
        self._settle()
        assert self._parents is not None
        return self._parents.copy()

    @property
    def sigmas(self) -> np.ndarray:
        """Current step sizes ``sigma_i``, shape ``(popsize, dim)``."""
        return self._scale[:, None] * self.sigma0[None, :]

    def current_lambda_sigma(self) -> float:
        """``lambda_sigma`` annealed linearly to 0 over the planned run length."""
        if self._horizon is None:
            return self.lambda_sigma
        progress = min(1.0, self.n_evaluations / self._horizon)
        return self.lambda_sigma * (1.0 - progress)

    def _plan(self, budget: int) -> None:
        if self.max_evaluations is None:
            self._horizon = self.n_evaluations + budget

    def _ask(self) -> np.ndarray:
        self._settle()
        assert self._parents is not None
        children = self._parents + self.sigmas * self.rng.standard_normal(self._parents.shape)
        children = clip_into_box(children, self.lower, self.upper)
        untold = np.isnan(self._parent_f)
        return np.where(untold[:, None], self._parents, children)

    def _tell(self, candidates: np.ndarray, fitness: np.ndarray) -> None:
        self._f_star = min(self._f_star, float(fitness.min()))
        rows = np.arange(candidates.shape[0])
        starting = np.isnan(self._parent_f[rows])
        self._parent_f[rows[starting]] = fitness[starting]
        # The told rows, not the internal start points: they differ where ask() rounded
        # integer or categorical coordinates.
        self._parents[rows[starting]] = candidates[starting]
        if starting.all():
            return
        self._select(rows[~starting], candidates[~starting], fitness[~starting])
        self.generation += 1
        if self.generation % self.epoch == 0:
            self._adapt_steps()

    def _select(self, idx: np.ndarray, children: np.ndarray, f_children: np.ndarray) -> None:
        """Apply the NCS replacement rule to the children of searches ``idx``."""
        variances = self.sigmas**2
        corr_parent = nearest_bhattacharyya(
            self._parents[idx], variances[idx], idx, self._parents, variances
        )
        corr_child = nearest_bhattacharyya(children, variances[idx], idx, self._parents, variances)
        f_parent = self._parent_f[idx]
        bad_fitness = normalised_fitness(f_parent, f_children, self._f_star)
        diversity = normalised_diversity(corr_parent, corr_child)
        lam = 1.0 + self.current_lambda_sigma() * self.rng.standard_normal()
        accept = lam * diversity > bad_fitness
        # A failed evaluation carries no information about the child; keep the parent.
        accept &= np.isfinite(f_children) | ~np.isfinite(f_parent)

        chosen = idx[accept]
        self._parents[chosen] = children[accept]
        self._parent_f[chosen] = f_children[accept]
        self._accepted[idx] += accept
        self._tried[idx] += 1
        self.n_replacements += int(accept.sum())

    def _adapt_steps(self) -> None:
        """The 1/5 success rule with factor ``r``, applied once per epoch."""
        tried = self._tried > 0
        rate = np.divide(self._accepted, self._tried, out=np.zeros(self.popsize), where=tried)
        self._scale[tried & (rate > 0.2)] /= self.r
        self._scale[tried & (rate < 0.2)] *= self.r
        self._accepted[:] = 0
        self._tried[:] = 0
