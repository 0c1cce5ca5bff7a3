"""benchmarks/gpu_reference.sh end to end in its CPU smoke mode (MovieLens-100K, quick-sized):
every step runs and leaves its evidence in the output folder, in the snapshot format."""
from __future__ import annotations

import json
import os
import signal
import subprocess

import pytest
from conftest import REPO

LIMIT_S = 1200  # above the script's own step limits (14 min with kills): reached only by a hang


def where_it_stands(out) -> str:
    """The steps reached and the last lines of every step log, for a failure message."""
    parts = []
    for log in sorted(out.glob("*.log")):
        lines = log.read_text(errors="replace").splitlines()
        parts.append(f"--- {log.name} (last 15 of {len(lines)} lines)\n" + "\n".join(lines[-15:]))
    return "\n".join(parts) or f"nothing written under {out}"


def test_gpu_reference_script_smoke_run_on_cpu(tmp_path):
    out = tmp_path / "gpu"
    # its own session, so that a hang is ended with all its children and nothing holds the pipe
    proc = subprocess.Popen(["bash", str(REPO / "benchmarks/gpu_reference.sh"), str(out), "smoke"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=LIMIT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"gpu_reference.sh smoke still ran after {LIMIT_S} s:\n{where_it_stands(out)}")
    steps = (out / "steps.log").read_text()
    assert proc.returncode == 0, output + where_it_stands(out)
    assert "tests exit 0" in steps and "timings exit 0" in steps, where_it_stands(out)
    assert "Full + ES exit 0" in steps and "snapshot exit 0" in steps, where_it_stands(out)
    # ran, or was cut at its limit (124: ended by SIGTERM; 137: killed 15 s later)
    assert any(f"rest exit {rc}" in steps for rc in (0, 124, 137)), where_it_stands(out)
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
