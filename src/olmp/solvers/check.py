"""What ``olmp solvers`` shows: the solvers, their backends, and a quick check run."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from olmp.dfo.solvers.base import Solver, check_int


def _registry() -> dict[str, type[Solver]]:
    from olmp.solvers import SOLVERS  # the registry imports this module

    return SOLVERS


def describe_solvers() -> list[dict[str, Any]]:
    """One record per registered solver: name, summary, supports, options (its own
    constructor options, see :func:`olmp.solvers.solver_options`), backend, installed, and
    what it supports natively on the engine (:mod:`olmp.dfo`): ``native`` holds ``kinds``
    (how each kind of variable is treated), ``constraints`` (``"native"`` or
    ``"penalty"``), ``fidelities`` (whether cheaper results are told as such),
    ``parallel_asks`` (how many trials may be out at once) and ``order_dependent``
    (whether what it asks depends on the order results come back in)."""
    from olmp.solvers import solver_options

    return [
        {
            "name": name,
            "summary": cls.summary,
            "options": solver_options(name),
            "supports": cls.supports,
            "backend": cls.backend_package or "numpy only",
            "extra": cls.extra,
            "installed": cls.available(),
            "install": None if cls.extra is None else cls.install_hint(),
            "native": {
                "kinds": dict(cls.kind_handling),
                "constraints": "native" if cls.native_constraints else "penalty",
                "fidelities": cls.native_fidelities,
                "parallel_asks": cls.parallel_asks,
                "order_dependent": cls.order_dependent,
            },
        }
        for name, cls in _registry().items()
    ]


def shifted_sphere(dim: int, seed: int) -> tuple[Any, np.ndarray, np.ndarray]:
    """``(f, lower, upper)``: ``f(X) = sum((X - x*)**2, axis=1)`` on ``[-5, 5]^dim``, with
    ``x*`` uniform in ``[-4, 4]^dim``. ``x*`` comes from a stream of its own: drawn by
    ``default_rng(seed)`` it would be a scaled copy of the first point a solver seeded
    with ``seed`` samples uniformly (``uniform``'s first guess sat next to it)."""
    optimum = np.random.default_rng([seed, 1]).uniform(-4.0, 4.0, dim)

    def sphere(x: np.ndarray) -> np.ndarray:
        return np.sum((x - optimum) ** 2, axis=1)

    return sphere, np.full(dim, -5.0), np.full(dim, 5.0)


def check_solvers(
    dim: int = 10, budget: int = 500, seed: int = 0, names: list[str] | None = None
) -> list[dict[str, Any]]:
    """Run every installed solver on a shifted sphere in ``[-5, 5]^dim`` and report.

    The sphere is :func:`shifted_sphere` of ``dim`` and ``seed``; every solver starts at
    the box centre with its default settings and the same ``seed`` and spends ``budget``
    evaluations.

    Returns one record per solver (all registered ones, or ``names``): ``name``,
    ``installed``, ``start`` (``f`` at the centre), ``best`` (``None`` when the solver did
    not run), ``evaluations``, ``seconds`` and ``error`` (``None``, the install hint of a
    missing backend, or the message of a failure).
    """
    dim = check_int("dim", dim, 1)
    budget = check_int("budget", budget, 1)
    seed = check_int("seed", seed, 0)
    registry = _registry()
    if names is not None:
        unknown = [n for n in names if n not in registry]
        if unknown:
            from olmp.errors import unknown_choice

            raise unknown_choice("solver", unknown[0], list(registry))
    sphere, lower, upper = shifted_sphere(dim, seed)
    start = float(sphere(np.zeros((1, dim)))[0])
    records = []
    for name in names or list(registry):
        cls = registry[name]
        record: dict[str, Any] = {
            "name": name,
            "installed": cls.available(),
            "start": start,
            "best": None,
            "evaluations": 0,
            "seconds": None,
            "error": None,
        }
        records.append(record)
        if not record["installed"]:
            record["error"] = f"not installed: {cls.install_hint()}"
            continue
        began = time.perf_counter()
        try:
            with cls(lower, upper, seed=seed) as solver:
                _, best = solver.minimize(sphere, budget)
                record["evaluations"] = solver.n_evaluations
        except Exception as error:  # reported per solver; the others still run
            record["error"] = f"{type(error).__name__}: {error}"
        else:
            record["best"] = best if math.isfinite(best) else None
        record["seconds"] = round(time.perf_counter() - began, 3)
    return records
