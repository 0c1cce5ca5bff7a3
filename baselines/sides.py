"""Sides: equal sizes within users and within items, the ratio between the two sides chosen on
validation (docs/baselines.md §8). A suite diagnostic, not a method of the paper.

Every user gets d_u, every item d_i, with d_u / d_i = ρ, scaled to meet the budget exactly (the
few parameters left under it go to the largest rounding remainders, as MDE's;
``ciess.masks.proportional_sizes``). ρ = 1 is ES. It asks how much of what a per-entity search
gains over ES is a split of the budget between the two tables: the budget-held CIESS searches
on ML-1M move dimensions from items to users (docs/ciess.md §18.1). ρ is chosen per budget
from the grid ``ratios`` on validation (test is never read), by ``baselines.choose_on_validation``
as for MDE.
"""
from __future__ import annotations

import numpy as np

from baselines import MethodContext, choose_on_validation, register
from ciess.masks import budget_params, proportional_sizes, sizes_mask

DEFAULTS = {"ratios": [0.5, 1.0, 2.0, 4.0, 8.0, 16.0]}


def sides_mask(split, target_pct: int, ratio: float, n_tables: int, meta: dict):
    """The mask of one budget with user size / item size = ``ratio`` (before rounding)."""
    if not 0 < ratio <= 128:
        raise ValueError(f"sides: ratio must lie in (0, 128], got {ratio}")
    per_table = budget_params(target_pct, split.n_users, split.n_items, n_tables) // n_tables
    weight = np.concatenate([np.full(split.n_users, float(ratio)), np.ones(split.n_items)])
    sizes = proportional_sizes(weight, per_table, who="sides")
    return sizes_mask(sizes[:split.n_users], sizes[split.n_users:], **meta)


@register("sides", params=DEFAULTS, label="Sides", device_test=([80], {"ratios": [1.0, 4.0]}))
def make_masks(ctx: MethodContext, targets: list) -> dict:
    ratios = [float(r) for r in ctx.params.get("ratios", DEFAULTS["ratios"])]
    return choose_on_validation(
        ctx, targets, "sides", "ratio", ratios,
        lambda pct, ratio, meta: sides_mask(ctx.split, pct, ratio, ctx.n_tables, meta))
