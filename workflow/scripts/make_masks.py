"""Rules make_masks_<method>: run one registered method for all its budgets, save the masks."""
from pathlib import Path

import torch

from baselines import MethodContext, get_method
from ciess.logs import setup_rule_logging
from ciess.masks import check_budget, save_mask
from ciess.models import gmf_dense
from ciess.split_data import load_split

log = setup_rule_logging(snakemake.log[0])  # noqa: F821
sm = snakemake  # noqa: F821
wc = sm.wildcards
torch.set_num_threads(sm.threads)
ctx = MethodContext(
    split=load_split(sm.input.manifest), model=wc.model, seed=int(wc.seed),
    params=sm.params.method_params, train=sm.params.train, model_overrides=sm.params.model_overrides,
    full_run_dir=Path(sm.input.full_metrics).parent if "full_metrics" in sm.input.keys() else None,
    init_state_path=Path(sm.output.init_state) if "init_state" in sm.output.keys() else None,
    log=log,
)
targets = [None if t == "native" else int(t) for t in sm.params.targets]
masks = get_method(sm.params.method, sm.params.module)(ctx, targets)
for label, path in zip(sm.params.targets, sm.output.masks):
    target = None if label == "native" else int(label)
    if target not in masks:
        raise RuntimeError(f"{sm.params.method} returned no mask for target {label}")
    mask = masks[target]
    acct = check_budget(mask, "native" if target is None else f"c{target}", ctx.n_tables,
                        gmf_dense(wc.model, sm.params.model_overrides), f"{sm.params.method} mask for {path}")
    mask.meta.update({k: acct[k] for k in ("params", "sparsity")})
    save_mask(path, mask, ctx.split.n_users, ctx.split.n_items)
    log.info("%s %s: %d params, sparsity %.4f -> %s", sm.params.method, label, acct["params"],
             acct["sparsity"], path)
