"""Follows docs/adding_a_method.md: one module + one config entry -> metrics through the DAG."""
from __future__ import annotations

import json
import os
import re

import pytest
import yaml

from conftest import REPO, run_workflow


def _example_module() -> str:
    doc = (REPO / "docs/adding_a_method.md").read_text()
    return re.search(r"```python\n(# baselines/halfsize.py.*?)```", doc, re.S).group(1)


@pytest.mark.slow
def test_documented_example_runs_through_the_dag(tmp_path):
    pkg = tmp_path / "userpkg"
    pkg.mkdir()
    (pkg / "halfsize.py").write_text(_example_module())  # the documented code, verbatim
    override = {"models": ["lightgcn"],
                "methods": {"halfsize": {"budgets": [80, 90], "params": {},
                                         "module": "halfsize"}}}
    (tmp_path / "override.yaml").write_text(yaml.safe_dump(override))
    targets = [f"results/runs/ml-100k/lightgcn/halfsize/c{c}/seed0/metrics.json" for c in (80, 90)]
    env = {"PYTHONPATH": f"{pkg}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    run_workflow(tmp_path / "work", *targets, "--configfile", str(tmp_path / "override.yaml"),
                 env=env)
    for target, pct in zip(targets, (80, 90)):
        rec = json.loads((tmp_path / "work" / target).read_text())
        assert rec["method"] == "halfsize" and rec["budget"] == f"c{pct}"
        assert rec["sparsity"] >= pct / 100 and 0 < rec["test"]["recall@20"] <= 1
        assert rec["mask_meta"]["method"] == "halfsize" and rec["mask_meta"]["item_size"] >= 1
    assert (tmp_path / "work/results/logs/make_masks/halfsize/ml-100k/lightgcn/seed0.log").exists()
