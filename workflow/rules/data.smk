# Data: fetch and verify -> preprocess -> split (docs/protocol.md §1-3).


rule fetch_dataset:
    output:
        source_dir=directory("results/data/{dataset}/source"),
    log:
        "results/logs/fetch_dataset/{dataset}.log",
    localrule: True
    conda:
        "../../environment.yml"
    resources:
        **config["resources"]["bookkeeping"],
    params:
        catalog=config["dataset_catalog"],
        mirror=config["data"]["mirror"],
    script:
        "../scripts/fetch_dataset.py"


rule preprocess_dataset:
    input:
        source_dir="results/data/{dataset}/source",
    output:
        table="results/data/{dataset}/interactions.tsv",
        stats="results/data/{dataset}/stats.json",
    log:
        "results/logs/preprocess_dataset/{dataset}.log",
    conda:
        "../../environment.yml"
    resources:
        **config["resources"]["bookkeeping"],
    params:
        catalog=config["dataset_catalog"],
        source_dir=lambda wc, input: input.source_dir,
        mirror=config["data"]["mirror"],
        drop_official_code_first_line=config["data"]["drop_official_code_first_line"],
        drop_duplicates=config["data"]["drop_duplicates"],
    script:
        "../scripts/preprocess_dataset.py"


rule split_dataset:
    input:
        table="results/data/{dataset}/interactions.tsv",
        stats="results/data/{dataset}/stats.json",
    output:
        train="results/data/{dataset}/split/{dataset}.train.inter",
        valid="results/data/{dataset}/split/{dataset}.valid.inter",
        test="results/data/{dataset}/split/{dataset}.test.inter",
        manifest=split_manifest(),
    log:
        "results/logs/split_dataset/{dataset}.log",
    conda:
        "../../environment.yml"
    resources:
        **config["resources"]["bookkeeping"],
    params:
        catalog=config["dataset_catalog"],
        ratios=config["data"]["split"]["ratios"],
        seed=config["data"]["split"]["seed"],
    script:
        "../scripts/split_dataset.py"
