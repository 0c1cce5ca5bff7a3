"""Data rules: fetch/verify, preprocess, per-user split (docs/protocol.md §1-3)."""
from __future__ import annotations

import re
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from ciess.data.fetch import (ChecksumMismatch, DataSourceError, fetch_dataset, load_catalog,
                              repair_fetched_sources, verify_fetched, verify_or_refetch)
from ciess.data.preprocess import PARSERS, drop_official_code_first_line, preprocess
from ciess.data.split import split_per_user
from ciess.profiles import load_profile
from ciess.io import file_digests
from conftest import REPO, run_workflow


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _adjacency_fixture(mirror: Path, n_users=40, n_items=60, seed=1):
    """A small Yelp2018-format pair train.txt / test.txt (LightGCN layout, 10+ items per user)."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for u in range(n_users):
        items = rng.choice(n_items, rng.integers(10, 20), replace=False)
        cut = int(0.8 * len(items))
        train.append(" ".join(map(str, [u, *items[:cut]])))
        test.append(" ".join(map(str, [u, *items[cut:]])))
    train_path = _write(mirror / "yelp2018/train.txt", "\n".join(train) + "\n")
    test_path = _write(mirror / "yelp2018/test.txt", "\n".join(test) + "\n")
    return train_path, test_path


def _catalog_for(train_path, test_path):
    catalog = load_catalog(REPO / "config/datasets.yaml")
    files = catalog["yelp2018"]["sources"][0]["files"]
    files["yelp2018/train.txt"] = {"git_blob": file_digests(train_path, ("git_blob",))["git_blob"],
                                   "url": train_path.as_uri()}
    files["yelp2018/test.txt"] = {"sha256": file_digests(test_path)["sha256"],
                                  "url": test_path.as_uri()}
    catalog["yelp2018"].pop("published")  # a small fixture, not the published dataset
    return catalog


def test_fetch_from_mirror_verifies_and_records_provenance(tmp_path):
    train, test = _adjacency_fixture(tmp_path / "mirror")
    catalog = _catalog_for(train, test)
    prov = fetch_dataset(catalog, "yelp2018", tmp_path / "out", mirror=str(tmp_path / "mirror"))
    assert prov["form"] == "official_extracted"
    assert (tmp_path / "out/yelp2018/train.txt").read_bytes() == train.read_bytes()
    assert verify_fetched(catalog, "yelp2018", tmp_path / "out")["form"] == "official_extracted"


def test_a_truncated_fetched_copy_is_fetched_again_and_a_bad_source_still_fails(tmp_path):
    train, test = _adjacency_fixture(tmp_path / "mirror")
    catalog = _catalog_for(train, test)
    out, mirror = tmp_path / "out", str(tmp_path / "mirror")
    fetch_dataset(catalog, "yelp2018", out, mirror=mirror)
    copy = out / "yelp2018/train.txt"
    copy.write_bytes(copy.read_bytes()[:50])  # truncated after it was fetched
    with pytest.raises(ChecksumMismatch):
        verify_fetched(catalog, "yelp2018", out)
    assert verify_or_refetch(catalog, "yelp2018", out, mirror)["form"] == "official_extracted"
    assert copy.read_bytes() == train.read_bytes()
    copy.write_bytes(b"")
    train.write_bytes(train.read_bytes()[:50])  # the source itself is now wrong
    with pytest.raises(ChecksumMismatch, match="mirror file"):
        verify_or_refetch(catalog, "yelp2018", out, mirror)


def test_a_truncated_cached_source_is_fetched_again_at_dag_start_keeping_its_timestamps(tmp_path):
    train, test = _adjacency_fixture(tmp_path / "mirror")
    catalog = _catalog_for(train, test)
    mirror = str(tmp_path / "mirror")
    source = tmp_path / "data/yelp2018/source"
    fetch_dataset(catalog, "yelp2018", source, mirror=mirror)
    (source / ".snakemake_timestamp").touch()
    for p in [*source.rglob("*"), source]:
        os.utime(p, (1_000_000, 1_000_000))  # fetched long ago
    assert repair_fetched_sources(catalog, ["yelp2018"], tmp_path / "data", mirror) == []
    copy = source / "yelp2018/train.txt"
    copy.write_bytes(copy.read_bytes()[:50])  # truncated after the fetch (and after its users)
    [message] = repair_fetched_sources(catalog, ["yelp2018"], tmp_path / "data", mirror)
    assert str(copy) in message and "50 bytes" in message and "nothing built from them" in message
    assert copy.read_bytes() == train.read_bytes()
    assert {p.stat().st_mtime for p in [*source.rglob("*"), source]} == {1_000_000}
    copy.unlink()  # gone, and no way to fetch it again: the error names the file and the way out
    with pytest.raises(DataSourceError, match=r"(?s)train.txt \(gone\).*Put the original file back"):
        repair_fetched_sources(catalog, ["yelp2018"], tmp_path / "data", str(tmp_path / "none"))


@pytest.mark.slow
def test_the_dag_fetches_a_truncated_cached_source_again_and_reruns_nothing(tmp_path):
    train, test = _adjacency_fixture(tmp_path / "mirror")
    work = tmp_path / "work"
    _write(work / "catalog.yaml", yaml.safe_dump(_catalog_for(train, test)))
    _write(work / "override.yaml", yaml.safe_dump({
        "datasets": ["yelp2018"], "dataset_catalog": str(work / "catalog.yaml"),
        "data": {"mirror": str(tmp_path / "mirror")}}))
    args = ("results/data/yelp2018/split/manifest.json", "--configfile", str(work / "override.yaml"))
    run_workflow(work, *args)
    copy = work / "results/data/yelp2018/source/yelp2018/train.txt"
    copy.write_bytes(copy.read_bytes()[:50])
    proc = run_workflow(work, *args)
    assert "fetched again" in proc.stderr and "Nothing to be done" in proc.stdout + proc.stderr
    assert copy.read_bytes() == train.read_bytes()


def test_download_path_uses_urls_and_verifies(tmp_path, monkeypatch):
    """Without a mirror the URLs are downloaded (file:// here: the same urllib code path)."""
    monkeypatch.delenv("CIESS_DATA_MIRROR", raising=False)
    train, test = _adjacency_fixture(tmp_path / "remote")
    catalog = _catalog_for(train, test)
    prov = fetch_dataset(catalog, "yelp2018", tmp_path / "out", mirror=None)
    assert [f["origin"] for f in prov["files"]] == [train.as_uri(), test.as_uri()]


def test_corrupted_file_names_file_and_checksums_and_leaves_nothing(tmp_path):
    train, test = _adjacency_fixture(tmp_path / "mirror")
    catalog = _catalog_for(train, test)
    expected = catalog["yelp2018"]["sources"][0]["files"]["yelp2018/test.txt"]["sha256"]
    with open(test, "r+b") as fh:  # truncate: a partial copy
        fh.truncate(test.stat().st_size // 2)
    actual = file_digests(test)["sha256"]
    out = tmp_path / "out"
    with pytest.raises(ChecksumMismatch) as err:
        fetch_dataset(catalog, "yelp2018", out, mirror=str(tmp_path / "mirror"))
    msg = str(err.value)
    assert "yelp2018/test.txt" in msg and expected in msg and actual in msg
    assert f"mirror file {test}" in msg  # the file to replace, not the deleted staging copy
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["mirror"]  # no staging folder left either


def test_missing_train_txt_says_where_to_put_it_and_where_to_download(tmp_path):
    _write(tmp_path / "mirror/yelp2018/test.txt", "0 1 2\n")
    catalog = load_catalog(REPO / "config/datasets.yaml")
    with pytest.raises(DataSourceError) as err:
        fetch_dataset(catalog, "yelp2018", tmp_path / "out", mirror=str(tmp_path / "mirror"))
    msg = str(err.value)
    assert str(tmp_path / "mirror/yelp2018/train.txt") in msg and "MISSING" in msg
    assert "LightGCN-PyTorch" in msg and "train.txt" in msg


def test_ml1m_forms_are_tried_in_order(tmp_path):
    """Archive before extracted file before the derived stand-in: the first present form wins."""
    catalog = load_catalog(REPO / "config/datasets.yaml")
    lines = "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978300000\n"
    dat = _write(tmp_path / "m/ml-1m/ratings.dat", lines)
    catalog["ml-1m"]["sources"][1]["files"]["ml-1m/ratings.dat"] = {
        "git_blob": file_digests(dat, ("git_blob",))["git_blob"]}
    derived = tmp_path / "m/ml-1m/derived/ratings_uir.tsv.gz"
    derived.parent.mkdir(parents=True)
    import gzip
    with gzip.open(derived, "wt") as fh:
        fh.write("user_id\titem_idx\trating\n1\t1\t5\n")
    catalog["ml-1m"]["sources"][2]["files"]["ml-1m/derived/ratings_uir.tsv.gz"] = {
        "sha256": file_digests(derived)["sha256"]}
    prov = fetch_dataset(catalog, "ml-1m", tmp_path / "out", mirror=str(tmp_path / "m"))
    assert prov["form"] == "official_extracted"
    raw = PARSERS["movielens"](tmp_path / "out", prov["form"], ["ml-1m/ratings.dat"])
    assert raw.values.tolist() == [[1, 1193, 5], [1, 661, 3], [2, 1193, 4]]
    dropped = drop_official_code_first_line(raw, "ml-1m", catalog["ml-1m"], prov["form"])
    assert dropped.values.tolist() == [[1, 661, 3], [2, 1193, 4]]
    # the line is the catalog's to name: an entry without it for this form is an error
    with pytest.raises(ValueError, match=r"ml-1m: .* names no official_code_first_line for "
                                         r"source form 'official_extracted'"):
        drop_official_code_first_line(raw, "ml-1m", {"official_code_first_line": {}}, prov["form"])
    with pytest.raises(ValueError, match=r"first line of the 'official_extracted' source is not"):
        drop_official_code_first_line(raw[::-1].reset_index(drop=True), "ml-1m",
                                      catalog["ml-1m"], prov["form"])


def test_preprocess_maps_ids_by_ascending_original_id_and_drops_duplicates():
    raw = pd.DataFrame({"user": [30, 10, 30, 10, 20], "item": [7, 5, 7, 9, 5]})
    table, stats = preprocess(raw, drop_duplicates=True)
    assert table.values.tolist() == [[2, 1], [0, 0], [0, 2], [1, 0]]
    assert stats["duplicates_found"] == 1 and stats["interactions"] == 4
    assert stats["users"] == 3 and stats["items"] == 3
    assert stats["density"] == pytest.approx(4 / 9)


def _reference_split(table, ratios=(0.5, 0.25, 0.25), seed=42):
    """The official code's splitter, written with pandas as it is (groupby + sample + np.split)."""
    parts = {0: [], 1: [], 2: []}
    cuts = np.cumsum(ratios).tolist()[:-1]
    for _, group in table.groupby("user_id", sort=True):
        group = group.sample(frac=1, random_state=seed)
        bounds = [0, *[round(x * len(group)) for x in cuts], len(group)]
        for k in range(3):  # np.split(group, ...) in the code; iloc slices are the same rows
            parts[k].append(group.iloc[bounds[k]:bounds[k + 1]])
    return [pd.concat(p).reset_index(drop=True) for p in parts.values()]


def test_split_reproduces_pandas_stratified_split():
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"user_id": np.repeat(np.arange(50), rng.integers(4, 30, 50))})
    table["item_id"] = rng.integers(0, 500, len(table))
    parts, summary = split_per_user(table)
    for ours, ref in zip(parts.values(), _reference_split(table)):
        pd.testing.assert_frame_equal(ours, ref)
    assert summary["users_with_empty_part"] == 0


def test_split_rejects_users_too_small_for_three_parts():
    table = pd.DataFrame({"user_id": [0, 0, 0, 1, 1, 1, 1], "item_id": [1, 2, 3, 1, 2, 3, 4]})
    with pytest.raises(ValueError, match="user 0 with 3 interactions"):
        split_per_user(table)
    _, summary = split_per_user(table, allow_empty_parts=True)
    assert summary["users_with_empty_part"] == 1


@pytest.mark.slow
def test_yelp2018_format_goes_through_the_full_workflow_path(tmp_path):
    """A LightGCN-format train/test pair: fetch -> merge + preprocess -> split, via Snakemake."""
    train, test = _adjacency_fixture(tmp_path / "mirror")
    catalog = _catalog_for(train, test)
    work = tmp_path / "work"
    _write(work / "catalog.yaml", yaml.safe_dump(catalog))
    override = {"datasets": ["yelp2018"], "dataset_catalog": str(work / "catalog.yaml"),
                "data": {"mirror": str(tmp_path / "mirror")}}
    _write(work / "override.yaml", yaml.safe_dump(override))
    run_workflow(work, "results/data/yelp2018/split/manifest.json",
                 "--configfile", str(work / "override.yaml"))
    stats = json.loads((work / "results/data/yelp2018/stats.json").read_text())
    n_lines = sum(len(l.split()) - 1 for l in (train.read_text() + test.read_text()).splitlines())
    assert stats["interactions"] == n_lines and stats["users"] == 40
    manifest = json.loads((work / "results/data/yelp2018/split/manifest.json").read_text())
    assert sum(f["rows"] for f in manifest["files"].values()) == n_lines
    assert (work / "results/logs/split_dataset/yelp2018.log").stat().st_size > 0


@pytest.mark.slow
@pytest.mark.mirror
def test_mirror_splits_match_published_stats_and_are_stable(mirror, tmp_path):
    work = tmp_path / "work"
    targets = [f"results/data/{d}/split/manifest.json" for d in ("ml-1m", "yelp2018-test")]
    args = [*targets, "--configfile", "config/stand-ins.yaml",
            "--config", 'datasets=["ml-1m","yelp2018-test"]']
    run_workflow(work, *args, env={"CIESS_DATA_MIRROR": str(mirror)})
    first = {t: json.loads((work / t).read_text()) for t in targets}
    ml = json.loads((work / "results/data/ml-1m/stats.json").read_text())
    assert (ml["users"], ml["items"], ml["interactions"]) == (6040, 3706, 1_000_209)
    assert ml["source_form"] == "derived_uir"  # the mirror's only ML-1M ratings form
    yt = json.loads((work / "results/data/yelp2018-test/stats.json").read_text())
    assert (yt["users"], yt["interactions"]) == (31_668, 324_147)
    shutil.rmtree(work / "results/data")
    run_workflow(work, *args, env={"CIESS_DATA_MIRROR": str(mirror)})
    for t in targets:
        assert json.loads((work / t).read_text()) == first[t]


@pytest.mark.slow
def test_corrupted_mirror_file_fails_the_rule_and_leaves_no_output(tmp_path):
    mirror = tmp_path / "mirror"
    _write(mirror / "yelp2018/test.txt", "0 1 2 3\n")  # not the real file: checksum must fail
    work = tmp_path / "work"
    proc = run_workflow(work, "results/data/yelp2018-test/source", "--configfile",
                        "config/stand-ins.yaml", "--config", 'datasets=["yelp2018-test"]',
                        env={"CIESS_DATA_MIRROR": str(mirror)}, check=False)
    assert proc.returncode != 0
    log = (work / "results/logs/fetch_dataset/yelp2018-test.log").read_text()
    assert "checksum mismatch" in log and "9cd9b37926cd1447" in log
    assert not (work / "results/data/yelp2018-test/source").exists()


def test_bad_config_value_fails_at_dag_start_naming_the_key(tmp_path):
    bad = load_profile()
    bad["data"]["split"]["seed"] = "forty-two"
    _write(tmp_path / "bad.yaml", yaml.safe_dump(bad))
    proc = run_workflow(tmp_path / "work", "-n", "--configfile", str(tmp_path / "bad.yaml"),
                        check=False)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "seed" in out and "forty-two" in out


def test_snakemake_lint_is_clean(repo):
    import subprocess, sys

    proc = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], cwd=repo,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_paper_profile_builds_its_dag(tmp_path):
    """The paper profile validates and plans every study (no data needed for a dry run)."""
    proc = run_workflow(tmp_path / "work", "all", "-n", "--configfile",
                        str(REPO / "config/config.yaml"))
    out = proc.stdout
    for rule in ("fetch_dataset", "pretrain_full", "ciess_search", "make_masks_pep",
                 "make_masks_optemb", "retrain_masked", "aggregate_results", "render_table1"):
        assert rule in out, rule
    assert "ml-1m" in out and "yelp2018" in out


def test_training_jobs_declare_the_profiles_resources(tmp_path):
    """What a scheduler sees: the paper profile's training jobs ask for a GPU, memory and time
    (sbatch --gpus/--mem/--time under profiles/slurm); the quick profile's ask for no GPU."""
    paper = run_workflow(tmp_path / "paper", "all", "-n", "--configfile",
                         str(REPO / "config/config.yaml")).stdout
    block = re.search(r"rule retrain_masked:\n(?:    .*\n)*?    resources: (.*)\n", paper).group(1)
    assert "gpu=1" in block and "mem_mb=16000" in block and "runtime=720" in block
    block = re.search(r"rule ciess_search:\n(?:    .*\n)*?    resources: (.*)\n", paper).group(1)
    assert "gpu=1" in block and "runtime=2880" in block
    quick = run_workflow(tmp_path / "quick", "results/data/ml-100k/split/manifest.json",
                         "-n").stdout
    block = re.search(r"rule split_dataset:\n(?:    .*\n)*?    resources: (.*)\n", quick).group(1)
    assert "mem_mb=1000" in block and "gpu" not in block


def test_unknown_resource_key_fails_naming_it(tmp_path):
    bad = load_profile()
    bad["resources"]["training"]["gpus"] = 1  # the key is `gpu`
    _write(tmp_path / "bad.yaml", yaml.safe_dump(bad))
    proc = run_workflow(tmp_path / "work", "-n", "--configfile", str(tmp_path / "bad.yaml"),
                        check=False)
    assert proc.returncode != 0 and "gpus" in proc.stdout + proc.stderr


def test_reference_profile_plans_every_method_and_ciess_on_ml1m_only(tmp_path):
    """config/reference.yaml over the quick profile: every method (ESAPN and OptEmb also at
    their native sparsity), Table 1's default CIESS search and one search per recipe
    (docs/ciess.md §18; held and held_short with two seeds) with the paper-sized budget, the size
    response, LightGCN on ML-1M only (the NGCF and NeuMF snapshots' records are read by the
    reports, never trained)."""
    out = run_workflow(tmp_path / "work", "all", "-n", "--configfile",
                       str(REPO / "config/reference.yaml")).stdout
    for rule in ("pretrain_full", "make_masks_es", "make_masks_mr", "make_masks_mde",
                 "make_masks_sides", "make_masks_pep", "make_masks_esapn", "make_masks_optemb",
                 "size_response"):
        assert rule in out, rule
    for absent in ("data/ml-100k", "model=ngcf", "model=neumf", "ciess-g-norw", "ciess-ou"):
        assert absent not in out, absent
    assert re.search(r"ciess_search\s+9\n", out)  # the default and six recipes, held and
    # held_short twice (docs/ciess.md §18.5-18.6)
    # (5 methods x 3 budgets + ESAPN and OptEmb x 4 budgets) x 2 seeds
    assert re.search(r"retrain_masked\s+46\n", out)


@pytest.mark.parametrize("override,message", [
    ("active_methods: [es, nope]\n", "active_methods: ['nope'] not among methods"),
    ("model_overrides:\n  neumf: {mask_gmf: false}\n",
     "mask_gmf: false is implemented by CIESS and ['es'] only, not by ['esapn', 'mde', 'mr'"),
])
def test_impossible_method_selection_fails_at_dag_start(tmp_path, override, message):
    _write(tmp_path / "o.yaml", override)
    proc = run_workflow(tmp_path / "work", "-n", "--configfile", str(tmp_path / "o.yaml"),
                        check=False)
    assert proc.returncode != 0 and message in proc.stdout + proc.stderr
