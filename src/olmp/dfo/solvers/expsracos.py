"""ExpSRacos: SRacos with a pre-sampling step guided by experience (Hu, Yu & Zhou, IJCAI 2018).

After SRacos's initial samples, every new candidate is chosen like this: draw ``k``
candidates from SRacos's learned region (each exactly as :class:`~olmp.dfo.solvers.sracos.SRacos`
would draw its one), score them with a :class:`~olmp.dfo.directional.DirectionalModel`
against the best point so far, and evaluate only the best-scored one among those whose
settings (decoded through the model's space) no earlier trial had. SRacos proposes settings
again when the coordinates it resamples are integer or categorical ones that land in the
cell they left; a study spends no trial on those (its sampler tells the solver the earlier
result, :mod:`olmp.dfo.sampler`), but a candidate the model picked would be lost to one.
The others are forgotten: SRacos learns from evaluated points only. The model's networks
(one per source dataset) are weighted by how well each has predicted this search's own
trials so far (:class:`~olmp.dfo.directional.Reliability`).

Options beyond SRacos's:

* ``experience``: an experience file (``olmp experience build``) or a loaded model. Without
  one (and ``select="model"``), ``k`` is ignored and the solver asks exactly what ``sracos``
  asks for the same seed.
* ``k``: candidates per step (>= 1; 1 is plain SRacos whatever the model).
* ``select``: ``"model"`` (the default) or ``"random"``, which picks one of the ``k``
  uniformly: the ablation that tells the model's help from the extra sampling's.

The model is trained on the space's unit box; the solver maps its box onto it (the box a
study's sampler gives a box solver is the unit box, or a space's own box for plain real
variables: both map linearly). The model must have as many coordinates as the box; that
the space is the very same is checked where the space is known (``olmp tune``, or
:meth:`~olmp.dfo.directional.DirectionalModel.check_space`).
"""

from __future__ import annotations

import math
import os
from typing import Any, ClassVar

import numpy as np

from olmp.dfo.directional import DirectionalModel, Reliability, as_model
from olmp.dfo.solvers.base import Option
from olmp.dfo.solvers.checks import integer, one_of
from olmp.dfo.solvers.sracos import SRacos
from olmp.dfo.space import settings_key
from olmp.errors import OlmpError

#: The most candidates a step may draw (1,000 take about 0.3 s a step on 13 variables).
MAX_K = 1000


def _experience(name: str, value: Any) -> Any:
    if value is None or isinstance(value, DirectionalModel | str | os.PathLike):
        return value
    raise OlmpError(
        f"{name} must be an experience file (olmp experience build) or a DirectionalModel, "
        f"got {value!r}"
    )


def _fingerprint(value: Any) -> Any:
    """An experience as a study records it: a model by its content, a file by its path."""
    return value.fingerprint if isinstance(value, DirectionalModel) else value


class ExpSRacos(SRacos):
    """SRacos plus pre-sampling guided by a directional model; see the module docstring.

    Args:
        experience: Experience file or :class:`~olmp.dfo.directional.DirectionalModel`
            (``None``: plain SRacos).
        k: Candidates drawn per step, of which one is evaluated.
        select: ``"model"`` or ``"random"`` (the ablation).
        Others: as :class:`~olmp.dfo.solvers.sracos.SRacos`.
    """

    name = "expsracos"
    summary = "SRacos choosing among k candidates by a directional model learned from past studies"
    supports = (
        "real (int/cat rounded); batch <= popsize in flight; constraints: penalty; "
        "experience from olmp experience build"
    )
    options: ClassVar[dict[str, Option]] = {
        **SRacos.options,
        "experience": Option(
            None, _experience, "experience file (olmp experience build)", record=_fingerprint
        ),
        # Bounded: every step draws and scores k candidates (a huge k stalls the search).
        "k": Option(10, integer(1, MAX_K), "candidates sampled per step, one evaluated"),
        "select": Option("model", one_of("model", "random"), "how the one is picked"),
    }

    def _setup(self) -> None:
        super()._setup()
        self.model: DirectionalModel | None = (
            None if self.experience is None else as_model(self.experience)
        )
        self.reliability = None if self.model is None else Reliability(self.model.networks)
        # The best trial told so far, as the model's unit-box point, and its value.
        self._told_best: np.ndarray | None = None
        self._told_best_value = math.inf
        self._seen: set[str] = set()  # the settings of every row asked (settings_key)

    def _start(self) -> None:
        if self.model is not None and self.model.dim != self.dim:
            raise OlmpError(
                f"the experience has {self.model.dim} coordinates but this search's box has "
                f"{self.dim}: it was learned on another space"
            )
        super()._start()

    def _propose(self) -> Any:
        guided = self.model is not None or self.select == "random"
        if self.k == 1 or not guided:
            return self._suggest()
        tune = self._tune
        drawn = []
        for _ in range(self.k):
            drawn.append(self._suggest())
            # Each suggestion counts as one in flight; only the chosen one goes out.
            tune.init_num, tune.live_num = tune.init_num - 1, tune.live_num - 1
        tune.init_num, tune.live_num = tune.init_num + 1, tune.live_num + 1
        rows = np.array([self._to_unit(self._to_box(s)) for s in drawn])
        fresh = self._fresh(rows)
        if self.select == "random" or self._best_x is None:
            return drawn[int(fresh[self.rng.integers(len(fresh))])]
        assert self.model is not None and self.reliability is not None
        scores = self.model.score(
            self._to_unit(self._best_x), rows[fresh], self.reliability.weights
        )
        return drawn[int(fresh[np.argmax(scores)])]

    def _fresh(self, rows: np.ndarray) -> np.ndarray:
        """Indices of the candidate ``rows`` (unit box) whose settings no trial of this
        search has had (see the module docstring), or all of them when none is new."""
        if self.model is None:
            return np.arange(len(rows))
        keys = [self._settings(row) for row in rows]
        new = np.array([i for i, key in enumerate(keys) if key not in self._seen], dtype=int)
        return new if len(new) else np.arange(len(rows))

    def _ask(self) -> np.ndarray:
        population = super()._ask()
        if self.model is not None:
            self._seen.update(self._settings(row) for row in self._to_unit(population))
        return population

    def _settings(self, unit_row: np.ndarray) -> str:
        """The key of the settings a unit-box row decodes to in the model's space."""
        assert self.model is not None
        return settings_key(self.model.space.from_unit(unit_row))

    def _to_unit(self, row: np.ndarray) -> np.ndarray:
        return (row - self.lower) / (self.upper - self.lower)

    def _tell(self, candidates: np.ndarray, fitness: np.ndarray) -> None:
        if self.model is not None and self.reliability is not None:
            # Each trial against the best told before it, as the model's examples are made
            # (olmp.dfo.directional.pairs): did it improve, and what did each network say?
            for row, value in zip(candidates, fitness, strict=True):
                point = self._to_unit(row)
                if self._told_best is not None:
                    probabilities = self.model.network_scores(self._told_best, point[None])
                    self.reliability.observe(probabilities[:, 0], value < self._told_best_value)
                if value < self._told_best_value:
                    self._told_best, self._told_best_value = point, float(value)
        super()._tell(candidates, fitness)
