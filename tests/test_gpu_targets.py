"""benchmarks/gpu_targets.sh on the CPU (DEVICE=cpu): a workflow that cannot plan fails at once
(nothing trained, its error brought back), and a planned target is trained and brought back,
weights left behind."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile

import pytest

from conftest import REPO

TINY = "device: cpu\nthreads: 1\ntrain: {max_batches: 20, eval_every: 10, patience: 1}\n"


def _copy_of_the_repository(root):
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True,
                             text=True).stdout.split()
    for rel in tracked:
        if rel.startswith("results/reference/"):
            continue
        dst = root / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, dst)
    (root / "tiny.yaml").write_text(TINY)
    return root


def _run(root, out, targets, env_extra=None):
    (root / "targets.txt").write_text("# one target\n" + "\n".join(targets) + "\n")
    (root / "priority.txt").write_text("")
    env = {**os.environ, "PYTHON": sys.executable, "DEVICE": "cpu", "TIMINGS": "0", "CORES": "1",
           **(env_extra or {})}
    return subprocess.run(["bash", "benchmarks/gpu_targets.sh", str(out), "300", "targets.txt",
                           "priority.txt", "config/quick.yaml", "tiny.yaml"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=900)


def test_a_workflow_that_cannot_plan_fails_at_once_and_brings_its_error_back(tmp_path):
    root = _copy_of_the_repository(tmp_path / "repo")
    (root / "tiny.yaml").write_text(TINY + "ciess: {episodes: 0}\n")  # the schema refuses it
    out = tmp_path / "out"
    proc = _run(root, out, ["results/runs/ml-100k/lightgcn/es/c95/seed0/metrics.json"])
    steps = (out / "steps.log").read_text()
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "the dry run failed; nothing was trained" in steps and "episodes" in steps, steps
    assert not (out / "results.tgz").exists() and not (root / "results/runs").exists()
    with tarfile.open(out / "logs.tgz") as tar:
        assert "logs/dry-run.log" in tar.getnames()


@pytest.mark.slow
def test_a_planned_target_is_trained_and_brought_back_without_weights(tmp_path, mirror):
    root = _copy_of_the_repository(tmp_path / "repo")
    split = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1",
                            "results/data/ml-100k/split/manifest.json"], cwd=root,
                           capture_output=True, text=True, env={**os.environ})
    assert split.returncode == 0, split.stderr[-2000:]
    out = tmp_path / "out"
    proc = _run(root, out, ["results/runs/ml-100k/lightgcn/es/c95/seed0/metrics.json"])
    steps = (out / "steps.log").read_text()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "finished targets: 1 of 1" in steps, steps
    with tarfile.open(out / "results.tgz") as tar:
        names = tar.getnames()
    assert "results/runs/ml-100k/lightgcn/es/c95/seed0/metrics.json" in names
    assert not any(n.endswith(".pt") for n in names)
