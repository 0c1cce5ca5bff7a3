"""The documentation lives in the repository: nothing outside tests/ points to files a clone does
not have, and every docs/ page that code, configs or docs cite exists."""
from __future__ import annotations

import re
import subprocess

from conftest import REPO

TEXT = (".py", ".yaml", ".smk", ".md", ".ipynb", ".rst", ".cff", ".sh", ".toml", ".txt")


def _tracked():
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True).stdout
    return [f for f in files.split() if f.endswith(TEXT) and (REPO / f).exists()]


def test_no_file_outside_tests_points_to_shared():
    offenders = [f for f in _tracked() if not f.startswith("tests/")
                 and re.search(r"shared/(spec|data)\b|\.\./shared", (REPO / f).read_text(errors="replace"))]
    assert not offenders, offenders


def test_every_cited_docs_page_exists():
    cited = {}
    for f in _tracked():
        for page in re.findall(r"docs/([\w./-]+?\.md)", (REPO / f).read_text(errors="replace")):
            cited.setdefault(page, f)
    missing = {page: where for page, where in cited.items() if not (REPO / "docs" / page).exists()}
    assert not missing, missing
    assert {"protocol.md", "ciess.md", "baselines.md", "methods.md"} <= set(cited)
