"""Errors a user can act on.

Every problem caused by input (an unknown name, a bad file, a path that already exists)
raises :class:`OlmpError`. The CLI prints its message without a traceback and exits with
status 2; library users can catch it like any ``ValueError``.
"""

from __future__ import annotations


class OlmpError(ValueError):
    """A problem with the user's input, described so that the user can fix it."""


def unknown_choice(kind: str, value: str, choices: list[str], hint: str = "") -> OlmpError:
    """Build the standard "unknown X" error that names the value and lists the choices."""
    listed = ", ".join(sorted(choices))
    message = f"unknown {kind} {value!r}; choose one of: {listed}"
    if hint:
        message += f" ({hint})"
    return OlmpError(message)
