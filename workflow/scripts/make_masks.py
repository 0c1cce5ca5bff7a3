"""Rules make_masks_<method>: run one registered method for all its budgets, save the masks."""
from pathlib import Path

from baselines import MethodContext, run_method
from ciess.jobs import start_job
from ciess.masks import save_mask
from ciess.data.read_split import load_split

sm = snakemake  # noqa: F821
log = start_job(sm, computes=True)
ctx = MethodContext(
    split=load_split(sm.input.manifest), model=sm.wildcards.model, seed=int(sm.wildcards.seed),
    params=sm.params.method_params, train=sm.params.train, model_overrides=sm.params.model_overrides,
    full_run_dir=Path(sm.input.full_metrics).parent if "full_metrics" in sm.input.keys() else None,
    init_state_path=Path(sm.output.init_state) if "init_state" in sm.output.keys() else None,
    log=log,
)
log.info("%s on %s / %s, seed %s: budgets %s (the rule's time and cost start here)",
         sm.params.method, sm.wildcards.dataset, ctx.model, ctx.seed, sm.params.budgets)
masks = run_method(sm.params.method, ctx, sm.params.budgets, sm.params.module)
for (budget, mask, acct), path in zip(masks, sm.output.masks):
    save_mask(path, mask, ctx.split.n_users, ctx.split.n_items)
    log.info("%s %s: %d params, sparsity %.4f -> %s", sm.params.method, budget, acct["params"],
             acct["sparsity"], path)
