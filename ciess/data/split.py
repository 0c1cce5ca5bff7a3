"""Per-user random split 50/25/25 with seed 42, materialised once (docs/protocol.md §3).

Reproduces ``python_stratified_split`` of the official code: each user's rows (source order) are
shuffled with a ``RandomState(seed)`` re-created per user (pandas ``sample(frac=1,
random_state=seed)``), then cut at ``round(r1*n)`` and ``round((r1+r2)*n)`` (Python's round).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from ciess.data.read_split import files_digest
from ciess.io import atomic_path, sha256_file, write_json

PARTS = ("train", "valid", "test")
INTER_HEADER = "user_id:token\titem_id:token"


def split_per_user(table: pd.DataFrame, ratios=(0.5, 0.25, 0.25), seed: int = 42,
                   allow_empty_parts: bool = False) -> tuple[dict[str, pd.DataFrame], dict]:
    """Split every user's rows; returns the three parts and a summary.

    Users too small for three non-empty parts raise, unless ``allow_empty_parts`` (set only for
    the offline stand-in ``yelp2018-test``, whose users have as few as one interaction).
    """
    if abs(sum(ratios) - 1.0) > 1e-9 or len(ratios) != 3:
        raise ValueError(f"split ratios must be three numbers summing to 1, got {ratios}")
    cuts = np.cumsum(ratios)[:-1]
    users = table["user_id"].to_numpy()
    order = np.argsort(users, kind="stable")  # groups by user, keeps source order within a user
    bounds = np.flatnonzero(np.diff(users[order])) + 1
    assign = np.empty(len(table), dtype=np.int8)
    positions = np.empty(len(table), dtype=np.int64)
    users_with_empty_part = 0
    for rows in np.split(order, bounds):
        n = len(rows)
        perm = rows[np.random.RandomState(seed).permutation(n)]
        c1, c2 = (round(float(c) * n) for c in cuts)
        if not (0 < c1 < c2 < n):
            if not allow_empty_parts:
                raise ValueError(
                    f"user {users[rows[0]]} with {n} interactions gets an empty split part")
            users_with_empty_part += 1
        part = np.zeros(n, dtype=np.int8)
        part[c1:c2], part[c2:] = 1, 2
        assign[perm] = part
        positions[perm] = np.arange(n)
    out = {}
    for k, name in enumerate(PARTS):
        idx = np.flatnonzero(assign == k)
        # Within a part, rows are ordered by user, then by shuffled position (as the code emits).
        idx = idx[np.lexsort((positions[idx], users[idx]))]
        out[name] = table.iloc[idx].reset_index(drop=True)
    summary = {"users_with_empty_part": users_with_empty_part,
               "rows": {name: int(len(df)) for name, df in out.items()}}
    return out, summary


def write_inter(df: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w") as fh:
            fh.write(INTER_HEADER + "\n")
            df[["user_id", "item_id"]].to_csv(fh, sep="\t", header=False, index=False)


def write_split(parts: dict[str, pd.DataFrame], out_dir: str | os.PathLike, name: str,
                stats: dict, seed: int, ratios, summary: dict | None = None) -> dict:
    """Write RecBole atomic files ``{name}.{part}.inter`` and a sha256 manifest (written last)."""
    out_dir = Path(out_dir)
    files = {}
    for part in PARTS:
        path = out_dir / f"{name}.{part}.inter"
        write_inter(parts[part], path)
        files[path.name] = {"sha256": sha256_file(path), "rows": int(len(parts[part]))}
    manifest = {
        "dataset": name, "users": stats["users"], "items": stats["items"],
        "split_seed": seed, "ratios": list(ratios), "files": files,
        "users_with_empty_part": (summary or {}).get("users_with_empty_part", 0),
    }
    manifest["manifest_sha256"] = files_digest(files)
    write_json(out_dir / "manifest.json", manifest)
    return manifest
