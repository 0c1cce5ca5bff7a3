"""Paired differences between two methods over users, with a bootstrap interval
(docs/protocol.md §4): two methods trained with the same seeds on the same split are paired
user by user; the difference of their means is reported relative to the reference method, with
a percentile interval from resampling users (the users are the sampling unit a test set draws;
seeds are too few for an interval of their own)."""
from __future__ import annotations


import numpy as np
import pandas as pd

from ciess.per_user import read_per_user


def paired_bootstrap(ours: np.ndarray, ref: np.ndarray, n_boot: int = 2000, seed: int = 0,
                     level: float = 0.95) -> dict:
    """100 · (mean(ours) − mean(ref)) / mean(ref) over the users defined in both, and its
    percentile interval from ``n_boot`` resamples of those users."""
    both = ~(np.isnan(ours) | np.isnan(ref))
    a, b = np.asarray(ours, float)[both], np.asarray(ref, float)[both]
    if len(a) < 2 or b.mean() == 0:
        raise ValueError("paired_bootstrap needs at least two users with values in both runs")
    idx = np.random.default_rng(seed).integers(0, len(a), (n_boot, len(a)))
    boot = 100 * (a[idx].mean(axis=1) - b[idx].mean(axis=1)) / b[idx].mean(axis=1)
    tail = 100 * (1 - level) / 2
    return {"delta_pct": 100 * (a.mean() - b.mean()) / b.mean(),
            "low": float(np.percentile(boot, tail)), "high": float(np.percentile(boot, 100 - tail)),
            "users": int(len(a))}


def runs_frame(metric_files) -> pd.DataFrame:
    """The runs ``paired_vs`` reads, from metrics JSONs (verified reader; candidates left out;
    a CIESS result points to the run whose per-user values it reports: ``reported_run_path``)."""
    from ciess.report.records import read_record, reported_run_path
    from ciess.report.reports import is_table_row, run_columns

    rows = []
    for path in metric_files:
        rec = read_record(path)
        if rec.get("status", "ok") != "ok" or rec.get("budget") in ("cand", "dense"):
            continue
        if not is_table_row(rec):  # a diagnostic pool: not the method's Table 1 row
            continue
        path = reported_run_path(path, rec)  # a CIESS result: usually its candidate's retraining
        rows.append({"dataset": rec["dataset"], "model": rec["model"], "budget": rec["budget"],
                     "method_label": run_columns(rec, path)["method_label"],
                     "seed": rec["seed"], "path": path})
    return pd.DataFrame(rows, columns=["dataset", "model", "budget", "method_label", "seed",
                                       "path"])


NO_PER_USER = "no per-user test values (a record from before 2026-12-04)"
NO_SHARED_SEED = "no {reference} run at the same seed"
NO_REFERENCE = "{reference} not run at this budget: no difference to show"


def _pairing(mine: pd.DataFrame, ref: pd.DataFrame):
    """(seeds, our per-user values, the reference's) of one cell, or (seeds, None, reason)."""
    if ref.empty:  # e.g. a native budget, or a block whose reference did not run
        return [], None, NO_REFERENCE
    seeds = sorted(set(mine["seed"]) & set(ref["seed"]))
    if not seeds:
        return seeds, None, NO_SHARED_SEED
    ours = [read_per_user(p) for p in mine.set_index("seed").loc[seeds, "path"]]
    theirs = [read_per_user(p) for p in ref.set_index("seed").loc[seeds, "path"]]
    if any(v is None for v in ours + theirs):
        return seeds, None, NO_PER_USER
    return seeds, ours, theirs


def unpaired(runs: pd.DataFrame, reference: str = "ES") -> pd.DataFrame:
    """The (dataset, model, budget, method) cells ``paired_vs`` cannot give an interval, and
    why: so that a table says which differences carry none, not only which do."""
    rows = []
    for (ds, model, budget), cell in runs.groupby(["dataset", "model", "budget"]):
        ref = cell[cell["method_label"] == reference]
        for method, mine in cell[cell["method_label"] != reference].groupby("method_label"):
            _, ours, why = _pairing(mine, ref)
            if ours is None:
                rows.append({"dataset": ds, "model": model, "budget": budget, "method": method,
                             "reason": why.format(reference=reference)})
    return pd.DataFrame(rows, columns=["dataset", "model", "budget", "method", "reason"])


def paired_vs(runs: pd.DataFrame, reference: str = "ES",
              metrics: tuple[str, ...] = ("recall@20", "ndcg@20")) -> pd.DataFrame:
    """Every (dataset, model, method, budget) of ``runs`` (columns dataset, model, method_label,
    budget, seed, path) beside ``reference`` at the same budget: per-user values averaged over
    the seeds both have, then ``paired_bootstrap``. Cells without per-user files or without a
    shared seed are left out (``unpaired`` lists them with the reason)."""
    keys = ["dataset", "model", "budget"]
    rows = []
    for (ds, model, budget), cell in runs.groupby(keys):
        ref = cell[cell["method_label"] == reference]
        for method, mine in cell[cell["method_label"] != reference].groupby("method_label"):
            seeds, ours, theirs = _pairing(mine, ref)
            if ours is None:  # listed by ``unpaired``
                continue
            for metric in metrics:
                a = np.mean(np.stack([v[metric] for v in ours]), axis=0)  # NaN: no test items
                b = np.mean(np.stack([v[metric] for v in theirs]), axis=0)
                rows.append({"dataset": ds, "model": model, "budget": budget, "method": method,
                             "versus": reference, "metric": metric, "seeds": len(seeds),
                             **paired_bootstrap(a, b)})
    return pd.DataFrame(rows)


def interval_report(runs: pd.DataFrame, reference: str = "ES") -> tuple[pd.DataFrame, list[str]]:
    """What a page shows for one set of runs (``runs_frame``): a table of every method − ``reference``
    difference with its paired 95% interval (rows: dataset, model, budget, method, seeds,
    users; columns: metrics; cells "+2.9 (+2.2 to +3.7)"), and one line per difference that has
    none, with the reason. Both empty: nothing to pair."""
    paired, missing = paired_vs(runs, reference), unpaired(runs, reference)
    table = pd.DataFrame()
    if len(paired):
        paired["Δ% (95% interval)"] = [f"{d:+.1f} ({lo:+.1f} to {hi:+.1f})" for d, lo, hi in
                                       zip(paired["delta_pct"], paired["low"], paired["high"])]
        table = paired.pivot_table(index=["dataset", "model", "budget", "method", "seeds", "users"],
                                   columns="metric", values="Δ% (95% interval)", aggfunc="first")
    lines = [f"- {dataset} {model} {method} at {', '.join(sorted(g['budget']))}: {reason}"
             for (dataset, model, method, reason), g in
             missing.groupby(["dataset", "model", "method", "reason"])]
    return table, lines
