"""Derivative-free minimisers over a box, with one ask/tell interface.

>>> from olmp.solvers import SOLVERS, make_solver
>>> sorted(SOLVERS)
['bobyqa', 'cmaes', 'mads', 'ncs', 'random', 'sracos', 'tpe']
>>> solver = make_solver("ncs", [0.0, 0.0], [1.0, 1.0], seed=1)
>>> x, f = solver.minimize(lambda X: ((X - 0.3) ** 2).sum(axis=1), budget=200)
>>> bool(f < 0.01)
True

``ncs``, ``cmaes`` and ``random`` need nothing beyond olmp's own dependencies. The others
wrap optional libraries, installed as extras and imported only when the solver is built:
``sracos`` (ZOOpt, MIT), ``tpe`` (optuna, MIT), ``mads`` (PyNomadBBO, LGPL-3.0) and
``bobyqa`` (Py-BOBYQA, **GPL-3.0-or-later**, so never part of ``olmp[solvers]``). They are
listed in :data:`SOLVERS` whether installed or not; :meth:`Solver.available` tells which,
and building a missing one raises :class:`~olmp.errors.OlmpError` with the ``pip install``
line. :func:`describe_solvers` and :func:`check_solvers` back ``olmp solvers``.

Adding a solver: subclass :class:`Solver` in a new module and add one line to
:data:`SOLVERS`.
"""

from __future__ import annotations

from typing import Any

from numpy.typing import ArrayLike

from olmp.errors import unknown_choice
from olmp.solvers.base import VARIABLE_KINDS, Solver
from olmp.solvers.bobyqa import BOBYQA
from olmp.solvers.check import check_solvers, describe_solvers
from olmp.solvers.cmaes import CMAES
from olmp.solvers.mads import MADS
from olmp.solvers.ncs import NCS
from olmp.solvers.random_search import RandomSearch
from olmp.solvers.sracos import SRacos
from olmp.solvers.tpe import TPE

#: Solver classes by name, the optional ones included (see :meth:`Solver.available`).
SOLVERS: dict[str, type[Solver]] = {
    NCS.name: NCS,
    CMAES.name: CMAES,
    RandomSearch.name: RandomSearch,
    SRacos.name: SRacos,
    TPE.name: TPE,
    MADS.name: MADS,
    BOBYQA.name: BOBYQA,
}


def make_solver(name: str, lower: ArrayLike, upper: ArrayLike, **kwargs: Any) -> Solver:
    """Build the solver registered as ``name`` for the box ``[lower, upper]``.

    ``kwargs`` go to the solver's constructor (``x0``, ``sigma0``, ``popsize``, ``seed``,
    ``space`` and solver-specific options such as NCS's ``max_evaluations``). A solver whose
    library is not installed raises :class:`~olmp.errors.OlmpError` naming the extra.
    """
    try:
        cls = SOLVERS[name]
    except (KeyError, TypeError):
        raise unknown_choice("solver", str(name), list(SOLVERS)) from None
    return cls(lower, upper, **kwargs)


__all__ = [
    "BOBYQA",
    "CMAES",
    "MADS",
    "NCS",
    "SOLVERS",
    "TPE",
    "VARIABLE_KINDS",
    "RandomSearch",
    "SRacos",
    "Solver",
    "check_solvers",
    "describe_solvers",
    "make_solver",
]
