"""What every workflow script does first, in one place: log to the rule's log file (holding the
job's lock, ``ciess.logs``), set the thread count of jobs that compute, and import the config's
`plugins` (modules that register models and methods of your own)."""
from __future__ import annotations

import logging

from ciess.logs import setup_rule_logging
from ciess.models.registry import import_plugins


def start_job(snakemake, computes: bool = False) -> logging.Logger:
    """``computes``: the job trains or evaluates models (torch then uses ``threads``)."""
    log = setup_rule_logging(snakemake.log[0])
    if computes:
        import torch

        torch.set_num_threads(snakemake.threads)
    import_plugins(snakemake.config.get("plugins"))
    return log
