"""Rule make_mask: run one registered embedding-size method and save its mask."""
from pathlib import Path

import torch

from baselines import MethodContext, get_method
from ciess.logs import setup_rule_logging
from ciess.masks import account, save_mask
from ciess.split_data import load_split

log = setup_rule_logging(snakemake.log[0])  # noqa: F821
sm = snakemake  # noqa: F821
wc = sm.wildcards
torch.set_num_threads(sm.threads)
ctx = MethodContext(
    split=load_split(sm.input.manifest), model=wc.model, target_pct=sm.params.target_pct,
    seed=int(wc.seed), params=sm.params.method_params, train=sm.params.train,
    model_overrides=sm.params.model_overrides,
    full_run_dir=Path(sm.input.full_metrics).parent if sm.input.get("full_metrics") else None,
    log=log,
)
mask = get_method(wc.method, sm.params.get("module"))(ctx)
gmf_dense = wc.model == "neumf" and not sm.params.model_overrides.get("mask_gmf", True)
acct = account(mask, ctx.n_tables, gmf_dense)
if ctx.target_pct is not None and 100 * acct["params"] > (100 - ctx.target_pct) * acct["capacity"]:
    raise RuntimeError(f"{wc.method} returned a mask with sparsity {acct['sparsity']:.4f}, "
                       f"which violates the {ctx.target_pct}% budget")
mask.meta.update({k: acct[k] for k in ("params", "sparsity")})
save_mask(sm.output.mask, mask)
log.info("%s mask: %d params, sparsity %.4f", wc.method, acct["params"], acct["sparsity"])
