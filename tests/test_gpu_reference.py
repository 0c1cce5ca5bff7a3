"""benchmarks/gpu_reference.sh end to end in its CPU smoke mode (MovieLens-100K, quick-sized):
every step runs and leaves its evidence in the output folder, in the snapshot format."""
from __future__ import annotations

import json
import subprocess

from conftest import REPO


def test_gpu_reference_script_smoke_run_on_cpu(tmp_path):
    out = tmp_path / "gpu"
    proc = subprocess.run(["bash", str(REPO / "benchmarks/gpu_reference.sh"), str(out), "smoke"],
                          capture_output=True, text=True, timeout=1500)
    steps = (out / "steps.log").read_text()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "tests exit 0" in steps and "timings exit 0" in steps, steps
    assert "Full + ES exit 0" in steps and "snapshot exit 0" in steps, steps
    assert "rest exit 0" in steps or "rest exit 124" in steps, steps  # ran, or was cut at its limit
    assert (out / "nvidia-smi.txt").exists() and "passed" in (out / "tests.log").read_text()
    timings = json.loads((out / "timings.json").read_text())
    assert timings["device"] == "cpu" and timings["epoch_s"] > 0 and timings["eval_s"] > 0
    assert timings["ciess_iteration_s"] > 0
    snap = out / "snapshot"
    runs = {p.parent.parent.parent.name + "/" + p.parent.parent.name
            for p in snap.rglob("runs/**/metrics.json")}
    assert {"full/dense", "es/c80", "es/c90", "es/c95"} <= runs, runs
    prov = json.loads((snap / "provenance.json").read_text())
    assert prov["data"]["ml-100k"]["manifest_sha256"] and prov["machine"]["cores"] >= 1
    assert all(r["device"] == "cpu" for r in prov["runs"])
