"""Reference snapshots: verified before written, small, complete provenance; the wide table
beside the paper."""
from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
import pytest

from baselines import table_label
from ciess.report import snapshot as snap
from ciess.io import sha256_file
from ciess.labels import describe_run
from ciess.masks import count_params, save_mask, sizes_mask
from ciess.report.reference import reference_rows, summary_lines, wide_beside_paper
from conftest import REPO

N_USERS, N_ITEMS = 30, 20
MANIFEST_SHA = "ab" * 32


CAPACITY = (N_USERS + N_ITEMS) * 128


def _metrics(test, **extra):
    """A record as the workflow writes it (every metric, validation too, a consistent account)."""
    if "method" in extra:  # what the workflow writes beside the method's name
        extra = {**describe_run(extra["method"], extra.get("budget", "dense"), table_label),
                 **extra}
    test = {"recall@10": test["recall@5"], "ndcg@10": test["ndcg@5"], **test}
    test["avg"] = float(np.mean([test[k] for k in ("recall@5", "recall@10", "recall@20",
                                                   "ndcg@5", "ndcg@10", "ndcg@20")]))
    params = extra.pop("params", CAPACITY)
    return {"dataset": "toy", "model": "lightgcn", "seed": 0, "status": "ok", "n_tables": 1,
            "final_protocol": "merge_fixed", "data_manifest_sha256": MANIFEST_SHA,
            "profile": "reference", "git_revision": "f" * 40, "device": "cpu",
            "params": params, "capacity": CAPACITY, "sparsity": 1 - params / CAPACITY,
            "wall_time_s": 12.0, "train_time_s": 10.0, "eval_time_s": 1.0,
            "steps_trained": 300, "best_step": 200, "packages": {"torch": "x"},
            "valid": test, "test": test,
            "test_by_protocol": {"train_val_es": {k: v * 0.9 for k, v in test.items()},
                                 "merge_fixed": test}, **extra}


def _results(tmp_path, es_size=6):
    results = tmp_path / "results"
    split = results / "data/toy/split"
    split.mkdir(parents=True)
    (split / "manifest.json").write_text(json.dumps({
        "dataset": "toy", "users": N_USERS, "items": N_ITEMS, "manifest_sha256": MANIFEST_SHA,
        "files": {}}))
    test = {"recall@5": 0.08, "recall@20": 0.22, "ndcg@5": 0.45, "ndcg@20": 0.40}
    full = results / "runs/toy/lightgcn/full/dense/seed0"
    full.mkdir(parents=True)
    (full / "metrics.json").write_text(json.dumps(_metrics(test, method="full", budget="dense")))
    (full / "model.pt").write_bytes(b"weights")
    mask = sizes_mask(np.full(N_USERS, es_size), np.full(N_ITEMS, es_size))
    mask_path = results / "masks/toy/lightgcn/es/c95/seed0/mask.npz"
    mask_path.parent.mkdir(parents=True)
    save_mask(mask_path, mask)
    es = results / "runs/toy/lightgcn/es/c95/seed0"
    es.mkdir(parents=True)
    (es / "metrics.json").write_text(json.dumps(_metrics(
        test, method="es", budget="c95", mask_file=str(mask_path.relative_to(tmp_path)),
        mask_sha256=sha256_file(mask_path), params=count_params(mask))))
    log = results / "logs/retrain_masked/toy.log"
    log.parent.mkdir(parents=True)
    log.write_text("2026-01-01 10:00:00,000 INFO start\nnoise\n2026-01-01 10:02:30,000 INFO end\n"
                   f"read {results}/data/toy/split/manifest.json with /opt/elsewhere/tool.py\n"
                   f"warning from {sys.prefix}/lib/x.py\n")
    return results


def test_snapshot_keeps_evidence_drops_weights_and_records_provenance(tmp_path):
    results = _results(tmp_path)
    profile = tmp_path / "reference.yaml"
    profile.write_text("profile: reference\n")
    out = tmp_path / "ref/toy-lightgcn"
    prov = snap.make_snapshot(results, out, profile)
    files = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    assert "runs/toy/lightgcn/es/c95/seed0/metrics.json" in files
    assert "masks/toy/lightgcn/es/c95/seed0/mask.npz" in files
    assert "logs/retrain_masked/toy.log" in files
    assert not any(f.endswith(".pt") for f in files)
    assert prov["profile"] == ["reference"] and prov["profile_text"] == "profile: reference\n"
    assert prov["data"]["toy"]["manifest_sha256"] == MANIFEST_SHA
    assert prov["rule_logs"]["logs/retrain_masked/toy.log"]["seconds"] == 150
    assert prov["machine"]["cores"] >= 1
    assert "toy-lightgcn" in (out / "PROVENANCE.md").read_text()


def test_a_budget_a_search_never_reached_is_kept_without_data_checks(tmp_path):
    """A `not_reached` record carries no numbers and no data checksum: it is copied, not refused."""
    results = _results(tmp_path)
    path = results / "runs/toy/lightgcn/ciess-g-rw-lam0.4-held/c95/seed0/metrics.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"budget": "c95", "dataset": "toy", "model": "lightgcn", "seed": 0,
                                "method": "ciess-g-rw-lam0.4-held", "status": "not_reached",
                                "message": "budget c95 not reached by this search; no result",
                                "method_label": "CIESS (held)"}))
    prov = snap.make_snapshot(results, tmp_path / "ref/toy")
    assert (tmp_path / "ref/toy/runs/toy/lightgcn/ciess-g-rw-lam0.4-held/c95/seed0/metrics.json"
            ).exists()
    assert any(r["method"] == "ciess-g-rw-lam0.4-held" for r in prov["runs"])


def test_snapshot_of_runs_made_elsewhere_names_that_machine(tmp_path):
    """Results copied back from a GPU lease: the runs' machine is not the snapshot's."""
    results = _results(tmp_path)
    prov = snap.make_snapshot(results, tmp_path / "ref/toy", run_machine="NVIDIA H200 lease")
    md = (tmp_path / "ref/toy/PROVENANCE.md").read_text()
    assert prov["run_machine"] == "NVIDIA H200 lease"
    assert "- runs made on: NVIDIA H200 lease; hosts" in md and "- snapshot made on:" in md
    assert prov["run_devices"] == sorted({r["device"] for r in _records(results)})


def _records(results):
    return [json.loads(p.read_text()) for p in results.rglob("metrics.json")]


def test_the_repository_path_it_redacts_is_this_repository():
    assert snap.REPO == REPO  # (a module moved one folder down once pointed at ciess/)


def test_snapshot_replaces_machine_specific_paths(tmp_path):
    results = _results(tmp_path)
    out = tmp_path / "ref/toy"
    snap.make_snapshot(results, out, redact={"/opt/elsewhere": "<tools>"})
    log = (out / "logs/retrain_masked/toy.log").read_text()
    assert "read <run>/results/data/toy/split/manifest.json with <tools>/tool.py" in log
    assert str(tmp_path) not in log
    assert "warning from <python env>/lib/x.py" in log and sys.prefix not in log


@pytest.mark.parametrize("fault,match", [
    ("mask_changed", "changed since the run"),
    ("data_changed", "data_manifest_sha256"),
    ("over_budget", r"c95 .*sparsity is 0\.0000"),
    ("too_big", "MB >"),
])
def test_snapshot_refuses_unverified_runs_and_leaves_nothing(tmp_path, monkeypatch, fault, match):
    results = _results(tmp_path)
    es_metrics = results / "runs/toy/lightgcn/es/c95/seed0/metrics.json"
    rec = json.loads(es_metrics.read_text())
    mask_path = tmp_path / rec["mask_file"]
    if fault == "mask_changed":
        save_mask(mask_path, sizes_mask(np.full(N_USERS, 5), np.full(N_ITEMS, 5)))
    elif fault == "data_changed":
        rec["data_manifest_sha256"] = "cd" * 32
    elif fault == "over_budget":  # a 0%-sparsity mask at a c95 path, recorded consistently
        full = sizes_mask(np.full(N_USERS, 128), np.full(N_ITEMS, 128))
        save_mask(mask_path, full)
        rec.update(mask_sha256=sha256_file(mask_path), params=count_params(full),
                   sparsity=0.0)
    else:
        monkeypatch.setattr(snap, "MAX_BYTES", 100)
    es_metrics.write_text(json.dumps(rec))
    (tmp_path / "ref").mkdir()
    out = tmp_path / "ref/toy"
    with pytest.raises(snap.SnapshotError, match=match):
        snap.make_snapshot(results, out)
    assert list((tmp_path / "ref").iterdir()) == []  # neither the snapshot nor a temporary


def test_cli_names_the_refused_file(tmp_path, capsys):
    results = _results(tmp_path)
    (results / "runs/toy/lightgcn/full/dense/seed0/metrics.json").write_text(
        json.dumps(_metrics({"recall@5": 0, "recall@20": 0, "ndcg@5": 0, "ndcg@20": 0},
                            method="full", budget="dense", data_manifest_sha256="0" * 64)))
    assert snap.main([str(results), str(tmp_path / "out")]) == 1
    assert "full/dense/seed0/metrics.json" in capsys.readouterr().err


def test_wide_table_puts_ours_beside_the_paper_with_signed_relative_difference(tmp_path):
    results = _results(tmp_path)
    rows = reference_rows(sorted(results.rglob("runs/**/metrics.json")))
    paper = pd.DataFrame([
        {"table": "table1", "dataset": "toy", "model": "LightGCN", "method": "ES",
         "target_sparsity": 0.95, "metric": "recall@20", "value": 0.20},
        {"table": "table1", "dataset": "toy", "model": "LightGCN", "method": "ES",
         "target_sparsity": 0.95, "metric": "ndcg@20", "value": 0.50}])
    wide = wide_beside_paper(rows, paper)
    es = wide[(wide["method_label"] == "ES") & (wide["protocol"] == "merge_fixed")].iloc[0]
    assert es["R@20 ours"] == pytest.approx(0.22) and es["R@20 paper"] == 0.20
    assert es["R@20 Δ%"] == pytest.approx(10.0)  # ours higher -> positive
    assert es["N@20 Δ%"] == pytest.approx(-20.0)
    assert pd.isna(es["R@5 paper"]) and pd.isna(es["R@5 Δ%"])
    assert list(wide["protocol"].iloc[:2]) == ["merge_fixed", "merge_fixed"]  # headline first
    assert list(wide["method_label"].iloc[:2]) == ["Full", "ES"]  # the paper's method order
    lines = summary_lines(wide)
    assert any(line.startswith("merge_fixed: 0 of 2 cells within ±5%") for line in lines)


def test_shipped_snapshot_holds_the_ciess_search_and_its_selected_masks(tmp_path):
    """The reference snapshot carries the ML-1M LightGCN search (log, executed masks, candidates),
    the selected-mask metrics at 80/90/95%, and the search figures render from it."""
    from helpers import has_image, run_notebook

    root = REPO / "results/reference/ml-1m-lightgcn"
    search = root / "search/ml-1m/lightgcn/ciess-g-rw-lam0.4/seed0"
    assert (search / "search_log.csv").exists() and (search / "masks.npz").exists()
    for budget in ("c80", "c90", "c95"):
        rec = json.loads((root / f"runs/ml-1m/lightgcn/ciess-g-rw-lam0.4/{budget}/seed0/metrics.json").read_text())
        assert rec["status"] == "ok" and rec["sparsity"] >= int(budget[1:]) / 100
        assert (search / f"candidates/all/{budget}.csv").exists()
    selections = [str(root / f"runs/ml-1m/lightgcn/ciess-g-rw-lam0.4/{b}/seed0/selection.csv")
                  for b in ("c80", "c90", "c95")]
    outputs = run_notebook("ciess_search", tmp_path, profile="reference", budgets=[80, 90, 95],
                           searches=[{"dataset": "ml-1m", "model": "lightgcn", "search": "g-rw-lam0.4",
                                      "seed": 0, "log": str(search / "search_log.csv"),
                                      "masks": str(search / "masks.npz"),
                                      "manifest": str(root / "data/ml-1m/split/manifest.json"),
                                      "selections": selections}])
    assert has_image(outputs)
    assert (root / "figures/ciess_search.png").exists() and (root / "figures/size_response.png").exists()


def test_reproduction_summary_states_each_claim_with_its_evidence():
    from ciess.report.reference import reproduction_summary

    rows = []
    values = {"CIESS": 0.20, "ES": 0.21, "MR": 0.18, "MDE": 0.22, "Sides": 0.205,
              "CIESS (held)": 0.22}
    for method, value in values.items():
        for seed in (0, 1):
            for metric in ("recall@5", "recall@20", "ndcg@5", "ndcg@20"):
                rows.append({"dataset": "ml-1m", "model": "lightgcn", "method_label": method,
                             "budget": "c90", "seed": seed, "protocol": "merge_fixed",
                             "headline": True, "metric": metric, "value": value + 0.001 * seed,
                             "sparsity": 0.9, "best_step": 100, "profile": "reference"})
    rows = pd.DataFrame(rows)
    paper = pd.DataFrame([{"table": "table1", "dataset": "ml-1m", "model": "LightGCN",
                           "method": m, "target_sparsity": 0.9, "achieved_sparsity": None,
                           "noise": None, "random_walk": None, "metric": "recall@20",
                           "value": v, "note": None}
                          for m, v in (("ES", 0.21), ("CIESS", 0.25), ("PEP", 0.2))])
    prov = {"rule_logs": {"a.log": {"seconds": 1800}, "b.log": {"seconds": 1800}},
            "machine": {"cpu": "CPU X", "cores": 2}}
    text = reproduction_summary(rows, wide_beside_paper(rows, paper), paper, prov)
    assert "**ml-1m × LightGCN** (final protocol `merge_fixed`)" in text
    assert "- ES vs the paper: 1 of 1 cells within ±5%, median Δ +0.2%" in text
    assert "Claim CIESS > ES: **does not hold** (CIESS − ES" in text and "90%: R@20 -4.8%, N@20 -4.8%" in text
    assert "Claim ES > MR: **holds**" in text and "MDE > ES **holds**" in text
    assert "Sides > ES **does not hold** (Sides − ES" in text
    assert "  - the same claim for CIESS (held): **holds** (CIESS (held) − ES" in text
    assert "Not run in this snapshot (the paper prints them): PEP" in text
    assert "1.0 h of rule time" in text and "CPU X, 2 cores" in text


def test_a_rendering_from_the_snapshots_own_runs_is_recognised(tmp_path):
    from ciess.report.reference import rendering_run_is_snapshot

    results = _results(tmp_path)
    out = tmp_path / "ref/toy"
    prov = snap.make_snapshot(results, out)
    runs = pd.DataFrame(prov["runs"])
    runs.to_csv(tmp_path / "same.csv", index=False)
    assert rendering_run_is_snapshot(out, tmp_path / "same.csv")
    runs.assign(wall_time_s=runs["wall_time_s"] + 1).to_csv(tmp_path / "other.csv", index=False)
    assert not rendering_run_is_snapshot(out, tmp_path / "other.csv")
    assert not rendering_run_is_snapshot(tmp_path / "nowhere", tmp_path / "same.csv")


def _html_tables(html: str) -> list[tuple[list[str], list[list[str]]]]:
    """(header, rows) of every <table> in a page, cell texts stripped (stdlib parser)."""
    from html.parser import HTMLParser

    class Tables(HTMLParser):
        def __init__(self):
            super().__init__()
            self.tables, self.cell = [], None

        def handle_starttag(self, tag, attrs):
            if tag == "table":
                self.tables.append(([], []))
            elif tag == "tr" and self.tables:
                self.row = []
            elif tag in ("th", "td") and self.tables:
                self.cell, self.kind = "", tag

        def handle_data(self, data):
            if self.cell is not None:
                self.cell += data

        def handle_endtag(self, tag):
            if tag in ("th", "td") and self.cell is not None:
                self.row.append((self.kind, self.cell.strip()))
                self.cell = None
            elif tag == "tr" and self.tables:
                header, rows = self.tables[-1]
                if all(k == "th" for k, _ in self.row) and not header:
                    header.extend(t for _, t in self.row)
                else:
                    rows.append([t for _, t in self.row])

    parser = Tables()
    parser.feed(html)
    return parser.tables


def test_shipped_pages_carry_no_raw_python_values():
    """What a reader sees in the shipped HTML: no numpy reprs, no None cells, and every Δ% cell
    a signed number with at most two decimals (or a dash)."""
    import re

    pages = sorted((REPO / "results/reference").glob("*/notebooks/*.html"))
    if not pages:
        pytest.skip("no shipped snapshot pages in this checkout")
    delta_cells = 0
    for page in pages:
        html = re.sub(r"<style.*?</style>|<script.*?</script>", "", page.read_text(), flags=re.S)
        assert "np.int64(" not in html and "np.float64(" not in html, page.name
        for header, rows in _html_tables(html):
            assert not any(cell == "None" for row in rows for cell in row), f"{page.name}: None"
            for j in [j for j, h in enumerate(header) if "Δ%" in h]:
                for row in rows:
                    cell = row[j] if j < len(row) else ""
                    delta_cells += 1
                    assert re.fullmatch(r"[+−-]?\d+(\.\d{1,2})?|—|", cell), (page.name, header[j], cell)
    assert delta_cells > 0  # the check saw the Δ% columns it is about


def test_snapshot_redacts_the_mirror_a_run_fetched_from_without_the_environment(tmp_path, monkeypatch):
    """The mirror is read from the run's own fetch records, so a snapshot made in a shell without
    CIESS_DATA_MIRROR still ships no machine path (a 2026-12-06 snapshot did)."""
    monkeypatch.delenv("CIESS_DATA_MIRROR", raising=False)
    results = _results(tmp_path)
    mirror = tmp_path / "elsewhere/mirror"
    source = results / "data/toy/source"
    source.mkdir(parents=True, exist_ok=True)
    (source / "provenance.json").write_text(json.dumps({"files": [
        {"path": "toy/ratings.tsv", "origin": f"{mirror}/toy/ratings.tsv"},
        {"path": "toy/other.tsv", "origin": "https://example.org/toy/other.tsv"}]}))
    assert snap.fetched_from(results) == {str(mirror)}
    out = tmp_path / "ref/toy"
    snap.make_snapshot(results, out)
    copied = (out / "data/toy/source/provenance.json").read_text()
    assert "<mirror>/toy/ratings.tsv" in copied and str(mirror) not in copied


def test_a_native_row_far_from_the_papers_sparsity_gets_no_delta():
    """ESAPN natively at 6% sparsity is not the paper's 72% cell: no Δ% in the snapshot's table
    nor in this run's (both sparsities stay); at 70% it is the same cell."""
    from ciess.report.reports import beside_paper

    paper = pd.DataFrame([{"table": "table1", "dataset": "ml-1m", "model": "LightGCN",
                           "method": "ESAPN", "target_sparsity": None, "achieved_sparsity": 0.72,
                           "noise": None, "random_walk": None, "metric": "recall@20",
                           "value": 0.24, "note": None}])
    for sparsity, has_delta in ((0.064, False), (0.70, True)):
        rows = pd.DataFrame([{"dataset": "ml-1m", "model": "lightgcn", "method_label": "ESAPN",
                              "budget": "native", "seed": 0, "protocol": "merge_fixed",
                              "headline": True, "metric": "recall@20", "value": 0.23,
                              "sparsity": sparsity, "best_step": 100, "profile": "reference"}])
        wide = wide_beside_paper(rows, paper)
        assert pd.notna(wide.loc[0, "R@20 Δ%"]) == has_delta
        assert wide.loc[0, "R@20 paper"] == 0.24
        summary = pd.DataFrame([{"dataset": "ml-1m", "model": "lightgcn", "method_label": "ESAPN",
                                 "budget": "native", "metric": "recall@20", "noise": None,
                                 "random_walk": None, "mean": 0.23, "std": float("nan"),
                                 "sparsity": sparsity}])
        merged = beside_paper(summary, paper, "table1")
        assert pd.notna(merged.loc[0, "rel_diff"]) == has_delta
        assert merged.loc[0, "paper_sparsity"] == 0.72


def test_snapshot_lists_the_cpus_its_runs_recorded(tmp_path):
    """Runs record their CPU model (ciess.provenance.run_provenance); the provenance page lists
    the CPUs of a snapshot whose runs were made on more than one machine."""
    from ciess.provenance import cpu_model, run_provenance

    assert run_provenance()["cpu"] == cpu_model()
    results = _results(tmp_path)
    for path, cpu in zip(sorted(results.rglob("metrics.json")), ("CPU A", "CPU B")):
        path.write_text(json.dumps({**json.loads(path.read_text()), "cpu": cpu}))
    prov = snap.make_snapshot(results, tmp_path / "ref/toy")
    assert prov["run_cpus"] == ["CPU A", "CPU B"]
    assert "CPUs the runs recorded: CPU A, CPU B" in (tmp_path / "ref/toy/PROVENANCE.md").read_text()
