"""A copied or moved clone keeps its results: every path in rule inputs and parameters is relative
to the working directory, so a dry run in the copy has nothing to do."""
from __future__ import annotations

import shutil

import pytest

from conftest import run_in_clone


@pytest.mark.slow
def test_copied_clone_has_nothing_to_redo(minimal_clone, tmp_path):
    moved = tmp_path / "elsewhere" / "clone"
    shutil.copytree(minimal_clone, moved, symlinks=True)  # copies keep their modification times
    dry = run_in_clone(moved, "all", "-n", "--configfile", "minimal.yaml")
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert "Nothing to be done" in dry.stdout + dry.stderr, dry.stdout[-3000:]
