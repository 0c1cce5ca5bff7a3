# CIESS: search -> top-l candidates per budget -> common retraining -> validation selection.
# Search labels: {noise code}-{rw|norw}-lam{lambda}[-{recipe}], e.g. g-rw-lam0.4 (ciess/labels.py).


rule ciess_search:
    input:
        manifest=split_manifest(),
        split_files=split_files,
        peak="results/runs/{dataset}/{model}/full/dense/seed{seed}/entity_quality.npz",
    output:
        log_csv="results/search/{dataset}/{model}/ciess-{search}/seed{seed}/search_log.csv",
        masks="results/search/{dataset}/{model}/ciess-{search}/seed{seed}/masks.npz",
    log:
        "results/logs/ciess_search/{dataset}/{model}/{search}/seed{seed}.log",
    conda:
        "../../environment.yml"
    threads: config["threads"]
    resources:
        **config["resources"]["search"],
    params:
        ciess=search_config,
        search=lambda wc: planned_search(wc.search).__dict__,
        train=train_params,
        model_overrides=lambda wc: model_overrides_block(config, wc.model),
    script:
        "../scripts/ciess_search.py"


checkpoint ciess_candidates:
    input:
        log_csv="results/search/{dataset}/{model}/ciess-{search}/seed{seed}/search_log.csv",
    output:
        candidates="results/search/{dataset}/{model}/ciess-{search}/seed{seed}/candidates/{pool}/{budget}.csv",
    log:
        "results/logs/ciess_candidates/{dataset}/{model}/{search}/{pool}/{budget}/seed{seed}.log",
    localrule: True
    conda:
        "../../environment.yml"
    resources:
        **config["resources"]["bookkeeping"],
    params:
        target_pct=lambda wc: target_pct(wc.budget),
        episodes=lambda wc: planned_pool(wc.pool),
        top_l=config["ciess"]["selection"]["top_l"],
        eligibility=config["ciess"]["selection"]["eligibility"],
        budgets=config["ciess"]["selection"]["budgets"],
        allow_not_reached=allow_not_reached,
    script:
        "../scripts/ciess_candidates.py"


rule ciess_candidate_mask:
    input:
        masks="results/search/{dataset}/{model}/ciess-{search}/seed{seed}/masks.npz",
    output:
        mask="results/masks/{dataset}/{model}/ciess-{search}-e{episode}i{iteration}/cand/seed{seed}/mask.npz",
    log:
        "results/logs/ciess_candidate_mask/{dataset}/{model}/{search}/seed{seed}/e{episode}i{iteration}.log",
    localrule: True
    conda:
        "../../environment.yml"
    resources:
        **config["resources"]["bookkeeping"],
    script:
        "../scripts/ciess_candidate_mask.py"


SELECTION_TRAINS = merges_chosen_only()  # the selection retrains the chosen candidate merged


rule ciess_select:
    input:
        unpack(select_inputs),
        candidates="results/search/{dataset}/{model}/ciess-{search}/seed{seed}/candidates/all/{budget}.csv",
    output:
        metrics="results/runs/{dataset}/{model}/ciess-{search}/{budget}/seed{seed}/metrics.json",
        selection="results/runs/{dataset}/{model}/ciess-{search}/{budget}/seed{seed}/selection.csv",
    log:
        "results/logs/ciess_select/{dataset}/{model}/{search}/all/{budget}/seed{seed}.log",
    localrule: not SELECTION_TRAINS
    conda:
        "../../environment.yml"
    threads: config["threads"] if SELECTION_TRAINS else 1
    resources:
        **config["resources"]["training" if SELECTION_TRAINS else "bookkeeping"],
    params:
        method=lambda wc: ciess_method(wc.search),
        description=lambda wc: run_description(ciess_method(wc.search), wc.budget, wc.dataset),
        merge_chosen=SELECTION_TRAINS,
        final_protocol=config["final_protocol"],
        train=train_params,
        model_overrides=lambda wc: model_overrides_block(config, wc.model),
    script:
        "../scripts/ciess_select.py"


use rule ciess_select as ciess_select_interval with:
    input:
        unpack(select_inputs),
        candidates="results/search/{dataset}/{model}/ciess-{search}/seed{seed}/candidates/{pool}/{budget}.csv",
    output:
        metrics="results/runs/{dataset}/{model}/ciess-{search}-{pool}/{budget}/seed{seed}/metrics.json",
        selection="results/runs/{dataset}/{model}/ciess-{search}-{pool}/{budget}/seed{seed}/selection.csv",
    log:
        "results/logs/ciess_select/{dataset}/{model}/{search}/{pool}/{budget}/seed{seed}.log",
    localrule: not SELECTION_TRAINS  # `use rule` does not carry localrule over
    params:
        method=lambda wc: ciess_method(wc.search, wc.pool),
        description=lambda wc: run_description(
            ciess_method(wc.search, wc.pool), wc.budget, wc.dataset
        ),
        merge_chosen=SELECTION_TRAINS,
        final_protocol=config["final_protocol"],
        train=train_params,
        model_overrides=lambda wc: model_overrides_block(config, wc.model),


ruleorder: ciess_select > ciess_select_interval > retrain_masked
