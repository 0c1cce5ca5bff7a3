"""ciess.labels: the one grammar of budget, search, pool and method labels, both ways."""
from __future__ import annotations

import re

import pytest

from ciess import labels


def test_budget_labels_round_trip_and_refuse_impossible_budgets():
    assert labels.budget_label(80) == "c80" and labels.budget_label("native") == "native"
    assert labels.budget_pct("c7") == 7 and labels.budget_pct("native") is None
    assert labels.target_sparsity("c95") == 0.95 and labels.target_sparsity("dense") is None
    for bad in (0, 100, 150):
        with pytest.raises(ValueError, match="whole percentage in 1..99"):
            labels.budget_label(bad)
    with pytest.raises(ValueError, match="unknown budget label 'x80'"):
        labels.budget_pct("x80")


def test_search_labels_round_trip_and_match_the_wildcard_pattern():
    for search in (labels.Search("gaussian", True, 0.4), labels.Search("ou", False, 0.05),
                   labels.Search("none", True, 1.0)):
        assert labels.Search.parse(search.label) == search
        assert re.fullmatch(labels.SEARCH_PATTERN, search.label)
    assert labels.Search("uniform", False, 0.2).label == "u-norw-lam0.2"
    with pytest.raises(ValueError, match="no plain decimal label"):
        labels.Search("gaussian", True, 1e-5).label  # noqa: B018  (1e-05 would not parse back)
    with pytest.raises(ValueError, match="not a CIESS search label"):
        labels.Search.parse("g-walk-lam0.4")


def test_method_names_describe_their_runs():
    def baseline(name, budget):
        return labels.method_label(name.upper(), budget, native_mode=name == "esapn")

    assert labels.ciess_method("g-rw-lam0.4", "ep1-6") == "ciess-g-rw-lam0.4-ep1-6"
    assert labels.pool_episodes("ep7-12") == (7, 12) and labels.pool_episodes("all") is None
    with pytest.raises(ValueError, match="unknown candidate pool"):
        labels.pool_episodes("ep7")
    d = labels.describe_run("ciess-ou-norw-lam0.2-ep7-12", "c90", baseline)
    assert d == {"method_label": "CIESS", "search": "ciess-ou-norw-lam0.2",
                 "variant": {"noise": "OU", "random_walk": False, "lambda": 0.2,
                             "recipe": "default", "episodes": "7-12", "table_row": False}}
    cand = labels.describe_run(labels.candidate_method("g-rw-lam0.4", 3, 5), "cand", baseline)
    assert cand["method_label"] == "CIESS candidate" and cand["search"] == "ciess-g-rw-lam0.4"
    assert labels.describe_run("esapn", "c90", baseline)["method_label"] == "ESAPN-B"
    assert labels.describe_run("esapn", "native", baseline)["method_label"] == "ESAPN"
    assert labels.describe_run("mr", "c90", baseline) == {"method_label": "MR", "variant": None,
                                                          "search": None}
    assert labels.describe_run("full", "dense", baseline)["method_label"] == "Full"


# ------------------------------------------------------------------------------ recipes
def test_a_recipe_name_rides_on_the_search_label_and_parses_back():
    from ciess.labels import CANDIDATE_RE, CIESS_METHOD_RE, Search, describe_run

    held = Search("gaussian", True, 0.4, "held")
    assert held.label == "g-rw-lam0.4-held" and Search.parse(held.label) == held
    assert Search.parse("g-rw-lam0.4").recipe is None
    m = CIESS_METHOD_RE.match("ciess-g-rw-lam0.01-code_noise-ep1-5")
    assert m["search"] == "g-rw-lam0.01-code_noise" and m["pool"] == "ep1-5"
    assert CIESS_METHOD_RE.match("ciess-g-rw-lam0.4-ep1-5")["search"] == "g-rw-lam0.4"
    assert CANDIDATE_RE.match("ciess-g-rw-lam0.4-held-e4i9")["search"] == "g-rw-lam0.4-held"
    held_run = describe_run("ciess-g-rw-lam0.4-held", "c80", None)
    assert held_run["variant"]["recipe"] == "held" and held_run["method_label"] == "CIESS (held)"
    assert describe_run("ciess-g-rw-lam0.4", "c80", None)["variant"]["recipe"] == "default"
    with pytest.raises(ValueError, match="no digits"):
        Search("gaussian", True, 0.4, "v2").label


def test_the_main_recipe_is_labelled_ciess_and_the_profiles_own_search_ciess_paper():
    """`ciess.main_recipe` (docs/ciess.md §18.5): its search's results are Table 1's "CIESS",
    the profile's own search (the paper's settings) becomes "CIESS (paper)", other recipes keep
    their names; a record's expected label is read from its variant's recipe."""
    from ciess.labels import ciess_label, describe_run, selection_label

    assert ciess_label("held", "held") == "CIESS" and ciess_label(None, "held") == "CIESS (paper)"
    assert ciess_label("code", "held") == "CIESS (code)"
    assert ciess_label(None, None) == "CIESS" and ciess_label("held", None) == "CIESS (held)"
    held = describe_run("ciess-g-rw-lam0.4-held-ep11-20", "c80", None, main_recipe="held")
    assert held["method_label"] == "CIESS" and held["variant"]["recipe"] == "held"
    own = describe_run("ciess-g-rw-lam0.4", "c80", None, main_recipe="held")
    assert own["method_label"] == "CIESS (paper)" and own["variant"]["recipe"] == "default"
    cand = describe_run("ciess-g-rw-lam0.4-held-e3i2", "cand", None, main_recipe="held")
    assert cand["method_label"] == "CIESS candidate"
    assert selection_label(held, None) == "CIESS (held)" and selection_label(own, None) == "CIESS"
    assert selection_label(held, "held") == "CIESS" and selection_label(cand, "held") is None
    old = {"method_label": "CIESS", "variant": {"noise": "G"}}  # written before recipes existed
    assert selection_label(old, "held") == "CIESS (paper)"
    assert selection_label({"method_label": "ES", "variant": None}, "held") is None


def test_a_recipes_table_episodes_are_a_range_of_its_episodes_or_all():
    from ciess.search.recipes import table_episodes

    ciess = {"episodes": 20, "recipes": {"held": {"hold_budget": True, "table_episodes": [11, 20]},
                                         "code": {"table_episodes": "all"}, "plain": {},
                                         "bad": {"table_episodes": [15, 25]}}}
    assert table_episodes(ciess, "held") == (11, 20)
    assert table_episodes(ciess, "code") is None and table_episodes(ciess, "plain") is None
    assert table_episodes(ciess, None) is None  # the default search: every episode (paper)
    with pytest.raises(ValueError, match=r"ciess.recipes.bad.table_episodes: \[15, 25\] is not "
                                         r"'all' or \[first, last\] within 1..20"):
        table_episodes(ciess, "bad")


def test_a_recipe_overrides_only_the_keys_it_names():
    from ciess.search.recipes import recipe_config, recipe_lambda

    ciess = {"lambda": {"ml-1m": 0.4, "yelp2018": 0.2}, "reward": {"quality": "ratio",
             "memory": "size_squared"}, "noise_scope": "entity", "hold_budget": False,
             "recipes": {"code": {"lambda": {"ml-1m": 0.01}, "reward": {"quality": "raw"},
                                  "noise_scope": "shared"},
                         "bad": {"episodes": 3}}}
    ciess["budget"] = {"unit": "epochs", "value": 5}
    ciess["recipes"]["short"] = {"hold_budget": True, "budget": {"unit": "epochs", "value": 2}}
    assert recipe_config(ciess, "short")["budget"] == {"unit": "epochs", "value": 2}
    assert recipe_config(ciess, "code")["budget"] == {"unit": "epochs", "value": 5}
    code = recipe_config(ciess, "code")
    assert code["reward"] == {"quality": "raw", "memory": "size_squared"}
    assert code["noise_scope"] == "shared" and code["hold_budget"] is False
    assert recipe_lambda(ciess, "code", "ml-1m") == 0.01
    assert recipe_lambda(ciess, "code", "yelp2018") == 0.2  # keys it does not name stay
    assert recipe_config(ciess, None) is ciess and ciess["reward"]["quality"] == "ratio"
    with pytest.raises(ValueError, match="no recipe 'nope'"):
        recipe_config(ciess, "nope")
    with pytest.raises(ValueError, match=r"\['episodes'\] cannot be set by a recipe"):
        recipe_config(ciess, "bad")


# ------------------------------------------------------------------- labels are data in the DAG
LABEL_PARSERS = ("Search.parse(", "budget_pct(", "pool_episodes(", "target_sparsity(",
                 "parse_ciess_method(", "CIESS_METHOD_RE", "CANDIDATE_RE")


def test_no_rule_or_job_script_parses_a_label_back():
    """The DAG builds its label tables once (workflow/rules/studies.smk: SEARCHES, POOLS,
    BUDGETS) and hands jobs values; a rule or script that parsed λ, a recipe, a pool or a budget
    out of a path would be a second source of those facts."""
    from conftest import REPO

    files = [REPO / "Snakefile", *(REPO / "workflow").rglob("*.smk"),
             *(REPO / "workflow/scripts").glob("*.py")]
    found = [f"{f.relative_to(REPO)}: {p}" for f in files for p in LABEL_PARSERS
             if p in f.read_text()]
    assert not found, found


def test_a_search_the_profile_does_not_plan_is_refused_naming_the_planned_ones(tmp_path):
    from conftest import run_workflow

    proc = run_workflow(tmp_path, "-n", "results/search/ml-100k/lightgcn/ciess-g-rw-lam0.77/"
                        "seed0/search_log.csv", check=False)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "CIESS search 'g-rw-lam0.77' is not one this profile plans" in out
    assert "g-rw-lam0.4," in out  # the planned searches are listed
