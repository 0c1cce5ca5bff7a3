"""MR: mixed random sizes, uniform per entity, repaired to meet the budget exactly
(docs/baselines.md §3)."""
from __future__ import annotations

import numpy as np

from baselines import MethodContext, register
from ciess.masks import D_MAX, budget_params, repair_to_budget, sizes_mask


def draw_sizes(n: int, target_pct: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform on {1, ..., D}, D = round(2 * 128 * (1 - c)) - 1 (the CIESS code's block)."""
    top = round(2 * D_MAX * (100 - target_pct) / 100) - 1
    return rng.integers(1, top + 1, n)


@register("mr", params={}, label="MR")
def make_masks(ctx: MethodContext, targets: list[int]) -> dict:
    if None in targets:
        raise ValueError("MR has no native mode: give target sparsities")
    out = {}
    nu, ni = ctx.split.n_users, ctx.split.n_items
    for pct in targets:
        rng = np.random.default_rng([ctx.seed, pct])
        sizes = draw_sizes(nu + ni, pct, rng)
        before = sizes.mean()
        sizes = repair_to_budget(sizes, budget_params(pct, nu, ni, ctx.n_tables), rng, ctx.n_tables)
        ctx.log.info("MR %d%%: mean size %.3f drawn, %.3f after repair", pct, before, sizes.mean())
        out[pct] = sizes_mask(sizes[:nu], sizes[nu:], **ctx.meta("mr", pct, mean_size_drawn=float(before)))
    return out
