"""Rule ciess_select: the retrained candidate best on validation is the reported result (with
its merged retraining, when the candidates were retrained on train only)."""
from ciess.jobs import start_job
from ciess.per_user import per_user_path
from ciess.search.selective_retraining import MergeChosen, write_selection

sm = snakemake  # noqa: F821
merges = sm.params.merge_chosen
log = start_job(sm, computes=merges)
wc = sm.wildcards
labels = dict(dataset=wc.dataset, model=wc.model, budget=wc.budget, seed=int(wc.seed),
              **sm.params.description)
per_user_path(sm.output.metrics).unlink(missing_ok=True)  # only a merged retraining here writes one
merge = None
if merges:
    merge = MergeChosen(sm.params.final_protocol, sm.output.metrics, dict(
        manifest=sm.input.manifest, model_name=wc.model, seed=int(wc.seed),
        train_cfg=sm.params.train, model_overrides=sm.params.model_overrides, config=sm.config,
        checkpoint_minutes=sm.config["checkpoint_minutes"], rule_log=sm.log[0]))
write_selection(sm.input.candidates, sm.input.metrics, sm.output.metrics, sm.output.selection,
                sm.params.method, labels, log, sm.params.final_protocol, merge=merge)
