"""Shared fixtures: the repository, the data mirror, and a helper that runs the workflow."""
from __future__ import annotations

import os
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
