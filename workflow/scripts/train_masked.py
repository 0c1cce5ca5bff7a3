"""Rules pretrain_full and retrain_masked: the single train -> select -> test path."""
from ciess.jobs import start_job
from ciess.runs import train_and_record

sm = snakemake  # noqa: F821
log = start_job(sm, computes=True)
train_and_record(
    manifest=sm.input.manifest, model_name=sm.wildcards.model, seed=int(sm.wildcards.seed),
    train_cfg=sm.params.train, final_protocol=sm.params.final_protocol,
    model_overrides=sm.params.model_overrides, metrics_path=sm.output.metrics,
    mask_path=sm.input.get("mask"), target_pct=sm.params.target_pct, config=sm.config,
    init_state_path=sm.input.get("init_state"),
    labels={"method": sm.params.method, "budget": sm.params.budget, "profile": sm.config["profile"],
            "method_settings": sm.params.method_settings, **sm.params.description},
    model_path=sm.output.get("model"), quality_path=sm.output.get("quality"),
    per_user_path=sm.output.per_user, checkpoint_minutes=sm.config["checkpoint_minutes"],
    rule_log=sm.log[0],
)
