# CIESS study design (Table 1, Table 2, Figures 3-5) and the size-response diagnostic.
# Labels (budgets, search variants, pools) come from ciess.labels: one grammar for paths. The
# tables at the end of this file (SEARCHES, POOLS, BUDGETS) hold every label the profile plans
# with its values; rules pass those values to jobs, so nothing parses a label back.
import re

from snakemake.exceptions import WorkflowError

from ciess.labels import Search, budget_label, candidate_method, ciess_method, pool_label
from ciess.search.recipes import recipe_config, recipe_lambda, table_episodes
from ciess.search.selection import episode_intervals


def search_label(noise, random_walk, lam, recipe=None):
    """(gaussian, True, 0.4) -> g-rw-lam0.4: the CIESS variant in every path."""
    return Search(noise, random_walk, lam, recipe).label


def search_config(wildcards):
    """The `ciess:` block one search runs with: the profile's, under its recipe (if any)."""
    return recipe_config(config["ciess"], planned_search(wildcards.search).recipe)


def ciess_seeds(search=None):
    """Seeds of a CIESS search (searches cost the most): its recipe's `seeds`, else
    `ciess.seeds`, else the profile's `seeds`."""
    ciess = config["ciess"]
    if search is not None and SEARCHES[search].recipe is not None:
        ciess = recipe_config(ciess, SEARCHES[search].recipe)
    return ciess.get("seeds", config["seeds"])


def default_search(dataset):
    return search_label("gaussian", True, config["ciess"]["lambda"][dataset])


def main_recipe_search(dataset):
    """The search behind Table 1's CIESS row (`ciess.main_recipe`, docs/ciess.md §18.5), run
    for every main model: the main recipe's, or None when the profile's own search is CIESS."""
    recipe = config["ciess"].get("main_recipe")
    if recipe is None:
        return None
    return Search("gaussian", True, recipe_lambda(config["ciess"], recipe, dataset), recipe)


def planned_searches():
    """(dataset, model, Search) of every search: Table 1 (the profile's own search, the paper's,
    and the main recipe's), Table 2, Figure 4, the recipes."""
    studies, out = config["ciess"]["studies"], []
    for dataset in config["datasets"]:
        lam = config["ciess"]["lambda"][dataset]
        for model in studies["main_models"]:
            out.append((dataset, model, Search("gaussian", True, lam)))
            if main_recipe_search(dataset) is not None:
                out.append((dataset, model, main_recipe_search(dataset)))
        for model in studies["ablation_models"]:
            for v in studies["ablation_variants"]:
                out.append((dataset, model, Search(v["noise"], v["random_walk"], lam)))
        for model in studies["lambda_models"]:
            for grid_lam in studies["lambda_grid"][dataset]:
                out.append((dataset, model, Search("gaussian", True, grid_lam)))
        for model in studies.get("recipe_models", []):
            for recipe in config["ciess"].get("recipes") or {}:
                recipe_lam = recipe_lambda(config["ciess"], recipe, dataset)
                out.append((dataset, model, Search("gaussian", True, recipe_lam, recipe)))
    return [s for s in dict.fromkeys(out) if s[1] in config["models"]]


def ciess_searches():
    """(dataset, model, search label) of every search."""
    return [(dataset, model, search.label) for dataset, model, search in planned_searches()]


def interval_pools():
    """Figure 5's episode pools as path labels, e.g. ep1-6 (ciess.search.selection)."""
    sel = config["ciess"]["selection"]
    intervals = episode_intervals(
        config["ciess"]["episodes"],
        sel["episode_intervals"],
        sel["cumulative_intervals"],
    )
    return {pool_label(first, last): (first, last) for first, last in intervals}


def recipe_pools():
    """`ciess.studies.recipe_pools`: episode ranges whose candidates are also selected for every
    recipe search (e.g. the policy's last cycles), as path labels: ep11-20. Diagnostics beside
    the whole search's selection; like Figure 5's pools, no Table 1 row."""
    studies = config["ciess"]["studies"]
    if not (studies.get("recipe_models") and config["ciess"].get("recipes")):
        return {}  # no recipe search in this profile
    pools = studies.get("recipe_pools", [])
    for first, last in pools:
        if not 1 <= first <= last <= config["ciess"]["episodes"]:
            raise WorkflowError(
                f"config ciess.studies.recipe_pools: [{first}, {last}] is not a range of "
                f"episodes within 1..{config['ciess']['episodes']} (ciess.episodes)"
            )
    return {pool_label(first, last): (first, last) for first, last in pools}


def search_table_episodes(search):
    """The episode range whose candidates make a search's Table 1 row: its recipe's
    `table_episodes` (where a held policy has settled; docs/ciess.md §18.3), else None (all)."""
    try:
        return table_episodes(config["ciess"], SEARCHES[search].recipe)
    except ValueError as err:
        raise WorkflowError(str(err)) from None


def table_pool(search):
    """The pool label of a search's Table 1 row: e.g. ep11-20, or all."""
    episodes = search_table_episodes(search)
    return "all" if episodes is None else pool_label(*episodes)


def table1_pool(search, dataset):
    """The pool of a search's selection that is a Table 1 row (``variant.table_row`` of its
    record), or None: a search of the profile's own settings other than the dataset's Table 1
    search (Table 2's noise and walk variants, Figure 4's λ values) has no Table 1 row."""
    if SEARCHES[search].recipe is None and search != default_search(dataset):
        return None
    return table_pool(search)


def recipe_table_pools():
    """The Table 1 pools (other than all episodes) of the recipe searches this profile plans,
    as path labels."""
    out = {}
    for search in SEARCHES:
        episodes = search_table_episodes(search)
        if episodes is not None:
            out[pool_label(*episodes)] = episodes
    return out


def whole_search_selected(search):
    """Whether a search's selection from all its episodes is made: always where it is the
    Table 1 row (the paper's rule); for a recipe with `table_episodes`, as a diagnostic, if
    `ciess.selection.whole_search` (docs/ciess.md §18.3)."""
    return table_pool(search) == "all" or config["ciess"]["selection"].get("whole_search", True)


def ciess_results():
    """Selected-mask metrics of every search at every budget, and Figure 5's interval pools."""
    out = []
    budgets = [budget_label(b) for b in config["ciess"]["selection"]["budgets"]]
    for dataset, model, search in ciess_searches():
        pools = ["all"] if whole_search_selected(search) else []
        if model in config["ciess"]["studies"][
            "interval_models"
        ] and search == default_search(dataset):
            pools += list(interval_pools())
        if model in config["ciess"]["studies"].get("recipe_models", []) and (
            SEARCHES[search].recipe is not None
        ):
            pools += list(recipe_pools())
        pools = list(dict.fromkeys([*pools, table_pool(search)]))
        for pool in pools:
            for b in budgets:
                for seed in ciess_seeds(search):
                    out.append(
                        f"results/runs/{dataset}/{model}/{ciess_method(search, pool)}/{b}/seed{seed}/metrics.json"
                    )
    return out


def main_searches():
    """Table 1's searches (the profile's own: G + walk, the dataset's lambda; the main recipe's)
    and every recipe's search (docs/ciess.md §18), side by side, with what their notebook reads:
    the search log, the executed masks, the split (for popularity) and the per-budget selection.
    """
    out = []
    studies = config["ciess"]["studies"]
    for dataset, model, search in ciess_searches():
        main = main_recipe_search(dataset)
        is_main = model in studies["main_models"] and (
            search == default_search(dataset) or (main is not None and search == main.label)
        )
        is_recipe = (
            model in studies.get("recipe_models", [])
            and SEARCHES[search].recipe is not None
        )
        if not (is_main or is_recipe):
            continue
        for seed in ciess_seeds(search):
            base = f"results/search/{dataset}/{model}/ciess-{search}/seed{seed}"
            out.append(
                {
                    "dataset": dataset,
                    "model": model,
                    "search": search,
                    "seed": seed,
                    "log": f"{base}/search_log.csv",
                    "masks": f"{base}/masks.npz",
                    "manifest": split_manifest(dataset),
                    "selections": [
                        f"results/runs/{dataset}/{model}/ciess-{search}/{budget_label(b)}/seed{seed}/selection.csv"
                        for b in config["ciess"]["selection"]["budgets"]
                        if whole_search_selected(search)
                    ],
                    # a recipe whose Table 1 row selects from part of its episodes (§18.3)
                    "table_pool": table_pool(search),
                    "table_selections": [
                        f"results/runs/{dataset}/{model}/{ciess_method(search, table_pool(search))}/{budget_label(b)}/seed{seed}/selection.csv"
                        for b in config["ciess"]["selection"]["budgets"]
                        if table_pool(search) != "all"
                    ],
                }
            )
    return out


def main_search_inputs():
    return [
        path
        for s in main_searches()
        for path in (s["log"], s["masks"], s["manifest"], *s["selections"], *s["table_selections"])
    ]


def allow_not_reached(wildcards):
    """Table 1's default search must reach every budget (fail loudly); the ablation, lambda
    grid and episode intervals record an unreached budget as a gap."""
    main = (
        wildcards.model in config["ciess"]["studies"]["main_models"]
        and wildcards.search == default_search(wildcards.dataset)
        and wildcards.pool == "all"
    )
    return not main


def merges_chosen_only():
    """Candidates retrained on train only, the chosen one's merged retraining in its selection:
    ``ciess.selection.merged_retraining: chosen`` under a final protocol that has a merged
    retraining (docs/ciess.md section 11). Under train_val_es a candidate's run is the whole."""
    return (
        config["ciess"]["selection"]["merged_retraining"] == "chosen"
        and config["final_protocol"] != "train_val_es"
    )


def run_protocol(wildcards):
    """The final protocol a retrain_masked job runs: a candidate's train-only part when the
    selection retrains only the chosen candidate merged; else the profile's."""
    if wildcards.budget == "cand" and merges_chosen_only():
        return "train_val_es"
    return config["final_protocol"]


def select_inputs(wildcards):
    """A selection's candidates and their records; the split too where it retrains one."""
    out = {"metrics": candidate_metrics(wildcards)}
    if merges_chosen_only():
        out |= {"manifest": split_manifest(wildcards.dataset), "split_files": split_files(wildcards)}
    return out


def candidate_metrics(wildcards):
    """The retrained candidates of one (search, pool, budget): known once candidates exist."""
    pool = wildcards.get("pool", "all")
    cands = checkpoints.ciess_candidates.get(
        dataset=wildcards.dataset,
        model=wildcards.model,
        search=wildcards.search,
        seed=wildcards.seed,
        pool=pool,
        budget=wildcards.budget,
    ).output.candidates
    import pandas as pd

    # Candidates are named by (episode, iteration), not by budget: a mask that is a candidate
    # for several budgets or episode pools is retrained once.
    rows = pd.read_csv(cands)
    return [
        f"results/runs/{wildcards.dataset}/{wildcards.model}/{candidate_method(wildcards.search, e, i)}/cand/seed{wildcards.seed}/metrics.json"
        for e, i in zip(rows["episode"], rows["iteration"])
    ]


# ---------------------------------------------------------------------------- diagnostics
def size_response_budgets():
    """The CIESS search's per-iteration budget, the profile's extra budgets, and convergence."""
    sr = config["size_response"]
    return [config["ciess"]["budget"], *sr["extra_budgets"], "converged"]


def size_response_tables():
    """One table per dataset and size_response model of this profile, first seed only."""
    models = [m for m in config["size_response"]["models"] if m in config["models"]]
    return [
        f"results/diagnostics/size_response/{d}/{m}/seed{config['seeds'][0]}.csv"
        for d in config["datasets"]
        for m in models
    ]


# ---------------------------------------------------------------------------- label tables
# Every label the profile plans, with what it stands for, built once. Rules hand jobs these
# values (params), so no job or rule parses a λ, a recipe, a pool or a budget out of a path.
SEARCHES = {search.label: search for _, _, search in planned_searches()}
POOLS = {
    "all": None,
    **(interval_pools() if config["ciess"]["studies"]["interval_models"] else {}),
    **recipe_pools(),
    **recipe_table_pools(),
}
BUDGETS = {
    "dense": None,  # Full
    "cand": None,  # a CIESS candidate's retraining, checked at its selection
    **{
        budget_label(b): None if b == "native" else int(b)
        for b in [
            *(b for spec in config["methods"].values() for b in spec["budgets"]),
            *config["ciess"]["selection"]["budgets"],
        ]
    },
}
# CIESS method names -> (Search, pool): a selection "ciess-<search>[-<pool>]"
CIESS_SELECTIONS = {
    ciess_method(label, pool): (search, pool)
    for label, search in SEARCHES.items()
    for pool in POOLS
}


def _planned(table, kind, label):
    if label not in table:
        raise WorkflowError(
            f"{kind} '{label}' is not one this profile plans (planned: "
            f"{', '.join(sorted(table)) or 'none'}); add it to the profile"
        )
    return table[label]


def planned_search(label):
    return _planned(SEARCHES, "CIESS search", label)


def planned_pool(label):
    return _planned(POOLS, "candidate pool", label)


def target_pct(label):
    """The target sparsity (percent) a budget label stands for; None: no target."""
    return _planned(BUDGETS, "budget", label)


def ciess_run(method):
    """What a CIESS method name stands for, looked up in the tables: ("selection", Search,
    pool), ("candidate", Search, "all") for a retrained candidate "ciess-<search>-e<E>i<I>",
    or None for any other method."""
    if method in CIESS_SELECTIONS:
        return ("selection", *CIESS_SELECTIONS[method])
    base, _, tail = method.rpartition("-")
    if CIESS_SELECTIONS.get(base, (None, None))[1] == "all" and re.fullmatch(
        r"e\d+i\d+", tail
    ):
        return ("candidate", CIESS_SELECTIONS[base][0], "all")
    return None
