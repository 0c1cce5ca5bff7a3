"""Metrics records (one JSON per run): read and verify before any number reaches a table.

A record that fails a check stops aggregation with an error that names the file and the field;
no table is written from it (the aggregation rule keeps the previous tables, see report.smk).
"""
from __future__ import annotations

import math
from pathlib import Path

from ciess.evaluate import METRICS
from ciess.io import read_json
from ciess.masks import budget_target, within_budget

REQUIRED = ("dataset", "model", "method", "seed")
REQUIRED_OK = ("valid", "test", "params", "capacity", "sparsity", "data_manifest_sha256")


class RecordError(ValueError):
    """A metrics record is unreadable or inconsistent; the message names the file and field."""


def _number(rec: dict, key: str, where: str, lo: float, hi: float) -> float:
    value = rec.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise RecordError(f"{where}: field '{key}' must be a finite number, got {value!r}")
    if not lo <= value <= hi:
        raise RecordError(f"{where}: field '{key}' = {value} outside [{lo}, {hi}]")
    return float(value)


def verify_record(rec: dict, where: str) -> dict:
    """Check one record's fields, ranges and budget; returns it unchanged."""
    if not isinstance(rec, dict):
        raise RecordError(f"{where}: a metrics record must be a JSON object")
    for key in REQUIRED:
        if key not in rec:
            raise RecordError(f"{where}: required field '{key}' is missing")
    status = rec.get("status", "ok")
    if status != "ok":
        return rec
    for key in REQUIRED_OK:
        if key not in rec:
            raise RecordError(f"{where}: required field '{key}' is missing")
    for split in ("valid", "test"):
        if not isinstance(rec[split], dict):
            raise RecordError(f"{where}: field '{split}' must be an object of metrics")
        for metric in (*METRICS, "avg"):
            _number(rec[split], metric, f"{where}: field '{split}'", 0.0, 1.0)
    capacity = _number(rec, "capacity", where, 1, math.inf)
    params = _number(rec, "params", where, 0, capacity)
    sparsity = _number(rec, "sparsity", where, 0.0, 1.0)
    if abs(sparsity - (1 - params / capacity)) > 1e-9:
        raise RecordError(f"{where}: field 'sparsity' = {sparsity} disagrees with params/capacity "
                          f"({params:g}/{capacity:g})")
    budget = rec.get("budget", "dense")
    try:
        target = budget_target(budget)
    except ValueError as exc:
        raise RecordError(f"{where}: field 'budget': {exc}") from None
    if target is not None and not within_budget(params, capacity, target):
        raise RecordError(f"{where}: labelled budget {budget} (>= {target}% sparsity) but its "
                          f"sparsity is {sparsity:.4f}")
    return rec


def read_record(path: str | Path) -> dict:
    """Read and verify one metrics JSON; errors name the file."""
    try:
        rec = read_json(path)
    except OSError as exc:
        raise RecordError(f"{path}: cannot read the metrics record ({exc})") from exc
    return verify_record(rec, str(path))
