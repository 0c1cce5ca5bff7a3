"""Vectorised BPR triple samplers (docs/protocol.md §6). One epoch = ceil(|train| / batch) batches.

* ``user_uniform`` (the official code): users uniform over users with training items, drawn
  without replacement when there are at least as many such users as the batch (Yelp2018) and with
  replacement otherwise (MovieLens); positive uniform over that user's training items, negative
  uniform over the items it has not trained on.
* ``interaction``: a shuffled pass over the training interactions with uniform negatives
  (RecBole's default pattern).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch


class TripleSampler:
    def __init__(self, train: sp.csr_matrix, batch_size: int, kind: str, seed: int):
        if kind not in ("user_uniform", "interaction"):
            raise ValueError(f"sampler must be 'user_uniform' or 'interaction', got {kind!r}")
        self.train = train.tocsr()
        self.n_users, self.n_items = train.shape
        self.batch_size = int(batch_size)
        self.kind = kind
        self.rng = np.random.default_rng(seed)
        self.indptr = self.train.indptr.astype(np.int64)
        self.indices = self.train.indices.astype(np.int64)
        self.deg = np.diff(self.indptr)
        self.active_users = np.flatnonzero(self.deg > 0)
        if (self.deg >= self.n_items).any():
            raise ValueError("a user has trained on every item: no negative can be sampled")
        rows = np.repeat(np.arange(self.n_users, dtype=np.int64), self.deg)
        self.keys = rows * self.n_items + self.indices  # sorted: CSR rows, sorted columns
        self.train.sort_indices()
        self.keys = np.sort(self.keys)
        self._order, self._cursor = None, 0

    def _negatives(self, users: np.ndarray) -> np.ndarray:
        neg = self.rng.integers(0, self.n_items, len(users))
        todo = np.arange(len(users))
        while len(todo):
            keys = users[todo] * self.n_items + neg[todo]
            pos = np.searchsorted(self.keys, keys)
            hit = (pos < len(self.keys)) & (self.keys[np.minimum(pos, len(self.keys) - 1)] == keys)
            todo = todo[hit]
            neg[todo] = self.rng.integers(0, self.n_items, len(todo))
        return neg

    def _interaction_batch(self):
        n = len(self.keys)
        if self._order is None or self._cursor >= n:
            self._order, self._cursor = self.rng.permutation(n), 0
        idx = self._order[self._cursor:self._cursor + self.batch_size]
        self._cursor += self.batch_size
        keys = self.keys[idx]
        return keys // self.n_items, keys % self.n_items

    def _users(self) -> np.ndarray:
        n = len(self.active_users)
        if n >= self.batch_size:
            return self.rng.choice(self.active_users, self.batch_size, replace=False)
        return self.active_users[self.rng.integers(0, n, self.batch_size)]

    def sample(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self.kind == "user_uniform":
            users = self._users()
            offs = (self.rng.random(self.batch_size) * self.deg[users]).astype(np.int64)
            pos = self.indices[self.indptr[users] + offs]
        else:
            users, pos = self._interaction_batch()
        neg = self._negatives(users)
        return torch.from_numpy(users), torch.from_numpy(pos), torch.from_numpy(neg)
