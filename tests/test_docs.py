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


def _sections(page: str) -> set[str]:
    """The numbered sections of a docs page: "## 13. …" -> "13", "### 18.1 …" -> "18.1"."""
    text = (REPO / "docs" / page).read_text()
    return set(re.findall(r"^#{2,4} (\d+(?:\.\d+)*)\.?\s", text, flags=re.M))


def test_every_section_reference_resolves_to_a_heading():
    """`docs/<page>.md §N` anywhere, and a bare `§N` inside docs/<page>.md, name a heading that
    exists (sub-numbers such as §9.3 may also be numbered list items or bold run-ins)."""
    broken = []
    for f in _tracked():
        if f.startswith("results/reference/"):
            continue
        text = (REPO / f).read_text(errors="replace")
        refs = [(page, num) for page, num in
                re.findall(r"docs/([\w-]+\.md),? §(\d+(?:\.\d+)?)", text)]
        if f.startswith("docs/") and f.endswith(".md"):
            refs += [(f[len("docs/"):], num) for num in
                     re.findall(r"(?<!\.md )(?<!\.md, )(?<![\w/.])§(\d+(?:\.\d+)?)", text)]
        for page, num in refs:
            if not (REPO / "docs" / page).exists():
                continue  # test_every_cited_docs_page_exists reports it
            top = num.split(".")[0]
            body = (REPO / "docs" / page).read_text()
            sub_ok = "." not in num or num in _sections(page) or re.search(
                rf"(^|\*\*|\n- ){re.escape(num)}\b", body)
            if top not in _sections(page) or not sub_ok:
                broken.append(f"{f}: docs/{page} §{num}")
    assert not broken, sorted(set(broken))
