"""Problems: an objective to minimise over a space, constraints, fidelities and costs.

>>> from olmp.dfo import Problem, Real, Space
>>> def objective(params):
...     x = params["x"]
...     return {"value": (x - 2) ** 2, "constraints": [1 - x]}  # feasible when x >= 1
>>> problem = Problem(Space([Real("x", -5, 5)]), objective, n_constraints=1)

The objective takes the parameters (and ``fidelity=NAME`` when fidelities are declared) and
returns the value, or a mapping with ``value`` and optionally ``constraints`` (each feasible
when ``<= 0``) and ``cost``. An exception, a NaN value or NaN constraint, or a wrong number of
constraints makes the evaluation *failed*: :meth:`Problem.evaluate` returns the message and
the study records it and goes on. The cost of an evaluation is what the objective says, or
else the relative cost of its fidelity (1 without fidelities).
"""

from __future__ import annotations

import copy
import math
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from olmp.dfo.space import Space
from olmp.errors import OlmpError, is_number, unknown_choice


@dataclass
class Result:
    """What one evaluation gave: ``error`` is ``None`` when it succeeded."""

    value: float = math.nan
    constraints: list[float] = field(default_factory=list)
    cost: float = 1.0
    error: str | None = None
    seconds: float = 0.0


def check_constraints(values: Any, expected: int) -> list[float]:
    """``expected`` constraint values as floats; OlmpError naming a NaN or a wrong count."""
    if values is None:
        values = []
    try:
        numbers = [float(v) for v in values]
    except (TypeError, ValueError):
        raise OlmpError(f"constraints must be a list of numbers, got {values!r}") from None
    if len(numbers) != expected:
        raise OlmpError(
            f"the problem declares {expected} constraint(s), got {len(numbers)}: {numbers!r}"
        )
    for i, number in enumerate(numbers):
        if math.isnan(number):
            raise OlmpError(
                f"constraint {i} is NaN; a constraint value is a number (<= 0: satisfied)"
            )
    return numbers


class Problem:
    """An objective over ``space``, with ``n_constraints`` constraints and fidelities.

    Args:
        space: The :class:`~olmp.dfo.space.Space` searched.
        objective: ``objective(params) -> value | {"value", "constraints", "cost"}``
            (``objective(params, fidelity=name)`` with fidelities); ``None`` for a problem
            evaluated by hand through :meth:`olmp.dfo.Study.tell`. For a worker pool it
            must be picklable (a module-level function).
        n_constraints: Constraint values each evaluation returns.
        fidelities: ``{name: relative cost}``, e.g. ``{"epoch": 0.1, "full": 1.0}``; the
            most expensive one is the default fidelity. ``None``: one fidelity.
    """

    def __init__(
        self,
        space: Space,
        objective: Callable[..., Any] | None = None,
        *,
        n_constraints: int = 0,
        fidelities: Mapping[str, float] | None = None,
    ) -> None:
        if not isinstance(space, Space):
            raise OlmpError(f"a problem needs an olmp.dfo.Space, got {space!r}")
        if objective is not None and not callable(objective):
            raise OlmpError(f"objective must be callable, got {objective!r}")
        if (
            isinstance(n_constraints, bool)
            or not isinstance(n_constraints, int)
            or n_constraints < 0
        ):
            raise OlmpError(f"n_constraints must be an integer >= 0, got {n_constraints!r}")
        self.space = space
        self.objective = objective
        self.n_constraints = n_constraints
        self.fidelities: dict[str, float] = {}
        if fidelities is not None and not isinstance(fidelities, Mapping):
            raise OlmpError(
                f"fidelities is a dict of name -> relative cost > 0, e.g. {{'cheap': 0.1, "
                f"'full': 1.0}}, got {fidelities!r}"
            )
        for name, cost in dict(fidelities or {}).items():
            if not isinstance(name, str) or not is_number(cost) or not 0 < cost < math.inf:
                raise OlmpError(
                    f"fidelity {name!r}: a fidelity is a name with a relative cost > 0, "
                    f"got {cost!r}"
                )
            self.fidelities[name] = float(cost)

    @property
    def default_fidelity(self) -> str | None:
        """The most expensive fidelity (``None`` without fidelities)."""
        if not self.fidelities:
            return None
        return max(self.fidelities, key=lambda name: self.fidelities[name])

    def check_fidelity(self, fidelity: str | None) -> str | None:
        """``fidelity``, or the default one for ``None``; OlmpError for an undeclared one."""
        if fidelity is None:
            return self.default_fidelity
        if fidelity not in self.fidelities:
            declared = list(self.fidelities)
            if not declared:
                raise OlmpError(
                    f"fidelity {fidelity!r} was not declared; this problem has no fidelities "
                    "(Problem(..., fidelities={name: relative cost}))"
                )
            raise unknown_choice("fidelity", str(fidelity), declared, "declared by the problem")
        return fidelity

    def cost_of(self, fidelity: str | None) -> float:
        return 1.0 if fidelity is None else self.fidelities[fidelity]

    def evaluate(self, params: dict[str, Any], fidelity: str | None = None) -> Result:
        """Evaluate ``params`` at ``fidelity``; a failure is returned, never raised."""
        if self.objective is None:
            raise OlmpError("this problem has no objective: evaluate by hand with Study.tell")
        began = time.perf_counter()
        try:
            kwargs = {} if fidelity is None else {"fidelity": fidelity}
            # A deep copy (a choice may be a list): what the objective does to its params
            # must not change the trial's record or the space (in a worker process it
            # could not, so the two would differ).
            result = self.read(self.objective(copy.deepcopy(params), **kwargs), fidelity)
        except Exception as error:  # recorded with the trial; the study goes on
            last = traceback.extract_tb(error.__traceback__)[-1:]
            where = f" ({last[0].filename}:{last[0].lineno})" if last else ""
            result = Result(
                cost=self.cost_of(fidelity), error=f"{type(error).__name__}: {error}{where}"
            )
        result.seconds = time.perf_counter() - began
        return result

    def read(self, returned: Any, fidelity: str | None) -> Result:
        """A :class:`Result` from what the objective returned; OlmpError if malformed."""
        if isinstance(returned, Mapping):
            unknown = set(returned) - {"value", "constraints", "cost"}
            if unknown or "value" not in returned:
                raise OlmpError(
                    "an objective returns a number or a mapping with 'value' and optionally "
                    f"'constraints' and 'cost', got keys {sorted(returned)}"
                )
            value, constraints = returned["value"], returned.get("constraints")
            cost = returned.get("cost")
        else:
            value, constraints, cost = returned, None, None
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise OlmpError(f"the objective's value must be a number, got {value!r}") from None
        if math.isnan(number):
            raise OlmpError("the objective's value is NaN")
        if number == -math.inf:
            raise OlmpError("the objective's value is -inf, which no minimisation can rank")
        numbers = check_constraints(constraints, self.n_constraints)
        return Result(value=number, constraints=numbers, cost=self.told_cost(cost, fidelity))

    def told_cost(self, cost: Any, fidelity: str | None) -> float:
        """An evaluation's ``cost`` as returned or told (a number >= 0), or its fidelity's
        when ``None``."""
        if cost is None:
            return self.cost_of(fidelity)
        if not (is_number(cost) and cost >= 0):
            raise OlmpError(f"an evaluation's cost must be a number >= 0, got {cost!r}")
        return float(cost)
