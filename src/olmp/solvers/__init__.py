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

import inspect
from collections.abc import Iterable, Mapping
from typing import Any

from numpy.typing import ArrayLike

from olmp.errors import OlmpError, unknown_choice
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
    return _solver_class(name)(lower, upper, **kwargs)


def _solver_class(name: str) -> type[Solver]:
    try:
        return SOLVERS[name]
    except (KeyError, TypeError):
        raise unknown_choice("solver", str(name), list(SOLVERS)) from None


#: Constructor arguments that every solver takes and that its caller sets (the box, the
#: start, the step, the population, the seed); a solver's own options are the others.
COMMON_ARGUMENTS = ("lower", "upper", "x0", "sigma0", "popsize", "seed", "space")


def solver_options(name: str) -> list[str]:
    """The options of solver ``name`` beyond :data:`COMMON_ARGUMENTS` (e.g. NCS's ``r``)."""
    parameters = inspect.signature(_solver_class(name).__init__).parameters
    return [p for p in parameters if p != "self" and p not in COMMON_ARGUMENTS]


def check_solver_options(name: str, options: Mapping[str, Any]) -> None:
    """Raise :class:`~olmp.errors.OlmpError` unless ``options`` are valid for solver
    ``name``: each a known option (:func:`solver_options`) with a value the solver accepts,
    checked by building the solver once on a one-variable box."""
    allowed = solver_options(name)
    for key in options:
        if key not in allowed:
            raise OlmpError(
                f"solver {name!r} has no option {key!r}; its options are "
                f"{', '.join(allowed) or 'none'}"
            )
    if options:
        try:
            with make_solver(name, [0.0], [1.0], **options):
                pass
        except OlmpError as error:
            raise OlmpError(f"solver {name!r}: {error}") from None


def parse_solver_options(pairs: Iterable[str]) -> dict[str, Any]:
    """``["r=0.8", "epoch=2"]`` -> ``{"r": 0.8, "epoch": 2}``: each value read as an
    integer, a number, ``true``/``false`` or ``none`` where it is one, else kept as text."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise OlmpError(f"a solver option is NAME=VALUE (e.g. r=0.8), got {pair!r}")
        options[key] = _option_value(text)
    return options


def _option_value(text: str) -> Any:
    words = {"true": True, "false": False, "none": None}
    if text.lower() in words:
        return words[text.lower()]
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


__all__ = [
    "BOBYQA",
    "CMAES",
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
    "solver_options",
]
