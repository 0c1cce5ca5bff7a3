"""The materialised split, loaded once per run as index arrays and CSR matrices.

Every rule reads these files (written by ``split_dataset``); nothing re-splits.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ciess.io import read_json


@dataclass
class SplitData:
    name: str
    n_users: int
    n_items: int
    train: sp.csr_matrix  # users x items, 0/1
    valid: sp.csr_matrix
    test: sp.csr_matrix
    manifest_sha256: str

    @property
    def n_train(self) -> int:
        return int(self.train.nnz)

    def batches_per_epoch(self, batch_size: int) -> int:
        return -(-self.n_train // batch_size)

    def with_train(self, train: sp.csr_matrix, name_suffix: str) -> "SplitData":
        return SplitData(self.name + name_suffix, self.n_users, self.n_items, train, self.valid,
                         self.test, self.manifest_sha256)


def _read_inter(path: Path, n_users: int, n_items: int) -> sp.csr_matrix:
    df = pd.read_csv(path, sep="\t", dtype=np.int64)
    if list(df.columns) != ["user_id:token", "item_id:token"]:
        raise ValueError(f"{path}: expected header 'user_id:token\\titem_id:token', got {list(df.columns)}")
    u, i = df.iloc[:, 0].to_numpy(), df.iloc[:, 1].to_numpy()
    if len(u) and (u.min() < 0 or u.max() >= n_users or i.min() < 0 or i.max() >= n_items):
        raise ValueError(f"{path}: ids out of range for {n_users} users / {n_items} items")
    m = sp.csr_matrix((np.ones(len(u), np.float32), (u, i)), shape=(n_users, n_items))
    m.sum_duplicates()
    m.data[:] = 1.0
    return m


def load_split(manifest_path: str | Path) -> SplitData:
    manifest_path = Path(manifest_path)
    manifest = read_json(manifest_path)
    name, nu, ni = manifest["dataset"], manifest["users"], manifest["items"]
    parts = {p: _read_inter(manifest_path.parent / f"{name}.{p}.inter", nu, ni)
             for p in ("train", "valid", "test")}
    return SplitData(name, nu, ni, parts["train"], parts["valid"], parts["test"],
                     manifest["manifest_sha256"])


def merge_train_valid(split: SplitData) -> SplitData:
    """Train ∪ validation, for the ``merge_fixed`` / ``merge_code`` final protocols."""
    merged = (split.train + split.valid).tocsr()
    merged.data[:] = 1.0
    return split.with_train(merged, "+valid")
