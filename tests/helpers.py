"""Small synthetic data for unit tests."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ciess.split_data import SplitData


def random_split(n_users=40, n_items=30, per_user=12, seed=0) -> SplitData:
    rng = np.random.default_rng(seed)
    parts = {"train": [], "valid": [], "test": []}
    for u in range(n_users):
        items = rng.choice(n_items, per_user, replace=False)
        a, b = per_user // 2, 3 * per_user // 4
        for name, chunk in zip(parts, (items[:a], items[a:b], items[b:])):
            parts[name] += [(u, i) for i in chunk]

    def csr(pairs):
        arr = np.array(pairs)
        return sp.csr_matrix((np.ones(len(arr), np.float32), (arr[:, 0], arr[:, 1])),
                             shape=(n_users, n_items))

    return SplitData("synthetic", n_users, n_items, csr(parts["train"]), csr(parts["valid"]),
                     csr(parts["test"]), "0" * 64)
