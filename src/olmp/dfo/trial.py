"""One trial of a study: the parameters asked, the fidelity, the result, timing and state."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from olmp.errors import OlmpError

#: A trial is ``running`` from its ask to its tell, then ``complete`` or ``failed``.
STATES = ("running", "complete", "failed")


@dataclass
class Trial:
    """One evaluation, asked by a study and told back (see :class:`olmp.dfo.Study`).

    ``value`` is ``None`` until complete; ``error`` holds the failure's message; ``started``
    and ``finished`` are Unix times of the ask and the tell; ``seconds`` the evaluation's own
    time when the study ran it (``None`` when told by hand).
    """

    id: int
    params: dict[str, Any]
    fidelity: str | None = None
    state: str = "running"
    value: float | None = None
    constraints: list[float] = field(default_factory=list)
    cost: float | None = None
    error: str | None = None
    started: float | None = None
    finished: float | None = None
    seconds: float | None = None

    @property
    def done(self) -> bool:
        return self.state != "running"

    @property
    def violation(self) -> float:
        """Total constraint violation (``inf`` unless complete)."""
        if self.state != "complete":
            return math.inf
        return float(sum(max(c, 0.0) for c in self.constraints))

    @property
    def feasible(self) -> bool:
        """Complete with every constraint ``<= 0``."""
        return self.state == "complete" and self.violation == 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> Trial:
        try:
            trial = cls(**record)
        except TypeError as error:
            raise OlmpError(f"a trial record has unexpected fields: {error}") from None
        if trial.state not in STATES or not isinstance(trial.params, dict):
            raise OlmpError(f"trial {trial.id!r} has state {trial.state!r} or bad params")
        return trial
