"""Table 1's coverage: every method the paper prints is shipped or carries a recorded reason."""
from __future__ import annotations

import pandas as pd
import pytest

from ciess.report.coverage import load_not_run, reason_lines, table1_coverage, unexplained
from ciess.report.reference import reference_rows, snapshot_runs
from conftest import REPO

PAPER = pd.read_csv(REPO / "notebooks/reference/paper_results.csv")
NOT_RUN = REPO / "results/reference/not_run.yaml"


def _rows(method, budgets, sparsity, seeds=(0,), model="lightgcn"):
    """reference_rows-shaped headline rows for one method."""
    return pd.DataFrame([{"dataset": "ml-1m", "model": model, "method_label": method, "budget": b,
                          "seed": s, "headline": True, "metric": m, "value": 0.2,
                          "sparsity": sparsity}
                         for b in budgets for s in seeds
                         for m in ("recall@5", "recall@20", "ndcg@5", "ndcg@20")])


def _write(tmp_path, text):
    path = tmp_path / "not_run.yaml"
    path.write_text(text)
    return path


def test_each_printed_method_is_shipped_partial_explained_or_missing(tmp_path):
    rows = pd.concat([_rows("ES", ["c80", "c90", "c95"], 0.9, seeds=(0, 1)),
                      _rows("MR", ["c80"], 0.8)])
    not_run = load_not_run(_write(tmp_path, """
- dataset: ml-1m
  model: lightgcn
  methods: [PEP, MR]
  status: not run
  reason: "measured: 2 CPU-hours a run"
"""))
    cov = table1_coverage(rows, PAPER, not_run, datasets=["ml-1m"]).set_index(["model", "method"])
    es, mr, pep = (cov.loc[("LightGCN", m)] for m in ("ES", "MR", "PEP"))
    assert (es["status"], es["paper cells"], es["our cells"], es["with Δ%"], es["seeds"]) == (
        "shipped", 12, 12, 12, 2)
    assert es["reason"] == ""
    assert (mr["status"], mr["our cells"], mr["seeds"]) == ("partial", 4, 1)
    assert mr["reason"] == "measured: 2 CPU-hours a run"  # the recorded reason says why
    assert (pep["status"], pep["our cells"], pep["reason"]) == ("not run", 0,
                                                                "measured: 2 CPU-hours a run")
    missing = unexplained(cov.reset_index())
    assert ("LightGCN", "CIESS") in set(zip(missing["model"], missing["method"]))
    assert ("NGCF", "ES") in set(zip(missing["model"], missing["method"]))  # every printed model
    assert "ES" not in set(missing[missing["model"] == "LightGCN"]["method"])


def test_a_native_row_at_another_sparsity_is_shipped_without_a_delta(tmp_path):
    rows = _rows("ESAPN", ["native"], 0.064)
    cov = table1_coverage(rows, PAPER, load_not_run("/nonexistent/not_run.yaml"), datasets=["ml-1m"])
    esapn = cov.set_index(["model", "method"]).loc[("LightGCN", "ESAPN")]
    assert (esapn["status"], esapn["our cells"], esapn["with Δ%"]) == ("shipped", 4, 0)
    assert "6.4%" in esapn["reason"] and "72%" in esapn["reason"]
    # without a recorded reason why the sparsity differs, the row counts as unexplained
    assert ("LightGCN", "ESAPN") in set(zip(unexplained(cov)["model"], unexplained(cov)["method"]))
    why = load_not_run(_write(tmp_path, """
- {dataset: ml-1m, model: lightgcn, methods: [ESAPN], status: sparsity not reached,
   reason: "measured: the policy stays near 0.5"}
"""))
    cov = table1_coverage(rows, PAPER, why, datasets=["ml-1m"])
    esapn = cov.set_index(["model", "method"]).loc[("LightGCN", "ESAPN")]
    assert esapn["status"] == "shipped"
    assert esapn["reason"].endswith("(a different model); why: measured: the policy stays near 0.5")
    assert ("LightGCN", "ESAPN") not in set(zip(unexplained(cov)["model"],
                                                 unexplained(cov)["method"]))
    close = table1_coverage(_rows("ESAPN", ["native"], 0.70), PAPER, load_not_run("/nonexistent"),
                            datasets=["ml-1m"])
    assert close.set_index(["model", "method"]).loc[("LightGCN", "ESAPN"), "with Δ%"] == 4


ENTRY = "dataset: ml-1m, model: ngcf, methods: [ES], status: not run"


@pytest.mark.parametrize("text, match", [
    (f"- {{{ENTRY}}}", r"entry 1: missing keys \['reason'\]"),
    ("- {dataset: ml-1m, model: ngcf, methods: [ES], status: skipped, reason: x}", "status 'skipped'"),
    (f"- {{{ENTRY}, reason: ' '}}", "empty reason"),
    (f"- {{{ENTRY}, reason: x, cost: 1}}", r"unknown keys \['cost'\]"),
    (f"- {{{ENTRY}, reason: x}}\n- {{{ENTRY.replace('ngcf', 'NGCF')}, reason: y}}",
     "more than one entry"),
    ("dataset: ml-1m", "expected a list"),
])
def test_a_malformed_reason_file_names_the_file_and_entry(tmp_path, text, match):
    path = _write(tmp_path, text)
    with pytest.raises(ValueError, match=match) as err:
        load_not_run(path)
    assert str(path) in str(err.value)


def test_the_shipped_snapshots_leave_no_printed_ml1m_method_unexplained():
    """Every method of the paper's ML-1M Table 1 is in a shipped snapshot or in not_run.yaml,
    and no recorded reason contradicts a method the snapshots ship in full."""
    snapshots = [snapshot_runs(s) for s in sorted((REPO / "results/reference").glob("*/"))]
    if not any(snapshots):
        pytest.skip("no shipped snapshot in this checkout")
    rows = pd.concat([reference_rows(runs) for runs in snapshots if runs], ignore_index=True)
    cov = table1_coverage(rows, PAPER, load_not_run(NOT_RUN), datasets=["ml-1m"])
    assert unexplained(cov).empty, unexplained(cov)[["model", "method"]].to_string()
    explained = load_not_run(NOT_RUN)
    shipped = cov[cov["status"] == "shipped"]
    shipped = shipped.assign(model=shipped["model"].str.lower(),
                             full_delta=shipped["with Δ%"] == shipped["our cells"])
    matched = explained.merge(shipped, on=["dataset", "model", "method"])
    # "not run" / "not reached" for a method shipped in full, or "sparsity not reached" for one
    # whose every cell has a Δ%: a reason the snapshots contradict
    contradicted = matched[(matched["status_x"] != "sparsity not reached") | matched["full_delta"]]
    assert contradicted.empty, contradicted[["model", "method"]].to_string()


def test_a_reason_shared_by_several_methods_is_printed_once():
    cov = pd.DataFrame([
        {"dataset": "ml-1m", "model": "NGCF", "method": m, "status": "not run", "reason": "cost"}
        for m in ("ES", "PEP")] + [
        {"dataset": "ml-1m", "model": "NGCF", "method": "MR", "status": "shipped", "reason": ""}])
    assert reason_lines(cov) == ["- ml-1m × NGCF: ES, PEP (not run): cost"]
