# Diagnostics: measurements that say whether a method can work on this data, before its results.


rule size_response:
    input:
        manifest=split_manifest(),
        split_files=split_files,
        peak="results/runs/{dataset}/{model}/full/dense/seed{seed}/entity_quality.npz",
    output:
        table="results/diagnostics/size_response/{dataset}/{model}/seed{seed}.csv",
    log:
        "results/logs/size_response/{dataset}/{model}/seed{seed}.log",
    conda:
        "../../environment.yml"
    threads: config["threads"]
    resources:
        **config["resources"]["training"],
    params:
        sizes=config["size_response"]["sizes"],
        budgets=size_response_budgets(),
        lam=lambda wc: config["ciess"]["lambda"][wc.dataset],
        reward=config["ciess"]["reward"],
        train=train_params,
        model_overrides=lambda wc: model_overrides_block(config, wc.model),
    script:
        "../scripts/size_response.py"
