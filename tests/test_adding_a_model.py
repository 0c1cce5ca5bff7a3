"""Follows docs/adding_a_model.md: one module + `plugins`/`models` -> metrics through the DAG."""
from __future__ import annotations

import json

import pytest
import yaml

from conftest import run_workflow
from helpers import doc_block, user_package


@pytest.mark.slow
def test_documented_model_runs_through_the_dag(tmp_path):
    env = user_package(tmp_path, "bprmf", doc_block("adding_a_model.md", "python", "# bprmf.py"))
    (tmp_path / "bprmf.yaml").write_text(doc_block("adding_a_model.md", "yaml", "# bprmf.yaml"))
    # (the quick profile's methods, restricted by targets to Full, ES and MR)
    targets = ["results/runs/ml-100k/bprmf/full/dense/seed0/metrics.json",
               "results/runs/ml-100k/bprmf/es/c80/seed0/metrics.json",
               "results/runs/ml-100k/bprmf/mr/c90/seed0/metrics.json"]
    run_workflow(tmp_path / "work", *targets, "--configfile", str(tmp_path / "bprmf.yaml"),
                 env=env)
    records = [json.loads((tmp_path / "work" / t).read_text()) for t in targets]
    assert [r["method_label"] for r in records] == ["Full", "ES", "MR"]
    for rec in records:
        assert rec["model"] == "bprmf" and rec["n_tables"] == 1
        assert rec["model_hparams"]["lr"] == 0.01  # the spec's defaults reached the training
        assert 0 < rec["test"]["recall@20"] <= 1
    assert records[1]["sparsity"] >= 0.80 and records[2]["sparsity"] >= 0.90
    assert records[0]["test"]["recall@20"] > 0.05  # it learnt something (random: ~0.01)


def test_an_unregistered_model_stops_the_dag_naming_it(tmp_path):
    (tmp_path / "over.yaml").write_text(yaml.safe_dump({"models": ["bprmf"]}))
    out = run_workflow(tmp_path / "work", "-n", "--configfile", str(tmp_path / "over.yaml"),
                       check=False)
    assert out.returncode != 0
    assert "config models: no base model 'bprmf' is registered" in out.stdout + out.stderr
    assert not (tmp_path / "work/results").exists()


def test_a_plugin_models_overrides_pass_the_schema_and_the_registry_checks_them(tmp_path):
    """docs/adding_a_model.md promises `model_overrides.<name>` for a model of your own: the
    schema accepts any model name and the registry checks the name and every setting."""
    env = user_package(tmp_path, "bprmf", doc_block("adding_a_model.md", "python", "# bprmf.py"))
    profile = yaml.safe_load(doc_block("adding_a_model.md", "yaml", "# bprmf.yaml"))
    target = "results/runs/ml-100k/bprmf/es/c80/seed0/metrics.json"
    for overrides, ok in (({"lr": 0.02}, True), ({"lrr": 0.02}, False)):
        (tmp_path / "over.yaml").write_text(yaml.safe_dump({**profile, "model_overrides": {
            "bprmf": overrides}}))
        out = run_workflow(tmp_path / f"work{ok}", "-n", target, "--configfile",
                           str(tmp_path / "over.yaml"), env=env, check=False)
        text = out.stdout + out.stderr
        assert "Additional properties are not allowed" not in text
        if ok:
            assert out.returncode == 0, text[-2000:]
        else:
            assert out.returncode != 0 and "model_overrides.bprmf.lrr: unknown setting" in text
