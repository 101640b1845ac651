"""One trial of a study: the parameters asked, the fidelity, the result, timing and state."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from olmp.errors import OlmpError, is_integer, is_number

#: A trial is ``running`` from its ask to its tell, then ``complete`` or ``failed``.
STATES = ("running", "complete", "failed")


@dataclass
class Trial:
    """One evaluation, asked by a study and told back (see :class:`olmp.dfo.Study`).

    ``value`` is ``None`` until complete; ``error`` holds the failure's message; ``started``
    and ``finished`` are Unix times of the ask and the tell; ``seconds`` the evaluation's own
    time when the study ran it (``None`` when told by hand); ``elapsed`` the study's own
    time at the tell (:attr:`olmp.dfo.Study.elapsed`: over all its sessions, the time it was
    stopped left out; ``None`` in records written before it was kept).
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
    elapsed: float | None = None

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
        times = [trial.started, trial.finished, trial.seconds, trial.elapsed]
        numbers = [trial.value, trial.cost, *times]
        texts = [trial.fidelity, trial.error]
        if (
            not is_integer(trial.id)
            or not isinstance(trial.constraints, list)
            or not all(is_number(c) for c in trial.constraints)
            or not all(v is None or is_number(v) for v in numbers)
            or not all(v is None or isinstance(v, str) for v in texts)
        ):
            raise OlmpError(f"trial {trial.id!r} has a field of the wrong type")
        return trial
