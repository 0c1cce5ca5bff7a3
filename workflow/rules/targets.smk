# Targets: which runs the active profile asks for, and the inputs of the generic rules.


def method_runs():
    """Every (dataset, model, method, budget, seed) retraining the active profile asks for."""
    for dataset in config["datasets"]:
        for model in config["models"]:
            for method, spec in config["methods"].items():
                for budget in spec["budgets"]:
                    for seed in config["seeds"]:
                        yield dataset, model, method, budget_label(budget), seed


def method_inputs(method):
    """Input function of make_masks_<method>: the split, and the full model if asked for."""

    def inputs(wildcards):
        spec = config["methods"][method]
        out = {
            "manifest": split_manifest(wildcards.dataset),
            "split_files": split_files(wildcards),
        }
        if spec.get("needs_full_model", False):
            out["full_metrics"] = full_run(
                wildcards.dataset, wildcards.model, wildcards.seed
            )
        return out

    return inputs


def method_outputs(method):
    """Outputs of make_masks_<method>: one mask per budget (+ the initial tables to rewind to)."""
    spec = config["methods"][method]
    out = {
        "masks": [
            f"results/masks/{{dataset}}/{{model}}/{method}/{budget_label(b)}/seed{{seed}}/mask.npz"
            for b in spec["budgets"]
        ]
    }
    if spec.get("rewind", False):
        out["init_state"] = init_state_path(method)
    return out


def retrain_inputs(wildcards):
    """retrain_masked reads the split, the mask, and for rewinding methods the initial tables."""
    out = {
        "manifest": split_manifest(wildcards.dataset),
        "split_files": split_files(wildcards),
        "mask": f"results/masks/{wildcards.dataset}/{wildcards.model}/{wildcards.method}/{wildcards.budget}/seed{wildcards.seed}/mask.npz",
    }
    spec = config["methods"].get(wildcards.method, {})
    if spec.get("rewind", False):
        out["init_state"] = init_state_path(wildcards.method).format(**wildcards)
    return out


def all_metric_files():
    """Every metrics JSON the profile produces: Full, every method, every CIESS selection."""
    out = [
        full_run(d, m, s)
        for d in config["datasets"]
        for m in config["models"]
        for s in config["seeds"]
    ]
    out += [
        f"results/runs/{d}/{m}/{meth}/{b}/seed{s}/metrics.json"
        for d, m, meth, b, s in method_runs()
    ]
    return out + ciess_results()


def run_description(method, budget, dataset=None):
    """What a metrics JSON says about its method besides the name (ciess.labels.describe_run,
    CIESS names looked up in the label tables): method_label, variant, search. ``dataset``: the
    run's, which decides whether a CIESS search of the profile's own settings is Table 1's (its
    λ) or Figure 4's (table1_pool)."""
    from baselines import table_label
    from ciess.labels import describe_run

    def baseline_label(name, budget):
        return table_label(name, budget, config["methods"].get(name, {}).get("module"))

    return describe_run(method, budget, baseline_label, ciess_run,
                        lambda search: table1_pool(search.label, dataset),
                        config["ciess"].get("main_recipe"))


def method_settings(method):
    """The settings of the method that made a run's mask, recorded in its metrics (part of its
    settings hash, ciess.provenance.settings_hash): the method's config entry without its
    budgets, or for a CIESS candidate the settings of its search."""
    from ciess.search.search import SearchSettings

    if method in config["methods"]:
        return {k: v for k, v in config["methods"][method].items() if k != "budgets"}
    run = ciess_run(method)
    if run is None or run[0] != "candidate":
        raise ValueError(
            f"method '{method}': neither a method of config methods: nor a CIESS candidate "
            "of a search this profile plans"
        )
    search = run[1]
    return SearchSettings.method_settings(
        recipe_config(config["ciess"], search.recipe), search
    )


def get_final_output():
    out = ["results/tables/results.csv"]
    out += [f"results/notebooks/{name}.html" for name in NOTEBOOKS]
    out += [path for dataset in config["datasets"] for path in split_outputs(dataset)]
    return out + all_metric_files()
