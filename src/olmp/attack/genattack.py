"""GenAttack (Alzantot, Sharma, Chakraborty, Zhang, Hsieh & Srivastava, GECCO 2019).

A genetic algorithm over perturbations in the ε-ball: a population (6 in the paper) starts
uniform in ``[-ε, ε]``; each generation keeps the elite, draws parent pairs with
probabilities ``softmax(fitness / τ)``, crosses them gene by gene (each gene from the first
parent with probability ``p1 / (p1 + p2)``), mutates each gene with probability ``ρ`` by a
uniform step in ``[-αε, αε]`` and clips into the ε-ball and the pixel box. Fitness is the
targeted log-odds margin. The mutation rate and range adapt to plateaus as in the paper:
``ρ = max(ρ_min, 0.5 · 0.9^plateaus)``, ``α = max(α_min, 0.4 · 0.9^plateaus)``. Every
generation but the first asks ``N - 1`` queries (the elite's fitness is known), in one pass.
"""

from __future__ import annotations

import numpy as np

from olmp.attack.oracle import Oracle


def genattack(
    oracle: Oracle,
    x0: np.ndarray,
    eps: float,
    rng: np.random.Generator,
    *,
    population: int = 6,
    temperature: float = 0.1,
    rho_min: float = 0.1,
    alpha_min: float = 0.15,
) -> np.ndarray:
    """Attack ``x0`` (``C x H x W`` in ``[0, 1]``) through ``oracle``; returns the best image."""
    lo, hi = np.clip(x0 - eps, 0, 1), np.clip(x0 + eps, 0, 1)
    n = max(population, 2)
    pop = np.clip(x0 + rng.uniform(-eps, eps, size=(n, *x0.shape)), lo, hi)
    fitness = -oracle.loss(pop)
    if len(fitness) < n:
        return oracle.best_x if oracle.best_x is not None else x0
    best, plateaus = fitness.max(), 0
    while not oracle.done:
        elite = int(np.argmax(fitness))
        if fitness[elite] > best + 1e-9:
            best, plateaus = fitness[elite], 0
        else:
            plateaus += 1
        rho = max(rho_min, 0.5 * 0.9**plateaus)
        alpha = max(alpha_min, 0.4 * 0.9**plateaus)
        weights = np.exp((fitness - fitness.max()) / temperature)
        weights /= weights.sum()
        parents = rng.choice(n, size=(n - 1, 2), p=weights)
        p1, p2 = weights[parents[:, 0]], weights[parents[:, 1]]
        take_first = rng.random((n - 1, *x0.shape)) < (p1 / (p1 + p2)).reshape(-1, 1, 1, 1)
        children = np.where(take_first, pop[parents[:, 0]], pop[parents[:, 1]])
        mutate = rng.random(children.shape) < rho
        children = children + mutate * rng.uniform(-alpha * eps, alpha * eps, children.shape)
        children = np.clip(children, lo, hi)
        values = -oracle.loss(children)
        k = len(values)
        pop = np.concatenate([pop[elite : elite + 1], children[:k]])
        fitness = np.concatenate([fitness[elite : elite + 1], values])
        if k < n - 1:
            break
    return pop[int(np.argmax(fitness))]
