"""The paper's wide table layout for this run's Table 1 / Table 2.

Rows: dataset x model x budget x method (Table 2: x noise x random walk); per metric (R@5, R@20,
N@5, N@20): ours as "mean ± std" over seeds, the paper's value, and Δ% = 100 (ours − paper) /
paper (positive: ours higher); then our achieved sparsity and the paper's. The best of ours and
the best of the paper's per (dataset, model, budget, metric) are flagged (Full excluded). The long
CSV (one row per metric) stays the machine-readable form; this is the form people read.
"""
from __future__ import annotations

import pandas as pd

from ciess.labels import METHOD_ORDER
from ciess.report.reference import SHORT
from ciess.report.reports import TABLE_METRICS, model_label


def wide_table(long: pd.DataFrame, variant_keys: tuple[str, ...] = ()) -> pd.DataFrame:
    """``long``: the output of ``reports.format_table`` (one row per cell)."""
    keys = ["dataset", "model", "budget", "method_label", *variant_keys]
    rows = []
    for key, g in long.groupby(keys, dropna=False, sort=False):
        row = dict(zip(keys, key))
        by_metric = g.set_index("metric")
        for metric in TABLE_METRICS:
            s = SHORT[metric]
            r = by_metric.loc[metric] if metric in by_metric.index else None
            has = r is not None and not pd.isna(r["mean"])
            row[f"{s} ours"] = r["ours_text"] if has else "—"
            row[f"{s} paper"] = r["paper"] if r is not None else float("nan")
            row[f"{s} Δ%"] = 100 * r["rel_diff"] if r is not None else float("nan")
            row[f"{s} best ours"] = bool(r["best_ours"]) if r is not None else False
            row[f"{s} best paper"] = bool(r["best_paper"]) if r is not None else False
        row["sparsity"] = g["sparsity"].mean()
        row["paper sparsity"] = g["paper_sparsity"].dropna().iloc[0] \
            if g["paper_sparsity"].notna().any() else float("nan")
        rows.append(row)
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    order = {m: i for i, m in enumerate(METHOD_ORDER)}
    out["_m"] = out["method_label"].map(lambda m: order.get(m, len(order)))
    out["_b"] = (out["budget"] != "dense").astype(int)
    out = out.sort_values(["dataset", "model", "_b", "budget", "_m", *variant_keys]).drop(
        columns=["_m", "_b"]).reset_index(drop=True)
    out["model"] = out["model"].map(model_label)
    return out


def styled(wide: pd.DataFrame):
    """A pandas Styler: best values bold, Δ% coloured (-15% red ... +15% blue), flags hidden."""
    flags = [c for c in wide.columns if c.endswith(" best ours") or c.endswith(" best paper")]
    deltas = [c for c in wide.columns if c.endswith("Δ%")]
    papers = [c for c in wide.columns if c.endswith(" paper") and c not in flags]

    def bold(col):
        metric, kind = col.name.rsplit(" ", 1)  # "R@20 ours" -> flag "R@20 best ours"
        return ["font-weight: bold" if f else "" for f in wide[f"{metric} best {kind}"]]

    value_cols = [c for c in wide.columns if c not in flags and (c.endswith(" ours") or c in papers)]
    return (wide.style.hide(axis="index").hide(subset=flags, axis="columns")
            .apply(bold, subset=value_cols)
            .format({**{c: "{:.4f}" for c in papers}, **{c: "{:+.1f}" for c in deltas},
                     "sparsity": "{:.3f}", "paper sparsity": "{:.3f}"}, na_rep="—")
            .background_gradient(subset=deltas, cmap="RdBu", vmin=-15, vmax=15)
            .map(lambda v: "background-color: white; color: #888" if pd.isna(v) else "",
                 subset=deltas))


def to_longtable(wide: pd.DataFrame, caption: str, label: str) -> str:
    """LaTeX: one longtable per dataset x model block, best values bold, Δ% with its sign."""
    if wide.empty:
        return f"% {caption}: no cells\n"
    flags = [c for c in wide.columns if " best " in c]
    parts = []
    for (dataset, model), block in wide.groupby(["dataset", "model"], sort=False):
        view = block.drop(columns=["dataset", "model"]).copy()
        for metric in TABLE_METRICS:
            s = SHORT[metric]
            view[f"{s} ours"] = [f"\\textbf{{{v}}}" if b else v for v, b in
                                 zip(view[f"{s} ours"], view[f"{s} best ours"])]
            view[f"{s} paper"] = ["--" if pd.isna(v) else (f"\\textbf{{{v:.4f}}}" if b else f"{v:.4f}")
                                  for v, b in zip(view[f"{s} paper"], view[f"{s} best paper"])]
            view[f"{s} Δ%"] = ["--" if pd.isna(v) else f"{v:+.1f}" for v in view[f"{s} Δ%"]]
        view = view.drop(columns=flags)
        view["sparsity"] = [f"{v:.3f}" for v in view["sparsity"]]
        view["paper sparsity"] = ["--" if pd.isna(v) else f"{v:.3f}" for v in view["paper sparsity"]]
        view.columns = [c.replace("Δ%", "$\\Delta$\\%").replace("method_label", "method")
                        .replace("_", " ") for c in view.columns]
        parts.append(view.style.hide(axis="index").to_latex(
            environment="longtable", hrules=True,
            caption=f"{caption} {dataset}, {model}. Ours: mean $\\pm$ std over seeds; "
                    "$\\Delta$\\% = 100 (ours $-$ paper) / paper, positive when ours is higher.",
            label=f"{label}-{dataset}-{model}".lower()))
    return "\n".join(parts)
