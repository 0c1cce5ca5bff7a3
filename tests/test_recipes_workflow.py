"""CIESS search recipes through the DAG (docs/ciess.md §18): every recipe of the profile gets
its own search folder; `ciess.active_recipes` selects among them and refuses unknown names."""
from __future__ import annotations

import json
import re

import yaml

from conftest import run_workflow


def _searches(out) -> set[str]:
    return set(re.findall(r"results/search/ml-100k/lightgcn/ciess-([^/]+)/seed0/search_log\.csv",
                          out.stdout + out.stderr))


def test_each_recipe_gets_its_own_search_and_active_recipes_selects(tmp_path):
    quick = run_workflow(tmp_path / "a", "-n", "all")  # quick runs three recipes (its comment)
    assert _searches(quick) >= {"g-rw-lam0.4", "g-rw-lam0.01-code", "g-rw-lam0.4-held",
                                "g-rw-lam0.4-held_holdout"}
    assert "g-rw-lam0.01-code_noise" not in _searches(quick)
    (tmp_path / "one.yaml").write_text(yaml.safe_dump({"ciess": {"active_recipes": ["held"]}}))
    one = run_workflow(tmp_path / "b", "-n", "all", "--configfile", str(tmp_path / "one.yaml"))
    recipes = {s for s in _searches(one) if re.search(r"-[a-z_]+$", s)}
    assert recipes == {"g-rw-lam0.4-held"}
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({"ciess": {"active_recipes": ["helt"]}}))
    bad = run_workflow(tmp_path / "c", "-n", "all", "--configfile", str(tmp_path / "bad.yaml"),
                       check=False)
    assert bad.returncode != 0
    assert "ciess.active_recipes: ['helt'] not among" in bad.stdout + bad.stderr


def test_a_recipe_may_run_its_own_search_seeds(tmp_path):
    """`ciess.recipes.<r>.seeds`: a recipe searched with more (or other) seeds than the default
    search, e.g. the second seed of the recipe under study; Table 1 and the search page ask for
    exactly those runs."""
    (tmp_path / "seeds.yaml").write_text(yaml.safe_dump(
        {"ciess": {"seeds": [0], "active_recipes": ["held"],
                   "recipes": {"held": {"hold_budget": True, "seeds": [1, 2]}}}}))
    out = run_workflow(tmp_path / "a", "-n", "all", "--configfile", str(tmp_path / "seeds.yaml"))
    text = out.stdout + out.stderr
    found = set(re.findall(r"results/search/ml-100k/lightgcn/ciess-([^/]+)/seed(\d+)/search_log"
                           r"\.csv", text))
    assert ("g-rw-lam0.4-held", "1") in found and ("g-rw-lam0.4-held", "2") in found
    assert ("g-rw-lam0.4-held", "0") not in found and ("g-rw-lam0.4", "0") in found
    assert ("g-rw-lam0.4", "1") not in found


def test_recipe_pools_select_each_recipes_late_candidates_too(tmp_path):
    """`ciess.studies.recipe_pools`: each recipe search's candidates of an episode range are
    selected too (quick: its last episode), beside the whole search; a range outside the
    search's episodes is refused at DAG start."""
    quick = run_workflow(tmp_path / "a", "-n", "all")
    text = quick.stdout + quick.stderr
    for budget in ("c80", "c90"):
        assert f"results/runs/ml-100k/lightgcn/ciess-g-rw-lam0.01-code-ep2-2/{budget}/seed0/" \
               "metrics.json" in text
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({"ciess": {"studies": {
        "recipe_pools": [[2, 5]]}}}))
    bad = run_workflow(tmp_path / "b", "-n", "all", "--configfile", str(tmp_path / "bad.yaml"),
                       check=False)
    assert bad.returncode != 0
    assert "recipe_pools: [2, 5] is not a range of episodes within 1..4" in bad.stdout + bad.stderr


def test_a_recipes_table_episodes_plan_that_selection_and_mark_it_as_the_table1_row(tmp_path):
    """`ciess.recipes.<r>.table_episodes` (docs/ciess.md §18.3): the selection from those
    episodes is planned for the recipe's search and its record marks it as the Table 1 row; the
    whole search's selection is still planned (a diagnostic); a range outside the search's
    episodes is refused at DAG start naming the key."""
    (tmp_path / "t.yaml").write_text(yaml.safe_dump({"ciess": {
        "active_recipes": ["held"], "studies": {"recipe_pools": []},
        "recipes": {"held": {"hold_budget": True, "table_episodes": [2, 2]}}}}))
    out = run_workflow(tmp_path / "a", "-n", "all", "--configfile", str(tmp_path / "t.yaml"))
    text = out.stdout + out.stderr
    for method in ("ciess-g-rw-lam0.4-held-ep2-2", "ciess-g-rw-lam0.4-held"):
        assert f"results/runs/ml-100k/lightgcn/{method}/c80/seed0/metrics.json" in text
    (tmp_path / "table_only.yaml").write_text(yaml.safe_dump({"ciess": {"selection": {
        "whole_search": False}}}))  # the whole search's selection, a diagnostic, skipped
    only = run_workflow(tmp_path / "w", "-n", "all", "--configfile", str(tmp_path / "t.yaml"),
                        str(tmp_path / "table_only.yaml"))
    only_text = only.stdout + only.stderr
    assert "results/runs/ml-100k/lightgcn/ciess-g-rw-lam0.4-held-ep2-2/c80/seed0/metrics.json" \
        in only_text
    assert "results/runs/ml-100k/lightgcn/ciess-g-rw-lam0.4-held/c80/seed0/" not in only_text
    assert "results/runs/ml-100k/lightgcn/ciess-g-rw-lam0.4/c80/seed0/metrics.json" in only_text
    # episode 2 of a held quick search holds 90%: that selection, made, is the Table 1 row
    target = "results/runs/ml-100k/lightgcn/ciess-g-rw-lam0.4-held-ep2-2/c90/seed0/metrics.json"
    run_workflow(tmp_path / "a", target, "--configfile", str(tmp_path / "t.yaml"))
    record = json.loads((tmp_path / "a" / target).read_text())
    assert record["variant"]["table_row"] is True and record["variant"]["episodes"] == "2-2"
    assert record["method_label"] == "CIESS"  # held is the profile's main recipe
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({"ciess": {"recipes": {
        "held": {"table_episodes": [1, 5]}}}}))
    bad = run_workflow(tmp_path / "b", "-n", "all", "--configfile", str(tmp_path / "t.yaml"),
                       str(tmp_path / "bad.yaml"), check=False)
    assert bad.returncode != 0
    assert "ciess.recipes.held.table_episodes: [1, 5] is not 'all' or [first, last] within 1..4" \
        in bad.stdout + bad.stderr


def test_the_main_recipe_is_searched_for_every_table1_model_and_must_run(tmp_path):
    """`ciess.main_recipe` (docs/ciess.md §18.5): Table 1's CIESS is the held recipe's search,
    planned for every main model (not only `recipe_models`) beside the profile's own search, the
    paper's; a main recipe the profile does not run is refused naming the key; null plans the
    profile's own search alone as Table 1's CIESS."""
    quick = run_workflow(tmp_path / "a", "-n", "all")
    text = quick.stdout + quick.stderr
    for model in ("lightgcn", "ngcf", "neumf"):
        for search in ("g-rw-lam0.4", "g-rw-lam0.4-held"):
            assert f"results/search/ml-100k/{model}/ciess-{search}/seed0/search_log.csv" in text
        # its Table 1 row: the selection from episodes 2-4 (quick's table_episodes)
        assert f"results/runs/ml-100k/{model}/ciess-g-rw-lam0.4-held-ep2-4/c95/seed0/" \
               "metrics.json" in text
    (tmp_path / "code.yaml").write_text(yaml.safe_dump({"ciess": {"active_recipes": ["code"]}}))
    bad = run_workflow(tmp_path / "b", "-n", "all", "--configfile", str(tmp_path / "code.yaml"),
                       check=False)
    assert bad.returncode != 0
    assert "ciess.main_recipe: 'held' is not among the recipes this profile runs ['code']" \
        in bad.stdout + bad.stderr
    (tmp_path / "none.yaml").write_text(yaml.safe_dump(
        {"ciess": {"active_recipes": ["code"], "main_recipe": None}}))
    own = run_workflow(tmp_path / "c", "-n", "all", "--configfile", str(tmp_path / "none.yaml"))
    text = own.stdout + own.stderr
    assert "results/search/ml-100k/ngcf/ciess-g-rw-lam0.4/seed0/search_log.csv" in text
    assert not re.search(r"results/(search|runs)/ml-100k/\w+/ciess-g-rw-lam0.4-held", text)
