"""The black box an attack sees: output probabilities, and a count of every image asked.

:class:`Oracle` wraps a classifier that takes normalised inputs. An attack hands it images in
the pixel space ``[0, 1]`` (``(k, C, H, W)`` arrays); it maps them through the dataset's
normalisation, scores the whole batch in one forward pass and returns the probabilities. Each
image is one query: a population of 50 candidates costs 50. The attack never sees gradients,
logits or weights.

The oracle also keeps the ledger of the attack against one (image, target) pair: the queries
spent, the best candidate so far by the targeted log-odds margin (:func:`margin`), and the
query at which the target class first won, after which :attr:`Oracle.done` is true and the
attack stops. A batch larger than the budget left is cut to it.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

#: Probabilities are floored here before taking logs (a probability of 0 has no log-odds).
PROBABILITY_FLOOR = 1e-30


def margin(probabilities: np.ndarray, target: int) -> np.ndarray:
    """Targeted log-odds margin ``log p_target - max_{j != target} log p_j`` per row: positive
    exactly when the target class wins."""
    logp = np.log(np.maximum(probabilities, PROBABILITY_FLOOR))
    others = np.delete(logp, target, axis=1).max(axis=1)
    return logp[:, target] - others


class Oracle:
    """Query-counting black box over ``model`` for one (image, target) pair.

    Args:
        model: A classifier of normalised inputs, returning one score per class.
        mean, std: The dataset's normalisation: the model sees ``(x - mean) / std`` for a
            pixel-space image ``x`` in ``[0, 1]``.
        target: The class the attack wants the model to output.
        budget: Queries the attack may spend.
        device: Where the model runs.
    """

    def __init__(
        self,
        model: nn.Module,
        mean: float,
        std: float,
        target: int,
        budget: int,
        device: torch.device | str = "cpu",
    ) -> None:
        self._model = model.eval()
        self._mean, self._std = float(mean), float(std)
        self._device = torch.device(device)
        self.target = int(target)
        self.budget = int(budget)
        #: Queries spent so far.
        self.queries = 0
        #: Queries spent when the target first won (the whole batch that held the winning
        #: image counts); ``None`` while it has not.
        self.success_at: int | None = None
        #: Best candidate so far (highest margin) and its margin.
        self.best_x: np.ndarray | None = None
        self.best_margin = -np.inf

    @property
    def remaining(self) -> int:
        return self.budget - self.queries

    @property
    def done(self) -> bool:
        """The target has won, or the budget is spent."""
        return self.success_at is not None or self.queries >= self.budget

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """Probabilities of a batch of pixel-space images (one forward pass), counted."""
        images = np.asarray(images, dtype=np.float32)[: max(self.remaining, 0)]
        if not len(images):
            return np.zeros((0, 0))
        with torch.no_grad():
            x = torch.from_numpy(images).to(self._device)
            scores = self._model((x - self._mean) / self._std)
            p = torch.softmax(scores.double(), dim=1).cpu().numpy()
        self.queries += len(images)
        return p

    def loss(self, images: np.ndarray) -> np.ndarray:
        """The attacks' objective to minimise, ``-margin``, for a batch (cut to the budget
        left, so possibly shorter than ``images``); updates the ledger."""
        images = np.asarray(images, dtype=np.float32)
        p = self.probabilities(images)
        if not len(p):
            return np.zeros(0)
        m = margin(p, self.target)
        best = int(np.argmax(m))
        if m[best] > self.best_margin:
            self.best_margin, self.best_x = float(m[best]), images[best].copy()
        if self.success_at is None and (m > 0).any():
            first = int(np.flatnonzero(m > 0)[0])
            self.success_at = self.queries  # the whole batch was asked: it all counts
            self.best_margin, self.best_x = float(m[first]), images[first].copy()
        return -m
