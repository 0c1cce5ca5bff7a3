"""Follows docs/adding_a_method.md: one module + one config entry -> metrics through the DAG."""
from __future__ import annotations

import json

import pytest
import yaml

from conftest import run_workflow
from helpers import doc_block, user_package


@pytest.mark.slow
def test_documented_example_runs_through_the_dag(tmp_path):
    env = user_package(tmp_path, "halfsize",  # the documented code, verbatim
                       doc_block("adding_a_method.md", "python", "# baselines/halfsize.py"))
    override = {"models": ["lightgcn"],
                "methods": {"halfsize": {"budgets": [80, 90], "params": {},
                                         "module": "halfsize"}}}
    (tmp_path / "override.yaml").write_text(yaml.safe_dump(override))
    targets = [f"results/runs/ml-100k/lightgcn/halfsize/c{c}/seed0/metrics.json" for c in (80, 90)]
    run_workflow(tmp_path / "work", *targets, "--configfile", str(tmp_path / "override.yaml"),
                 env=env)
    for target, pct in zip(targets, (80, 90)):
        rec = json.loads((tmp_path / "work" / target).read_text())
        assert rec["method"] == "halfsize" and rec["budget"] == f"c{pct}"
        assert rec["sparsity"] >= pct / 100 and 0 < rec["test"]["recall@20"] <= 1
        assert rec["mask_meta"]["method"] == "halfsize" and rec["mask_meta"]["item_size"] >= 1
    assert (tmp_path / "work/results/logs/make_masks/halfsize/ml-100k/lightgcn/seed0.log").exists()
