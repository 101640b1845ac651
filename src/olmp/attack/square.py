"""Square attack, ℓ∞ (Andriushchenko, Croce, Flammarion & Hein, ECCV 2020).

Random search over the vertices of the ε-ball: start from vertical stripes of ±ε, then at
each step redraw one random square window (every channel at ±ε, chosen at random) and keep
the change when the loss falls. The side of the square shrinks on the paper's schedule of
the fraction ``p`` of pixels changed, ``p_init`` halved at iterations 10, 50, 200, 500, 1000,
2000, 4000, 6000, 8000 of a 10,000-step run (rescaled to the budget). One query per step.
A window whose draw would change nothing is flipped instead, as in the authors' code
(``redraw=False`` keeps it and spends the query, as ART's implementation does).
"""

from __future__ import annotations

import numpy as np

from olmp.attack.oracle import Oracle

#: Iterations (of 10,000) after which the paper halves ``p``.
HALVINGS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)


def p_schedule(p_init: float, step: int, budget: int) -> float:
    """Fraction of pixels redrawn at ``step`` of a ``budget``-step run."""
    at = int(step / max(budget, 1) * 10_000)
    return p_init / 2 ** sum(at > h for h in HALVINGS)


def square(
    oracle: Oracle,
    x0: np.ndarray,
    eps: float,
    rng: np.random.Generator,
    *,
    p_init: float = 0.05,
    redraw: bool = True,
) -> np.ndarray:
    """Attack ``x0`` (``C x H x W`` in ``[0, 1]``) through ``oracle``; returns the best image."""
    c, h, w = x0.shape
    lo, hi = np.clip(x0 - eps, 0, 1), np.clip(x0 + eps, 0, 1)
    stripes = eps * rng.choice([-1.0, 1.0], size=(c, 1, w))
    x = np.clip(x0 + stripes, lo, hi)
    loss = float(oracle.loss(x[None])[0])
    step = 0
    while not oracle.done:
        p = p_schedule(p_init, step, oracle.budget)
        side = int(min(max(round(np.sqrt(p * h * w)), 1), h - 1, w - 1))
        top, left = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        window = (slice(None), slice(top, top + side), slice(left, left + side))
        candidate = x.copy()
        delta = eps * rng.choice([-1.0, 1.0], size=(c, 1, 1))
        candidate[window] = np.clip(x0[window] + delta, lo[window], hi[window])
        if redraw and np.array_equal(candidate[window], x[window]):  # the paper's code redraws
            candidate[window] = np.clip(x0[window] - delta, lo[window], hi[window])
        value = oracle.loss(candidate[None])
        if len(value) and value[0] < loss:
            x, loss = candidate, float(value[0])
        step += 1
    return x
