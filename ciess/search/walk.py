"""Random walk on the integer size graph 1..128 (docs/ciess.md §9.2, Eq. 12-14), vectorised.

Node x links to every y in [1, 128] with 0 < |x - y| <= t; P(x -> y) is proportional to
1/|x - y|. Neighbours outside the range are dropped and the rest renormalised (equivalent to the
code's near-zero dummy nodes). A walk takes ``steps`` steps from x0; the candidates are
x0, x1, ..., x_steps.
"""
from __future__ import annotations

import numpy as np

from ciess.masks import D_MAX


class SizeGraph:
    def __init__(self, d_max: int = D_MAX, threshold: int = 5):
        self.d_max, self.threshold = d_max, threshold
        offsets = np.array([o for o in range(-threshold, threshold + 1) if o != 0])
        nodes = np.arange(1, d_max + 1)
        neigh = nodes[:, None] + offsets[None, :]  # (d_max, 2t)
        weight = np.where((neigh >= 1) & (neigh <= d_max), 1.0 / np.abs(offsets)[None, :], 0.0)
        self.neighbours = np.clip(neigh, 1, d_max)
        self.probs = weight / weight.sum(axis=1, keepdims=True)
        self.cumprobs = np.cumsum(self.probs, axis=1)
        self.cumprobs[:, -1] = 1.0

    def transition_probs(self, x: int) -> dict[int, float]:
        row = self.probs[x - 1]
        return {int(y): float(p) for y, p in zip(self.neighbours[x - 1], row) if p > 0}

    def step(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One step from every node in ``x`` (integers in [1, d_max])."""
        u = rng.random(len(x))
        cum = self.cumprobs[x - 1]  # (N, 2t)
        choice = (cum < u[:, None]).sum(axis=1)  # searchsorted per row
        return self.neighbours[x - 1, choice]

    def walk(self, x0: np.ndarray, steps: int, rng: np.random.Generator) -> np.ndarray:
        """Candidates (N, steps + 1): the start and every node visited."""
        out = np.empty((len(x0), steps + 1), dtype=np.int64)
        out[:, 0] = x0
        for j in range(steps):
            out[:, j + 1] = self.step(out[:, j], rng)
        return out
