"""Fault tolerance: a run killed inside a training rule resumes with only the missing work, no
half-written file is ever accepted, and concurrent writers never clobber each other's files.

(Same seed => identical CPU metrics: tests/test_train.py::test_same_seed_gives_identical_metrics_on_cpu;
a SLURM run equal to a local one: tests/slurm/run_slurm_test.sh.)
"""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from ciess.checkpoint import RESTORED_BEGIN
from ciess.io import atomic_path, write_json
from check_slurm_log import parse_log
from conftest import REPO, run_workflow, snakemake_cmd

MODELS = ("lightgcn", "neumf")
TARGETS = {m: f"results/runs/ml-100k/{m}/es/c80/seed0/metrics.json" for m in MODELS}
MASKS = {m: f"results/masks/ml-100k/{m}/es/c80/seed0/mask.npz" for m in MODELS}
DATA = ["results/data/ml-100k/source", "results/data/ml-100k/interactions.tsv",
        "results/data/ml-100k/split/manifest.json"]


def _training_logs(work: Path) -> dict[str, Path]:
    return {m: work / f"results/logs/retrain_masked/ml-100k/{m}/es/c80/seed0.log" for m in MODELS}


def _jobs_in(output: str) -> list[str]:
    """Rules of the jobs a Snakemake run (or dry run) lists, one entry per job."""
    remote, local, _, _ = parse_log(output)
    return sorted([*remote.values(), *local.values()])


def _mtimes(work: Path, paths) -> dict[str, int]:
    out = {}
    for rel in paths:
        p = work / rel
        files = [p] if p.is_file() else sorted(q for q in p.rglob("*") if q.is_file())
        out.update({str(f): f.stat().st_mtime_ns for f in files})
    return out


def _wait_for(predicate, timeout: float, what: str, proc: subprocess.Popen) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        if proc.poll() is not None:
            raise AssertionError(f"snakemake ended (rc {proc.returncode}) before {what}:\n"
                                 f"{proc.stdout.read()[-4000:]}")
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_run_killed_in_a_training_rule_resumes_with_only_the_missing_jobs(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "config").symlink_to(REPO / "config")
    # Two branches (LightGCN, NeuMF) share the data chain; validation every 20 batches, and a
    # training checkpoint at every validation (ciess/checkpoint.py).
    override = {"models": list(MODELS), "train": {"max_batches": 200, "eval_every": 20},
                "checkpoint_minutes": 1e-6}
    (tmp_path / "override.yaml").write_text(yaml.safe_dump(override))
    targets = list(TARGETS.values())
    common = ["--configfile", str(tmp_path / "override.yaml"), "--cores", "1"]
    proc = subprocess.Popen(snakemake_cmd(work, *targets, *common), cwd=work, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    logs = _training_logs(work)

    def training_under_way():
        return [m for m, log in logs.items() if log.exists() and "Recall@20" in log.read_text()
                and (work / TARGETS[m]).with_name("checkpoint-train.pt").exists()
                and not (work / TARGETS[m]).exists()]

    try:
        # Kill (SIGKILL: no clean-up by Snakemake or the job) once a retraining has validated.
        _wait_for(training_under_way, 300, "a retraining to validate", proc)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    killed = training_under_way()[0]
    other = next(m for m in MODELS if m != killed)

    assert not (work / TARGETS[killed]).exists(), "the killed job's output must not exist"
    done = DATA + [MASKS[killed]] + [p for p in (MASKS[other], TARGETS[other])
                                     if (work / p).exists()]
    finished = _mtimes(work, done)
    missing_other = ([] if (work / TARGETS[other]).exists() else ["retrain_masked"]) + (
        [] if (work / MASKS[other]).exists() else ["make_masks_es"])

    # A half-written output of the killed job (as a writer without atomic renames, or a file
    # system, could leave it) is never accepted: Snakemake flagged the job incomplete.
    (work / TARGETS[killed]).write_text('{"test": {"recall@20": 0.')
    strict = subprocess.run(snakemake_cmd(work, *targets, *common, "-n",
                                           "--workflow-profile", "none"),
                            cwd=work, capture_output=True, text=True)
    assert strict.returncode != 0 and "incomplete" in (strict.stdout + strict.stderr).lower()

    # The default profile (rerun-incomplete) plans exactly the missing work: the killed
    # retraining, and whatever of the other branch had not finished.
    plan = subprocess.run(snakemake_cmd(work, *targets, *common, "-n"), cwd=work,
                          capture_output=True, text=True, check=True)
    assert _jobs_in(plan.stdout) == sorted(["retrain_masked"] + missing_other), plan.stdout

    # SIGKILL left Snakemake's lock on the working directory: releasing it is the documented
    # first step of a resume (docs/running.md, "Interrupted runs"); it changes no output.
    run_workflow(work, *targets, *common[:2], "--unlock")
    assert _mtimes(work, done) == finished
    resumed = run_workflow(work, *targets, *common[:2])  # 2 cores: branches run at once
    assert _jobs_in(resumed.stdout + resumed.stderr) == _jobs_in(plan.stdout)
    assert _mtimes(work, done) == finished, "finished outputs must not be redone"
    for target in targets:
        rec = json.loads((work / target).read_text())
        assert 0 < rec["test"]["recall@20"] <= 1
        assert not list((work / target).parent.glob("checkpoint-*")), "checkpoints left behind"
    # the killed retraining went on from its checkpoint, and its log kept the first attempt's
    rec = json.loads((work / TARGETS[killed]).read_text())
    assert rec["resumed"].get("train", 0) >= 20, rec["resumed"]
    text = logs[killed].read_text()
    assert "resumed at step" in text and RESTORED_BEGIN in text
    assert not list((work / "results").rglob("*.part")), "temporary files left behind"
    nothing = run_workflow(work, *targets, *common, "-n")
    assert "Nothing to be done" in nothing.stdout + nothing.stderr


@pytest.mark.slow
def test_jobs_write_only_their_declared_outputs(tmp_path):
    """Two jobs at once can only clobber each other through files they do not declare: after a
    run, every file in the working directory is a declared output or log of some job."""
    work = tmp_path / "work"
    override = {"models": list(MODELS)}
    (tmp_path / "override.yaml").write_text(yaml.safe_dump(override))
    targets = list(TARGETS.values())
    args = ["--configfile", str(tmp_path / "override.yaml")]
    run_workflow(work, *targets, *args)
    summary = run_workflow(work, *targets, *args, "--detailed-summary").stdout.splitlines()
    header = summary[0].split("\t")
    declared = set()
    for line in summary[1:]:
        row = dict(zip(header, line.split("\t")))
        declared.add(row["output_file"])
        declared |= {log for log in row.get("log-file(s)", "").split(",") if log not in ("", "-")}
    assert "results/logs/retrain_masked/ml-100k/neumf/es/c80/seed0.log" in declared
    stray = []
    for path in work.rglob("*"):
        rel = path.relative_to(work)
        if rel.parts[0] in (".snakemake", "config") or path.is_dir():
            continue
        if not any(str(rel) == d or str(rel).startswith(d.rstrip("/") + "/") for d in declared):
            stray.append(str(rel))
    assert not stray, f"files no job declares: {stray}"


def _write_many(path: str, tag: int, rounds: int) -> None:
    payload = {"writer": tag, "data": [tag] * 20000}
    for _ in range(rounds):
        write_json(path, payload)


def test_concurrent_atomic_writers_never_leave_a_mixed_or_partial_file(tmp_path):
    target = tmp_path / "shared" / "metrics.json"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_write_many, args=(str(target), tag, 15)) for tag in range(4)]
    for p in procs:
        p.start()
    seen = set()
    while any(p.is_alive() for p in procs):
        if target.exists():  # a reader at any moment sees one writer's complete file
            rec = json.loads(target.read_text())
            assert rec["data"] == [rec["writer"]] * 20000
            seen.add(rec["writer"])
    for p in procs:
        p.join()
        assert p.exitcode == 0
    rec = json.loads(target.read_text())
    assert rec["data"] == [rec["writer"]] * 20000
    assert not list(target.parent.glob("*.part"))
    assert seen  # the reader did observe the file while writers raced


def test_leftover_temporary_file_of_a_killed_writer_is_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid that no longer runs
    host = socket.gethostname().replace(".", "-")
    target = tmp_path / "out.npz"
    stale = tmp_path / f".out.npz.{host}.{dead.pid}.abc123.part"  # a SIGKILLed writer's file
    live = tmp_path / f".out.npz.{host}.{os.getpid()}.def456.part"  # a running writer's
    remote = tmp_path / f".out.npz.otherhost.{dead.pid}.ghi789.part"  # another host's
    for p in (stale, live, remote):
        p.write_bytes(b"half")
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"whole")
    assert target.read_bytes() == b"whole"
    assert not stale.exists() and live.exists() and remote.exists()


def _imports(importtime_stderr: str) -> set[str]:
    """Every module a ``python -X importtime`` run imported."""
    return {line.rsplit("|", 1)[1].strip() for line in importtime_stderr.splitlines()
            if line.startswith("import time:") and "|" in line}


def test_a_job_process_parses_the_workflow_without_torch_or_the_iri_grammar(tmp_path):
    """Every cluster job starts Snakemake twice (sbatch's and srun's process). Those job
    processes skip the DAG-start checks the main process ran (which import every method module
    and so torch), and no Snakemake process imports rfc3987_syntax (jsonschema's 'iri' format,
    which the config schema does not use); the main process still refuses a bad config."""
    run_workflow(tmp_path, "-n", "--quiet", "all")  # links config/; the main process: checks
    job = [sys.executable, "-X", "importtime", *snakemake_cmd(
        tmp_path, "--cores", "1", "--mode", "subprocess", "--force", "-n",
        "--target-jobs", "fetch_dataset:dataset=ml-100k", "--allowed-rules", "fetch_dataset")[1:]]
    proc = subprocess.run(job, capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    imported = _imports(proc.stderr)
    assert "jsonschema" in imported and "ciess.config_checks" in imported  # the parse did run
    assert "torch" not in imported
    assert not [m for m in imported if m.startswith("rfc3987_syntax.")]  # its grammar: not built
    bad = run_workflow(tmp_path, "-n", "all", "--config", "threads=zero", check=False)
    assert bad.returncode != 0 and "threads" in bad.stdout + bad.stderr
