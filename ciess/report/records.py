"""Metrics records (one JSON per run): read and verify before any number reaches a table.

A record that fails a check stops aggregation with an error that names the file and the field;
no table is written from it (the aggregation rule keeps the previous tables, see report.smk).
"""
from __future__ import annotations

import math
from pathlib import Path

from ciess.evaluate import METRICS
from ciess.io import read_json
from ciess.labels import budget_pct
from ciess.masks import within_budget

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
    by_protocol = rec.get("test_by_protocol") or {}
    if not isinstance(by_protocol, dict):
        raise RecordError(f"{where}: field 'test_by_protocol' must be an object")
    blocks = {"valid": rec["valid"], "test": rec["test"],
              **{f"test_by_protocol.{k}": v for k, v in by_protocol.items()}}
    for name, block in blocks.items():
        if not isinstance(block, dict):
            raise RecordError(f"{where}: field '{name}' must be an object of metrics")
        for metric in (*METRICS, "avg"):
            if metric in block or not name.startswith("test_by_protocol"):
                _number(block, metric, f"{where}: field '{name}'", 0.0, 1.0)
    capacity = _number(rec, "capacity", where, 1, math.inf)
    params = _number(rec, "params", where, 0, capacity)
    sparsity = _number(rec, "sparsity", where, 0.0, 1.0)
    if abs(sparsity - (1 - params / capacity)) > 1e-9:
        raise RecordError(f"{where}: field 'sparsity' = {sparsity} disagrees with params/capacity "
                          f"({params:g}/{capacity:g})")
    budget = rec.get("budget", "dense")
    try:
        target = budget_pct(budget)
    except ValueError as exc:
        raise RecordError(f"{where}: field 'budget': {exc}") from None
    if target is not None and not within_budget(params, capacity, target):
        raise RecordError(f"{where}: labelled budget {budget} (>= {target}% sparsity) but its "
                          f"sparsity is {sparsity:.4f}")
    return rec


# runs/<dataset>/<model>/<method>/<budget>/seed<seed>/metrics.json (the path convention,
# Snakefile): a record read from such a path must say the same of itself.
LOCATION_FIELDS = ("dataset", "model", "method", "budget", "seed")


def check_location(rec: dict, path: str | Path) -> None:
    """A record copied to another run's folder (another dataset, budget or seed) is refused:
    the path's wildcards must equal the record's own fields."""
    parts = Path(path).parts
    if len(parts) < 7 or parts[-7] != "runs" or not parts[-2].startswith("seed"):
        return  # not under a runs/ tree (a test's loose file): nothing to compare
    where = dict(zip(LOCATION_FIELDS, (*parts[-6:-2], parts[-2][len("seed"):])))
    for key, from_path in where.items():
        if str(rec.get(key)) != from_path:
            raise RecordError(f"{path}: field '{key}' is {rec.get(key)!r} but the record lies in "
                              f"the folder of {key} {from_path!r} (copied from another run?)")


def read_record(path: str | Path) -> dict:
    """Read and verify one metrics JSON, including that it lies where its fields say; errors
    name the file."""
    try:
        rec = read_json(path)
    except OSError as exc:
        raise RecordError(f"{path}: cannot read the metrics record ({exc})") from exc
    verify_record(rec, str(path))
    check_location(rec, path)
    return rec


def chosen_candidate_path(path: str | Path, rec: dict) -> Path:
    """A CIESS selection's record -> the record of the candidate it chose (whose retraining it
    reports: per-user values, method settings); any other record -> its own path."""
    path = Path(path)
    if not rec.get("candidate_method"):
        return path
    return path.parents[3] / rec["candidate_method"] / "cand" / path.parent.name / path.name


def reported_run_path(path: str | Path, rec: dict) -> Path:
    """The record whose retraining ``rec`` reports (its per-user test values sit beside it):
    its own, or for a CIESS selection the chosen candidate's, unless the selection ran the
    candidate's merged retraining itself (``merged_retraining: chosen``)."""
    if (rec.get("selection") or {}).get("merged_after_selection"):
        return Path(path)
    return chosen_candidate_path(path, rec)
