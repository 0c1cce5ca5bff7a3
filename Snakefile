# CIESS benchmark suite: the whole study as one DAG.
#
# Profiles: config/quick.yaml is the embedded default (every rule, tiny data, no network);
# the paper profile is `--configfile config/config.yaml`.
#
# Output paths (all under results/):
#   data/{dataset}/source/                   verified source files + provenance.json
#   data/{dataset}/interactions.tsv, stats.json
#   data/{dataset}/split/{dataset}.{train,valid,test}.inter, manifest.json
#   logs/{rule}/{wildcards}.log              one log per rule and job

from snakemake.utils import min_version

min_version("8.0")


configfile: "config/quick.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"


rule all:
    default_target: True
    input:
        get_final_output(),
