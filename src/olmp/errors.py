"""Errors a user can act on.

Every problem caused by input (an unknown name, a bad file, a path that already exists)
raises :class:`OlmpError`. The CLI prints its message without a traceback and exits with
status 2; library users can catch it like any ``ValueError``.

Warnings (:func:`warn_user`) name the user's line that led to them.
"""

from __future__ import annotations

import numbers
import re
import sys
import warnings


class OlmpError(ValueError):
    """A problem with the user's input, described so that the user can fix it."""


def warn_user(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn(message)`` attributed to the first caller outside olmp: the user's
    line (``olmp.compress(...)`` in their script), however deep in olmp the warning arises.
    A hand-counted ``stacklevel`` points into olmp as soon as the calls between move.
    Frames are told apart by their module's name, which no symlinked path changes."""
    frame, level = sys._getframe(1), 2
    while frame.f_back is not None and frame.f_globals.get("__name__", "").split(".")[0] == "olmp":
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)


def unknown_choice(kind: str, value: str, choices: list[str], hint: str = "") -> OlmpError:
    """Build the standard "unknown X" error that names the value and lists the choices."""
    listed = ", ".join(sorted(choices))
    message = f"unknown {kind} {value!r}; choose one of: {listed}"
    if hint:
        message += f" ({hint})"
    return OlmpError(message)


def check_type(name: str, value: object, expected: type | tuple[type, ...], what: str) -> None:
    """Raise "``name`` must be ``what``, got a T" unless ``value`` is an ``expected``: an
    argument of the wrong kind fails at the call, not deep inside as an AttributeError."""
    if not isinstance(value, expected):
        kind = type(value).__name__
        raise OlmpError(f"{name} must be {what}, got {'an' if kind[0] in 'aeiou' else 'a'} {kind}")


def check_callback(name: str, value: object) -> None:
    """Raise unless ``value`` is a function or ``None``: a callback of another kind would
    fail only when first called, after work that is then lost."""
    if value is not None and not callable(value):
        raise OlmpError(f"{name} must be a function, or None; got {value!r}")


def is_integer(value: object) -> bool:
    """Python's or numpy's integers, not ``True`` / ``False``."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    """Python's or numpy's real numbers, not ``True`` / ``False``."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_count(value: object, name: str, least: int = 1) -> int:
    """``value`` as a Python int if it is an integer >= ``least``, else an error naming it."""
    if not is_integer(value) or value < least:  # type: ignore[operator]
        raise OptionError(name, f"must be an integer >= {least}, got {value!r}")
    return int(value)  # type: ignore[call-overload]


def check_seed(value: object, name: str = "seed") -> int:
    """``value`` if it is a seed (an integer >= 0, as numpy and torch take them)."""
    return check_count(value, name, least=0)


class OptionError(OlmpError):
    """A bad value of one named option, e.g. ``OptionError("max_rounds", "must be at least
    1, got 0")``. Front ends that call the option something else (the CLI's ``--max-rounds``)
    re-word it with :meth:`named`."""

    def __init__(self, option: str, problem: str) -> None:
        super().__init__(f"{option} {problem}")
        self.option = option
        self.problem = problem

    def named(
        self, name: str, *, none_allowed: bool = True, none_typed_as: str | None = None
    ) -> OlmpError:
        """The same error about the option as the user spelled it; without
        ``none_allowed`` (a command line, where None cannot be typed: leaving the option
        out is how) the problem's "or None ..." alternatives are left out, or say
        ``none_typed_as`` (an option whose 0 means None) instead of None."""
        problem = self.problem
        if none_typed_as is not None:
            problem = problem.replace("or None", f"or {none_typed_as}")
        elif not none_allowed:
            problem = re.sub(r",? or None[^,]*(?=, got )", "", problem)
        return OlmpError(f"{name} {problem}")
