# The one train -> validate -> test path (docs/protocol.md §7) for the full model and every mask.


rule pretrain_full:
    input:
        manifest=split_manifest(),
        split_files=split_files,
    output:
        metrics="results/runs/{dataset}/{model}/full/dense/seed{seed}/metrics.json",
        per_user="results/runs/{dataset}/{model}/full/dense/seed{seed}/per_user_test.npz",
        model="results/runs/{dataset}/{model}/full/dense/seed{seed}/model.pt",
        quality="results/runs/{dataset}/{model}/full/dense/seed{seed}/entity_quality.npz",
    log:
        "results/logs/pretrain_full/{dataset}/{model}/seed{seed}.log",
    conda:
        "../../environment.yml"
    threads: config["threads"]
    resources:
        **config["resources"]["training"],
    params:
        train=train_params,
        final_protocol=config["final_protocol"],
        model_overrides=lambda wc: model_overrides_block(config, wc.model),
        method="full",
        method_settings={},
        budget="dense",
        target_pct=None,
        description=run_description("full", "dense"),
    script:
        "../scripts/train_masked.py"


rule retrain_masked:
    input:
        unpack(retrain_inputs),
    output:
        metrics="results/runs/{dataset}/{model}/{method}/{budget}/seed{seed}/metrics.json",
        per_user="results/runs/{dataset}/{model}/{method}/{budget}/seed{seed}/per_user_test.npz",
    log:
        "results/logs/retrain_masked/{dataset}/{model}/{method}/{budget}/seed{seed}.log",
    conda:
        "../../environment.yml"
    threads: config["threads"]
    resources:
        **config["resources"]["training"],
    params:
        train=train_params,
        final_protocol=run_protocol,
        model_overrides=lambda wc: model_overrides_block(config, wc.model),
        method=lambda wc: wc.method,
        method_settings=lambda wc: method_settings(wc.method),
        budget=lambda wc: wc.budget,
        target_pct=lambda wc: target_pct(wc.budget),
        description=lambda wc: run_description(wc.method, wc.budget, wc.dataset),
    script:
        "../scripts/train_masked.py"
