# CIESS benchmark suite: the whole study as one DAG.
#
# Profiles: config/config.yaml is the full (paper) profile; config/quick.yaml, an overlay over it,
# is the embedded default (every rule, tiny data, no network). Paper: `--configfile config/config.yaml`.
#
# Output paths (all under results/):
#   data/{dataset}/source/                   verified source files + provenance.json
#   data/{dataset}/interactions.tsv, stats.json
#   data/{dataset}/split/{dataset}.{train,valid,test}.inter, manifest.json
#   runs/{dataset}/{model}/full/dense/seed{seed}/   the full-size model: metrics.json, model.pt,
#                                                   entity_quality.npz (CIESS's peak quality)
#   masks/{dataset}/{model}/{method}/{budget}/seed{seed}/mask.npz   budget = c80|c90|c95|native
#   runs/{dataset}/{model}/{method}/{budget}/seed{seed}/metrics.json  the common retraining
#   logs/{rule}/{wildcards}.log              one log per rule and job

import os

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version

min_version("8.0")

# Every path of the workflow (config/, results/, notebooks/) is relative to the working
# directory: say so, instead of a bare missing-file error, when Snakemake runs elsewhere.
if not os.path.exists("config/quick.yaml"):
    raise WorkflowError(
        f"no config/quick.yaml under the working directory {os.getcwd()}: run Snakemake in the "
        f"repository root ({workflow.basedir}), or give `--directory` a folder holding a link "
        "to its config/ (as tests/conftest.py does)"
    )


# the one full profile, then the quick overlay (a `--configfile` given on the command line is
# applied over both: config/config.yaml itself gives the paper profile back)
configfile: "config/config.yaml"
configfile: "config/quick.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/config.smk"
include: "workflow/rules/paths.smk"
include: "workflow/rules/targets.smk"
include: "workflow/rules/studies.smk"
include: "workflow/rules/notebooks.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/methods.smk"
include: "workflow/rules/ciess.smk"
include: "workflow/rules/diagnostics.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        get_final_output(),
