"""Aggregation and tables: tidy schema, the paper's values beside ours, best-value marking."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from baselines import table_label
from ciess.labels import describe_run
from ciess.report.reports import (RecordTooOld, paired_test, beside_paper, collect, format_table, provenance_summary,
                           provenance_table, summarise, table1_rows, table2_rows)
from conftest import REPO
from helpers import has_image, run_notebook

PAPER = pd.read_csv(REPO / "notebooks/reference/paper_results.csv")


def _record(tmp_path, method, budget, seed, recall20, model="lightgcn", dataset="ml-1m",
            status="ok", main_recipe=None, table_pool="all"):
    metrics = {m: recall20 for m in ("recall@5", "recall@10", "recall@20", "ndcg@5",
                                     "ndcg@10", "ndcg@20", "avg")}
    rec = {"dataset": dataset, "model": model, "method": method, "budget": budget, "seed": seed,
           "status": status, "valid": metrics, "test": metrics, "params": 1000, "capacity": 10000,
           "sparsity": 0.9, "data_manifest_sha256": "d0",
           **describe_run(method, budget, table_label, table_pool=lambda search: table_pool,
                          main_recipe=main_recipe)}  # what the workflow writes
    path = tmp_path / f"{method}-{budget}-{seed}-{model}.json"
    path.write_text(json.dumps(rec))
    return path


def test_reports_read_the_record_fields_not_the_method_name(tmp_path):
    path = _record(tmp_path, "es", "c80", 0, 0.2)
    rec = json.loads(path.read_text())
    rec.update(method_label="Renamed", variant=None)
    path.write_text(json.dumps(rec))
    assert set(collect([path])["method_label"]) == {"Renamed"}
    del rec["method_label"]
    path.write_text(json.dumps(rec))
    with pytest.raises(RecordTooOld, match=r"es-c80-0-lightgcn\.json: no 'method_label' field.*"
                       r"ciess\.report\.migrate_records"):
        collect([path])


def test_migration_adds_the_fields_to_old_records(tmp_path):
    from ciess.report.migrate_records import migrate

    old = {"dataset": "ml-1m", "model": "lightgcn", "budget": "c90", "seed": 0}
    for method in ("ciess-ou-norw-lam0.2-ep7-12", "esapn", "full"):
        (tmp_path / method).mkdir()
        (tmp_path / method / "metrics.json").write_text(json.dumps({**old, "method": method,
                                                                    "test": {}}))
    (tmp_path / "diagnostic-es-c80.json").write_text(json.dumps({**old, "method": "es", "test": {}}))
    (tmp_path / "manifest.json").write_text(json.dumps({"files": {}}))  # not a run record
    assert migrate(tmp_path) == 4 and migrate(tmp_path) == 0  # idempotent
    ciess = json.loads((tmp_path / "ciess-ou-norw-lam0.2-ep7-12/metrics.json").read_text())
    assert ciess["method_label"] == "CIESS" and ciess["search"] == "ciess-ou-norw-lam0.2"
    assert ciess["variant"] == {"noise": "OU", "random_walk": False, "lambda": 0.2,
                                "recipe": "default", "episodes": "7-12", "table_row": False}
    assert json.loads((tmp_path / "esapn/metrics.json").read_text())["method_label"] == "ESAPN-B"
    assert json.loads((tmp_path / "full/metrics.json").read_text())["method_label"] == "Full"


def test_results_schema_and_table1_beside_the_paper(tmp_path):
    files = [_record(tmp_path, m, "c80", s, v) for m, v in (("es", 0.20), ("ciess-g-rw-lam0.4", 0.24))
             for s in (0, 1)]
    files.append(_record(tmp_path, "es", "c80", 2, 0.21))
    files.append(_record(tmp_path, "ciess-g-rw-lam0.4", "c95", 0, float("nan"), status="not_reached"))
    results = collect(files)
    assert {"dataset", "model", "method", "method_label", "budget", "seed", "split", "metric",
            "value", "sparsity", "params", "status"} <= set(results.columns)
    assert len(results[(results.split == "test") & (results.status == "ok")]) == 5 * 7
    rows = table1_rows(results, {"ml-1m": 0.4})
    merged = format_table(beside_paper(summarise(results, rows), PAPER, "table1"),
                          ["dataset", "model", "budget", "metric"])
    cell = merged[(merged.method_label == "ES") & (merged.budget == "c80")
                  & (merged.model == "lightgcn") & (merged.metric == "recall@20")].iloc[0]
    assert cell["paper"] == pytest.approx(0.2248)  # Table 1, ML-1M LightGCN ES 80% R@20
    assert cell["mean"] == pytest.approx(0.21 / 3 + 0.4 / 3)
    assert cell["abs_diff"] == pytest.approx(cell["mean"] - 0.2248)
    assert pd.isna(cell["p_vs_ciess"])  # two shared seeds: 1 degree of freedom, no test
    three = pd.Series([0.20, 0.21, 0.22]), pd.Series([0.24, 0.26, 0.25])
    assert 0 < paired_test(*three) < 1 and paired_test(three[0][:2], three[1][:2]) is None
    ciess = merged[(merged.method_label == "CIESS") & (merged.budget == "c80")
                   & (merged.model == "lightgcn") & (merged.metric == "recall@20")].iloc[0]
    assert ciess["best_ours"] and not cell["best_ours"] and ciess["paper"] == pytest.approx(0.2436)
    # cells the paper prints but we did not run stay visible, with no value of ours
    assert merged[(merged.method_label == "OptEmb")]["mean"].isna().all()


def test_table2_keeps_variants_apart(tmp_path):
    files = [_record(tmp_path, "ciess-g-rw-lam0.4", "c90", 0, 0.2),
             _record(tmp_path, "ciess-g-norw-lam0.4", "c90", 0, 0.1),
             _record(tmp_path, "ciess-g-rw-lam0.8", "c90", 0, 0.3)]  # lambda grid: not Table 2
    results = collect(files)
    merged = beside_paper(summarise(results, table2_rows(results, {"ml-1m": 0.4})), PAPER, "table2")
    r20 = merged[(merged.metric == "recall@20") & (merged.budget == "c90") & merged["mean"].notna()]
    assert sorted(r20["mean"]) == [0.1, 0.2]
    walk = r20[r20.random_walk == True].iloc[0]  # noqa: E712
    assert walk["paper"] == pytest.approx(
        PAPER.query("table == 'table2' and dataset == 'ml-1m' and target_sparsity == 0.9 and "
                    "noise == 'G' and random_walk == True and metric == 'recall@20'")["value"].iloc[0])


def test_with_a_main_recipe_table1_shows_it_as_ciess_beside_the_papers_search(tmp_path):
    """`ciess.main_recipe: held` (docs/ciess.md §18.5): Table 1's CIESS is the held search's
    row, the profile's own G + walk search at the default λ is "CIESS (paper)", its noise / walk
    variants and λ values stay Table 2's and Figure 4's (Table 2 names them CIESS, as the
    paper); records labelled under another main recipe are refused until migrated."""
    from ciess.report.migrate_records import relabel
    from ciess.report.records import RecordError

    def rec(method, pool="all"):  # pool None: the workflow's for Table 2's and Figure 4's searches
        value = 0.25 if "held" in method else 0.2 if method == "es" else 0.18
        path = _record(tmp_path, method, "c90", 0, value, main_recipe="held", table_pool=pool)
        path.write_text(json.dumps({**json.loads(path.read_text()), "final_protocol": "merge_fixed"}))
        return path

    files = [rec("es"), rec("ciess-g-rw-lam0.4-held-ep11-20", "ep11-20"),
             rec("ciess-g-rw-lam0.4-held", "ep11-20"), rec("ciess-g-rw-lam0.4"),
             rec("ciess-g-norw-lam0.4", None), rec("ciess-g-rw-lam0.8", None)]
    results = collect(files, main_recipe="held")
    rows = table1_rows(results, {"ml-1m": 0.4}).drop_duplicates("file")
    assert dict(zip(rows["method_label"], rows["method"])) == {
        "ES": "es", "CIESS": "ciess-g-rw-lam0.4-held-ep11-20", "CIESS (paper)": "ciess-g-rw-lam0.4"}
    table2 = table2_rows(results, {"ml-1m": 0.4}).drop_duplicates("file")
    assert sorted(table2["method"]) == ["ciess-g-norw-lam0.4", "ciess-g-rw-lam0.4"]
    assert set(table2["method_label"]) == {"CIESS"}
    merged = beside_paper(summarise(results, table2_rows(results, {"ml-1m": 0.4})), PAPER, "table2")
    r20 = merged[merged["mean"].notna() & (merged["metric"] == "recall@20")]
    assert len(r20) == 2 and r20["paper"].notna().all()  # beside the paper's Table 2 cells
    from ciess.report.reference import reference_rows, reproduction_summary, wide_beside_paper
    snap, paper = reference_rows(files), PAPER[PAPER["dataset"] == "ml-1m"]
    summary = reproduction_summary(snap, wide_beside_paper(snap, paper), paper, {"rule_logs": {}})
    assert "- Claim CIESS > ES (recipe held, candidates of episodes 11-20): **holds**" in summary
    assert "the same claim for CIESS (paper): **does not hold** (CIESS (paper) − ES, test, mean " \
        "over seeds, 1 vs 1 seed(s)" in summary  # Table 2's and Figure 4's searches left out
    with pytest.raises(RecordError, match=r"(?s)another ciess.main_recipe \(this profile's: none\).*"
                       r"--main-recipe none.*held-ep11-20-c90-0-lightgcn\.json: 'CIESS', "
                       r"expected 'CIESS \(held\)'"):
        collect(files)  # a profile whose CIESS is its own search
    assert relabel(tmp_path, None) == 5 and relabel(tmp_path, None) == 0  # idempotent
    labels = collect(files).drop_duplicates("file").set_index("method")["method_label"]
    assert labels["ciess-g-rw-lam0.4-held-ep11-20"] == "CIESS (held)"
    assert labels["ciess-g-rw-lam0.4"] == "CIESS" and labels["es"] == "ES"


def test_provenance_table_lists_every_run_and_flags_mixed_sources(tmp_path):
    files = [_record(tmp_path, "es", "c80", s, 0.2) for s in (0, 1, 2)]
    for i, path in enumerate(files):
        rec = json.loads(path.read_text())
        rec.update({"git_revision": "abc" if i < 2 else "def", "device": "cuda",
                    "config_hash": "h1", "data_manifest_sha256": "d1", "host": "node7",
                    "slurm_job_id": str(100 + i) if i else None,
                    "packages": {"torch": "2.13.0", "recbole": "1.2.1"}})
        path.write_text(json.dumps(rec))
    prov = provenance_table(files)
    assert len(prov) == 3 and prov["version_torch"].eq("2.13.0").all()
    assert prov["slurm_job_id"].tolist()[1:] == ["101", "102"]
    summary = provenance_summary(prov).set_index("field")
    assert summary.loc["git_revision", "distinct"] == 2  # mixed code versions are visible
    assert summary.loc["git_revision", "values"] == "abc (2); def (1)"
    assert summary.loc["config_hash", "distinct"] == 1
    assert summary.loc["slurm_job_id", "runs_with_value"] == 2


def _images(ipynb) -> int:
    import nbformat
    return sum("image/png" in o.get("data", {}) for c in nbformat.read(ipynb, as_version=4).cells
               for o in c.get("outputs", []))


def test_pareto_and_fig3_show_their_figures_inline(tmp_path):
    import papermill
    results = pd.DataFrame([{"dataset": "ml-1m", "model": "lightgcn", "method": m, "method_label": label,
                             "budget": b, "seed": 0, "status": "ok", "recipe": None, "noise": None,
                             "random_walk": None, "lambda": None, "episodes": None,
                             "table_row": True, "split": "test", "metric": "ndcg@20",
                             "value": v, "sparsity": sp, "params": p}
                            for m, label, b, v, sp, p in (("full", "Full", "dense", 0.39, 0.0, 1000),
                                                          ("es", "ES", "c80", 0.37, 0.8, 200))])
    results.to_csv(tmp_path / "results.csv", index=False)
    log = pd.DataFrame([{"dataset": "ml-1m", "random_walk": rw, "seed": 0, "episode": e, "iteration": 1,
                         "mean_reward_user": 0.5, "mean_reward_item": 0.6, "mean_action_user": 30.0,
                         "mean_action_item": 20.0, "lambda": 0.4, "reward_quality": "ratio",
                         "reward_memory": "size_squared"} for rw in (True, False) for e in (1, 2)])
    log.to_csv(tmp_path / "log.csv", index=False)
    for name, params in (("pareto", {"results_csv": str(tmp_path / "results.csv"),
                                     "default_lambda": {"ml-1m": 0.4}}),
                         ("fig3_random_walk", {"search_logs": [str(tmp_path / "log.csv")],
                                               "per_episode": "mean"})):
        params.update(figure_png=str(tmp_path / f"{name}.png"), data_csv=str(tmp_path / f"{name}.csv"),
                      profile="reference")
        papermill.execute_notebook(str(REPO / f"notebooks/{name}.ipynb"), str(tmp_path / f"{name}.ipynb"),
                                   parameters=params, kernel_name="python3", progress_bar=False)
        assert _images(tmp_path / f"{name}.ipynb") == 1, name
        assert (tmp_path / f"{name}.pdf").exists()


def test_study_notebooks_render_for_a_profile_without_ciess(tmp_path):
    """The reference profile runs no CIESS search: Figures 4 and 5 must still render (a labelled
    empty figure), not fail on an empty selection."""
    import papermill

    results = pd.DataFrame([{"dataset": "ml-1m", "model": "lightgcn", "method": "es",
                             "method_label": "ES", "budget": "c80", "seed": 0, "status": "ok",
                             "recipe": None, "noise": None, "random_walk": None,
                             "lambda": None, "episodes": None, "table_row": True,
                             "split": "test", "metric": "recall@20",
                             "value": 0.2, "sparsity": 0.8, "params": 1}])
    results.to_csv(tmp_path / "results.csv", index=False)
    for name in ("fig4_lambda", "fig5_episodes"):
        params = {"results_csv": str(tmp_path / "results.csv"),
                  "figure_png": str(tmp_path / f"{name}.png"),
                  "data_csv": str(tmp_path / f"{name}.csv"),
                  "default_lambda": {"ml-1m": 0.4}, "profile": "reference"}
        if name == "fig4_lambda":
            params["lambda_grid"] = {"ml-1m": [0.2, 0.4]}
        papermill.execute_notebook(str(REPO / f"notebooks/{name}.ipynb"),
                                   str(tmp_path / f"{name}.ipynb"), parameters=params,
                                   kernel_name="python3", progress_bar=False)
        assert (tmp_path / f"{name}.png").exists() and (tmp_path / f"{name}.pdf").exists()
        assert _images(tmp_path / f"{name}.ipynb") == 0  # no empty or single-arm figure shown
        assert "Not run in this profile (reference)" in _text(tmp_path / f"{name}.ipynb")


def _text(ipynb) -> str:
    import nbformat
    return "\n".join(str(o.get("data", {}).get("text/markdown", "")) + str(o.get("text", ""))
                     for c in nbformat.read(ipynb, as_version=4).cells
                     for o in c.get("outputs", []))


def test_fig3_with_one_arm_says_the_ablation_was_not_run(tmp_path):
    import papermill

    log = pd.DataFrame([{"dataset": "ml-1m", "random_walk": True, "seed": 0, "episode": e,
                         "iteration": 1, "mean_reward_user": 0.5, "mean_reward_item": 0.6,
                         "mean_action_user": 30.0, "mean_action_item": 20.0, "lambda": 0.4,
                         "reward_quality": "ratio", "reward_memory": "size_squared"}
                        for e in (1, 2)])
    log.to_csv(tmp_path / "log.csv", index=False)
    papermill.execute_notebook(
        str(REPO / "notebooks/fig3_random_walk.ipynb"), str(tmp_path / "fig3.ipynb"),
        parameters={"search_logs": [str(tmp_path / "log.csv")], "per_episode": "mean",
                    "figure_png": str(tmp_path / "fig3.png"), "data_csv": str(tmp_path / "f.csv"),
                    "profile": "reference"}, kernel_name="python3", progress_bar=False)
    text = _text(tmp_path / "fig3.ipynb")
    assert _images(tmp_path / "fig3.ipynb") == 0
    assert "only the search with the walk" in text and "ablation_models" in text


def test_ciess_search_notebook_shows_reward_size_trajectory_and_popularity(tmp_path):
    """The search notebook renders inline figures from a search log, its masks, the split and the
    per-budget selections, and summarises which budgets the trajectory crossed."""
    import numpy as np

    from ciess.data.split import split_per_user, write_split

    rng = np.random.default_rng(0)
    table = pd.DataFrame([(u, i) for u in range(30) for i in rng.choice(20, 8, replace=False)],
                         columns=["user_id", "item_id"])
    parts, summary = split_per_user(table)
    write_split(parts, tmp_path / "split", "toy", {"users": 30, "items": 20}, 42,
                (0.5, 0.25, 0.25), summary)
    rows, users, items = [], [], []
    for e in (1, 2):
        for i in (1, 2, 3):
            size = [48, 32, 16, 14, 12, 10][3 * (e - 1) + i - 1]  # crosses 80% and 90%
            users.append(np.full(30, size, np.uint8))
            items.append(np.full(20, size, np.uint8))
            rows.append({"episode": e, "iteration": i, "mean_reward_user": 0.5 + 0.01 * i,
                         "mean_reward_item": 0.6, "mean_action_user": size, "mean_action_item": size,
                         "sparsity": 1 - size / 128, "val_avg_user": 0.2})
    pd.DataFrame(rows).to_csv(tmp_path / "log.csv", index=False)
    np.savez(tmp_path / "masks.npz", episode=[r["episode"] for r in rows],
             iteration=[r["iteration"] for r in rows], user_sizes=np.stack(users),
             item_sizes=np.stack(items))
    pd.DataFrame([{"budget": "c80", "rank": 1, "episode": 1, "iteration": 3, "val_avg_user": 0.2,
                   "params": 1, "sparsity": 1 - 16 / 128, "retrained_val_avg": 0.3, "chosen": True}]
                 ).to_csv(tmp_path / "sel.csv", index=False)
    pd.DataFrame([{"budget": "c90", "rank": 1, "episode": 2, "iteration": 2, "val_avg_user": 0.2,
                   "params": 1, "sparsity": 1 - 12 / 128, "retrained_val_avg": 0.3, "chosen": True}]
                 ).to_csv(tmp_path / "table_sel.csv", index=False)
    search = {"dataset": "toy", "model": "lightgcn", "search": "g-rw-lam0.4", "seed": 0,
              "log": str(tmp_path / "log.csv"), "masks": str(tmp_path / "masks.npz"),
              "manifest": str(tmp_path / "split/manifest.json"),
              "selections": [str(tmp_path / "sel.csv")]}
    held = {**search, "search": "g-rw-lam0.4-held", "table_pool": "ep2-2",
            "table_selections": [str(tmp_path / "table_sel.csv")]}  # its Table 1 row: episode 2
    outputs = run_notebook("ciess_search", tmp_path, searches=[search, held], budgets=[80, 90, 95],
                           profile="reference")
    assert has_image(outputs)
    html = "".join(o.get("data", {}).get("text/html", "") for o in outputs)
    assert "80%, 90%" in html and "95%" not in html.split("budgets crossed")[1].split("</tr>")[0]
    row = html.split("Table 1 row")[1].split("</tr>")[0]
    assert "the selection from all episodes" in row and "c90 e2i2 (episodes 2-2)" in row
    per_episode = pd.read_csv(tmp_path / "f.csv")
    assert list(per_episode["mean_action_user"]) == [32.0, 12.0] * 2  # both searches


def test_ordering_check_states_whether_ciess_beats_es_beats_mr():
    from ciess.report.reference import ordering
    rows = []
    for method, values in (("CIESS", (0.30, 0.32)), ("ES", (0.28, 0.29)), ("MR", (0.25, 0.30))):
        for seed, v in enumerate(values):
            for metric in ("recall@20", "ndcg@20", "recall@5"):
                rows.append({"dataset": "ml-1m", "model": "lightgcn", "protocol": "merge_fixed",
                             "budget": "c80", "metric": metric, "method_label": method,
                             "seed": seed, "value": v})
    order = ordering(pd.DataFrame(rows))
    assert len(order) == 2  # recall@20 and ndcg@20 only
    r = order.iloc[0]
    assert r["CIESS mean"] == pytest.approx(0.31) and r["CIESS seeds"] == 2
    assert r["CIESS vs ES Δ%"] == pytest.approx(100 * (0.31 - 0.285) / 0.285)
    assert r["holds"]  # 0.31 > 0.285 > 0.275
    assert r["CIESS vs ES p"] is None  # 2 shared seeds: no t-test (MIN_SEEDS_PAIRED_TEST)
    one_seed = ordering(pd.DataFrame([x for x in rows if x["seed"] == 0 or x["method_label"] != "CIESS"]))
    assert one_seed.iloc[0]["CIESS vs ES p"] is None and one_seed.iloc[0]["CIESS seeds"] == 1


def test_table1_wide_layout_and_longtable(tmp_path):
    from ciess.report.tables import to_longtable, wide_table
    files = [_record(tmp_path, m, "c80", s, v) for m, v in (("es", 0.20), ("ciess-g-rw-lam0.4", 0.24))
             for s in (0, 1)]
    results = collect(files)
    merged = format_table(beside_paper(summarise(results, table1_rows(results, {"ml-1m": 0.4})),
                                       PAPER, "table1"), ["dataset", "model", "budget", "metric"])
    wide = wide_table(merged)
    for metric in ("R@5", "R@20", "N@5", "N@20"):
        assert {f"{metric} ours", f"{metric} paper", f"{metric} Δ%"} <= set(wide.columns)
    es = wide[(wide["method_label"] == "ES") & (wide["budget"] == "c80") & (wide["model"] == "LightGCN")
              & (wide["dataset"] == "ml-1m")].iloc[0]
    assert es["R@20 ours"] == "0.2000 ± 0.0000" and es["R@20 paper"] == pytest.approx(0.2248)
    assert es["R@20 Δ%"] == pytest.approx(100 * (0.2 - 0.2248) / 0.2248)
    ciess = wide[(wide["method_label"] == "CIESS") & (wide["budget"] == "c80")
                 & (wide["model"] == "LightGCN") & (wide["dataset"] == "ml-1m")].iloc[0]
    assert ciess["R@20 best ours"] and not es["R@20 best ours"]
    assert len(wide) < len(merged) / 3  # one row per method and budget, not per metric
    tex = to_longtable(wide, "Table 1:", "table1")
    assert tex.count("\\begin{longtable}") == wide.groupby(["dataset", "model"]).ngroups
    assert "\\textbf{0.2400 ± 0.0000}" in tex and "$\\Delta$\\%" in tex and "-11.0" in tex


def test_styled_wide_table_renders_with_bold_best(tmp_path):
    from ciess.report.tables import styled, wide_table
    files = [_record(tmp_path, m, "c80", 0, v) for m, v in (("es", 0.20), ("ciess-g-rw-lam0.4", 0.24))]
    results = collect(files)
    merged = format_table(beside_paper(summarise(results, table1_rows(results, {"ml-1m": 0.4})),
                                       PAPER, "table1"), ["dataset", "model", "budget", "metric"])
    html = styled(wide_table(merged)).to_html()
    assert "font-weight: bold" in html and "best ours" not in html and "0.2400" in html


def test_fidelity_notebook_plots_every_comparable_cell_of_the_shipped_snapshot(tmp_path):
    pd.DataFrame(columns=["dataset", "model", "method_label", "budget", "metric", "mean", "count",
                          "paper"]).to_csv(tmp_path / "t1.csv", index=False)
    outputs = run_notebook("fidelity", tmp_path, table_csv=str(tmp_path / "t1.csv"),
                           paper_csv=str(REPO / "notebooks/reference/paper_results.csv"),
                           reference_snapshots=[str(REPO / "results/reference/ml-1m-lightgcn")],
                           profile="quick")
    assert has_image(outputs)
    cells = pd.read_csv(tmp_path / "f.csv")
    assert len(cells) >= 24 and cells["source"].str.startswith("reference snapshot").all()
    assert cells["delta_pct"].abs().max() < 50  # every cell is matched to its own paper value
    import re
    text = json.dumps(outputs)
    assert "Every difference" not in text  # headings are markdown cells, outputs are not
    assert re.search(r"[+-]\d+\.\d \([+-]\d+\.\d to [+-]\d+\.\d\)", text)  # Δ% (95% interval)


def test_table1_notebook_says_so_when_the_checkout_has_no_reference_snapshot(tmp_path):
    """The workflow passes only the snapshots present; with none, the reference section says
    why it is empty instead of showing a heading over nothing."""
    files = [_record(tmp_path, m, "c80", 0, v) for m, v in (("es", 0.20), ("ciess-g-rw-lam0.4", 0.24))]
    results = collect(files)
    format_table(beside_paper(summarise(results, table1_rows(results, {"ml-1m": 0.4})), PAPER,
                              "table1"), ["dataset", "model", "budget", "metric"]
                 ).to_csv(tmp_path / "t1.csv", index=False)
    provenance_table(files).to_csv(tmp_path / "prov.csv", index=False)
    outputs = run_notebook("table1", tmp_path, table_csv=str(tmp_path / "t1.csv"),
                           provenance_csv=str(tmp_path / "prov.csv"), reference_snapshots=[],
                           paper_csv=str(REPO / "notebooks/reference/paper_results.csv"),
                           profile="quick")
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "No reference snapshot in this checkout" in text


def test_cost_table_of_the_shipped_snapshot():
    from ciess.report.costs import cost_summary, cost_table
    costs = cost_table(REPO / "results/reference/ml-1m-lightgcn")
    assert {"search_s", "retrain_s", "params"} <= set(costs.columns)
    es = costs[(costs["method"] == "es") & (costs["budget"] == "c80")]
    assert len(es) == 2 and (es["retrain_s"] > 0).all() and (es["search_s"] >= 0).all()
    summary = cost_summary(costs)
    full = summary[summary["method_label"] == "Full"].iloc[0]
    assert full["params"] == 128 * (6040 + 3706) and pd.isna(full["search_min"])


def test_reference_rows_leave_out_ciess_candidates():
    from ciess.report.reference import reference_rows, snapshot_runs
    rows = reference_rows(snapshot_runs(REPO / "results/reference/ml-1m-lightgcn"))
    assert "cand" not in set(rows["budget"])
    assert {"Full", "ES", "MR", "CIESS"} <= set(rows["method_label"])


def test_every_method_has_its_own_colour_and_ciess_is_not_pale():
    from matplotlib.colors import to_rgb

    from ciess.labels import METHOD_ORDER
    from ciess.report.plotting import method_palette

    palette = method_palette()
    assert list(palette) == METHOD_ORDER and len(set(palette.values())) == len(METHOD_ORDER)
    r, g, b = to_rgb(palette["CIESS"])
    assert 0.2126 * r + 0.7152 * g + 0.0722 * b < 0.5  # visible on white, unlike pale yellow


def test_costs_count_each_search_once_and_add_up():
    from ciess.report.costs import cost_summary, cost_table, cost_totals
    costs = cost_table(REPO / "results/reference/ml-1m-lightgcn")
    paper = costs[costs["method_label"] == "CIESS (paper)"]  # one search seed
    assert len(paper) == 3 and paper["search_s"].nunique() == 1  # one search serves 3 budgets
    assert paper["search_share_s"].sum() == pytest.approx(paper["search_s"].iloc[0])
    held = costs[costs["method_label"] == "CIESS"]  # two seeds; the whole-search selection of
    assert len(held) == 6 and held["search_s"].nunique() == 2  # seed 1 is a diagnostic: no row
    summary = cost_summary(costs)
    totals = cost_totals(costs).set_index("method_label")
    row = totals.loc["CIESS (paper)"]
    assert row["search_min"] == pytest.approx(paper["search_s"].iloc[0] / 60)
    assert row["search_min"] == pytest.approx(
        summary[summary["method_label"] == "CIESS (paper)"]["search_min"].sum())  # shares add up
    assert totals.loc["CIESS", "search_min"] == pytest.approx(held["search_s"].unique().sum() / 60)
    assert totals.loc["CIESS", "retrain_min"] == 0  # its retrainings are among the candidates'
    assert totals.loc["ES", "retrain_min"] > 0
    assert totals.loc["everything", "total_min"] == pytest.approx(
        totals.drop("everything")["total_min"].sum())
    assert totals.loc["Full", "search_min"] == 0 and totals.loc["Full", "retrain_min"] > 0


def test_table2_says_when_the_ablation_was_not_run(tmp_path):
    snap = REPO / "results/reference/ml-1m-lightgcn/tables"
    outputs = run_notebook("table2", tmp_path, table_csv=str(snap / "table2.csv"),
                           provenance_csv=str(snap / "provenance.csv"), profile="reference")
    text = "".join("".join(o.get("data", {}).get("text/markdown", "")) for o in outputs)
    assert "Not run in this profile (reference):** the noise and walk ablation" in text
    assert "G + walk only" in text


def test_a_recipes_table_episodes_selection_is_its_table1_row_and_its_whole_search_is_not(
        tmp_path):
    """`ciess.recipes.<r>.table_episodes` (docs/ciess.md §18.3): the workflow marks the
    selection from those episodes as the recipe's Table 1 row (``variant.table_row``); the
    whole search's selection becomes a diagnostic; a record written before the field keeps
    the old rule (the whole search is the row)."""
    from ciess.report.reference import reference_rows, reproduction_summary, wide_beside_paper

    settled = lambda search: "ep11-20" if search.recipe == "held" else "all"  # noqa: E731

    def record(method, value, table_pool=settled):
        path = _record(tmp_path, method, "c80", 0, value)
        rec = json.loads(path.read_text())
        rec.update(describe_run(method, "c80", table_label, table_pool=table_pool),
                   final_protocol="merge_fixed")
        path.write_text(json.dumps(rec))
        return path

    files = [record("ciess-g-rw-lam0.4", 0.24), record("ciess-g-rw-lam0.4-held", 0.25),
             record("ciess-g-rw-lam0.4-held-ep11-20", 0.30), record("es", 0.26)]
    assert json.loads(files[2].read_text())["variant"]["table_row"] is True
    assert json.loads(files[1].read_text())["variant"]["table_row"] is False
    rows = table1_rows(collect(files), {"ml-1m": 0.4})
    assert set(rows["method"]) == {"ciess-g-rw-lam0.4", "ciess-g-rw-lam0.4-held-ep11-20", "es"}
    snap = reference_rows(files)
    held = snap[snap["method_label"] == "CIESS (held)"]
    assert set(held["value"]) == {0.30} and set(held["episodes"]) == {"11-20"}
    paper = PAPER[PAPER["dataset"] == "ml-1m"]
    summary = reproduction_summary(snap, wide_beside_paper(snap, paper), paper, {"rule_logs": {}})
    assert "the same claim for CIESS (held) (candidates of episodes 11-20): **holds**" in summary
    from ciess.report.paired import runs_frame  # the paired intervals pair Table 1 rows only
    paired_runs = runs_frame(files)
    assert list(paired_runs.loc[paired_runs["method_label"] == "CIESS (held)", "path"]) == [files[2]]
    old = json.loads(files[1].read_text())  # written before records named their table row
    del old["variant"]["table_row"]
    files[1].write_text(json.dumps(old))
    assert "ciess-g-rw-lam0.4-held" in set(table1_rows(collect(files[:2]), {"ml-1m": 0.4})["method"])


def test_a_selection_from_part_of_a_search_is_no_table1_row_for_any_recipe(tmp_path):
    from ciess.report.reference import reference_rows

    whole = [_record(tmp_path, m, "c80", 0, 0.24) for m in
             ("ciess-g-rw-lam0.4", "ciess-g-rw-lam0.4-held")]
    pools = [_record(tmp_path, m, "c80", 0, 0.30) for m in
             ("ciess-g-rw-lam0.4-ep1-6", "ciess-g-rw-lam0.4-held-ep11-20")]
    rows = table1_rows(collect(whole + pools), {"ml-1m": 0.4})
    assert set(rows["method"]) == {"ciess-g-rw-lam0.4", "ciess-g-rw-lam0.4-held"}
    assert set(rows["value"]) == {0.24}  # the pools' 0.30 never enters a cell
    for path in whole + pools:  # snapshot records name their final protocol
        path.write_text(json.dumps({**json.loads(path.read_text()), "final_protocol": "merge_fixed"}))
    snap = reference_rows(whole + pools)
    assert set(snap["method_label"]) == {"CIESS", "CIESS (held)"} and set(snap["value"]) == {0.24}


def test_rows_run_with_other_method_settings_than_the_paper_profile_are_named(tmp_path):
    """Issue 24: a reduced setting is labelled, never passed off as the paper's. A CIESS result
    is compared with the paper profile's search length under its recipe (a selection written
    without settings through its chosen candidate); a baseline with its `params`."""
    from ciess.report.settings_gap import gap_lines, paper_profile, settings_gap

    paper = paper_profile()
    search = {"search": {"episodes": 20, "iterations": 10}, "budget": {"unit": "epochs", "value": 5}}
    held = {"method": "ciess-g-rw-lam0.4-held-ep11-20", "method_label": "CIESS", "budget": "c80",
            "variant": {"recipe": "held"}, "method_settings": search}
    assert settings_gap(held, paper) == ["episodes 20 (paper profile 30)"]
    short = {**held, "variant": {"recipe": "held_short"}, "method_settings": {
        **search, "budget": {"unit": "epochs", "value": 2}}}
    assert settings_gap(short, paper) == ["episodes 20 (paper profile 30)"]  # its own budget
    full_length = {**held, "method_settings": {**search, "search": {"episodes": 30, "iterations": 10}}}
    assert settings_gap(full_length, paper) == []
    assert settings_gap({**held, "variant": {"recipe": "unknown"}}, paper) == []
    pep = {"method": "pep", "method_label": "PEP", "budget": "c90", "variant": None,
           "method_settings": {"params": {**paper["methods"]["pep"]["params"], "max_steps": 1000}}}
    assert settings_gap(pep, paper) == [
        f"max_steps 1000 (paper profile {paper['methods']['pep']['params']['max_steps']})"]
    sel = tmp_path / "runs/ml-1m/lightgcn/ciess-g-rw-lam0.4/c80/seed0/metrics.json"
    cand = tmp_path / "runs/ml-1m/lightgcn/ciess-g-rw-lam0.4-e4i9/cand/seed0/metrics.json"
    records = {sel: {"method_label": "CIESS (paper)", "budget": "c80", "variant": {"recipe": "default"},
                     "candidate_method": "ciess-g-rw-lam0.4-e4i9"},
               cand: {"method_label": "CIESS candidate", "budget": "cand",
                      "variant": {"recipe": "default"}, "method_settings": search},
               tmp_path / "pep.json": pep}
    assert gap_lines(records, paper) == [
        "- CIESS (paper) (c80): episodes 20 (paper profile 30)",
        f"- PEP (c90): max_steps 1000 (paper profile {paper['methods']['pep']['params']['max_steps']})"]


def test_saved_figures_are_palette_pngs_that_look_like_the_plot(tmp_path):
    """save_figure writes a 256-colour PNG (a third of the size) and the PDF beside it; the
    palette keeps every pixel close to matplotlib's own rendering."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from PIL import Image

    from ciess.report.plotting import save_figure

    fig, ax = plt.subplots(figsize=(4, 3))
    for k in range(6):
        ax.plot(np.arange(50), np.sin(np.arange(50) / (k + 2)), label=f"line {k}")
    ax.legend()
    direct = tmp_path / "direct.png"
    fig.savefig(direct, dpi=150, bbox_inches="tight")
    png = tmp_path / "fig.png"
    save_figure(fig, png, profile="reference")
    assert (tmp_path / "fig.pdf").stat().st_size > 0
    with Image.open(png) as saved:
        assert saved.mode == "P"
        ours = np.asarray(saved.convert("RGB"), dtype=float)
    with Image.open(direct) as image:
        reference = np.asarray(image.convert("RGB"), dtype=float)
    assert ours.shape[1] == reference.shape[1]
    rows = min(ours.shape[0], reference.shape[0])  # the banner adds rows at the top
    assert np.abs(ours[-rows:] - reference[-rows:]).mean() < 3  # of 255, per channel
    plt.close(fig)
