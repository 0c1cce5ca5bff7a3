"""Shared fixtures: the repository, the data mirror, and a helper that runs the workflow."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ciess import compat  # noqa: F401  (RecBole fixes before any test imports recbole)

REPO = Path(__file__).resolve().parents[1]
MIRROR_ENV = "CIESS_DATA_MIRROR"


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def mirror() -> Path:
    """The local data mirror; tests that need it are skipped, visibly, where there is none."""
    value = os.environ.get(MIRROR_ENV)
    if not value or not Path(value).is_dir():
        pytest.skip(f"needs the real-data mirror: set {MIRROR_ENV} to a folder laid out like "
                    "shared/data (see docs/running.md, 'Data')")
    return Path(value)


def snakemake_cmd(workdir: Path, *args: str) -> list[str]:
    """The command that runs this repository's Snakefile in ``workdir``."""
    return [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"),
            "--directory", str(workdir), *args]


def run_workflow(workdir: Path, *args: str, env: dict | None = None, check: bool = True):
    """Run this repository's Snakefile in ``workdir`` (with ``config/`` linked in)."""
    workdir.mkdir(parents=True, exist_ok=True)
    if not (workdir / "config").exists():
        (workdir / "config").symlink_to(REPO / "config")
    cmd = snakemake_cmd(workdir, "--cores", "2", *args)
    proc = subprocess.run(cmd, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=workdir)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n"
                             f"{proc.stderr[-6000:]}")
    return proc


# The smallest profile that still runs every report: Full LightGCN on ML-100K, no method, no
# CIESS study (each notebook renders its "not run" state).
MINIMAL_PROFILE = ("models: [lightgcn]\nactive_methods: []\nsize_response: {models: []}\n"
                   "ciess: {studies: {main_models: [], ablation_models: [], lambda_models: [], "
                   "interval_models: []}}\n")


def run_in_clone(root: Path, *args: str):
    """Snakemake run from inside a copied clone ``root`` (its own Snakefile, 2 cores)."""
    return subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", *args],
                          cwd=root, capture_output=True, text=True)


@pytest.fixture(scope="session")
def minimal_clone(tmp_path_factory) -> Path:
    """A copy of the repository's tracked files (the snapshots' records and provenance only)
    with ``snakemake all`` finished under ``minimal.yaml`` (MINIMAL_PROFILE). Built once per
    session; a test that changes it works on a copy (``shutil.copytree(..., symlinks=True)``,
    which keeps modification times)."""
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True,
                             text=True).stdout.split()
    root = tmp_path_factory.mktemp("minimal") / "clone"
    for rel in tracked:
        if rel.startswith("results/reference/") and not rel.endswith(".json"):
            continue  # the snapshot's runs and provenance are what reports read
        dst = root / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, dst)
    (root / "minimal.yaml").write_text(MINIMAL_PROFILE)
    built = run_in_clone(root, "all", "--configfile", "minimal.yaml")
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    return root
