"""The search space of ``olmp tune``: HyperNOMAD's variables, as families a user may fix or
narrow.

A *family* is one kind of setting (``conv_channels``, ``lr``, ...). Per-layer families
give one variable per layer that may exist (``conv1_channels``, ``conv2_channels``, ...),
active only when the network has that layer (a conditional variable of the engine);
``momentum`` exists only for the optimisers that have one, ``beta1`` for Adam, ``alpha``
for RMSprop, ``lr_decay`` for Adagrad.

A user overrides families in a JSON or TOML file (or a mapping)::

    conv_layers = [1, 2]          # a range inside the family's limits
    activation = ["relu", "tanh"] # a subset of the choices
    batch_size = 128              # a fixed value (no variable is searched)

Unknown families, values outside a family's limits, empty choice lists and fixed values
outside the limits raise :class:`~olmp.errors.OlmpError` naming the value and the allowed
ones.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from olmp.dfo import Categorical, Integer, Real, Space
from olmp.errors import OlmpError, unknown_choice

OPTIMIZERS = ("sgd", "adam", "adagrad", "rmsprop")
ACTIVATIONS = ("relu", "sigmoid", "tanh")
CONV_ATTRS = ("channels", "kernel", "stride", "padding", "pool")
#: Families that set the structure of the network (what MADS's extended poll changes).
STRUCTURE = ("conv_layers", "fc_layers", "optimizer")
#: The optimisers each optimiser-specific family belongs to.
OPTIMIZER_FAMILIES = {
    "momentum": ("sgd", "rmsprop"),
    "beta1": ("adam",),
    "alpha": ("rmsprop",),
    "lr_decay": ("adagrad",),
}


@dataclass(frozen=True)
class Family:
    """One kind of setting: ``limits`` are what a user may ask for, ``default`` the range
    (or choices) searched unless overridden, ``start`` the value of the default network."""

    name: str
    kind: str  # "integer", "real" or "categorical"
    limits: tuple[Any, ...]
    default: tuple[Any, ...]
    start: Any
    log: bool = False
    help: str = ""


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family("conv_layers", "integer", (0, 6), (0, 3), 2, help="number of conv layers"),
        Family("conv_channels", "integer", (1, 512), (4, 128), 32, True, "output channels"),
        Family("conv_kernel", "integer", (1, 11), (1, 7), 3, help="kernel size"),
        Family("conv_stride", "integer", (1, 4), (1, 2), 1, help="stride"),
        Family("conv_padding", "integer", (0, 5), (0, 3), 1, help="zero padding"),
        Family("conv_pool", "categorical", (False, True), (False, True), True, help="2x2 max-pool"),
        Family("fc_layers", "integer", (0, 5), (0, 3), 1, help="hidden fully connected layers"),
        Family("fc_size", "integer", (1, 4096), (16, 1024), 128, True, "units per fc layer"),
        Family("dropout", "real", (0.0, 0.95), (0.0, 0.6), 0.2, help="dropout before each fc"),
        Family("activation", "categorical", ACTIVATIONS, ACTIVATIONS, "relu"),
        Family("optimizer", "categorical", OPTIMIZERS, OPTIMIZERS, "sgd"),
        Family("lr", "real", (1e-6, 10.0), (1e-4, 0.5), 0.05, True, "learning rate"),
        Family("momentum", "real", (0.0, 0.999), (0.0, 0.99), 0.9, help="SGD, RMSprop"),
        Family("beta1", "real", (0.0, 0.999), (0.5, 0.999), 0.9, help="Adam's beta1"),
        Family("alpha", "real", (0.5, 0.9999), (0.8, 0.999), 0.99, help="RMSprop smoothing"),
        Family("lr_decay", "real", (0.0, 0.1), (0.0, 0.01), 0.0, help="Adagrad"),
        Family("weight_decay", "real", (1e-8, 0.1), (1e-6, 1e-2), 5e-4, True, "L2 penalty"),
        Family("batch_size", "integer", (1, 4096), (16, 512), 64, True, "batch size"),
    )
}


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _number(family: Family, value: Any, what: str) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise OlmpError(f"space: {family.name} {what} must be a number, got {value!r}")
    if family.kind == "integer" and value != int(value):
        raise OlmpError(f"space: {family.name} {what} must be a whole number, got {value!r}")
    low, high = family.limits
    if not low <= value <= high:
        raise OlmpError(
            f"space: {family.name} {what} {value!r} is outside its limits [{low}, {high}]"
        )
    return int(value) if family.kind == "integer" else float(value)


def _resolve(family: Family, override: Any) -> tuple[Any, ...]:
    """The range ``(low, high)`` or the choices searched, or ``(value,)`` when fixed."""
    if family.kind == "categorical":
        values = list(override) if isinstance(override, list | tuple) else [override]
        if not values:
            raise OlmpError(
                f"space: {family.name} has an empty choice list; choose from "
                f"{list(family.limits)!r}"
            )
        for value in values:
            if not any(_same(value, c) for c in family.limits):
                raise OlmpError(
                    f"space: {family.name} {value!r} is not a choice; choose from "
                    f"{list(family.limits)!r}"
                )
        return tuple(c for c in family.limits if any(_same(c, v) for v in values))
    if isinstance(override, list | tuple):
        if len(override) != 2:
            raise OlmpError(
                f"space: {family.name} takes a value or a range [low, high], got {override!r}"
            )
        low = _number(family, override[0], "low")
        high = _number(family, override[1], "high")
        if low > high:
            raise OlmpError(f"space: {family.name} range [{low}, {high}] has low > high")
        return (low,) if low == high else (low, high)
    return (_number(family, override, "value"),)


class TuneSpace:
    """The families with their ranges; see the module docstring.

    Attributes:
        ranges: ``{family: (low, high) | choices | (fixed value,)}``.
        space: the engine :class:`~olmp.dfo.Space` searched.
        fixed: ``{family: value}`` for families with one value.
    """

    def __init__(self, overrides: Mapping[str, Any] | None = None) -> None:
        overrides = dict(overrides or {})
        for key in overrides:
            if key not in FAMILIES:
                raise unknown_choice("space key", str(key), list(FAMILIES))
        self.overrides = overrides
        self.ranges: dict[str, tuple[Any, ...]] = {
            name: _resolve(f, overrides[name]) if name in overrides else f.default
            for name, f in FAMILIES.items()
        }
        self.fixed = {name: r[0] for name, r in self.ranges.items() if len(r) == 1}
        self.space = self.engine_space()

    # -- the engine's space -------------------------------------------------------------

    def _variable(self, family: str, name: str, when: dict[str, list[Any]]) -> Any:
        f, r = FAMILIES[family], self.ranges[family]
        if f.kind == "categorical":
            return Categorical(name, list(r), when=when)
        cls = Integer if f.kind == "integer" else Real
        return cls(name, r[0], r[1], log=f.log, when=when)

    def engine_space(self, pin: Mapping[str, Any] | None = None) -> Space:
        """The engine space; ``pin`` fixes structure families too (MADS's sub-spaces)."""
        pin = {**self.fixed, **dict(pin or {})}
        variables = []
        for family in STRUCTURE:
            if family not in pin:
                variables.append(self._variable(family, family, {}))
        for prefix, attrs in (("conv", CONV_ATTRS), ("fc", ("size",))):
            count = f"{prefix}_layers"
            low, high = (pin[count],) * 2 if count in pin else self.ranges[count]
            for i in range(1, high + 1):
                when = {} if i <= low else {count: list(range(i, high + 1))}
                for attr in attrs:
                    if f"{prefix}_{attr}" not in pin:
                        variables.append(
                            self._variable(f"{prefix}_{attr}", f"{prefix}{i}_{attr}", when)
                        )
        for family in ("dropout", "activation", "lr"):
            if family not in pin:
                variables.append(self._variable(family, family, {}))
        for family, owners in OPTIMIZER_FAMILIES.items():
            if family in pin:
                continue
            if "optimizer" in pin:
                if pin["optimizer"] in owners:
                    variables.append(self._variable(family, family, {}))
                continue
            users = [o for o in self.ranges["optimizer"] if o in owners]
            if users:
                variables.append(self._variable(family, family, {"optimizer": users}))
        for family in ("weight_decay", "batch_size"):
            if family not in pin:
                variables.append(self._variable(family, family, {}))
        if not variables:
            raise OlmpError("space: every family is fixed, so there is nothing to search")
        return Space(variables)

    # -- from parameters to a network and a recipe --------------------------------------

    def complete(self, params: Mapping[str, Any], pin: Mapping[str, Any] | None = None) -> dict:
        """Every setting of the network ``params`` (a trial's) describes, fixed ones
        included, as one flat mapping (per-layer names ``conv1_channels``, ...)."""
        full = {**self.fixed, **dict(pin or {}), **dict(params)}
        for prefix, attrs in (("conv", CONV_ATTRS), ("fc", ("size",))):
            for i in range(1, int(full[f"{prefix}_layers"]) + 1):
                for attr in attrs:
                    family = f"{prefix}_{attr}"
                    if family in full and f"{prefix}{i}_{attr}" not in full:
                        full[f"{prefix}{i}_{attr}"] = full[family]
        optimizer = full["optimizer"]
        for family, owners in OPTIMIZER_FAMILIES.items():
            if optimizer not in owners:
                full.pop(family, None)
        for family in ("conv_channels", "conv_kernel", "conv_stride", "conv_padding"):
            full.pop(family, None)
        full.pop("conv_pool", None)
        full.pop("fc_size", None)
        return full

    @staticmethod
    def architecture(full: Mapping[str, Any]) -> dict[str, Any]:
        """The ``tuned-cnn`` spec of a complete setting (see :mod:`olmp.models.tuned`)."""
        conv = [
            {attr: full[f"conv{i}_{attr}"] for attr in CONV_ATTRS}
            for i in range(1, int(full["conv_layers"]) + 1)
        ]
        fc = [full[f"fc{i}_size"] for i in range(1, int(full["fc_layers"]) + 1)]
        return {
            "conv": conv,
            "fc": fc,
            "dropout": float(full["dropout"]),
            "activation": full["activation"],
        }

    @staticmethod
    def recipe(full: Mapping[str, Any]) -> dict[str, Any]:
        """The optimiser and its settings of a complete setting."""
        keys = ("optimizer", "lr", "weight_decay", "batch_size", *OPTIMIZER_FAMILIES)
        return {k: full[k] for k in keys if k in full}

    def start(self) -> dict[str, Any]:
        """The engine parameters of the default network (HyperNOMAD's idea of a sensible
        start), each value moved into its range."""
        return self.project({name: f.start for name, f in FAMILIES.items()})

    def project(self, values: Mapping[str, Any], pin: Mapping[str, Any] | None = None) -> dict:
        """Engine parameters of ``space`` (or of the sub-space with ``pin``) taken from
        ``values`` (flat settings; per-layer ones fall back on their family's value, then
        the family's start), each moved into its range."""
        space = self.engine_space(pin)
        params: dict[str, Any] = {}
        for variable in space.variables:
            if not space.is_active(variable, params):
                continue
            family = _family_of(variable.name)
            value = values.get(variable.name, values.get(family, FAMILIES[family].start))
            params[variable.name] = _into(variable, value)
        return params

    # -- files -------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {name: list(r) if len(r) > 1 else r[0] for name, r in self.ranges.items()}

    @classmethod
    def from_file(cls, path: str | Path) -> TuneSpace:
        """A space from a JSON or TOML file of overrides (see the module docstring)."""
        path = Path(path)
        try:
            raw = path.read_bytes()
        except OSError as error:
            raise OlmpError(f"cannot read space file {path}: {error.strerror}") from None
        try:  # both formats are UTF-8 text: other bytes are not the format either
            text = raw.decode("utf-8")
            data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
        except (UnicodeDecodeError, tomllib.TOMLDecodeError, json.JSONDecodeError) as error:
            kind = "TOML" if path.suffix == ".toml" else "JSON"
            raise OlmpError(f"space file {path} is not valid {kind}: {error}") from None
        if not isinstance(data, dict):
            raise OlmpError(f"space file {path} must hold an object of families, got {data!r}")
        return cls(data)


def _family_of(name: str) -> str:
    for prefix in ("conv", "fc"):
        head, _, attr = name.partition("_")
        if head.startswith(prefix) and head[len(prefix) :].isdigit():
            return f"{prefix}_{attr}"
    return name


def _into(variable: Any, value: Any) -> Any:
    if isinstance(variable, Categorical):
        return value if any(_same(value, c) for c in variable.choices) else variable.choices[0]
    value = min(max(value, variable.low), variable.high)
    return round(value) if isinstance(variable, Integer) else float(value)


def load_space(space: TuneSpace | Mapping[str, Any] | str | Path | None) -> TuneSpace:
    """A :class:`TuneSpace` from itself, overrides, a file path, or ``None`` (defaults)."""
    if isinstance(space, TuneSpace):
        return space
    if space is None or isinstance(space, Mapping):
        return TuneSpace(space)
    return TuneSpace.from_file(space)
