"""Search spaces: named real, integer and categorical variables, some of them conditional.

>>> from olmp.dfo import Categorical, Integer, Real, Space
>>> space = Space([
...     Real("lr", 1e-4, 1e-1, log=True),
...     Integer("layers", 1, 3),
...     Integer("width3", 8, 256, log=True, when={"layers": [3]}),
...     Categorical("activation", ["relu", "tanh", None]),
... ])
>>> params = space.sample(rng=0)
>>> space.validate(params)  # raises OlmpError when a value is missing or outside

A variable with ``when={"layers": [3]}`` is *active* only when ``layers`` is 3; otherwise it
is absent from the parameters. A condition may only name variables declared before it, so
spaces are never circular.

**The unit box.** Solvers that only know a box see every space through one documented map
onto ``[0, 1]^n`` (:meth:`Space.to_unit` / :meth:`Space.from_unit`):

* ``Real``: one coordinate, ``u = (x - low) / (high - low)``, or in ``log(x)`` when ``log``.
* ``Integer``: one coordinate cut into ``high - low + 1`` equal cells, one per value (in
  ``log`` scale: the log of the value, rounded); a solver sees a piecewise-constant function.
* ``Categorical`` with ``k`` choices: ``k`` coordinates, the choice is the arg-max (the first
  on ties). So no choice is "between" two others, as it would be if the choices were
  numbered. Encoding a choice puts 0.6 at its coordinate and 0.4 elsewhere: the arg-max,
  yet near enough to the others that a local step from it can change the choice.
* Inactive variables keep their coordinates (a box has no holes); they are ignored when
  decoding and encoded at the centre.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from olmp.errors import OlmpError, unknown_choice

#: The kinds of variable, as named in JSON.
KINDS = ("real", "integer", "categorical")


@dataclass(frozen=True)
class Variable:
    """What every variable has: a name and an optional condition ``when``."""

    name: str
    when: Mapping[str, tuple[Any, ...]] = field(default_factory=dict, kw_only=True)

    kind = "variable"

    def _check_name(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise OlmpError(f"a variable name is a non-empty string, got {self.name!r}")
        if not isinstance(self.when, Mapping):
            raise OlmpError(
                f"variable {self.name!r}: when must be a dict of variable name -> the values "
                f"that activate it, e.g. when={{'layers': [3]}}, got {self.when!r}"
            )
        when = {}
        for parent, values in dict(self.when).items():
            if isinstance(values, str) or not isinstance(values, Sequence) or not values:
                raise OlmpError(
                    f"variable {self.name!r}: when[{parent!r}] must be a non-empty list of "
                    f"the values that activate it, got {values!r}"
                )
            when[parent] = tuple(values)
        object.__setattr__(self, "when", when)

    @property
    def width(self) -> int:
        """Coordinates of the unit box this variable takes."""
        return 1

    def to_json(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"name": self.name, "kind": self.kind}
        spec.update(self._fields())
        if self.when:
            spec["when"] = {parent: list(values) for parent, values in self.when.items()}
        return spec

    def _fields(self) -> dict[str, Any]:
        return {}


@dataclass(frozen=True)
class _Numeric(Variable):
    low: float
    high: float
    log: bool = False

    def __post_init__(self) -> None:
        self._check_name()
        for bound in ("low", "high"):
            value = getattr(self, bound)
            if isinstance(value, np.integer | np.floating):  # numpy's numbers are numbers too
                object.__setattr__(self, bound, value := value.item())
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise OlmpError(f"variable {self.name!r}: {bound} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise OlmpError(f"variable {self.name!r}: {bound} must be finite, got {value!r}")
        if not self.low < self.high:
            raise OlmpError(
                f"variable {self.name!r}: low must be < high, got low={self.low!r} >= "
                f"high={self.high!r}"
            )
        if not math.isfinite(self.high - self.low):  # every solver steps in this width
            raise OlmpError(
                f"variable {self.name!r}: high - low must be a finite number, got "
                f"low={self.low!r}, high={self.high!r}"
            )
        if isinstance(self.log, np.bool_):
            object.__setattr__(self, "log", bool(self.log))
        if not isinstance(self.log, bool):  # log="false" would be a log scale
            raise OlmpError(f"variable {self.name!r}: log must be True or False, got {self.log!r}")
        if self.log and self.low <= 0:
            raise OlmpError(
                f"variable {self.name!r}: a log scale needs bounds > 0, got low={self.low!r}"
            )

    def _fields(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high, "log": self.log}

    def _scaled(self, x: float) -> float:
        if self.log:
            return (math.log(x) - math.log(self.low)) / (math.log(self.high) - math.log(self.low))
        return (x - self.low) / (self.high - self.low)

    def _unscaled(self, u: float) -> float:
        u = min(max(u, 0.0), 1.0)
        if self.log:
            return math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
        return self.low + u * (self.high - self.low)

    def check(self, value: Any) -> None:
        ok = isinstance(value, int | float | np.number) and not isinstance(value, bool)
        if not ok or not self.low <= value <= self.high:
            raise OlmpError(
                f"variable {self.name!r} must be {'an' if self.kind == 'integer' else 'a'} "
                f"{self.kind} number in "
                f"[{self.low}, {self.high}], got {value!r}"
            )


@dataclass(frozen=True)
class Real(_Numeric):
    """A real variable in ``[low, high]``, optionally on a log scale (``low > 0``)."""

    kind = "real"

    def encode(self, value: Any) -> list[float]:
        return [self._scaled(float(value))]

    def decode(self, u: np.ndarray) -> float:
        return min(max(self._unscaled(float(u[0])), self.low), self.high)


@dataclass(frozen=True)
class Integer(_Numeric):
    """An integer variable in ``[low, high]`` (whole bounds), optionally on a log scale."""

    kind = "integer"

    def __post_init__(self) -> None:
        super().__post_init__()
        for bound in (self.low, self.high):
            if bound != int(bound):
                raise OlmpError(f"variable {self.name!r}: bounds must be whole, got {bound!r}")
        object.__setattr__(self, "low", int(self.low))
        object.__setattr__(self, "high", int(self.high))

    def check(self, value: Any) -> None:
        super().check(value)
        if value != int(value):
            raise OlmpError(f"variable {self.name!r} must be a whole number, got {value!r}")

    def encode(self, value: Any) -> list[float]:
        if self.log:
            return [self._scaled(float(value))]
        return [(int(value) - self.low + 0.5) / (self.high - self.low + 1)]

    def decode(self, u: np.ndarray) -> int:
        if self.log:
            return int(min(max(round(self._unscaled(float(u[0]))), self.low), self.high))
        cell = math.floor(min(max(float(u[0]), 0.0), 1.0) * (self.high - self.low + 1))
        return int(min(self.low + cell, self.high))


@dataclass(frozen=True)
class Categorical(Variable):
    """One of ``choices`` (any values, unordered; JSON values for a study saved to a file)."""

    choices: Sequence[Any]
    kind = "categorical"

    def __post_init__(self) -> None:
        self._check_name()
        choices = self.choices
        if isinstance(choices, str) or not isinstance(choices, Sequence) or not choices:
            raise OlmpError(
                f"variable {self.name!r}: choices must be a non-empty list, got {choices!r}"
            )
        # numpy's scalars as Python's, which JSON (a study's file) can hold.
        choices = [c.item() if isinstance(c, np.generic) else c for c in choices]
        seen = []
        for choice in choices:
            if any(_same(choice, other) for other in seen):
                raise OlmpError(
                    f"variable {self.name!r}: choice {choice!r} is listed twice "
                    f"in {list(choices)!r}"
                )
            seen.append(choice)
        object.__setattr__(self, "choices", tuple(choices))

    @property
    def width(self) -> int:
        return len(self.choices)

    def _fields(self) -> dict[str, Any]:
        return {"choices": list(self.choices)}

    def check_json(self) -> None:
        """Raise unless every choice reads back from JSON as itself (a study's file)."""
        for choice in self.choices:
            try:
                same = _same(json.loads(json.dumps(choice)), choice)
            except (TypeError, ValueError):
                same = False
            if not same:
                raise OlmpError(
                    f"variable {self.name!r}: choice {choice!r} does not read back from a "
                    "study file as itself; a study with path= needs JSON choices (str, int, "
                    "float, bool, None, lists or dicts of those): e.g. [3, 3] for (3, 3)"
                )

    def index(self, value: Any) -> int:
        for i, choice in enumerate(self.choices):
            if _same(choice, value):
                return i
        raise OlmpError(
            f"variable {self.name!r} must be one of {list(self.choices)!r}, got {value!r}"
        )

    def check(self, value: Any) -> None:
        self.index(value)

    def encode(self, value: Any) -> list[float]:
        hot = [0.4] * len(self.choices)
        hot[self.index(value)] = 0.6
        return hot

    def decode(self, u: np.ndarray) -> Any:
        return self.choices[int(np.argmax(u))]


def _own_value(variable: Variable | None, value: Any) -> Any:
    """``value`` as ``variable`` takes it: numpy's scalars as Python's, a whole float given
    to an integer variable (``3.0``) as an int; anything else as it is."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(variable, Integer) and isinstance(value, float) and value.is_integer():
        value = int(value)
    return value


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same type, so that ``1``, ``1.0`` and ``True`` are three choices."""
    return type(a) is type(b) and a == b


_CLASSES: dict[str, type[Variable]] = {"real": Real, "integer": Integer, "categorical": Categorical}


def settings_key(params: Mapping[str, Any]) -> str:
    """Settings as a key: equal when the parameters are, real values to 12 significant
    digits (a mesh or a log scale decodes 0.05 as 0.05000000000000172)."""
    rounded = {
        name: float(f"{value:.12g}") if isinstance(value, float) else value
        for name, value in params.items()
    }
    return json.dumps(rounded, sort_keys=True, default=repr)


def variable_from_json(spec: Mapping[str, Any]) -> Variable:
    """The variable a :meth:`Variable.to_json` record describes."""
    if not isinstance(spec, Mapping):
        raise OlmpError(f"a variable is a JSON object with a name and a kind, got {spec!r}")
    kind = spec.get("kind")
    if not isinstance(kind, str) or kind not in _CLASSES:  # a list is no key
        raise unknown_choice("variable kind", str(kind), list(KINDS))
    fields = {key: value for key, value in spec.items() if key != "kind"}
    try:
        return _CLASSES[kind](**fields)
    except TypeError as error:
        raise OlmpError(f"variable {spec.get('name')!r} of kind {kind}: {error}") from None


class Space:
    """An ordered collection of named variables; see the module docstring."""

    def __init__(self, variables: Sequence[Variable]) -> None:
        if not isinstance(variables, Sequence) or not variables:
            raise OlmpError(f"a space needs at least one variable, got {variables!r}")
        self.variables: tuple[Variable, ...] = tuple(variables)
        by_name: dict[str, Variable] = {}
        #: Each variable's conditions in its parents' own values (``3.0`` for an integer
        #: parent is 3: as given, it would never hold).
        self._conditions: dict[str, dict[str, tuple[Any, ...]]] = {}
        for variable in self.variables:
            if not isinstance(variable, Variable):
                raise OlmpError(
                    f"a space holds Real, Integer and Categorical variables, got {variable!r}"
                )
            if variable.name in by_name:
                raise OlmpError(f"variable name {variable.name!r} is used twice")
            for parent, values in variable.when.items():
                if parent not in by_name:
                    known = ", ".join(by_name) or "none yet"
                    raise OlmpError(
                        f"variable {variable.name!r} has a condition on unknown variable "
                        f"{parent!r}; a condition names a variable declared before it ({known})"
                    )
                for value in values:
                    try:
                        by_name[parent].check(value)
                    except OlmpError as error:  # name the condition, not only the parent
                        condition = f"variable {variable.name!r}, condition when[{parent!r}]"
                        raise OlmpError(f"{condition}: {error}") from None
            self._conditions[variable.name] = {
                parent: tuple(_own_value(by_name[parent], value) for value in values)
                for parent, values in variable.when.items()
            }
            by_name[variable.name] = variable
        self._by_name = by_name
        edges = np.cumsum([0] + [v.width for v in self.variables])
        self._slices = [slice(int(a), int(b)) for a, b in itertools.pairwise(edges)]
        #: Width of the unit box.
        self.dim = int(edges[-1])
        self.conditional = any(v.when for v in self.variables)

    # -- basics ------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Variable]:
        return iter(self.variables)

    def __len__(self) -> int:
        return len(self.variables)

    def __getitem__(self, name: str) -> Variable:
        try:
            return self._by_name[name]
        except KeyError:
            raise unknown_choice("variable", str(name), list(self._by_name)) from None

    @property
    def names(self) -> list[str]:
        return list(self._by_name)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Space) and self.to_json() == other.to_json()

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_json(), sort_keys=True, default=repr))

    def __repr__(self) -> str:
        return f"Space({list(self.variables)!r})"

    def kinds(self) -> set[str]:
        """The kinds the space uses: ``real``, ``log-real``, ``integer``, ``categorical``,
        ``conditional`` (for checking what a solver takes natively)."""
        used = set()
        for v in self.variables:
            used.add("log-real" if v.kind == "real" and getattr(v, "log", False) else v.kind)
            if v.when:
                used.add("conditional")
        return used

    def is_active(self, variable: Variable, params: Mapping[str, Any]) -> bool:
        return all(
            parent in params and any(_same(params[parent], value) for value in values)
            for parent, values in self._conditions[variable.name].items()
        )

    # -- checking, sampling -----------------------------------------------------------------

    def canonical(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """``params`` with numpy's scalars as Python's and a whole float given to an integer
        variable (``3.0``) as an int, so conditions match them (``3.0`` would not activate
        ``when={"layers": [3]}``) and JSON can hold them. Nothing else changes: what does
        not fit is left for :meth:`validate` to name."""
        return {name: _own_value(self._by_name.get(name), value) for name, value in params.items()}

    def validate(self, params: Mapping[str, Any]) -> None:
        """Raise OlmpError unless ``params`` has a valid value for every active variable
        and none for the others."""
        if not isinstance(params, Mapping):
            raise OlmpError(f"parameters are a mapping of variable names, got {params!r}")
        unknown = [name for name in params if name not in self._by_name]
        if unknown:
            raise unknown_choice("variable", str(unknown[0]), self.names)
        for variable in self.variables:
            active = self.is_active(variable, params)
            if active and variable.name not in params:
                raise OlmpError(f"variable {variable.name!r} is active and has no value")
            if not active and variable.name in params:
                raise OlmpError(
                    f"variable {variable.name!r} is inactive (its condition {variable.when} "
                    "does not hold) and must have no value"
                )
            if active:
                variable.check(params[variable.name])

    def sample(self, rng: int | np.random.Generator | None = None, n: int | None = None) -> Any:
        """Uniform parameters (uniform in the unit box); ``n`` of them as a list."""
        rng = np.random.default_rng(rng)
        if n is None:
            return self.from_unit(rng.uniform(size=self.dim))
        return [self.from_unit(u) for u in rng.uniform(size=(n, self.dim))]

    # -- the unit box -----------------------------------------------------------------------

    def to_unit(self, params: Mapping[str, Any]) -> np.ndarray:
        """The point of ``[0, 1]^dim`` for ``params`` (see the module docstring)."""
        u = np.full(self.dim, 0.5)
        for variable, cut in zip(self.variables, self._slices, strict=True):
            if variable.name in params:
                u[cut] = variable.encode(params[variable.name])
        return np.clip(u, 0.0, 1.0)

    def from_unit(self, u: np.ndarray) -> dict[str, Any]:
        """The parameters at point ``u`` of the unit box, inactive variables left out."""
        params: dict[str, Any] = {}
        for variable, cut in zip(self.variables, self._slices, strict=True):
            if not variable.when or self.is_active(variable, params):
                params[variable.name] = variable.decode(u[cut])
        return params

    # -- JSON ---------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {"variables": [v.to_json() for v in self.variables]}

    def check_json(self) -> None:
        """Raise unless the space reads back from a study's file as itself."""
        for variable in self.variables:
            if isinstance(variable, Categorical):
                variable.check_json()

    @classmethod
    def from_json(cls, spec: Mapping[str, Any]) -> Space:
        if not isinstance(spec, Mapping) or not isinstance(spec.get("variables"), list):
            raise OlmpError(f'a space is {{"variables": [...]}}, got {spec!r}')
        return cls([variable_from_json(v) for v in spec["variables"]])
