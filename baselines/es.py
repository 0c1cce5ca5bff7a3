"""ES: one equal embedding size for every user and item, the largest that meets the budget."""
from __future__ import annotations

import numpy as np

from baselines import MethodContext, register
from ciess.masks import D_MAX, budget_params, sizes_mask


def equal_size_for_budget(target_pct: int, n_users: int, n_items: int, n_tables: int = 1) -> int:
    """Largest s with s * (U + I) * n_tables <= budget (so the budget holds exactly)."""
    per_size = (n_users + n_items) * n_tables
    size = budget_params(target_pct, n_users, n_items, n_tables) // per_size
    if size < 1:
        raise ValueError(f"budget {target_pct}% leaves less than one dimension per entity")
    return min(int(size), D_MAX)


@register("es")
def make_mask(ctx: MethodContext):
    if ctx.target_pct is None:
        raise ValueError("ES has no native mode: give a target sparsity")
    size = equal_size_for_budget(ctx.target_pct, ctx.split.n_users, ctx.split.n_items, ctx.n_tables)
    ctx.log.info("ES: size %d for every entity at %d%% sparsity", size, ctx.target_pct)
    return sizes_mask(np.full(ctx.split.n_users, size), np.full(ctx.split.n_items, size),
                      **ctx.meta("es", size=size))
