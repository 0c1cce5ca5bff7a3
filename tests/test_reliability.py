"""The second reliability probe (docs/reliability.md): each case fails on the code before its
fix and names what it refuses; nothing is lost and nothing foreign is mixed into a table."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from ciess.report import snapshot as snap
from ciess.config_checks import ConfigError
from ciess.data.fetch import fetch_dataset
from ciess.data.preprocess import preprocess
from ciess.io import write_json
from ciess.logs import running_jobs
from ciess.report.records import RecordError, read_record
from ciess.report.reference import reference_rows
from conftest import REPO
from test_data import _adjacency_fixture, _catalog_for
from test_no_silent_wrong_results import _check, _config, _record, _split
from test_snapshot import _results


# 1. data loss: a snapshot destination that is the results folder, the working folder or
#    a folder that is not a snapshot -------------------------------------------------------------
@pytest.mark.parametrize("where", ["results", "parent_of_results", "cwd", "foreign"])
def test_snapshot_refuses_a_destination_it_would_delete(tmp_path, monkeypatch, where):
    results = _results(tmp_path)
    monkeypatch.chdir(tmp_path)
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    out = {"results": results, "parent_of_results": tmp_path, "cwd": Path("."),
           "foreign": foreign}[where]
    before = sorted(p for p in tmp_path.rglob("*"))
    with pytest.raises(snap.SnapshotError, match="destination"):
        snap.make_snapshot(results, out)
    assert sorted(p for p in tmp_path.rglob("*")) == before  # nothing deleted, nothing left


def test_snapshot_may_replace_an_earlier_snapshot(tmp_path):
    results = _results(tmp_path)
    out = tmp_path / "ref/toy"
    snap.make_snapshot(results, out)
    snap.make_snapshot(results, out)  # its own kind: replaced in one rename
    assert (out / "provenance.json").is_file()


# 2. aggregation trusts a record's own fields ---------------------------------------------------
def _place(tmp_path, rel, rec):
    path = tmp_path / "results" / rel / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, rec)
    return path


@pytest.mark.parametrize("rel, field", [
    ("runs/ml-100k/lightgcn/es/c80/seed0", "dataset"),  # an ml-1m record copied over ml-100k's
    ("runs/toy/lightgcn/es/c80/seed1", "seed"),  # a seed folder copied to another seed
    ("runs/toy/lightgcn/es/c90/seed0", "budget"),
    ("runs/toy/lightgcn/mr/c80/seed0", "method"),
])
def test_a_record_in_another_runs_folder_is_refused(tmp_path, rel, field):
    rec = _record(dataset="ml-1m" if field == "dataset" else "toy")
    path = _place(tmp_path, rel, rec)
    with pytest.raises(RecordError, match=rf"metrics\.json: field '{field}' is .* in the folder of"):
        read_record(path)
    assert read_record(_place(tmp_path, "runs/toy/lightgcn/es/c80/seed0", _record()))["seed"] == 0


# 3. reference-snapshot records go through the verified reader ----------------------------------
@pytest.mark.parametrize("value", [1.7, float("nan")])
def test_reference_rows_refuse_impossible_metrics(tmp_path, value):
    rec = _record(final_protocol="merge_fixed", method_label="ES",
                  test_by_protocol={"merge_fixed": {**_record()["test"], "recall@20": value}})
    path = _place(tmp_path, "runs/toy/lightgcn/es/c80/seed0", rec)
    with pytest.raises(RecordError, match=r"test_by_protocol\.merge_fixed.*recall@20"):
        reference_rows([path])


def test_snapshot_refuses_a_tampered_record(tmp_path):
    results = _results(tmp_path)
    path = results / "runs/toy/lightgcn/es/c95/seed0/metrics.json"
    rec = json.loads(path.read_text())
    rec["test_by_protocol"]["merge_fixed"]["recall@20"] = float("nan")
    path.write_text(json.dumps(rec))
    with pytest.raises(snap.SnapshotError, match=r"es/c95/seed0/metrics\.json.*recall@20"):
        snap.make_snapshot(results, tmp_path / "ref/toy")


# 4. a results folder holding a snapshot: the snapshot's runs are not runs of this folder -------
def test_snapshot_does_not_count_runs_of_a_snapshot_inside_results(tmp_path):
    results = _results(tmp_path)
    first = snap.make_snapshot(results, results / "reference/toy")
    second = snap.make_snapshot(results, tmp_path / "ref/again")
    assert len(second["runs"]) == len(first["runs"]) == 2


# 5. names that would escape results/ -----------------------------------------------------------
def test_a_dataset_name_with_a_path_is_refused_at_dag_start():
    with pytest.raises(ConfigError, match=r"'\.\./\.\./escape' is not a safe name"):
        _check(_config(datasets=["../../escape"]))


def test_a_catalog_file_path_outside_its_root_is_refused(monkeypatch):
    from ciess import config_checks

    catalog = {"toy": {"parser": "movielens", "sources": [
        {"form": "x", "root": "mirror", "files": {"../../etc/passwd": {"sha256": "0" * 64}}}]}}
    problems = config_checks.path_problems({"datasets": [], "models": [], "methods": {}}, catalog)
    assert problems and "'../../etc/passwd' must be relative to its root" in problems[0]


# 6. drop_duplicates: false would leak training pairs into validation/test -----------------------
def test_keeping_duplicate_pairs_is_refused():
    with pytest.raises(ConfigError, match=r"data\.drop_duplicates: false .* leak"):
        _check(_config(**{"data.drop_duplicates": False}))
    raw = pd.DataFrame({"user": [1, 1, 2], "item": [5, 5, 6], "rating": [4, 3, 5]})
    with pytest.raises(ValueError, match="1 repeated"):
        preprocess(raw, drop_duplicates=False)


# 7. shell lines quote every path ---------------------------------------------------------------
def test_every_path_in_a_shell_line_is_quoted():
    placeholders = []
    for rules in [REPO / "Snakefile", *sorted((REPO / "workflow/rules").glob("*.smk"))]:
        text = rules.read_text()
        for block in re.findall(r"shell:\s*((?:\s*\"[^\n]*\"\n)+)", text):
            placeholders += re.findall(r"\{((?:input|output|log|params)[^}]*)\}", block)
    assert placeholders, "no shell block found: the check would pass vacuously"
    unquoted = [p for p in placeholders if not p.endswith(":q")]
    assert not unquoted, f"unquoted in a shell line: {unquoted}"


# 8. the fetched source folder has the user's normal permissions --------------------------------
def test_fetched_source_folder_follows_the_umask(tmp_path):
    train, test = _adjacency_fixture(tmp_path / "mirror")
    old = os.umask(0o022)
    try:
        fetch_dataset(_catalog_for(train, test), "yelp2018", tmp_path / "out",
                      mirror=str(tmp_path / "mirror"))
    finally:
        os.umask(old)
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o755


# 11. orphan recovery touches this clone's jobs only --------------------------------------------
def test_running_jobs_are_found_by_their_locks_and_ended(tmp_path):
    log = tmp_path / "results/logs/retrain_masked/x.log"
    log.parent.mkdir(parents=True)
    log.write_text("2026-01-01 00:00:00,000 INFO ciess.train: step 100/400 [ETA 3m00s at most]\n"
                   "2026-01-01 00:00:01,000 INFO ciess.train: epoch 3 (step 153/400)\n")
    code = ("import sys, time; sys.path.insert(0, %r); from ciess.logs import hold_job_lock; "
            "hold_job_lock(%r); print('held', flush=True); time.sleep(60)") % (str(REPO), str(log))
    job = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert job.stdout.readline().strip() == "held"
        other = tmp_path / "other-clone/results/logs"
        other.mkdir(parents=True)
        assert running_jobs(other) == []  # another clone's folder: not ours
        assert [pid for _, pid in running_jobs(tmp_path / "results/logs")] == [job.pid]
        out = subprocess.run([sys.executable, "-m", "ciess.logs", "--kill",
                              str(tmp_path / "results/logs")], capture_output=True, text=True,
                             cwd=REPO, check=True).stdout
        assert f"pid {job.pid}: " in out and "x.log" in out
        assert "step 100/400 [ETA 3m00s at most]" in out  # where the job stands
        assert job.wait(timeout=20) != 0  # ended by the signal
        deadline = time.time() + 5
        while running_jobs(tmp_path / "results/logs") and time.time() < deadline:
            time.sleep(0.1)
        assert running_jobs(tmp_path / "results/logs") == []
    finally:
        job.kill()


def test_aggregation_refuses_records_of_one_dataset_from_two_splits(tmp_path):
    from ciess.report.reports import collect

    a = _place(tmp_path, "runs/toy/lightgcn/es/c80/seed0", {**_record(), "method_label": "ES"})
    b = _place(tmp_path, "runs/toy/lightgcn/es/c80/seed1",
               {**_record(seed=1, data_manifest_sha256="1" * 64), "method_label": "ES"})
    with pytest.raises(RecordError, match=r"seed1/metrics\.json: data_manifest_sha256 111111111111… "
                                          r"differs .* another split"):
        collect([a, b])
    write_json(b, {**_record(seed=1), "method_label": "ES"})
    assert set(collect([a, b])["seed"]) == {0, 1}


@pytest.mark.parametrize("change", [
    {"train_settings": {"batch_size": 10000, "max_batches": 12000}},  # another train: block
    {"final_protocol": "merge_code"},
    {"method_settings": {"params": {"alphas": [0.3]}}},  # the method's own settings
])
def test_aggregation_refuses_a_cell_whose_seeds_were_made_with_different_settings(tmp_path, change):
    from ciess.report.reports import collect

    same = {"train_settings": {"batch_size": 10000, "max_batches": 4000, "device": "cpu"},
            "final_protocol": "merge_fixed", "method_label": "ES", "method_settings": {"params": {}}}
    a = _place(tmp_path, "runs/toy/lightgcn/es/c80/seed0", {**_record(), **same})
    b = _place(tmp_path, "runs/toy/lightgcn/es/c80/seed1", {**_record(seed=1), **same, **change})
    with pytest.raises(RecordError, match=r"toy/lightgcn/es/c80: settings \w+: .*seed0/metrics\.json; "
                                          r"settings \w+: .*seed1/metrics\.json"):
        collect([a, b])
    # the explicit option averages them, and the rows say which settings each run had
    rows = collect([a, b], allow_mixed_settings=True)
    assert rows.groupby("seed")["settings_hash"].first().nunique() == 2
    # where a run was made does not count: the same settings on another device are one cell
    write_json(b, {**_record(seed=1), **same,
                   "train_settings": {**same["train_settings"], "device": "cuda"}})
    assert collect([a, b])["settings_hash"].nunique() == 1


def test_a_record_whose_settings_were_edited_after_the_run_is_refused(tmp_path):
    from ciess.provenance import settings_hash
    from ciess.report.reports import collect

    rec = {**_record(), "method_label": "ES", "train_settings": {"max_batches": 4000}}
    rec["settings_hash"] = settings_hash(rec)
    path = _place(tmp_path, "runs/toy/lightgcn/es/c80/seed0", rec)
    assert len(collect([path])) > 0
    write_json(path, {**rec, "train_settings": {"max_batches": 12000}})
    with pytest.raises(RecordError, match=r"settings_hash \w+ does not match .* was edited"):
        collect([path])


# 9. messages that name the file ----------------------------------------------------------------
@pytest.mark.parametrize("error", [
    RuntimeError("[enforce fail at inline_container.cc:595] . unexpected pos 64 vs 0"),
    OSError(28, "No space left on device"),
])
def test_a_full_disk_during_a_save_names_the_file_and_the_free_space(tmp_path, error):
    from ciess.io import atomic_path

    target = tmp_path / "runs/model.pt"
    with pytest.raises(OSError, match=r"model\.pt: writing failed .* MB free on its disk \(full\?\)"):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"partial")
            raise error
    assert not target.exists() and list(target.parent.iterdir()) == []
    with pytest.raises(KeyError):  # anything else passes through unchanged
        with atomic_path(target):
            raise KeyError("x")


def test_running_the_snakefile_from_another_folder_says_what_to_do(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-n",
                           "--cores", "1"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode != 0
    assert "run Snakemake in the repository root" in proc.stdout + proc.stderr
    assert "--directory" in proc.stdout + proc.stderr


# 10. the manifest's fields outside its checksummed files block -------------------------------
@pytest.mark.parametrize("edit, message", [
    ({"users": 25}, r"field 'users' is 25 but the split files use 20 users"),
    ({"items": 14}, r"ids out of range|field 'items' is 14"),
    ({"files_rows": 1}, r"manifest_sha256 .* is not the checksum of its 'files' block"),
])
def test_an_edited_manifest_is_refused(tmp_path, edit, message):
    from ciess.data.read_split import SplitMismatch, load_split

    manifest = _split(tmp_path)
    assert load_split(manifest).n_users == 20
    data = json.loads(manifest.read_text())
    if "files_rows" in edit:
        data["files"]["toy.train.inter"]["rows"] += edit["files_rows"]
    else:
        data.update(edit)
    manifest.write_text(json.dumps(data))
    with pytest.raises((SplitMismatch, ValueError), match=message):
        load_split(manifest)
