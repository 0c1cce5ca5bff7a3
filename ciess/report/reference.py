"""Shipped reference results beside the paper: one wide row per (method, budget, final protocol).

A snapshot (``ciess.report.snapshot``) holds the metrics JSON of every run of a real-data profile. Each
JSON records the test metrics of the train-only model (``train_val_es``) and, under a merged
protocol, of the model retrained on train + validation (``merge_fixed``), in
``test_by_protocol``. This module lays them out as the paper's Table 1 does: columns R@5, R@20,
N@5, N@20, each as ours, the paper's value and the relative difference
Δ% = 100 · (ours − paper) / paper (positive: ours is higher).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ciess.labels import DEFAULT_RECIPE, METHOD_ORDER
from ciess.report.records import read_record
from ciess.report.reports import (TABLE_METRICS, check_one_setting_per_cell, is_table_row, model_label,
                                  paper_cells, run_columns, sparsity_mismatch)

SHORT = {"recall@5": "R@5", "recall@20": "R@20", "ndcg@5": "N@5", "ndcg@20": "N@20"}


def snapshot_runs(snapshot: str | Path) -> list[Path]:
    return sorted(Path(snapshot).rglob("runs/**/metrics.json"))


def reference_rows(metric_files) -> pd.DataFrame:
    """Tidy rows: one per (run, final protocol, table metric) with the test value."""
    rows = []
    records = {path: read_record(path) for path in metric_files}  # aggregation's checks:
    check_one_setting_per_cell(records)  # ranges, budget, location, one setting per cell
    for path, rec in records.items():
        budget = rec.get("budget", "dense")
        if rec.get("status", "ok") != "ok" or budget == "cand":  # candidates: not results
            continue
        if not is_table_row(rec):
            continue  # a diagnostic pool (Figure 5, a recipe's other selection): no Table 1 row
        by_protocol = rec.get("test_by_protocol") or {rec["final_protocol"]: rec["test"]}
        for protocol, metrics in by_protocol.items():
            for metric in TABLE_METRICS:
                rows.append({"dataset": rec["dataset"], "model": rec["model"],
                             "method_label": run_columns(rec, path)["method_label"],
                             "budget": budget, "seed": rec["seed"], "protocol": protocol,
                             "headline": protocol == rec["final_protocol"], "metric": metric,
                             "value": metrics[metric], "sparsity": rec["sparsity"],
                             "best_step": rec.get("best_step"), "profile": rec.get("profile"),
                             "episodes": (rec.get("variant") or {}).get("episodes"),
                             "recipe": (rec.get("variant") or {}).get("recipe")})
    return pd.DataFrame(rows)


def _paper_values(paper: pd.DataFrame) -> pd.DataFrame:
    p = paper_cells(paper, "table1").rename(columns={"method": "method_label", "value": "paper",
                                                     "achieved_sparsity": "paper_sparsity"})
    if "paper_sparsity" not in p:  # a table that prints no achieved sparsity
        p["paper_sparsity"] = float("nan")
    return p[["dataset", "model", "method_label", "budget", "metric", "paper",
              "paper_sparsity"]].drop_duplicates(
        ["dataset", "model", "method_label", "budget", "metric"])


def wide_beside_paper(rows: pd.DataFrame, paper: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, model, method, budget, protocol); per metric: ours (mean over
    seeds), paper, Δ% (ours − paper, relative). Methods in the paper's order."""
    if rows.empty:
        return pd.DataFrame()
    keys = ["dataset", "model", "method_label", "budget", "protocol"]
    g = rows.groupby(keys + ["metric"], dropna=False)
    ours = g["value"].mean().rename("ours").reset_index()
    ours["seeds"] = g["value"].count().to_numpy()
    ours["our_sparsity"] = g["sparsity"].mean().to_numpy()
    merged = ours.merge(_paper_values(paper), on=["dataset", "model", "method_label", "budget",
                                                  "metric"], how="left")
    merged["delta_pct"] = 100 * (merged["ours"] - merged["paper"]) / merged["paper"]
    off = sparsity_mismatch(merged["budget"], merged["our_sparsity"], merged["paper_sparsity"])
    merged.loc[off, "delta_pct"] = float("nan")  # a different model than the paper's cell
    wide = merged.set_index(keys + ["metric"])[["ours", "paper", "delta_pct"]].unstack("metric")
    out = pd.DataFrame(index=wide.index)
    for metric in TABLE_METRICS:
        for col in ("ours", "paper", "delta_pct"):
            label = f"{SHORT[metric]} {col.replace('delta_pct', 'Δ%')}"
            out[label] = wide[(col, metric)] if (col, metric) in wide.columns else float("nan")
    extra = rows.groupby(keys, dropna=False).agg(sparsity=("sparsity", "mean"),
                                                 seeds=("seed", "nunique"),
                                                 headline=("headline", "max"))
    out = out.join(extra).reset_index()
    out["model"] = out["model"].map(model_label)
    order = {m: i for i, m in enumerate(METHOD_ORDER)}
    out["_m"] = out["method_label"].map(lambda m: order.get(m, len(order)))
    out["_p"] = (~out["headline"].astype(bool)).astype(int)  # the headline protocol first
    out["_b"] = (out["budget"] != "dense").astype(int)  # Full (dense) above every budget
    return out.sort_values(["dataset", "model", "_p", "_b", "budget", "_m"]).drop(
        columns=["_m", "_p", "_b"]).reset_index(drop=True)


def summary_lines(wide: pd.DataFrame, tolerance_pct: float = 5.0) -> list[str]:
    """How many cells with a paper value lie within ±tolerance, per protocol."""
    lines = []
    for protocol, part in wide.groupby("protocol"):
        deltas = part[[c for c in part.columns if c.endswith("Δ%")]].to_numpy().ravel()
        deltas = deltas[~pd.isna(deltas)]
        if len(deltas) == 0:
            continue
        within = (abs(deltas) <= tolerance_pct).sum()
        lines.append(f"{protocol}: {within} of {len(deltas)} cells within ±{tolerance_pct:g}% of "
                     f"the paper; Δ% from {deltas.min():+.1f} to {deltas.max():+.1f}, "
                     f"median {pd.Series(deltas).median():+.1f}")
    return lines


ORDER_METRICS = ("recall@20", "ndcg@20")


def ordering(rows: pd.DataFrame, chain=("CIESS", "ES", "MR")) -> pd.DataFrame:
    """Per (dataset, model, protocol, budget, metric): does chain[0] > chain[1] > chain[2] hold in
    the mean over seeds, by how much (relative, %), on how many seeds, and a paired t-test over
    the seeds two methods share (p; None below 3 shared seeds)."""
    from ciess.report.reports import paired_test

    rows = rows[rows["method_label"].isin(chain) & rows["metric"].isin(ORDER_METRICS)]
    out = []
    keys = ["dataset", "model", "protocol", "budget", "metric"]
    for key, g in rows.groupby(keys):
        per = {m: g[g["method_label"] == m].set_index("seed")["value"] for m in chain}
        if any(s.empty for s in per.values()):
            continue
        row = dict(zip(keys, key))
        for m in chain:
            row[f"{m} mean"] = per[m].mean()
            row[f"{m} seeds"] = len(per[m])
        for a, b in zip(chain, chain[1:]):
            row[f"{a} vs {b} Δ%"] = 100 * (per[a].mean() - per[b].mean()) / per[b].mean()
            row[f"{a} vs {b} p"] = paired_test(per[a], per[b])
        row["holds"] = all(per[a].mean() > per[b].mean() for a, b in zip(chain, chain[1:]))
        out.append(row)
    return pd.DataFrame(out)


def _versus(rows: pd.DataFrame, a: str, b: str) -> pd.DataFrame:
    """Headline test metrics of ``a`` against ``b`` per (dataset, model, budget, metric): means
    over seeds and the relative difference (%)."""
    head = rows[rows["headline"] & rows["metric"].isin(ORDER_METRICS)]
    mean = head.groupby(["dataset", "model", "budget", "metric", "method_label"])["value"].agg(
        ["mean", "count"]).unstack("method_label")
    if ("mean", a) not in mean.columns or ("mean", b) not in mean.columns:
        return pd.DataFrame()
    out = pd.DataFrame({"a": mean[("mean", a)], "b": mean[("mean", b)],
                        "seeds_a": mean[("count", a)], "seeds_b": mean[("count", b)]}).dropna()
    out["delta_pct"] = 100 * (out["a"] - out["b"]) / out["b"]
    return out.reset_index()


def _verdict(cmp: pd.DataFrame, a: str, b: str) -> str:
    if cmp.empty:
        return f"not measured ({a} or {b} has no rows)"
    wins = int((cmp["delta_pct"] > 0).sum())
    per_budget = "; ".join(
        f"{budget[1:]}%: " + ", ".join(f"{SHORT[r.metric]} {r.delta_pct:+.1f}%" for r in g.itertuples())
        for budget, g in cmp.sort_values("metric", key=lambda m: m.map(ORDER_METRICS.index))
        .groupby("budget", sort=True))
    seeds = f"{int(cmp['seeds_a'].min())} vs {int(cmp['seeds_b'].min())} seed(s)"
    word = ("**holds**" if wins == len(cmp) else "**does not hold**" if wins == 0
            else f"**holds in {wins} of {len(cmp)} cells**")
    return f"{word} ({a} − {b}, test, mean over seeds, {seeds}: {per_budget})"


def _ciess_source(rows: pd.DataFrame, label: str) -> str:
    """Which search and candidates a CIESS label's rows come from, as the summary names them:
    " (recipe held, candidates of episodes 11-20)"; "" for the profile's own search from all
    episodes (or rows written before records named them)."""
    mine = rows[rows["method_label"] == label]
    parts = []
    if label == "CIESS" and "recipe" in mine:
        recipes = sorted(set(mine["recipe"].dropna()) - {DEFAULT_RECIPE})
        parts += [f"recipe {', '.join(recipes)}"] if recipes else []
    if "episodes" in mine:
        pools = sorted(set(mine["episodes"].dropna()) - {"all"})
        parts += [f"candidates of episodes {', '.join(pools)}"] if pools else []
    return f" ({', '.join(parts)})" if parts else ""


def reproduction_summary(rows: pd.DataFrame, wide: pd.DataFrame, paper: pd.DataFrame,
                         prov: dict, tolerance_pct: float = 5.0) -> str:
    """The answer to "does it reproduce?" for one snapshot, as Markdown: each claim of the
    paper (and the suite's headroom question), its verdict and the evidence, what was not run,
    and what the snapshot cost on which machine. Everything is computed from the records."""
    lines = []
    head = wide[wide["headline"].astype(bool)]
    deltas = [c for c in head.columns if c.endswith("Δ%")]
    blocks = sorted({(d, m) for d, m in zip(rows["dataset"], rows["model"])})
    for dataset, model in blocks:
        part = head[(head["dataset"] == dataset) & (head["model"] == model_label(model))]
        protocol = part["protocol"].iloc[0] if len(part) else "—"
        lines.append(f"**{dataset} × {model_label(model)}** (final protocol `{protocol}`)")
        for method, g in part.groupby("method_label", sort=False):
            d = g[deltas].to_numpy().ravel()
            d = d[~pd.isna(d)]
            if len(d):
                within = int((abs(d) <= tolerance_pct).sum())
                lines.append(f"- {method} vs the paper: {within} of {len(d)} cells within "
                             f"±{tolerance_pct:g}%, median Δ {pd.Series(d).median():+.1f}%")
        sub = rows[(rows["dataset"] == dataset) & (rows["model"] == model)]
        lines.append(f"- Claim CIESS > ES{_ciess_source(sub, 'CIESS')}: "
                     f"{_verdict(_versus(sub, 'CIESS', 'ES'), 'CIESS', 'ES')}")
        for recipe in sorted({m for m in sub["method_label"] if str(m).startswith("CIESS (")},
                             key=lambda m: (METHOD_ORDER + [m]).index(m)):  # docs/ciess.md §18
            lines.append(f"  - the same claim for {recipe}{_ciess_source(sub, recipe)}: "
                         f"{_verdict(_versus(sub, recipe, 'ES'), recipe, 'ES')}")
        lines.append(f"- Claim ES > MR: {_verdict(_versus(sub, 'ES', 'MR'), 'ES', 'MR')}")
        for method in ("MDE", "Sides"):  # allocations without a search (docs/baselines.md §7-8)
            if method in set(sub["method_label"]):
                lines.append(f"- Headroom (this suite's question, not the paper's): {method} > ES "
                             f"{_verdict(_versus(sub, method, 'ES'), method, 'ES')}")
        printed = paper_cells(paper, "table1")
        printed = printed[(printed["dataset"] == dataset) & (printed["model"] == model)]
        missing = sorted(set(printed["method"]) - set(sub["method_label"]))
        if missing:
            lines.append(f"- Not run in this snapshot (the paper prints them): {', '.join(missing)} "
                         "(why, with what it would cost: Table 1's coverage section)")
    spans = prov.get("rule_logs", {})
    hours = sum(v["seconds"] for v in spans.values()) / 3600
    lines.append(f"\nCompute: {hours:.1f} h of rule time in all ({len(spans)} rule logs, jobs "
                 f"partly side by side) on {run_machine(prov)}; "
                 "the wall time per run is in the snapshot's PROVENANCE.md.")
    return "\n".join(lines)


def run_machine(prov: dict) -> str:
    """Where a snapshot's runs were made: the machine it names (results copied from a GPU
    lease), else the machine that made the snapshot (runs made there)."""
    if prov.get("run_machine"):
        return prov["run_machine"]
    m = prov.get("machine", {})
    return f"{m.get('cpu', '?')}, {m.get('cores', '?')} cores"


def _run_keys(rows) -> set:
    return {(str(r["method"]), str(r["budget"]), int(r["seed"]), round(float(r["wall_time_s"]), 3))
            for r in rows if r.get("wall_time_s") is not None and not pd.isna(r["wall_time_s"])}


def rendering_run_is_snapshot(snapshot: str | Path, provenance_csv: str | Path) -> bool:
    """True when every run behind this rendering's tables is a run of ``snapshot`` (same method,
    budget, seed and recorded wall time): the notebook was rendered from the snapshot's own
    results, and its "this run" part would repeat the snapshot's."""
    import json

    prov_file = Path(snapshot) / "provenance.json"
    if not prov_file.exists() or not Path(provenance_csv).exists():
        return False
    runs = json.loads(prov_file.read_text()).get("runs", [])
    ours = _run_keys(pd.read_csv(provenance_csv).to_dict("records"))
    return bool(ours) and ours <= _run_keys(runs)
