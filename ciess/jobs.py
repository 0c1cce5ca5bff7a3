"""What every workflow script does first, in one place: log to the rule's log file (holding the
job's lock, ``ciess.logs``), set the thread count of jobs that compute, and import the config's
`plugins` (modules that register models and methods of your own)."""
from __future__ import annotations

import logging

from ciess.logs import setup_rule_logging
from ciess.models.registry import import_plugins

# Rules whose jobs run on the submit host under a cluster executor (Snakefile: localrules), not
# through the scheduler: each is a second of file work (reading a search log or a few metrics
# JSONs, writing a CSV or one mask) that would otherwise pay a queue wait and two Snakemake
# start-ups per job (~10 s on the test cluster); and fetch_dataset needs the network, which
# login nodes have and compute nodes often do not. Everything that trains, searches, makes
# baseline masks or renders a notebook goes through the scheduler.
SUBMIT_HOST_RULES = ("fetch_dataset", "ciess_candidates", "ciess_candidate_mask", "ciess_select",
                     "ciess_select_interval", "aggregate_results")


def start_job(snakemake, computes: bool = False) -> logging.Logger:
    """``computes``: the job trains or evaluates models (torch then uses ``threads``)."""
    log = setup_rule_logging(snakemake.log[0])
    if computes:
        import torch

        torch.set_num_threads(snakemake.threads)
    import_plugins(snakemake.config.get("plugins"))
    return log
