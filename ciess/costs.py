"""What each result cost: search time, retraining time and parameters, per method and budget.

Read from what every run already leaves in a results folder (a run's ``results/`` or a reference
snapshot): the retraining time is the metrics record's ``wall_time_s``; a baseline's search time
is the span of its ``make_masks`` rule log (one search serves all its budgets); a CIESS search's
time is the sum of its iterations' train, evaluate and RL seconds in ``search_log.csv``, plus the
retraining of every candidate it sent to selection.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ciess.io import read_json
from ciess.logs import log_span
from ciess.reports import run_columns


def _records(root: Path):
    for path in sorted(root.glob("runs/*/*/*/*/seed*/metrics.json")):
        rec = read_json(path)
        if rec.get("status", "ok") == "ok":
            yield path, rec


def cost_table(root: str | Path) -> pd.DataFrame:
    """One row per (dataset, model, method, budget, seed): params, sparsity, search seconds,
    retraining seconds (candidates' retraining included for CIESS)."""
    root = Path(root)
    candidates: dict[tuple, float] = {}
    rows = []
    for path, rec in _records(root):
        method, budget = rec["method"], rec.get("budget", "dense")
        key = (rec["dataset"], rec["model"], rec["seed"])
        label = run_columns(rec, path)["method_label"]
        if label == "CIESS candidate":  # a retrained candidate: part of its search's cost
            candidates[key + (rec["search"],)] = candidates.get(key + (rec["search"],), 0.0) + \
                rec.get("wall_time_s", 0.0)
            continue
        search_s = None
        if rec.get("search"):
            log = root / "search" / rec["dataset"] / rec["model"] / rec["search"] / \
                f"seed{rec['seed']}" / "search_log.csv"
            if log.exists():
                t = pd.read_csv(log)
                search_s = float(t[["t_train_s", "t_eval_s", "t_rl_s"]].to_numpy().sum())
        elif method != "full":
            span = None
            log = root / "logs" / "make_masks" / method / rec["dataset"] / rec["model"] / \
                f"seed{rec['seed']}.log"
            if log.exists():
                span = log_span(log)
            search_s = span[2] if span else None
        rows.append({"dataset": rec["dataset"], "model": rec["model"], "method": method,
                     "method_label": label, "search": rec.get("search"),
                     "budget": budget, "seed": rec["seed"], "params": rec["params"],
                     "sparsity": rec["sparsity"], "search_s": search_s,
                     "retrain_s": rec.get("wall_time_s")})
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    cand = [candidates.get((r.dataset, r.model, r.seed, r.search)) if r.search else None
            for r in out.itertuples()]
    out["candidates_retrain_s"] = cand
    return out


def cost_summary(costs: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds per (dataset, model, method, budget), in minutes."""
    if costs.empty:
        return costs
    g = costs.groupby(["dataset", "model", "method_label", "budget"], dropna=False)
    out = g.agg(seeds=("seed", "nunique"), params=("params", "mean"),
                sparsity=("sparsity", "mean"), search_min=("search_s", "mean"),
                candidates_retrain_min=("candidates_retrain_s", "mean"),
                retrain_min=("retrain_s", "mean")).reset_index()
    for col in ("search_min", "candidates_retrain_min", "retrain_min"):
        out[col] = out[col] / 60
    return out
