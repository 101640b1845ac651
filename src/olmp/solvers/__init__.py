"""The box solvers' ask/tell interface, as the compressor uses it (``olmp compress``).

The solvers themselves live in :mod:`olmp.dfo.solvers`, the engine's one registry; this
module re-exports them under their old names, so ``make_solver``, ``SOLVERS`` and
``check_solver_options`` keep working with identical results for the same seed, and adds
what ``olmp solvers`` shows (:func:`describe_solvers`, :func:`check_solvers`).

>>> from olmp.solvers import make_solver
>>> solver = make_solver("ncs", [0.0, 0.0], [1.0, 1.0], seed=1)
>>> x, f = solver.minimize(lambda X: ((X - 0.3) ** 2).sum(axis=1), budget=200)
>>> bool(f < 0.01)
True
"""

from __future__ import annotations

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
    check_solver_options,
    make_solver,
    parse_solver_options,
    register_solver,
    solver_options,
)
from olmp.solvers.check import check_solvers, describe_solvers

__all__ = [
    "BOBYQA",
    "CMAES",
    "COBYQA",
    "COMMON_ARGUMENTS",
    "MADS",
    "NCS",
    "SOLVERS",
    "TPE",
    "VARIABLE_KINDS",
    "RandomSearch",
    "SRacos",
    "Solver",
    "check_solver_options",
    "check_solvers",
    "describe_solvers",
    "make_solver",
    "parse_solver_options",
    "register_solver",
    "solver_options",
]
