"""CIESS search recipes through the DAG (docs/ciess.md §18): every recipe of the profile gets
its own search folder; `ciess.active_recipes` selects among them and refuses unknown names."""
from __future__ import annotations

import re

import yaml

from conftest import run_workflow


def _searches(out) -> set[str]:
    return set(re.findall(r"results/search/ml-100k/lightgcn/ciess-([^/]+)/seed0/search_log\.csv",
                          out.stdout + out.stderr))


def test_each_recipe_gets_its_own_search_and_active_recipes_selects(tmp_path):
    quick = run_workflow(tmp_path / "a", "-n", "all")  # quick runs two recipes (its comment)
    assert _searches(quick) >= {"g-rw-lam0.4", "g-rw-lam0.01-code", "g-rw-lam0.4-held_holdout"}
    assert "g-rw-lam0.4-held" not in _searches(quick)
    (tmp_path / "one.yaml").write_text(yaml.safe_dump({"ciess": {"active_recipes": ["held"]}}))
    one = run_workflow(tmp_path / "b", "-n", "all", "--configfile", str(tmp_path / "one.yaml"))
    recipes = {s for s in _searches(one) if re.search(r"-[a-z_]+$", s)}
    assert recipes == {"g-rw-lam0.4-held"}
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({"ciess": {"active_recipes": ["helt"]}}))
    bad = run_workflow(tmp_path / "c", "-n", "all", "--configfile", str(tmp_path / "bad.yaml"),
                       check=False)
    assert bad.returncode != 0
    assert "ciess.active_recipes: ['helt'] not among" in bad.stdout + bad.stderr
