"""Follows docs/adding_a_dataset.md: a catalog entry + profile lines -> metrics through the DAG."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import yaml

from conftest import run_workflow
from helpers import doc_block


def _doc_block(first_line: str) -> str:
    return doc_block("adding_a_dataset.md", "yaml", first_line)


def _interactions(path, n_users=120, n_items=80, per_user=20, seed=0):
    """A dataset with structure (users prefer items of their own group), so models can learn."""
    rng = np.random.default_rng(seed)
    lines = ["user\titem\trating"]
    for u in range(n_users):
        group = u % 4
        liked = np.arange(group * 20, group * 20 + 20)
        picks = np.concatenate([rng.choice(liked, per_user - 4, replace=False),
                                rng.choice(n_items, 4, replace=False)])
        lines += [f"{1000 + u}\t{7 * i + 3}\t{rng.integers(1, 6)}" for i in np.unique(picks)]
    path.parent.mkdir(parents=True)
    path.write_text("\n".join(lines) + "\n")
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_documented_dataset_runs_through_the_dag(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    sha = _interactions(tmp_path / "mirror/mydata/interactions.tsv")
    entry = _doc_block("# my_datasets.yaml").replace("<the file's sha256>", sha)
    (work / "my_datasets.yaml").write_text(entry)  # verbatim but for the checksum
    (work / "mydata.yaml").write_text(_doc_block("# mydata.yaml"))  # verbatim
    targets = ["results/runs/mydata/lightgcn/full/dense/seed0/metrics.json",
               "results/runs/mydata/lightgcn/es/c90/seed0/metrics.json"]
    run_workflow(work, *targets, "--configfile", "mydata.yaml",
                 env={"CIESS_DATA_MIRROR": str(tmp_path / "mirror")})
    stats = json.loads((work / "results/data/mydata/stats.json").read_text())
    assert stats["users"] == 120 and stats["source_form"] == "my_export"
    manifest = json.loads((work / "results/data/mydata/split/manifest.json").read_text())
    assert manifest["users"] == 120
    for target in targets:
        rec = json.loads((work / target).read_text())
        assert rec["dataset"] == "mydata" and 0 < rec["test"]["recall@20"] <= 1
        assert rec["data_manifest_sha256"] == manifest["manifest_sha256"]


def test_dataset_problems_are_named_at_dag_start(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "my_datasets.yaml").write_text(
        _doc_block("# my_datasets.yaml").replace("user_item_tsv", "csv_please"))
    (work / "mydata.yaml").write_text(_doc_block("# mydata.yaml"))
    out = run_workflow(work, "-n", "--configfile", "mydata.yaml", check=False)
    assert out.returncode != 0
    assert "dataset catalog entry 'mydata': unknown parser 'csv_please'" in out.stdout + out.stderr
    (work / "my_datasets.yaml").write_text(yaml.safe_dump({"ml-100k": {"parser": "movielens",
                                                                       "sources": []}}))
    out = run_workflow(work, "-n", "--configfile", "mydata.yaml", check=False)
    assert "my_datasets.yaml: dataset 'ml-100k' is already defined in config/datasets.yaml" \
        in out.stdout + out.stderr
