"""ES: one equal size for every user and item, the largest that meets the budget
(docs/baselines.md §2: floor((1 - c) * 128) -> 25 / 12 / 6)."""
from __future__ import annotations

import numpy as np

from baselines import MethodContext, register
from ciess.masks import D_MAX, budget_params, sizes_mask


def equal_size_for_budget(target_pct: int, n_users: int, n_items: int, n_tables: int = 1) -> int:
    """Largest s with s * (U + I) * n_tables <= budget (so the budget holds exactly)."""
    size = budget_params(target_pct, n_users, n_items, n_tables) // ((n_users + n_items) * n_tables)
    if size < 1:
        raise ValueError(f"budget {target_pct}% leaves less than one dimension per entity")
    return min(int(size), D_MAX)


@register("es", params={}, label="ES", dense_gmf=True)
def make_masks(ctx: MethodContext, targets: list) -> dict:
    if None in targets:
        raise ValueError("ES has no native mode: give target sparsities")
    nu, ni = ctx.split.n_users, ctx.split.n_items
    out = {}
    for pct in targets:
        size = equal_size_for_budget(pct, nu, ni, ctx.n_tables)
        ctx.log.info("ES %d%%: size %d for every entity", pct, size)
        out[pct] = sizes_mask(np.full(nu, size), np.full(ni, size), **ctx.meta("es", pct, size=size))
    return out
