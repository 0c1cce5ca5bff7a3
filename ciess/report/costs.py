"""What each result cost: search time, retraining time and parameters, per method and budget.

Read from what every run already leaves in a results folder (a run's ``results/`` or a reference
snapshot): the retraining time is the metrics record's ``wall_time_s``; a baseline's search time
is the span of its ``make_masks`` rule log (one search serves all its budgets); a CIESS search's
time is the sum of its iterations' train, evaluate and RL seconds in ``search_log.csv``, plus the
retraining of every candidate it sent to selection. One search serves every budget of its method
(and seed): each budget's Table 1 row carries an equal share of it (``search_share_s``), so the
shares add up to the search once, and ``cost_totals`` counts every search once; a CIESS
result's own retraining is one of its candidates' and is counted with them, not again, except
its merged retraining when that ran after the selection (``merged_retraining: chosen``).
Diagnostic selections (Figure 5's pools, a recipe's whole-search selection) have no row.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pandas as pd

from ciess.io import read_json
from ciess.labels import CANDIDATE_LABEL
from ciess.logs import log_span
from ciess.report.reports import is_table_row, run_columns


def _records(root: Path):
    for path in sorted(root.glob("runs/*/*/*/*/seed*/metrics.json")):
        rec = read_json(path)
        if rec.get("status", "ok") == "ok":
            yield path, rec


def _retrained_after_selection_s(rec: dict) -> float:
    """Seconds a CIESS selection trained itself: the chosen candidate's merged retraining when
    the candidates were trained on train only; 0 when the result is a candidate's record."""
    if not (rec.get("selection") or {}).get("merged_after_selection"):
        return 0.0
    return rec.get("merged_wall_time_s") or 0.0


def cost_table(root: str | Path) -> pd.DataFrame:
    """One row per (dataset, model, method, budget, seed): params, sparsity, search seconds,
    retraining seconds (candidates' retraining included for CIESS)."""
    root = Path(root)
    candidates: dict[tuple, float] = defaultdict(float)  # (dataset, model, seed, search) -> s
    rows = []
    for path, rec in _records(root):
        method, budget = rec["method"], rec.get("budget", "dense")
        key = (rec["dataset"], rec["model"], rec["seed"])
        label = run_columns(rec, path)["method_label"]
        if label == CANDIDATE_LABEL:  # a retrained candidate: part of its search's cost
            candidates[key + (rec["search"],)] += rec.get("wall_time_s", 0.0)
            continue
        if not is_table_row(rec):  # a diagnostic selection (a pool, a recipe's whole search):
            # its search and candidates are its Table 1 row's, counted there once; a merged
            # retraining it ran itself goes with the candidates' retraining
            if rec.get("search"):
                candidates[key + (rec["search"],)] += _retrained_after_selection_s(rec)
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
                     "retrain_s": rec.get("wall_time_s"),
                     # what cost_totals adds: a CIESS result's retraining is its chosen
                     # candidate's, among the candidates, but for a merged retraining of its own
                     "retrain_own_s": _retrained_after_selection_s(rec)
                     if rec.get("candidate_method") else rec.get("wall_time_s")})
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    cand = [candidates.get((r.dataset, r.model, r.seed, r.search)) if r.search else None
            for r in out.itertuples()]
    out["candidates_retrain_s"] = cand
    sharing = out.groupby(["dataset", "model", "method", "seed"])["budget"].transform("size")
    out["search_share_s"] = out["search_s"] / sharing
    out["candidates_share_s"] = out["candidates_retrain_s"] / sharing
    return out


def cost_summary(costs: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds per (dataset, model, method, budget), in minutes."""
    if costs.empty:
        return costs
    g = costs.groupby(["dataset", "model", "method_label", "budget"], dropna=False)
    out = g.agg(seeds=("seed", "nunique"), params=("params", "mean"),
                sparsity=("sparsity", "mean"), search_min=("search_share_s", "mean"),
                candidates_retrain_min=("candidates_share_s", "mean"),
                retrain_min=("retrain_s", "mean")).reset_index()
    for col in ("search_min", "candidates_retrain_min", "retrain_min"):
        out[col] = out[col] / 60
    return out


def cost_totals(costs: pd.DataFrame) -> pd.DataFrame:
    """Minutes per (dataset, model, method) over all its seeds and budgets, every search and
    every retraining counted once (the shares add up to the search; a CIESS result's retraining
    is among its candidates'), and a last row for everything together."""
    if costs.empty:
        return costs
    c = costs.fillna({"search_share_s": 0.0, "candidates_share_s": 0.0, "retrain_own_s": 0.0})
    c = c.assign(retrain_s=c["retrain_own_s"])
    g = c.groupby(["dataset", "model", "method_label"], dropna=False)
    out = g.agg(runs=("retrain_s", "size"), seeds=("seed", "nunique"),
                search_min=("search_share_s", "sum"),
                candidates_retrain_min=("candidates_share_s", "sum"),
                retrain_min=("retrain_s", "sum")).reset_index()
    for col in ("search_min", "candidates_retrain_min", "retrain_min"):
        out[col] = out[col] / 60
    out["total_min"] = out[["search_min", "candidates_retrain_min", "retrain_min"]].sum(axis=1)
    total = {"dataset": "all", "model": "", "method_label": "everything",
             **{k: out[k].sum() for k in ("runs", "search_min", "candidates_retrain_min",
                                          "retrain_min", "total_min")}, "seeds": out["seeds"].max()}
    return pd.concat([out, pd.DataFrame([total])], ignore_index=True)
