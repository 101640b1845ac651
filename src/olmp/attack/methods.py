"""The attacks by name: ``METHODS[name](oracle, x0, eps, rng, **options) -> image``."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from olmp.attack.blocks import bobyqa_blocks
from olmp.attack.genattack import genattack
from olmp.attack.oracle import Oracle
from olmp.attack.parsimonious import parsimonious
from olmp.attack.square import square
from olmp.attack.zofw import zofw
from olmp.dfo.solvers import parse_solver_options
from olmp.dfo.solvers.checks import Check, Option, integer, one_of, real
from olmp.errors import OlmpError

Attack = Callable[..., np.ndarray]

#: Every attack, by the name ``olmp attack --method`` takes.
METHODS: dict[str, Attack] = {
    "bobyqa": bobyqa_blocks,
    "square": square,
    "parsimonious": parsimonious,
    "genattack": genattack,
    "zo-fw": zofw,
}

#: One line per method, for listings and help.
SUMMARIES = {
    "bobyqa": "model-based block attack, engine solver per block batch (Ughi et al. 2021)",
    "square": "random square windows at the ε-ball's vertices (Andriushchenko et al. 2020)",
    "parsimonious": "lazy-greedy local search over vertex blocks (Moon et al. 2019)",
    "genattack": "genetic algorithm in the ε-ball (Alzantot et al. 2019)",
    "zo-fw": "zeroth-order Frank-Wolfe, Gaussian smoothing (Chen et al. 2020)",
}


def run_method(
    name: str, oracle: Oracle, x0: np.ndarray, eps: float, rng: np.random.Generator, **options: Any
) -> np.ndarray:
    """Run attack ``name``; returns the image to judge: the first image that made the target
    win when one did, else the attack's own answer."""
    returned = METHODS[name](oracle, x0, eps, rng, **options)
    if oracle.success_at is not None and oracle.best_x is not None:
        return oracle.best_x
    return np.asarray(returned, dtype=np.float32)


#: What each attack's options may be: the keyword arguments of its function (whose defaults
#: are the options' defaults, written once there), checked before a run starts.
CHECKS: dict[str, dict[str, Check]] = {
    "bobyqa": {
        "batch": integer(1),
        "evaluations_per_variable": real(0, open_low=True),
        "order": one_of("variance", "random"),
        "snap": one_of(True, False),
        "first_grid": integer(1),
    },
    "square": {"p_init": real(0, 1, open_low=True), "redraw": one_of(True, False)},
    "parsimonious": {"block_size": integer(1), "batch_size": integer(1)},
    "genattack": {
        "population": integer(2),
        "temperature": real(0, open_low=True),
        "rho_min": real(0, 1),
        "alpha_min": real(0, 1),
    },
    "zo-fw": {
        "directions": integer(1),
        "smoothing": real(0, open_low=True),
        "momentum": real(0, 1),
        "step": real(0, 1, open_low=True),
    },
}
#: The block attack's solver is ``--solver`` (``solver=``), recorded apart from the options.
SOLVER_ARGUMENT = "solver"


def method_options(name: str) -> dict[str, Option]:
    """The options of attack ``name`` (``--option KEY=VALUE``), declared: each keyword argument
    of its function but the solver, with its default and its check."""
    parameters = inspect.signature(METHODS[name]).parameters.values()
    return {
        p.name: Option(p.default, CHECKS[name][p.name])
        for p in parameters
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name != SOLVER_ARGUMENT
    }


def check_options(name: str, options: dict[str, Any]) -> None:
    """Raise :class:`OlmpError` for an option that attack ``name`` does not take, or a value
    its declaration does not allow (one line naming the option, the value and the range)."""
    declared = method_options(name)
    for key, value in options.items():
        if key not in declared:
            hint = "; the solver is --solver" if key == SOLVER_ARGUMENT else ""
            raise OlmpError(
                f"unknown option {key!r} of attack {name!r}; choose from: "
                f"{', '.join(declared)}{hint}"
            )
        try:
            declared[key].check(key, value)
        except OlmpError as error:
            raise OlmpError(f"attack {name!r} option {error}") from None


def parse_options(pairs: Iterable[str]) -> dict[str, Any]:
    """``["p_init=0.1", "redraw=false"]`` -> ``{"p_init": 0.1, "redraw": False}``, values read
    as the engine reads solver options; a malformed pair is refused in attack words."""
    return parse_solver_options(pairs, form="an attack option is KEY=VALUE (e.g. p_init=0.05)")
