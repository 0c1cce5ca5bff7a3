"""Bad input never becomes a number: each case fails with an error naming the file, key or line
(issue "No silent wrong result"; one test per kind of bad input)."""
from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import yaml

from baselines import method_params
from ciess.config_checks import ConfigError, check_config, rename_deprecated
from ciess.data.fetch import load_catalog
from ciess.data.preprocess import check_published, parse_movielens, read_int_table
from ciess.io import atomic_path, load_npz, write_json
from ciess.logs import JobAlreadyRunning, hold_job_lock
from ciess.masks import (MaskFileError, check_budget, load_mask, save_mask, sizes_mask)
from ciess.models.registry import MODELS
from ciess.report.records import RecordError, read_record
from ciess.data.read_split import SplitMismatch, load_split
from conftest import REPO, run_in_clone
from helpers import written_split
from ciess.profiles import load_profile


def _split(tmp_path, n_users=20, n_items=15):
    return written_split(tmp_path, n_users, n_items)


# 1. an edited split ---------------------------------------------------------------------------
def test_edited_split_file_is_refused_naming_the_file(tmp_path):
    manifest = _split(tmp_path)
    assert load_split(manifest).n_users == 20
    train = manifest.parent / "toy.train.inter"
    lines = train.read_text().splitlines(keepends=True)
    train.write_text("".join(lines[::2]))  # keep every other line
    with pytest.raises(SplitMismatch, match=r"toy\.train\.inter: sha256 .* differs from the manifest"):
        load_split(manifest)


def test_training_rules_declare_the_split_files_as_inputs(tmp_path):
    """An edited split file reruns its consumers: the dry run of a training target lists the
    three split files among the job's inputs."""
    work = tmp_path / "w"
    work.mkdir()
    (work / "config").symlink_to(REPO / "config")
    out = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"),
                          "--directory", str(work), "-n", "-p",
                          "results/runs/ml-100k/lightgcn/es/c80/seed0/metrics.json",
                          "results/runs/ml-100k/lightgcn/full/dense/seed0/metrics.json"],
                         capture_output=True, text=True, cwd=work)
    assert out.returncode == 0, out.stderr[-3000:]
    jobs = out.stdout.split("rule ")
    for rule in ("retrain_masked", "pretrain_full", "make_masks_es"):
        block = next(j for j in jobs if j.startswith(rule + ":"))
        inputs = block.split("input:")[1].split("\n")[0]
        for part in ("train", "valid", "test"):
            assert f"results/data/ml-100k/split/ml-100k.{part}.inter" in inputs, (rule, inputs)


# 2. an over-budget mask or record -------------------------------------------------------------
def test_mask_that_misses_its_budget_label_is_refused(tmp_path):
    mask = sizes_mask(np.full(10, 128), np.full(8, 128))  # 0% sparsity
    path = tmp_path / "c80" / "mask.npz"
    save_mask(path, mask, 10, 8)
    with pytest.raises(MaskFileError, match=r"mask\.npz: sparsity 0\.0000 .* does not meet the budget of 80% sparsity"):
        check_budget(load_mask(path, 10, 8), 80, 1, False, str(path))
    small = sizes_mask(np.full(10, 25), np.full(8, 25))  # 80.5%
    assert check_budget(small, 80, 1, False, "x")["sparsity"] == pytest.approx(1 - 25 / 128)


def test_retraining_refuses_a_mask_over_its_budget(tmp_path):
    from ciess.runs import train_and_record
    manifest = _split(tmp_path)
    mask_path = tmp_path / "mask.npz"
    save_mask(mask_path, sizes_mask(np.full(20, 64), np.full(15, 64)), 20, 15)  # 50%
    with pytest.raises(MaskFileError, match=r"mask\.npz: sparsity 0\.5000 .* budget of 90%"):
        train_and_record(str(manifest), "lightgcn", 0, {}, "train_val_es", {},
                         str(tmp_path / "metrics.json"), mask_path=str(mask_path),
                         target_pct=90, labels={"method": "es", "budget": "c90"})
    assert not (tmp_path / "metrics.json").exists()


def _record(**changes):
    metrics = {m: 0.2 for m in ("recall@5", "recall@10", "recall@20", "ndcg@5", "ndcg@10",
                                "ndcg@20", "avg")}
    rec = {"dataset": "toy", "model": "lightgcn", "method": "es", "seed": 0, "budget": "c80",
           "status": "ok", "valid": dict(metrics), "test": dict(metrics), "params": 100,
           "capacity": 1000, "sparsity": 0.9, "data_manifest_sha256": "0" * 64}
    rec.update(changes)
    return rec


@pytest.mark.parametrize("changes, message", [
    ({"test": {**_record()["test"], "recall@20": 99}}, r"field 'test': field 'recall@20' = 99 outside"),
    ({"sparsity": -5}, r"field 'sparsity' = -5 outside"),
    ({"params": 900, "sparsity": 0.1}, r"labelled budget c80 .* sparsity is 0\.1000"),
    ({"sparsity": 0.5}, r"field 'sparsity' = 0\.5 disagrees with params/capacity"),
    ({"budget": "c180"}, r"field 'budget'"),
    ({"test": {"recall@20": 0.1}}, r"field 'recall@5'"),
])
def test_inconsistent_metrics_record_is_refused_naming_file_and_field(tmp_path, changes, message):
    path = tmp_path / "metrics.json"
    write_json(path, _record(**changes))
    with pytest.raises(RecordError, match=str(path).replace(".", r"\.") + ".*" + message):
        read_record(path)
    write_json(path, _record())
    assert read_record(path)["sparsity"] == 0.9


def test_truncated_metrics_json_names_the_file(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(_record())[:50])
    with pytest.raises(ValueError, match=r"metrics\.json: not valid JSON"):
        read_record(path)


# 3. out-of-range sizes ------------------------------------------------------------------------
@pytest.mark.parametrize("sizes, message", [
    ([300, 4], r"user sizes must lie in \[0, 128\]; user 0 has 300"),
    ([4, 260], r"user 1 has 260"),
    ([np.nan, 4], r"user sizes must be integers; user 0 has nan"),
    ([2.5, 4], r"user 0 has 2\.5"),
    ([0, 0], r"every user size is 0"),
    ([-1, 4], r"user 0 has -1"),
])
def test_sizes_are_checked_before_the_uint8_cast(sizes, message):
    with pytest.raises(MaskFileError, match=message):
        sizes_mask(np.array(sizes), np.array([3, 3]))


def test_save_mask_checks_the_entity_counts(tmp_path):
    with pytest.raises(MaskFileError, match=r"mask\.npz: field 'user_sizes': has 9 rows but the split has 10 users"):
        save_mask(tmp_path / "mask.npz", sizes_mask(np.full(9, 4), np.full(8, 4)), 10, 8)
    assert not (tmp_path / "mask.npz").exists()


# 4. impossible or misspelt settings -----------------------------------------------------------
def _config(**over):
    cfg = load_profile()
    for key, value in over.items():
        node = cfg
        *path, last = key.split(".")
        for k in path:
            node = node.setdefault(k, {})
        node[last] = value
    return cfg


def _schema():
    with open(REPO / "workflow/schemas/config.schema.yaml") as fh:
        return yaml.safe_load(fh)


@pytest.mark.parametrize("key, value, message", [
    ("model_overrides", {"lightgcn": {"n_layers": -3}}, r"model_overrides\.lightgcn\.n_layers: must be an integer >= 1, got -3"),
    ("model_overrides", {"lightgcn": {"embeding_size": 7}}, r"model_overrides\.lightgcn\.embeding_size: unknown setting"),
    ("model_overrides", {"lightgcn": {"embedding_size": 64}}, r"embedding_size: the tables' physical width is fixed"),
    ("model_overrides", {"neumf": {"mask_gmf": "no"}}, r"neumf\.mask_gmf: must be true or false"),
    ("methods.pep.params", {"s_lrr": 0.1}, r"methods\.pep\.params: unknown key\(s\) \['s_lrr'\]"),
    ("train.eval_every", 5.0, r"config train\.eval_every: must be an integer, got 5\.0"),
    ("data.split.ratios", [0.6, 0.3, 0.3], r"data\.split\.ratios: three positive numbers summing to 1"),
    ("ciess.selection.budgets", [], r"ciess\.selection\.budgets: empty"),
    ("methods.bogus", {"budgets": [80], "params": {}}, r"no embedding-size method 'bogus' is registered"),
    ("models", ["lightgcn", "mf"], r"config models: no base model 'mf' is registered .*`plugins`"),
    ("ciess.studies.main_models", ["lgcn"], r"config ciess\.studies\.main_models: no base model 'lgcn'"),
    ("datasets", ["ml-100k", "ml-10m"], r"config datasets: 'ml-10m' is not in the dataset catalog"),
    ("ciess.lambda", {"ml-1m": 0.4}, r"config ciess\.lambda: no value for dataset 'ml-100k'"),
])
def test_config_problems_are_named_at_dag_start(key, value, message):
    with pytest.raises(ConfigError, match=message):
        _check(_config(**{key: value}))
    _check(_config())  # the profile itself passes


def _check(cfg):
    check_config(cfg, _schema(), load_catalog(REPO / cfg["dataset_catalog"]), MODELS,
                 method_params)


def test_old_config_names_are_accepted_with_a_deprecation_message():
    cfg = _config(**{"ciess.selection.l": 5, "ciess.reward.memory": "code",
                     "ciess.init_quality": "one", "data.ml1m_drop_first_line": True})
    messages = rename_deprecated(cfg)
    assert cfg["ciess"]["selection"]["top_l"] == 5 and "l" not in cfg["ciess"]["selection"]
    assert cfg["ciess"]["reward"]["memory"] == "size_minus_one_squared"
    assert cfg["ciess"]["init_quality"] == 1.0
    # an overlay's old key wins over the full profile's new one
    assert cfg["data"]["drop_official_code_first_line"] is True
    assert "ml1m_drop_first_line" not in cfg["data"]
    assert len(messages) == 4 and "ciess.selection.l is now ciess.selection.top_l" in messages[0]
    assert "data.ml1m_drop_first_line is now data.drop_official_code_first_line" in messages[1]
    _check(cfg)


def test_bad_config_stops_the_dag_before_any_job(tmp_path):
    work = tmp_path / "w"
    work.mkdir()
    (work / "config").symlink_to(REPO / "config")
    (work / "bad.yaml").write_text("model_overrides: {lightgcn: {n_layers: -3}}\n")
    out = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"),
                          "--directory", str(work), "-n", "--configfile", "bad.yaml"],
                         capture_output=True, text=True, cwd=work)
    assert out.returncode != 0
    assert "model_overrides.lightgcn.n_layers: must be an integer >= 1" in out.stdout + out.stderr
    assert not (work / "results").exists()


# 5. malformed data ----------------------------------------------------------------------------
@pytest.mark.parametrize("name, content, message", [
    ("u.data", "1\t2\t5\t100\n3\tx\t4\t100\n",
     r"u\.data:2: column 'item' must be a non-negative integer id, got 'x'"),
    ("u.data", "1\t2\t5\t100\n-3\t4\t4\t100\n", r"u\.data:2: column 'user' must be a non-negative"),
    ("ml.inter", "user_id:token\titem_id:token\trating:float\ttimestamp:float\n", r"ml\.inter: no data rows"),
    ("ml.inter", "user_id:token\titem_id:token\n1\t2\n", r"ml\.inter: missing column\(s\) \['rating:float'\]"),
    ("r.tsv.gz", "user_id\titem_idx\trating\n1\t2\t3\n1\t2.5\t3\n", r"r\.tsv\.gz:3: column 'item_idx'"),
])
def test_parse_errors_name_file_and_line(tmp_path, name, content, message):
    path = tmp_path / name
    if name.endswith(".gz"):
        with gzip.open(path, "wt") as fh:
            fh.write(content)
    else:
        path.write_text(content)
    with pytest.raises(ValueError, match=message):
        parse_movielens(tmp_path, "recbole_atomic", [name])


def test_split_file_with_a_bad_line_names_it(tmp_path):
    path = tmp_path / "s.inter"
    path.write_text("user_id:token\titem_id:token\n0\t1\n0\tone\n")
    with pytest.raises(ValueError, match=r"s\.inter:3: column 'item_id:token'"):
        read_int_table(path, str(path), {"user_id:token": "user", "item_id:token": "item"})


def test_published_counts_are_compared():
    stats = {"users": 6040, "items": 3706, "interactions": 1000208}
    published = {"users": 6040, "items": 3706, "interactions": 1000209}
    with pytest.raises(ValueError, match=r"ml-1m: counts differ .*'interactions': \(1000208, 1000209\)"):
        check_published(stats, published, "ml-1m", dropped_first=False)
    check_published(stats, published, "ml-1m", dropped_first=True)  # the documented exception


# 6. unreadable mask and result files ----------------------------------------------------------
def test_unreadable_npz_files_name_the_file(tmp_path):
    good = tmp_path / "good.npz"
    save_mask(good, sizes_mask(np.full(4, 3), np.full(3, 3)))
    raw = good.read_bytes()
    cases = {"not_zip.npz": b"hello world", "truncated.npz": raw[: len(raw) // 2],
             "crc.npz": raw[:60] + bytes([raw[60] ^ 0xFF]) + raw[61:]}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(MaskFileError, match=name.replace(".", r"\.")):
            load_mask(tmp_path / name)
        with pytest.raises(ValueError, match=name.replace(".", r"\.")):
            load_npz(tmp_path / name, ("kind", "user_sizes", "item_sizes", "meta"))
    with pytest.raises(ValueError, match=r"good\.npz: field\(s\) \['user_quality'\] missing"):
        load_npz(good, ("user_quality",))


def test_unreadable_tables_file_names_the_file(tmp_path):
    from ciess.init_state import load_tables
    (tmp_path / "init.pt").write_bytes(b"\x80\x02garbage")
    with pytest.raises(ValueError, match=r"init\.pt: not a readable tables file"):
        load_tables(str(tmp_path / "init.pt"))


# 7. thread count ------------------------------------------------------------------------------
def test_records_carry_the_thread_count():
    import torch
    from ciess.provenance import run_provenance
    assert run_provenance({})["threads"] == torch.get_num_threads()


# 8. a job still running elsewhere -------------------------------------------------------------
def test_second_copy_of_a_running_job_refuses_to_start(tmp_path):
    log = tmp_path / "logs" / "job.log"
    holder = subprocess.Popen([sys.executable, "-c",
                               "import sys, time; sys.path.insert(0, sys.argv[1]);"
                               "from ciess.logs import hold_job_lock; hold_job_lock(sys.argv[2]);"
                               "print('held', flush=True); time.sleep(60)", str(REPO), str(log)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(JobAlreadyRunning, match=rf"job\.log: this job is still running .*pid {holder.pid}"):
            hold_job_lock(log)
    finally:
        holder.kill()
        holder.wait()
    hold_job_lock(log)  # the holder is gone (killed): the lock died with it


# 9. permissions -------------------------------------------------------------------------------
def test_outputs_get_the_users_normal_mode(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "out.txt") as tmp:
            tmp.write_text("x")
    finally:
        os.umask(old)
    assert (tmp_path / "out.txt").stat().st_mode & 0o777 == 0o644


@pytest.mark.slow
def test_failed_aggregation_keeps_the_previous_tables(minimal_clone, tmp_path):
    work = tmp_path / "w"
    shutil.copytree(minimal_clone, work, symlinks=True)  # built, modification times kept
    args = ("results/tables/table1.csv", "--configfile", "minimal.yaml")
    tables = {p: p.read_bytes() for p in (work / "results/tables").glob("*.*")}
    assert len(tables) == 6
    metrics = work / "results/runs/ml-100k/lightgcn/full/dense/seed0/metrics.json"
    good = metrics.read_text()
    metrics.write_text(good[:300])  # truncated
    proc = run_in_clone(work, *args)
    assert proc.returncode != 0
    log = (work / "results/logs/aggregate_results.log").read_text()
    assert f"{metrics.relative_to(work)}: not valid JSON" in log
    assert {p: p.read_bytes() for p in tables} == tables  # previous tables, unchanged
    metrics.write_text(good)
    assert run_in_clone(work, *args).returncode == 0
    dry = run_in_clone(work, *args, "-n")
    assert "Nothing to be done" in dry.stdout + dry.stderr, dry.stdout[-3000:]
