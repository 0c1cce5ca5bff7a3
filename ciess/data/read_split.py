"""The materialised split (made by ``ciess.data.split``), read back once per run as index arrays
and CSR matrices, verified against its manifest.

Every rule reads these files (written by ``split_dataset``); nothing re-splits.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from ciess.data.preprocess import read_int_table
from ciess.io import read_json, sha256_file


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

    def popularity(self) -> dict[str, np.ndarray]:
        """Training interactions per user and per item."""
        train = self.train.tocsr()
        return {"user": np.diff(train.indptr).astype(np.int64),
                "item": np.bincount(train.indices, minlength=self.n_items).astype(np.int64)}

    def batches_per_epoch(self, batch_size: int) -> int:
        return -(-self.n_train // batch_size)

    def with_train(self, train: sp.csr_matrix, name_suffix: str) -> "SplitData":
        return SplitData(self.name + name_suffix, self.n_users, self.n_items, train, self.valid,
                         self.test, self.manifest_sha256)


def _read_inter(path: Path, n_users: int, n_items: int) -> sp.csr_matrix:
    df = read_int_table(path, str(path), {"user_id:token": "user", "item_id:token": "item"})
    u, i = df["user"].to_numpy(), df["item"].to_numpy()
    if len(u) and (u.min() < 0 or u.max() >= n_users or i.min() < 0 or i.max() >= n_items):
        raise ValueError(f"{path}: ids out of range for {n_users} users / {n_items} items")
    m = sp.csr_matrix((np.ones(len(u), np.float32), (u, i)), shape=(n_users, n_items))
    m.sum_duplicates()
    m.data[:] = 1.0
    return m


def files_digest(files: dict) -> str:
    """The split's checksum (``manifest_sha256``): of the manifest's ``files`` block, which holds
    every part's sha256 and row count."""
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()


def _check_every_id_used(manifest_path: Path, parts: dict, n_users: int, n_items: int) -> None:
    """Preprocessing numbers users and items 0..n-1 by their interactions, so every id occurs
    in some part: the manifest's ``users`` and ``items`` (outside the checksummed ``files``
    block) must equal the ids the checksummed files use."""
    all_parts = parts["train"] + parts["valid"] + parts["test"]
    for field, n, axis in (("users", n_users, 1), ("items", n_items, 0)):
        used = int((all_parts.getnnz(axis=axis) > 0).sum())
        if used != n:
            raise SplitMismatch(f"{manifest_path}: field '{field}' is {n} but the split files use "
                                f"{used} {field}: the manifest was edited; rebuild the split")


class SplitMismatch(ValueError):
    """A split file differs from what its manifest recorded (edited, truncated or replaced)."""


def _verified_part(manifest_path: Path, manifest: dict, name: str, part: str) -> Path:
    path = manifest_path.parent / f"{name}.{part}.inter"
    entry = manifest.get("files", {}).get(path.name)
    if entry is None:
        raise SplitMismatch(f"{manifest_path}: no entry for {path.name} under 'files'")
    if not path.exists():
        raise SplitMismatch(f"{path}: missing (listed in {manifest_path})")
    digest = sha256_file(path)
    if digest != entry["sha256"]:
        raise SplitMismatch(f"{path}: sha256 {digest[:12]}... differs from the manifest's "
                            f"{entry['sha256'][:12]}... ({manifest_path}); the split was edited "
                            "after it was made: rebuild it (delete the split folder and rerun)")
    return path


def load_split(manifest_path: str | Path) -> SplitData:
    """The split, after checking every file against the manifest's checksums."""
    manifest_path = Path(manifest_path)
    manifest = read_json(manifest_path)
    for key in ("dataset", "users", "items", "files", "manifest_sha256"):
        if key not in manifest:
            raise SplitMismatch(f"{manifest_path}: required field '{key}' is missing")
    name, nu, ni = manifest["dataset"], manifest["users"], manifest["items"]
    digest = files_digest(manifest["files"])
    if digest != manifest["manifest_sha256"]:
        raise SplitMismatch(f"{manifest_path}: manifest_sha256 {manifest['manifest_sha256'][:12]}… "
                            f"is not the checksum of its 'files' block ({digest[:12]}…): the "
                            "manifest was edited; rebuild the split")
    parts = {p: _read_inter(_verified_part(manifest_path, manifest, name, p), nu, ni)
             for p in ("train", "valid", "test")}
    _check_every_id_used(manifest_path, parts, nu, ni)
    return SplitData(name, nu, ni, parts["train"], parts["valid"], parts["test"],
                     manifest["manifest_sha256"])


def merge_train_valid(split: SplitData) -> SplitData:
    """Train ∪ validation, for the ``merge_fixed`` / ``merge_code`` final protocols."""
    merged = (split.train + split.valid).tocsr()
    merged.data[:] = 1.0
    return split.with_train(merged, "+valid")
