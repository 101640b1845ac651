"""Derivative-free minimisers over a box, with one ask/tell interface.

>>> from olmp.solvers import SOLVERS, make_solver
>>> sorted(SOLVERS)
['cmaes', 'ncs', 'random']
>>> solver = make_solver("ncs", [0.0, 0.0], [1.0, 1.0], seed=1)
>>> x, f = solver.minimize(lambda X: ((X - 0.3) ** 2).sum(axis=1), budget=200)
>>> bool(f < 0.01)
True

Adding a solver: subclass :class:`Solver` in a new module and add one line to
:data:`SOLVERS`.
"""

from __future__ import annotations

from typing import Any

from numpy.typing import ArrayLike

from olmp.errors import unknown_choice
from olmp.solvers.base import Solver
from olmp.solvers.cmaes import CMAES
from olmp.solvers.ncs import NCS
from olmp.solvers.random_search import RandomSearch

#: Solver classes by name.
SOLVERS: dict[str, type[Solver]] = {
    NCS.name: NCS,
    CMAES.name: CMAES,
    RandomSearch.name: RandomSearch,
}


def make_solver(name: str, lower: ArrayLike, upper: ArrayLike, **kwargs: Any) -> Solver:
    """Build the solver registered as ``name`` for the box ``[lower, upper]``.

    ``kwargs`` go to the solver's constructor (``x0``, ``sigma0``, ``popsize``, ``seed`` and
    solver-specific options such as NCS's ``max_evaluations``).
    """
    try:
        cls = SOLVERS[name]
    except (KeyError, TypeError):
        raise unknown_choice("solver", str(name), list(SOLVERS)) from None
    return cls(lower, upper, **kwargs)


__all__ = ["CMAES", "NCS", "SOLVERS", "RandomSearch", "Solver", "make_solver"]
