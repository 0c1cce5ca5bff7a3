"""A copied or moved clone keeps its results: every path in rule inputs and parameters is relative
to the working directory, so a dry run in the copy has nothing to do."""
from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from conftest import REPO

MINIMAL = ("models: [lightgcn]\nactive_methods: []\nsize_response: {models: []}\n"
           "ciess: {studies: {main_models: [], ablation_models: [], lambda_models: [], "
           "interval_models: []}}\n")


def _snakemake(root, *args):
    return subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", *args],
                          cwd=root, capture_output=True, text=True)


@pytest.mark.slow
def test_copied_clone_has_nothing_to_redo(tmp_path):
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True,
                             text=True).stdout.split()
    first = tmp_path / "clone"
    for rel in tracked:
        if rel.startswith("results/reference/") and not rel.endswith(("provenance.json", ".json")):
            continue  # the snapshot's runs and provenance are what reports read
        dst = first / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, dst)
    (first / "minimal.yaml").write_text(MINIMAL)
    built = _snakemake(first, "all", "--configfile", "minimal.yaml")
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    moved = tmp_path / "elsewhere" / "clone"
    shutil.copytree(first, moved, symlinks=True)  # copies keep their modification times
    dry = _snakemake(moved, "all", "-n", "--configfile", "minimal.yaml")
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert "Nothing to be done" in dry.stdout + dry.stderr, dry.stdout[-3000:]
