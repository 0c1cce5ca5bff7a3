"""Aggregation of every run's metrics into tidy tables, and the paper tables beside ours.

Every metrics JSON says how tables name its method (``method_label``: Full, ES, ESAPN-B, CIESS,
...) and, for CIESS, its variant (``variant``: noise, random_walk, lambda, episodes); the
workflow writes both (``ciess.labels.describe_run``), and the reports read them.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ciess.evaluate import METRICS
from ciess.labels import (CANDIDATE_LABEL, DEFAULT_RECIPE, budget_label, selection_label,
                          target_sparsity)
from ciess.provenance import settings_hash
from ciess.report.records import RecordError, read_record

TABLE_METRICS = ("recall@5", "recall@20", "ndcg@5", "ndcg@20")
VARIANT_KEYS = ("recipe", "noise", "random_walk", "lambda", "episodes", "table_row")


class RecordTooOld(ValueError):
    """A metrics JSON written before records carried ``method_label`` and ``variant``."""


def run_columns(rec: dict, path) -> dict:
    """The columns reports group a run by: its method label and CIESS variant (fields of the
    record)."""
    if "method_label" not in rec:
        raise RecordTooOld(f"{path}: no 'method_label' field (written before records described "
                           "their method); run `python -m ciess.report.migrate_records <results folder>` "
                           "once")
    variant = rec.get("variant") or {}
    if variant and "recipe" not in variant:  # a CIESS record written before recipes existed
        variant = {**variant, "recipe": DEFAULT_RECIPE}
    variant = {**variant, "table_row": is_table_row(rec)}
    return {"method_label": rec["method_label"], **{k: variant.get(k) for k in VARIANT_KEYS}}


def is_table_row(rec: dict) -> bool:
    """Whether a record is a Table 1 row: every baseline and Full; of a CIESS search's
    selections, the one its record names (``variant.table_row``: a recipe's ``table_episodes``
    pool, else all episodes; records written before the field: the whole search's selection).
    Retrained candidates and diagnostic pools (Figure 5's intervals) are not."""
    variant = rec.get("variant") or {}
    if not variant:
        return True
    if "table_row" in variant:
        return bool(variant["table_row"])
    return rec.get("method_label") != CANDIDATE_LABEL and variant.get("episodes") in (None, "all")


def model_label(name: str) -> str:
    """How tables name a base model (its registered label; the name if it is not registered
    here, e.g. a plugin model whose module this process did not import)."""
    from ciess.models.registry import MODELS

    return MODELS[name].label if name in MODELS else name


def check_one_data_version(records: dict) -> None:
    """Records of one dataset that were trained on different splits (another data-manifest
    checksum: a record from another profile, machine or preprocessing) never share a table."""
    seen: dict[str, tuple[str, str]] = {}
    for path, rec in records.items():
        if rec.get("status", "ok") != "ok":
            continue
        sha, first = rec["data_manifest_sha256"], seen.setdefault(rec["dataset"], (
            rec["data_manifest_sha256"], str(path)))
        if sha != first[0]:
            raise RecordError(f"{path}: data_manifest_sha256 {sha[:12]}… differs from "
                              f"{first[0][:12]}… of {first[1]} (same dataset "
                              f"'{rec['dataset']}', another split): refusing to mix them")


def mixed_settings_cells(records: dict) -> dict[tuple, dict[str, list[str]]]:
    """Table cells (dataset, model, method, budget) whose runs were made with different
    settings (``ciess.provenance.settings_hash``): {cell: {hash: [paths]}}. A record whose
    stored ``settings_hash`` no longer matches its own fields was edited: refused."""
    cells: dict[tuple, dict[str, list[str]]] = {}
    for path, rec in records.items():
        if rec.get("status", "ok") != "ok":
            continue
        digest = settings_hash(rec)
        if rec.get("settings_hash") not in (None, digest):
            raise RecordError(f"{path}: settings_hash {rec['settings_hash']} does not match the "
                              f"settings the record holds ({digest}): the record was edited")
        cell = (rec["dataset"], rec["model"], rec["method"], rec.get("budget", "dense"))
        cells.setdefault(cell, {}).setdefault(digest, []).append(str(path))
    return {cell: by_hash for cell, by_hash in cells.items() if len(by_hash) > 1}


def check_one_setting_per_cell(records: dict, allow_mixed: bool = False) -> list[str]:
    """Every seed of a cell must come from the same settings (a seed from another profile or
    train: block is not averaged in silently). ``allow_mixed`` (config
    ``allow_mixed_settings``) turns the refusal into the returned list of cells; the
    aggregation logs them and the provenance table shows several settings_hash values."""
    mixed = mixed_settings_cells(records)
    lines = [f"{'/'.join(cell)}: " + "; ".join(f"settings {h}: {', '.join(paths)}"
                                              for h, paths in by_hash.items())
             for cell, by_hash in mixed.items()]
    if lines and not allow_mixed:
        raise RecordError("runs of one table cell were made with different settings "
                          "(train settings, model hyperparameters, final protocol or the "
                          "method's settings); rerun them alike, or set allow_mixed_settings: "
                          "true to average them anyway:\n  " + "\n  ".join(lines))
    return lines


def check_ciess_labels(records: dict, main_recipe: str | None) -> None:
    """Every CIESS selection record carries the label this profile gives its search's recipe
    (``ciess.labels.ciess_label``): a record labelled under another ``ciess.main_recipe`` would
    put two searches under one label."""
    wrong = [f"{path}: '{rec['method_label']}', expected '{label}'"
             for path, rec in records.items()
             if (label := selection_label(rec, main_recipe)) not in (None, rec.get("method_label"))]
    if wrong:
        raise RecordError(
            f"CIESS records labelled under another ciess.main_recipe (this profile's: "
            f"{main_recipe or 'none'}); run `python -m ciess.report.migrate_records "
            f"--main-recipe {main_recipe or 'none'} <results folder>` once:\n  " + "\n  ".join(wrong))


def collect(metric_files: list[str | Path], allow_mixed_settings: bool = False,
            main_recipe: str | None = None) -> pd.DataFrame:
    """Every metrics JSON -> one tidy row per (run, split, metric); ``main_recipe``: the
    profile's ``ciess.main_recipe``, whose labels the CIESS records must carry."""
    rows = []
    records = {path: read_record(path) for path in metric_files}
    check_one_data_version(records)
    check_one_setting_per_cell(records, allow_mixed_settings)
    check_ciess_labels(records, main_recipe)
    for path, rec in records.items():
        budget = rec.get("budget", "dense")
        base = {"dataset": rec["dataset"], "model": rec["model"], "method": rec["method"],
                "budget": budget, "seed": rec["seed"], "status": rec.get("status", "ok"),
                "target_sparsity": target_sparsity(budget), **run_columns(rec, path),
                "file": str(path)}
        if base["status"] != "ok":
            rows.append({**base, "split": None, "metric": None, "value": np.nan,
                         "sparsity": np.nan, "params": np.nan})
            continue
        for split in ("valid", "test"):
            for metric in METRICS + ("avg",):
                rows.append({**base, "split": split, "metric": metric,
                             "value": rec[split][metric], "sparsity": rec["sparsity"],
                             "params": rec["params"], "device": rec.get("device"),
                             "git_revision": rec.get("git_revision"),
                             "config_hash": rec.get("config_hash"),
                             "settings_hash": settings_hash(rec),
                             "data_manifest_sha256": rec.get("data_manifest_sha256")})
    return pd.DataFrame(rows)


PROVENANCE_FIELDS = ("device", "git_revision", "config_hash", "settings_hash",
                     "data_manifest_sha256", "host", "slurm_job_id")


def provenance_table(metric_files) -> pd.DataFrame:
    """One row per run: where and with what its numbers were made (git revision, package
    versions, device, data manifest, resolved config hash, host, SLURM job id)."""
    rows = []
    for path in metric_files:
        rec = read_record(path)
        row = {key: rec.get(key) for key in ("dataset", "model", "method", "budget", "seed",
                                              "status")}
        row.update({key: rec.get(key) for key in (*PROVENANCE_FIELDS, "wall_time_s")})
        if rec.get("status", "ok") == "ok":
            row["settings_hash"] = settings_hash(rec)  # also for records written before it
        row.update({f"version_{name}": v for name, v in (rec.get("packages") or {}).items()})
        rows.append({**row, "file": str(path)})
    return pd.DataFrame(rows)


def provenance_summary(prov: pd.DataFrame) -> pd.DataFrame:
    """Distinct values of each provenance column over all runs (one line each), so a report
    shows at a glance whether every number came from one code version, config and data."""
    cols = [c for c in prov.columns if c in PROVENANCE_FIELDS or c.startswith("version_")]
    out = []
    for col in cols:
        values = prov[col].dropna().astype(str)
        counts = values.value_counts()
        out.append({"field": col, "distinct": len(counts),
                    "runs_with_value": int(len(values)), "runs": int(len(prov)),
                    "values": "; ".join(f"{v} ({n})" for v, n in counts.head(3).items())
                    + (" ..." if len(counts) > 3 else "")})
    return pd.DataFrame(out)


MIN_SEEDS_PAIRED_TEST = 3  # with 2 seeds a t-test has 1 degree of freedom: not reported


def paired_test(ours: pd.Series, ciess: pd.Series) -> float | None:
    """Paired t-test p-value over the seeds common to both (None below MIN_SEEDS_PAIRED_TEST)."""
    from scipy import stats

    both = pd.concat([ours, ciess], axis=1, keys=["a", "b"]).dropna()
    if len(both) < MIN_SEEDS_PAIRED_TEST or np.allclose(both["a"], both["b"]):
        return None
    return float(stats.ttest_rel(both["a"], both["b"]).pvalue)


def summarise(results: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """Mean +- std over seeds per (dataset, model, method_label, budget, metric) of ``rows``, with
    the paired test against CIESS in the same cell."""
    test = rows[(rows["split"] == "test") & rows["metric"].isin(TABLE_METRICS)]
    keys = ["dataset", "model", "method_label", "noise", "random_walk", "budget", "metric"]
    g = test.groupby(keys, dropna=False)
    out = g["value"].agg(["mean", "std", "count"]).reset_index()
    out["sparsity"] = g["sparsity"].mean().to_numpy()
    ciess = test[(test["method_label"] == "CIESS")]
    pvals = []
    for _, r in out.iterrows():
        if r["method_label"] == "CIESS":
            pvals.append(None)
            continue
        mine = test[(test[keys[:3]] == r[keys[:3]]).all(axis=1) & (test["budget"] == r["budget"])
                    & (test["metric"] == r["metric"])].set_index("seed")["value"]
        ref = ciess[(ciess["dataset"] == r["dataset"]) & (ciess["model"] == r["model"])
                    & (ciess["budget"] == r["budget"]) & (ciess["metric"] == r["metric"])]
        pvals.append(paired_test(mine, ref.set_index("seed")["value"]) if len(ref) else None)
    out["p_vs_ciess"] = pvals
    return out


def table1_rows(results: pd.DataFrame, default_lambda: dict) -> pd.DataFrame:
    """Table 1: Full, the baselines and the Table 1 row of every CIESS search: CIESS (the
    profile's ``ciess.main_recipe``), the profile's own search (G + random walk at the dataset's
    λ; its other noise, walk and λ searches are Table 2's and Figure 4's) and each recipe's."""
    ok = results[results["status"] == "ok"]
    own_settings = ok["recipe"] == DEFAULT_RECIPE
    own_table1_search = ((ok["noise"] == "G") & (ok["random_walk"] == True)  # noqa: E712
                         & (ok["lambda"] == ok["dataset"].map(default_lambda)))
    # of a search's selections, the one its record marks (is_table_row): all episodes, or a
    # recipe's table_episodes; Figure 5's pools and the other diagnostics are no Table 1 row
    return ok[(~own_settings | own_table1_search) & ok["table_row"].astype(bool)]


def own_search_selections(results: pd.DataFrame) -> pd.DataFrame:
    """The selections of the searches run with the profile's own ``ciess:`` settings (the
    paper's: Table 2's variants, Figure 4's λ values, Figure 5's pools), whatever their label
    (CIESS, or CIESS (paper) when a recipe is the main one); retrained candidates excluded."""
    return results[(results["recipe"] == DEFAULT_RECIPE)
                   & (results["method_label"] != CANDIDATE_LABEL)]


def table2_rows(results: pd.DataFrame, default_lambda: dict) -> pd.DataFrame:
    """Table 2: the noise / random-walk variants of the profile's own search (the paper's) at
    the default λ, all episodes; labelled CIESS, as the paper's Table 2 names them."""
    ok = own_search_selections(results[results["status"] == "ok"])
    rows = ok[(ok["episodes"] == "all") & (ok["lambda"] == ok["dataset"].map(default_lambda))]
    return rows.assign(method_label="CIESS")


def paper_cells(paper: pd.DataFrame, table: str) -> pd.DataFrame:
    """The paper's rows of one table, keyed like ours: lower-case model, budget label."""
    p = paper[paper["table"] == table].copy()
    p["model"] = p["model"].str.lower()
    p["budget"] = p["target_sparsity"].map(lambda x: budget_label(None if pd.isna(x) else round(x * 100)))
    return p


NATIVE_SPARSITY_TOLERANCE = 0.05  # a native row is the paper's cell only this close in sparsity


def sparsity_mismatch(budget: pd.Series, ours: pd.Series, paper: pd.Series) -> pd.Series:
    """True where a native row (ESAPN, OptEmb at their own sparsity) lies more than
    ``NATIVE_SPARSITY_TOLERANCE`` from the paper's achieved sparsity: two different models, so
    no Δ% against the paper's value is computed (both sparsities stay in the table)."""
    return (budget == "native") & ((ours - paper).abs() > NATIVE_SPARSITY_TOLERANCE)


def beside_paper(summary: pd.DataFrame, paper: pd.DataFrame, table: str) -> pd.DataFrame:
    """Our mean +- std next to the paper's value, with absolute and relative differences."""
    p = paper_cells(paper, table)
    p["noise"] = p["noise"].where(p["noise"].notna(), None)
    keys = ["dataset", "model", "method_label", "budget", "metric"]
    if table == "table2":
        p["random_walk"] = p["random_walk"].astype(str).str.lower() == "true"
        keys = keys + ["noise", "random_walk"]
    p = p.rename(columns={"method": "method_label", "value": "paper", "achieved_sparsity":
                          "paper_sparsity"})
    ours = summary.copy()
    if table == "table1":
        ours = ours.drop(columns=["noise", "random_walk"])
    merged = ours.merge(p[keys + ["paper", "paper_sparsity", "note"]], on=keys, how="outer")
    merged["abs_diff"] = merged["mean"] - merged["paper"]
    merged["rel_diff"] = merged["abs_diff"] / merged["paper"]
    off = sparsity_mismatch(merged["budget"], merged["sparsity"], merged["paper_sparsity"])
    merged.loc[off, ["abs_diff", "rel_diff"]] = np.nan
    return merged.sort_values(keys).reset_index(drop=True)


def mark_best(df: pd.DataFrame, value: str, block: list[str]) -> pd.Series:
    """True where ``value`` is the best within its (block) group, ignoring Full."""
    candidates = df[df["method_label"] != "Full"]
    best = candidates.groupby(block, dropna=False)[value].transform("max")
    flags = pd.Series(False, index=df.index)
    flags.loc[candidates.index] = candidates[value] == best
    return flags


def format_table(merged: pd.DataFrame, block: list[str]) -> pd.DataFrame:
    merged = merged.copy()
    merged["ours_text"] = [
        "not run" if pd.isna(m) else (f"{m:.4f}" if pd.isna(s) else f"{m:.4f} ± {s:.4f}")
        for m, s in zip(merged["mean"], merged["std"])]
    merged["best_ours"] = mark_best(merged, "mean", block)
    merged["best_paper"] = mark_best(merged, "paper", block)
    return merged
