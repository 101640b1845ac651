"""The model-based block attack (Ughi, Abrol & Tanner, "An empirical study of derivative-free
optimization algorithms for targeted black-box attacks in deep neural networks", 2021).

The pixels of each block of a coarse grid move together, ``2 x 2`` blocks per channel at first,
refined ``4 x 4``, ``8 x 8``, ... up to one block per pixel (and then kept there). At each
grid, the blocks are visited in an order drawn at random without replacement, with weights
proportional to the block's local variation (``order="variance"``, the study's choice) or
uniformly (``order="random"``, its ablation), in batches of about 20 block variables. As in
the study, a block's local variation is measured at the grid's own resolution, on the image
as perturbed so far: the standard deviation of the mean values of its (up to) eight
neighbouring blocks in the same channel. Edges and texture weigh most; flat background gets a
hundredth of the smallest non-zero weight, so it comes late in the order.

Each pixel may take the values of its feasible interval ``[max(x0 - ε, 0), min(x0 + ε, 1)]``
(the ε-ball within the pixel box). A block's variable ``t`` in ``[0, 1]`` puts all of its
pixels at the same fraction ``t`` of their own intervals, as the study's bounds do: every
value of ``t`` moves every pixel. (A perturbation ``δ`` in ``[-ε, ε]`` clipped to the box
would be flat over half its range at a black or white pixel, most of an MNIST image.) Each
batch is optimised by a solver of the engine (:mod:`olmp.dfo.solvers`) for about ``1.3``
evaluations per variable. The model-based solvers (``cobyqa``, the default, and ``bobyqa``)
are run with linear models (``n + 1`` interpolation points), as in the study. Optionally
(``snap=True``) the batch's result is snapped to the ends of the intervals when that is
better (one query).

Any engine solver can optimise the batches (``solver="cmaes"``, ...): its populations are
scored in one forward pass each.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from olmp.attack.oracle import Oracle
from olmp.dfo.solvers import solver_class

#: The solvers whose interpolation models are made linear here (d + 1 points: about 1.3
#: evaluations per variable leave no room for the 2d + 1 of a quadratic model).
MODEL_BASED = ("cobyqa", "bobyqa")
#: The solver of the block batches when none is named.
DEFAULT_SOLVER = "cobyqa"


def grid_edges(size: int, n: int) -> np.ndarray:
    """The cut points of ``n`` (at most ``size``) near-equal intervals of ``range(size)``."""
    return np.unique(np.linspace(0, size, min(n, size) + 1).astype(int))


def grid_blocks(h: int, w: int, n: int) -> list[tuple[slice, slice]]:
    """The ``n x n`` grid of blocks over an ``h x w`` image (at most one block per pixel),
    row by row."""
    return [
        (slice(r0, r1), slice(c0, c1))
        for r0, r1 in itertools.pairwise(grid_edges(h, n))
        for c0, c1 in itertools.pairwise(grid_edges(w, n))
    ]


def local_variation(x: np.ndarray, n: int) -> np.ndarray:
    """Per block of the ``n x n`` grid over ``x`` (``C x H x W``; channel by channel, then
    as :func:`grid_blocks` lists them): the standard deviation of the mean values of its
    neighbouring blocks, the eight around it (fewer at the border), in the same channel."""
    rows, cols = grid_edges(x.shape[1], n), grid_edges(x.shape[2], n)
    sums = np.add.reduceat(np.add.reduceat(x, rows[:-1], axis=1), cols[:-1], axis=2)
    means = sums / np.outer(np.diff(rows), np.diff(cols))
    gr, gc = means.shape[1:]
    padded = np.pad(means, ((0, 0), (1, 1), (1, 1)), constant_values=np.nan)
    around = [
        padded[:, 1 + dr : 1 + dr + gr, 1 + dc : 1 + dc + gc]
        for dr in (-1, 0, 1)
        for dc in (-1, 0, 1)
        if (dr, dc) != (0, 0)
    ]
    with np.errstate(invalid="ignore"):  # a 1 x 1 grid has no neighbours: no variation
        return np.nan_to_num(np.nanstd(np.stack(around), axis=0)).ravel()


def block_order(x: np.ndarray, n: int, order: str, rng: np.random.Generator) -> np.ndarray:
    """The blocks of the ``n x n`` grid over ``x`` (indexed as :func:`local_variation`) in
    visiting order: drawn with weights by local variation, or uniformly."""
    weight = local_variation(x, n)
    if order == "random" or not weight.any():
        return rng.permutation(len(weight))
    weight = weight + weight[weight > 0].min() / 100
    return rng.choice(len(weight), size=len(weight), replace=False, p=weight / weight.sum())


def bobyqa_blocks(
    oracle: Oracle,
    x0: np.ndarray,
    eps: float,
    rng: np.random.Generator,
    *,
    solver: str = DEFAULT_SOLVER,
    batch: int = 20,
    evaluations_per_variable: float = 1.3,
    order: str = "variance",
    snap: bool = True,
    first_grid: int = 2,
) -> np.ndarray:
    """Attack ``x0`` (``C x H x W`` in ``[0, 1]``) through ``oracle``; returns the best image."""
    c, h, w = x0.shape
    cls = solver_class(solver)
    options = {"model": "linear"} if solver in MODEL_BASED else {}
    lo, hi = np.clip(x0 - eps, 0.0, 1.0), np.clip(x0 + eps, 0.0, 1.0)
    place = (x0 - lo) / (hi - lo)  # each pixel's fraction of its interval: the clean image

    def image(d: np.ndarray) -> np.ndarray:
        return lo + d * (hi - lo)

    loss = float(oracle.loss(image(place)[None])[0])
    n = first_grid
    while not oracle.done:
        blocks = [(ch, r, s) for ch in range(c) for r, s in grid_blocks(h, w, n)]
        visit = block_order(image(place), n, order, rng)
        for start in range(0, len(visit), batch):
            if oracle.done:
                break
            chosen = [blocks[i] for i in visit[start : start + batch]]
            dim = len(chosen)
            start_point = np.array([place[b].mean() for b in chosen])

            def candidates(values: np.ndarray, chosen: list = chosen) -> np.ndarray:
                out = np.repeat(place[None], len(values), axis=0)
                for k, b in enumerate(chosen):
                    out[(slice(None), *b)] = values[:, k, None, None]
                return lo + out * (hi - lo)

            lower, upper = np.zeros(dim), np.ones(dim)
            opt = cls(
                lower,
                upper,
                x0=np.clip(start_point, lower, upper),
                sigma0=0.5,
                seed=int(rng.integers(2**31)),
                **options,
            )
            best_v, best_f = start_point, loss
            spend = max(math.ceil(evaluations_per_variable * dim), 2)
            try:
                opt.plan(spend)
                spent = 0
                while spent < spend and not oracle.done:
                    asked = opt.ask()[: spend - spent]
                    values = oracle.loss(candidates(asked))
                    if not len(values):
                        break
                    opt.tell(asked[: len(values)], values)
                    spent += len(values)
                    k = int(np.argmin(values))
                    if values[k] < best_f:
                        best_v, best_f = asked[k], float(values[k])
            finally:
                opt.close()
            if snap and not oracle.done:
                vertex = np.where(best_v >= 0.5, 1.0, 0.0)
                value = oracle.loss(candidates(vertex[None]))
                if len(value) and value[0] < best_f:
                    best_v, best_f = vertex, float(value[0])
            if best_f < loss:
                for k, b in enumerate(chosen):
                    place[b] = best_v[k]
                loss = best_f
        if n < max(h, w):
            n *= 2
    return image(place)
