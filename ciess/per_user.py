"""Per-user test metrics beside every run (docs/protocol.md §4): a run's ``metrics.json`` holds
the means over users; ``per_user_test.npz`` beside it holds each user's test value of the
headline protocol for the table metrics (NaN for a user without test items).
``ciess.report.paired`` compares two methods user by user with them."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ciess.io import atomic_path, load_npz

PER_USER_FILE = "per_user_test.npz"
PER_USER_METRICS = ("recall@5", "recall@20", "ndcg@5", "ndcg@20")


def per_user_path(metrics_path) -> Path:
    return Path(metrics_path).with_name(PER_USER_FILE)


def write_per_user(path, per_user: dict[str, np.ndarray]) -> None:
    """Write ``per_user_test.npz`` (``path``: the file, beside its run's metrics.json)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **{m: per_user[m].astype(np.float32)
                                       for m in PER_USER_METRICS})


def read_per_user(metrics_path) -> dict[str, np.ndarray] | None:
    """A run's per-user test values, or None for a run written before they were kept."""
    path = per_user_path(metrics_path)
    return load_npz(path, PER_USER_METRICS) if path.exists() else None
