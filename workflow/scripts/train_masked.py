"""Rules pretrain_full and retrain_masked: the single train -> select -> test path."""
import torch

from ciess.logs import setup_rule_logging
from ciess.runs import train_and_record

log = setup_rule_logging(snakemake.log[0])  # noqa: F821
sm = snakemake  # noqa: F821
wc = sm.wildcards
torch.set_num_threads(sm.threads)
train_and_record(
    manifest=sm.input.manifest, model_name=wc.model, seed=int(wc.seed),
    train_cfg=sm.params.train, final_protocol=sm.params.final_protocol,
    model_overrides=sm.params.model_overrides, metrics_path=sm.output.metrics,
    mask_path=sm.input.get("mask"), config=sm.config,
    init_state_path=sm.input.get("init_state"),
    labels={"method": sm.params.method, "budget": sm.params.budget, "profile": sm.config["profile"]},
    model_path=sm.output.get("model"), quality_path=sm.output.get("quality"),
)
