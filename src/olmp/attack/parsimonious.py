"""Parsimonious black-box attack (Moon, An & Song, ICML 2019).

The perturbation only takes the vertices of the ε-ball: every block of pixels (per channel)
is at ``+ε`` or ``-ε``. Starting from all ``-ε``, a lazy-greedy local search alternates
insertion (flip a ``-ε`` block to ``+ε``) and deletion (flip back) steps, each taking the
flip with the largest fall of the loss: the gains of all candidates are computed once, in
batches (one forward pass each), then the best candidate is re-evaluated and accepted when it
is still at least as good as the next one's stale gain (gains shrink as the set grows, so a
stale gain is an upper bound; the lazy evaluation of submodular maximisation). When a round
of insertion and deletion changes nothing, every block is split in four and the search goes
on at the finer grid, down to single pixels.
"""

from __future__ import annotations

import heapq

import numpy as np

from olmp.attack.oracle import Oracle


def _expand(signs: np.ndarray, size: int, shape: tuple[int, int, int]) -> np.ndarray:
    _, h, w = shape
    return signs.repeat(size, axis=1).repeat(size, axis=2)[:, :h, :w]


def parsimonious(
    oracle: Oracle,
    x0: np.ndarray,
    eps: float,
    rng: np.random.Generator,
    *,
    block_size: int = 4,
    batch_size: int = 64,
) -> np.ndarray:
    """Attack ``x0`` (``C x H x W`` in ``[0, 1]``) through ``oracle``; returns the best image."""
    c, h, w = x0.shape
    lo, hi = np.clip(x0 - eps, 0, 1), np.clip(x0 + eps, 0, 1)
    size = max(1, min(block_size, h, w))
    signs = -np.ones((c, -(-h // size), -(-w // size)))

    def image(s: np.ndarray) -> np.ndarray:
        return np.clip(x0 + eps * _expand(s, size, x0.shape), lo, hi)

    def flipped(s: np.ndarray, block: tuple[int, int, int]) -> np.ndarray:
        t = s.copy()
        t[block] = -t[block]
        return t

    x = image(signs)
    loss = float(oracle.loss(x[None])[0])

    def search(sign: float) -> bool:
        """One insertion (``sign=-1``: flip -ε blocks) or deletion pass; whether it changed."""
        nonlocal signs, x, loss
        blocks = [tuple(b) for b in np.argwhere(signs == sign)]
        rng.shuffle(blocks)
        heap: list[tuple[float, int, tuple[int, int, int]]] = []
        for start in range(0, len(blocks), batch_size):
            chunk = blocks[start : start + batch_size]
            values = oracle.loss(np.stack([image(flipped(signs, b)) for b in chunk]))
            for b, v in zip(chunk, values, strict=False):
                heap.append((v - loss, len(heap), b))
            if oracle.done:
                return False
        heapq.heapify(heap)
        changed = False
        while heap and not oracle.done:
            gain, tie, block = heapq.heappop(heap)  # most negative change of loss first
            if gain >= 0:
                break
            candidate = image(flipped(signs, block))
            value = oracle.loss(candidate[None])
            if not len(value):
                break
            fresh = float(value[0]) - loss
            if fresh < 0 and (not heap or fresh <= heap[0][0]):
                signs, x, loss, changed = flipped(signs, block), candidate, float(value[0]), True
            elif fresh < 0:
                heapq.heappush(heap, (fresh, tie, block))
        return changed

    while not oracle.done:
        changed = search(-1.0)
        changed = search(1.0) or changed
        if not changed and size > 1:
            pixels = _expand(signs, size, x0.shape)
            size = max(size // 2, 1)
            signs = pixels[:, ::size, ::size].copy()
    return x
