"""The attacks by name: ``METHODS[name](oracle, x0, eps, rng, **options) -> image``."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from olmp.attack.blocks import bobyqa_blocks
from olmp.attack.genattack import genattack
from olmp.attack.oracle import Oracle
from olmp.attack.parsimonious import parsimonious
from olmp.attack.square import square
from olmp.attack.zofw import zofw
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


#: Options that take one of a few values.
CHOICES = {"order": ("variance", "random")}


def method_options(name: str) -> list[str]:
    """The options (keyword arguments) attack ``name`` takes."""
    parameters = inspect.signature(METHODS[name]).parameters.values()
    return [p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY]


def check_options(name: str, options: dict[str, Any]) -> None:
    """Raise :class:`OlmpError` for an option that attack ``name`` does not take."""
    known = method_options(name)
    for key, value in options.items():
        if key in CHOICES and key in known and value not in CHOICES[key]:
            allowed = " or ".join(repr(c) for c in CHOICES[key])
            raise OlmpError(f"{key} must be {allowed}, got {value!r}")
        if key not in known:
            raise OlmpError(
                f"unknown option {key!r} of attack {name!r}; choose from: {', '.join(known)}"
            )
