"""Which of the paper's Table 1 cells the shipped snapshots hold, and why the others are absent.

Every (dataset, model, method) the paper prints in Table 1 gets one coverage row: how many of its
printed cells the snapshots answer, how many of those carry a Δ% (a native row at another
sparsity than the paper's does not), on how many seeds, and a status:

- ``shipped``: every printed cell has our value;
- ``partial``: some budgets are missing (the reason, where recorded, says why);
- ``not run`` / ``not reached``: no cell, with the measured reason recorded in the
  repository's ``results/reference/not_run.yaml``;
- ``missing: no reason recorded``: no cell and no reason; ``tests/test_coverage.py`` fails on it
  for the shipped snapshots, so nothing disappears from Table 1 silently.

A shipped native row (ESAPN, OptEmb) whose achieved sparsity is far from the paper's gets no Δ%;
its note says both sparsities, and why ours differs where ``not_run.yaml`` records it under the
status ``sparsity not reached`` (the tests ask for that reason too).

``not_run.yaml`` is a list of entries ``{dataset, model, methods: [...], status, reason}``; a
reason states what was measured (a cost per run, a search that stalled, a search that ends at
another sparsity) and where the command behind it is written down.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from ciess.labels import METHOD_ORDER
from ciess.report.reports import model_label, paper_cells, sparsity_mismatch

NOT_RUN_STATUSES = ("not run", "not reached")
SPARSITY_NOT_REACHED = "sparsity not reached"  # shipped native rows at another sparsity
WHY = "; why: "  # joins a native row's sparsity note and its recorded reason
NOT_RUN_KEYS = {"dataset", "model", "methods", "status", "reason"}
REASON_COLUMNS = ["dataset", "model", "method", "status", "reason"]
COLUMNS = ["dataset", "model", "method", "paper cells", "our cells", "with Δ%", "seeds",
           "status", "reason"]


def load_not_run(path: str | Path) -> pd.DataFrame:
    """The recorded reasons, one row per (dataset, model, method); a clear error naming the file
    and the entry for anything malformed."""
    path = Path(path)
    if not path.exists():
        return pd.DataFrame(columns=REASON_COLUMNS)
    entries = yaml.safe_load(path.read_text()) or []
    if not isinstance(entries, list):
        raise ValueError(f"{path}: expected a list of entries, got {type(entries).__name__}")
    rows = []
    for i, entry in enumerate(entries):
        where = f"{path}: entry {i + 1}"
        if not isinstance(entry, dict):
            raise ValueError(f"{where}: expected a mapping, got {entry!r}")
        missing, unknown = NOT_RUN_KEYS - set(entry), set(entry) - NOT_RUN_KEYS
        if missing or unknown:
            raise ValueError(f"{where}: missing keys {sorted(missing)}, unknown keys "
                             f"{sorted(unknown)} (expected {sorted(NOT_RUN_KEYS)})")
        if entry["status"] not in (*NOT_RUN_STATUSES, SPARSITY_NOT_REACHED):
            raise ValueError(f"{where}: status {entry['status']!r} is not one of "
                             f"{[*NOT_RUN_STATUSES, SPARSITY_NOT_REACHED]}")
        if not str(entry["reason"]).strip():
            raise ValueError(f"{where}: an empty reason")
        for method in entry["methods"]:
            rows.append({"dataset": entry["dataset"], "model": str(entry["model"]).lower(),
                         "method": method, "status": entry["status"],
                         "reason": " ".join(str(entry["reason"]).split())})
    out = pd.DataFrame(rows, columns=REASON_COLUMNS)
    twice = out[out.duplicated(["dataset", "model", "method"], keep=False)]
    if len(twice):
        first = twice.iloc[0]
        raise ValueError(f"{path}: {first['dataset']} × {first['model']} × {first['method']} "
                         "has more than one entry")
    return out


def table1_coverage(rows: pd.DataFrame, paper: pd.DataFrame, not_run: pd.DataFrame,
                    datasets=None) -> pd.DataFrame:
    """One row per printed (dataset, model, method) of Table 1 (``datasets``: only these);
    ``rows`` are ``reference.reference_rows`` of every shipped snapshot together."""
    printed = paper_cells(paper, "table1").rename(columns={"method": "method_label"})
    if datasets is not None:
        printed = printed[printed["dataset"].isin(datasets)]
    keys = ["dataset", "model", "method_label", "budget", "metric"]
    printed = printed.drop_duplicates(keys)
    ours = pd.DataFrame(columns=keys + ["seeds", "sparsity"])
    if len(rows):
        head = rows[rows["headline"].astype(bool)]
        ours = head.groupby(keys, as_index=False).agg(seeds=("seed", "nunique"),
                                                     sparsity=("sparsity", "mean"))
    cells = printed.merge(ours, on=keys, how="left")
    cells["ours"] = cells["seeds"].notna()
    cells["with_delta"] = cells["ours"] & ~sparsity_mismatch(
        cells["budget"], cells["sparsity"], cells["achieved_sparsity"])
    reasons = not_run.set_index(["dataset", "model", "method"]) if len(not_run) else None
    out = []
    order = {m: i for i, m in enumerate(METHOD_ORDER)}
    for (dataset, model, method), g in cells.groupby(["dataset", "model", "method_label"]):
        n_ours = int(g["ours"].sum())
        recorded = (reasons.loc[(dataset, model, method)]
                    if reasons is not None and (dataset, model, method) in reasons.index else None)
        if n_ours == len(g):
            status = "shipped"
        elif n_ours:
            status = "partial"
        elif recorded is not None:
            status = recorded["status"]
        else:
            status = "missing: no reason recorded"
        reason = recorded["reason"] if recorded is not None and status != "shipped" else ""
        if status == "shipped" and n_ours > int(g["with_delta"].sum()):
            reason = _sparsity_note(g)
            if recorded is not None and recorded["status"] == SPARSITY_NOT_REACHED:
                reason += WHY + recorded["reason"]
        out.append({"dataset": dataset, "model": model_label(model), "method": method,
                    "paper cells": len(g), "our cells": n_ours,
                    "with Δ%": int(g["with_delta"].sum()),
                    "seeds": int(g["seeds"].min()) if n_ours else 0,
                    "status": status, "reason": reason,
                    "_m": order.get(method, len(order))})
    if not out:
        return pd.DataFrame(columns=COLUMNS)
    return (pd.DataFrame(out).sort_values(["dataset", "model", "_m"])
            .drop(columns="_m").reset_index(drop=True)[COLUMNS])


def _sparsity_note(g: pd.DataFrame) -> str:
    off = g[g["ours"] & ~g["with_delta"]].iloc[0]
    return (f"no Δ%: our native sparsity {off['sparsity']:.1%} against the paper's "
            f"{off['achieved_sparsity']:.0%} (a different model)")


def unexplained(coverage: pd.DataFrame) -> pd.DataFrame:
    """The printed methods that are neither shipped (in part or whole) nor given a reason, and
    the shipped native rows without a Δ% whose different sparsity has no recorded reason."""
    no_delta = (coverage["status"] == "shipped") & (coverage["with Δ%"] < coverage["our cells"])
    return coverage[coverage["status"].str.startswith("missing")
                    | (no_delta & ~coverage["reason"].str.contains(WHY, regex=False))]


def reason_lines(coverage: pd.DataFrame) -> list[str]:
    """One Markdown bullet per (dataset, model, status, reason) shared by several methods, so a
    long measured reason is printed once: "- ml-1m × NGCF: ES, PEP (not run): <reason>"."""
    noted = coverage[coverage["reason"] != ""]
    lines = []
    for (dataset, model, status, reason), g in noted.groupby(
            ["dataset", "model", "status", "reason"], sort=False):
        lines.append(f"- {dataset} × {model}: {', '.join(g['method'])} ({status}): {reason}")
    return lines
