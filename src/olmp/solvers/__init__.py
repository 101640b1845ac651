"""The box solvers' ask/tell interface, as the compressor uses it (``olmp compress``).

The solvers themselves live in :mod:`olmp.dfo.solvers`, the engine's one registry; this
module re-exports them under their old names, so ``make_solver``, ``SOLVERS`` and
``check_solver_options`` keep working with identical results for the same seed, and adds
what ``olmp solvers`` shows (:func:`describe_solvers`, :func:`check_solvers`).

One difference from :func:`olmp.dfo.solvers.make_solver`: NCS built here defaults to its
``paper`` preset (N = 10, epoch = N, r = 0.99), with which every compression recorded so far
was made, so ``olmp compress`` gives the same result for the same config and seed. The
engine's NCS defaults to ``adaptive`` (steps fitted to the budget); pass
``preset="adaptive"`` (``--solver-option preset=adaptive``) to get it here.

>>> from olmp.solvers import make_solver
>>> solver = make_solver("ncs", [0.0, 0.0], [1.0, 1.0], seed=1)
>>> x, f = solver.minimize(lambda X: ((X - 0.3) ** 2).sum(axis=1), budget=200)
>>> bool(f < 0.01)
True
"""

from __future__ import annotations

from typing import Any

from numpy.typing import ArrayLike

from olmp.dfo import solvers as _engine
from olmp.dfo.solvers import (
    BOBYQA,
    CMAES,
    COBYQA,
    COMMON_ARGUMENTS,
    MADS,
    NCS,
    SOLVERS,
    TPE,
    VARIABLE_KINDS,
    RandomSearch,
    Solver,
    SRacos,
    UniformSearch,
    check_solver_options,
    parse_solver_options,
    register_solver,
    solver_options,
)
from olmp.solvers.check import check_solvers, describe_solvers


def make_solver(name: str, lower: ArrayLike, upper: ArrayLike, **kwargs: Any) -> Solver:
    """Build the solver registered as ``name`` for the box ``[lower, upper]``; as
    :func:`olmp.dfo.solvers.make_solver`, except that NCS defaults to its ``paper`` preset
    (see the module docstring)."""
    if name == "ncs":
        kwargs.setdefault("preset", "paper")
    return _engine.make_solver(name, lower, upper, **kwargs)


# The compressor's names (the engine's own list is olmp.dfo.solvers.__all__).
__all__ = [
    "BOBYQA", "CMAES", "COBYQA", "COMMON_ARGUMENTS", "MADS", "NCS", "SOLVERS", "TPE",
    "VARIABLE_KINDS", "RandomSearch", "SRacos", "Solver", "UniformSearch", "check_solver_options",
    "check_solvers", "describe_solvers", "make_solver", "parse_solver_options",
    "register_solver", "solver_options",
]  # fmt: skip
