"""`train_overrides.<model>`: a model's own training keys reach its runs, and only its runs; a
name that is no registered model stops the DAG."""
from __future__ import annotations

import json

import pytest
import yaml

from conftest import run_workflow
from ciess.profiles import load_profile


@pytest.mark.slow
def test_a_models_train_overrides_reach_its_runs_only(tmp_path, mirror):
    (tmp_path / "over.yaml").write_text(yaml.safe_dump(
        {"train_overrides": {"neumf": {"max_batches": 6, "eval_every": 3}}}))
    targets = ["results/runs/ml-100k/neumf/es/c95/seed0/metrics.json",
               "results/runs/ml-100k/lightgcn/es/c95/seed0/metrics.json"]
    run_workflow(tmp_path / "work", *targets, "--configfile", str(tmp_path / "over.yaml"))
    neumf, lightgcn = (json.loads((tmp_path / "work" / t).read_text()) for t in targets)
    assert neumf["train_settings"]["max_batches"] == 6 and neumf["steps_trained"] <= 6
    quick = load_profile()["train"]["max_batches"]
    assert lightgcn["train_settings"]["max_batches"] == quick != 6


def test_train_overrides_for_an_unregistered_model_stop_the_dag(tmp_path):
    (tmp_path / "over.yaml").write_text(yaml.safe_dump({"train_overrides": {"ngfc": {
        "max_batches": 10}}}))
    out = run_workflow(tmp_path / "work", "-n", "--configfile", str(tmp_path / "over.yaml"),
                       check=False)
    assert out.returncode != 0
    assert "config train_overrides.ngfc: no base model 'ngfc' is registered" in out.stdout + out.stderr
