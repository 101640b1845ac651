"""The engine's solvers: one registry, one base class, ``register_solver`` for users.

Every solver is a subclass of :class:`~olmp.dfo.solvers.base.Solver`, an ask/tell minimiser
over a box. The engine (:class:`olmp.dfo.Study`) runs it on any :class:`olmp.dfo.Space`
through the space's unit-box transform (:class:`olmp.dfo.sampler.BoxSampler`), or through a
native sampler where the solver names one (``tpe`` and ``random``).

>>> from olmp.dfo.solvers import SOLVERS, make_solver
>>> sorted(SOLVERS)
['bobyqa', 'cmaes', 'cobyqa', 'expsracos', 'mads', 'ncs', 'random', 'sracos', 'tpe', 'uniform']
>>> solver = make_solver("ncs", [0.0, 0.0], [1.0, 1.0], seed=1)
>>> x, f = solver.minimize(lambda X: ((X - 0.3) ** 2).sum(axis=1), budget=200)
>>> bool(f < 0.01)
True

``ncs``, ``cmaes``, ``random``, ``uniform`` and ``cobyqa`` (SciPy) need nothing beyond olmp's own
dependencies. The others wrap optional libraries, installed as extras and imported only
when the solver is built: ``sracos`` and ``expsracos`` (ZOOpt, MIT), ``tpe`` (optuna, MIT), ``mads``
(PyNomadBBO, LGPL-3.0) and ``bobyqa`` (Py-BOBYQA, **GPL-3.0-or-later**, so never part of
``olmp[solvers]``). They are listed whether installed or not; :meth:`Solver.available`
tells which, and building a missing one raises :class:`~olmp.errors.OlmpError` with the
``pip install`` line.

Adding a solver: subclass :class:`Solver` (``_ask`` returns rows inside the box, ``_tell``
learns from their fitness; own options declared in ``options``) and call
:func:`register_solver`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from numpy.typing import ArrayLike

from olmp.dfo.solvers.base import VARIABLE_KINDS, Option, Solver
from olmp.dfo.solvers.bobyqa import BOBYQA
from olmp.dfo.solvers.cmaes import CMAES
from olmp.dfo.solvers.cobyqa import COBYQA
from olmp.dfo.solvers.expsracos import ExpSRacos
from olmp.dfo.solvers.mads import MADS
from olmp.dfo.solvers.ncs import NCS
from olmp.dfo.solvers.random_search import RandomSearch
from olmp.dfo.solvers.sracos import SRacos
from olmp.dfo.solvers.tpe import TPE
from olmp.dfo.solvers.uniform import UniformSearch
from olmp.errors import OlmpError, unknown_choice

#: Solver classes by name, the optional ones included (see :meth:`Solver.available`).
SOLVERS: dict[str, type[Solver]] = {}

#: Constructor arguments that every solver takes and that its caller sets (the box, the
#: start, the step, the population, the seed); a solver's own options are the others.
COMMON_ARGUMENTS = ("lower", "upper", "x0", "sigma0", "popsize", "seed", "space")


def register_solver(name: str, cls: type[Solver], *, replace: bool = False) -> type[Solver]:
    """Make solver class ``cls`` available as ``name`` to the engine, the compressor and
    ``olmp solvers``; returns ``cls`` (so it can decorate). A taken name is refused unless
    ``replace``."""
    if not isinstance(cls, type) or not issubclass(cls, Solver):
        raise OlmpError(
            f"register_solver needs a subclass of olmp.dfo.Solver, got {cls!r}; "
            "write _ask and _tell (see the olmp.dfo.solvers docstring)"
        )
    if not isinstance(name, str) or not name.strip() or name != name.strip():
        raise OlmpError(f"a solver name is a non-empty word, got {name!r}")
    if name in SOLVERS and SOLVERS[name] is not cls and not replace:
        raise OlmpError(f"solver {name!r} is already registered ({SOLVERS[name].__name__})")
    if getattr(cls, "name", None) != name:
        cls.name = name
    SOLVERS[name] = cls
    return cls


for _cls in (NCS, CMAES, RandomSearch, UniformSearch, SRacos, ExpSRacos, TPE, MADS, BOBYQA, COBYQA):
    register_solver(_cls.name, _cls)


def solver_class(name: str) -> type[Solver]:
    """The class registered as ``name``, or OlmpError listing the registered names."""
    try:
        return SOLVERS[name]
    except (KeyError, TypeError):
        raise unknown_choice("solver", str(name), list(SOLVERS)) from None


def make_solver(name: str, lower: ArrayLike, upper: ArrayLike, **kwargs: Any) -> Solver:
    """Build the solver registered as ``name`` for the box ``[lower, upper]``.

    ``kwargs`` go to the solver's constructor (``x0``, ``sigma0``, ``popsize``, ``seed``,
    ``space`` and solver-specific options such as NCS's ``max_evaluations``). A solver whose
    library is not installed raises :class:`~olmp.errors.OlmpError` naming the extra.
    """
    return solver_class(name)(lower, upper, **kwargs)


def solver_options(name: str) -> list[str]:
    """The options of solver ``name`` beyond :data:`COMMON_ARGUMENTS` (e.g. NCS's ``r``)."""
    return list(solver_class(name).options)


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


def parse_solver_options(
    pairs: Iterable[str], form: str = "a solver option is NAME=VALUE (e.g. r=0.8)"
) -> dict[str, Any]:
    """``["r=0.8", "epoch=2"]`` -> ``{"r": 0.8, "epoch": 2}``: each value read as an
    integer, a number, ``true``/``false`` or ``none`` where it is one, else kept as text. A
    name given twice is refused: the second value would silently replace the first. ``form``
    says what a pair looks like, in the caller's words, when one has no ``=``."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise OlmpError(f"{form}, got {pair!r}")
        if key in options:
            raise OlmpError(f"option {key} is given twice; give each option once")
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
    "COBYQA",
    "COMMON_ARGUMENTS",
    "MADS",
    "NCS",
    "SOLVERS",
    "TPE",
    "VARIABLE_KINDS",
    "ExpSRacos",
    "Option",
    "RandomSearch",
    "SRacos",
    "Solver",
    "UniformSearch",
    "check_solver_options",
    "make_solver",
    "parse_solver_options",
    "register_solver",
    "solver_class",
    "solver_options",
]
