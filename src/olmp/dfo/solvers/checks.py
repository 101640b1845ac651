"""Validation helpers shared by the solvers, and their options declared as data.

A solver's own options (NCS's ``r``, SRACOS's ``train_size``, ...) are declared once, as a
class attribute ``options = {"r": Option(0.99, real(0, 1, open_low=True)), ...}``, in the
manner of scikit-learn's parameter constraints: the constructor stores and checks them, the
CLI lists them, and no solver repeats the common constructor.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from olmp.errors import OlmpError

#: A check takes the option's name and value and returns the value to store (or raises).
Check = Callable[[str, Any], Any]


@dataclass(frozen=True)
class Option:
    """One option of a solver: its default, the check its value must pass, and, for a
    value that is an object rather than JSON (``expsracos``'s experience model), how a
    study's record holds it (``record``; ``None``: as it is)."""

    default: Any
    check: Check
    help: str = ""
    record: Callable[[Any], Any] | None = None


def recorded_options(declared: Mapping[str, Option], options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` as a record holds them: each through its declaration's ``record``."""
    recorded = {}
    for name, value in options.items():
        record = declared[name].record if name in declared else None
        recorded[name] = value if record is None else record(value)
    return recorded


def with_defaults(declared: Mapping[str, Option], options: Any) -> Any:
    """Recorded ``options`` with every declared option not given at its default: what two
    records are compared by, so ``k=10`` given and ``k`` left at its default 10 are the
    same search (and a difference names only the options that differ)."""
    if not isinstance(options, dict):
        return options
    return {**{name: option.default for name, option in declared.items()}, **options}


def check_int(name: str, value: object, minimum: int, maximum: int | None = None) -> int:
    """Return ``value`` as an int if it is an integer in ``[minimum, maximum]`` (no upper
    bound when ``maximum`` is None), else raise OlmpError."""
    integral = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not integral or value < minimum or (maximum is not None and value > maximum):
        wanted = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise OlmpError(f"{name} must be an integer {wanted}, got {value!r}")
    return int(value)  # type: ignore[arg-type]


def check_float(
    name: str, value: object, *, low: float, high: float = math.inf, open_low: bool = False
) -> float:
    """Return ``value`` as a float inside ``[low, high]`` (``(low, high]`` if ``open_low``)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    number = float(value) if ok else math.nan  # type: ignore[arg-type]
    inside = (number > low if open_low else number >= low) and number <= high
    if not (ok and math.isfinite(number) and inside):
        left = "(" if open_low else "["
        right = "]" if math.isfinite(high) else ")"
        raise OlmpError(f"{name} must be a number in {left}{low}, {high}{right}, got {value!r}")
    return number


def integer(minimum: int, maximum: int | None = None, *, optional: bool = False) -> Check:
    """A check for an integer in ``[minimum, maximum]`` (or ``None`` when ``optional``)."""

    def check(name: str, value: Any) -> int | None:
        if optional and value is None:
            return None
        return check_int(name, value, minimum, maximum)

    return check


def real(low: float, high: float = math.inf, *, open_low: bool = False) -> Check:
    """A check for a number in ``[low, high]`` (``(low, high]`` with ``open_low``)."""

    def check(name: str, value: Any) -> float:
        return check_float(name, value, low=low, high=high, open_low=open_low)

    return check


def optional(check: Check) -> Check:
    """``check``, or ``None``."""
    return lambda name, value: None if value is None else check(name, value)


def one_of(*choices: Any) -> Check:
    """A check for one of ``choices``."""

    def check(name: str, value: Any) -> Any:
        # 1 == True in Python: a flag takes True or False, not a number that equals one.
        if not any(value == c and isinstance(value, bool) == isinstance(c, bool) for c in choices):
            listed = ", ".join(repr(c) for c in choices)
            raise OlmpError(f"{name} must be one of {listed}, got {value!r}")
        return value

    return check


def _floats(value: object, wanted: str) -> np.ndarray:
    """``value`` as an array of floats, or OlmpError saying it must be ``wanted``."""
    try:
        return np.asarray(value, dtype=float)
    except (TypeError, ValueError) as error:
        raise OlmpError(f"{wanted}, got {value!r}") from error


def as_vector(name: str, value: ArrayLike) -> np.ndarray:
    """``value`` as a non-empty 1-D array of finite floats, or OlmpError naming it."""
    vector = _floats(value, f"{name} must be a sequence of numbers")
    if vector.ndim != 1 or vector.size == 0:
        raise OlmpError(
            f"{name} must be a non-empty 1-D sequence of numbers, got shape {vector.shape}"
        )
    bad = np.flatnonzero(~np.isfinite(vector))
    if bad.size:
        i = int(bad[0])
        raise OlmpError(f"{name} must be finite; {name}[{i}] is {vector[i]}")
    return vector


def is_numeric(value: object) -> bool:
    try:
        np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return False
    return True


def check_fitness(fitness: ArrayLike, k: int) -> np.ndarray:
    """``k`` fitness values with NaN turned into ``+inf``; ``-inf`` is refused."""
    values = _floats(fitness, f"fitness must be {k} numbers")
    if values.shape != (k,):
        raise OlmpError(
            f"fitness must have shape ({k},), one value per candidate told, "
            f"got shape {values.shape}"
        )
    if np.any(values == -np.inf):
        i = int(np.flatnonzero(values == -np.inf)[0])
        raise OlmpError(
            f"fitness[{i}] is -inf; fitness must be a number, +inf or NaN (both mean worst)"
        )
    # NaN compares false with everything, which would corrupt ranking and best-so-far.
    return np.where(np.isnan(values), np.inf, values)


def check_options(
    solver: str, declared: dict[str, Option], given: dict[str, Any]
) -> dict[str, Any]:
    """Every declared option's value (given or default), checked; unknown names refused."""
    unknown = [key for key in given if key not in declared]
    if unknown:
        raise OlmpError(
            f"solver {solver!r} has no option {unknown[0]!r}; its options are "
            f"{', '.join(declared) or 'none'}"
        )
    return {
        key: option.check(key, given.get(key, option.default)) for key, option in declared.items()
    }


def names(values: Sequence[Any]) -> str:
    """``a, b, c`` for error messages."""
    return ", ".join(str(v) for v in values)
