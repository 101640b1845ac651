"""Zeroth-order Frank–Wolfe (Chen, Zhou, Yi & Gu, AAAI 2020), Gaussian smoothing.

Each step estimates the gradient of the loss from ``b`` random Gaussian directions,
``g = 1/(bβ) Σ (f(x + βu_i) − f(x)) u_i`` (the probes clipped into the feasible
set, the step taken as the clipped one), keeps a momentum ``m = β1·m + (1 − β1)·g``,
solves the linear minimisation over the feasible set (the ε-ball intersected with the pixel
box, a box itself: ``v = lower`` where ``m > 0``, ``upper`` elsewhere) and moves
``x ← x + γ (v − x)``, which stays feasible. The ``b + 1`` images of a step (``x`` and its
``b`` probes) are one forward pass.
"""

from __future__ import annotations

import numpy as np

from olmp.attack.oracle import Oracle


def zofw(
    oracle: Oracle,
    x0: np.ndarray,
    eps: float,
    rng: np.random.Generator,
    *,
    directions: int = 20,
    smoothing: float = 0.005,
    momentum: float = 0.9,
    step: float = 0.1,
) -> np.ndarray:
    """Attack ``x0`` (``C x H x W`` in ``[0, 1]``) through ``oracle``; returns the best image."""
    lo, hi = np.clip(x0 - eps, 0, 1), np.clip(x0 + eps, 0, 1)
    x, m = x0.copy(), np.zeros_like(x0)
    t = 0
    while not oracle.done:
        u = rng.standard_normal((directions, *x0.shape))
        probes = np.clip(x + smoothing * u, lo, hi)  # only feasible images are asked
        values = oracle.loss(np.concatenate([x[None], probes]))
        if len(values) < directions + 1:
            break
        g = ((values[1:] - values[0]).reshape(-1, 1, 1, 1) * (probes - x)).mean(
            axis=0
        ) / smoothing**2
        m = momentum * m + (1 - momentum) * g
        v = np.where(m > 0, lo, hi)
        gamma = step / np.sqrt(1 + t / 10)
        x = np.clip(x + gamma * (v - x), lo, hi)
        t += 1
    return x
