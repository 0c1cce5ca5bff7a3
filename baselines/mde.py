"""MDE: mixed dimension embeddings (Ginart et al., ISIT '21), sizes by a popularity power law
(docs/baselines.md §7).

Entity n (user or item) with f_n training interactions gets size d_n = clip(λ · f_n^α, 1, 128).
One λ serves users and items (both sides sum to the same number of interactions, so f_n is
MDE's popularity p_n up to one shared factor); λ is the largest value whose floored sizes meet
the budget, and the few parameters left under the budget go, one each, to the entities with
the largest rounding remainders, so every budget is met exactly or within n_tables − 1
parameters. α = 0 is ES (with the remainder spread); larger α give the popular entities more.

α is chosen per budget on **validation** from the grid ``alphas``
(``baselines.choose_on_validation``): each candidate mask is trained on the training split
through the shared loop (``ciess.train``), early-stopped on validation, and the best validation
AVG wins. Test is never read here; the test score of every
α is the separate diagnostic ``mde_alpha_sweep`` (an oracle view, never a table row).
"""
from __future__ import annotations

import numpy as np

from baselines import MethodContext, choose_on_validation, register
from ciess.masks import D_MAX, budget_params, proportional_sizes, sizes_mask

DEFAULTS = {"alphas": [0.1, 0.2, 0.3, 0.5]}


def power_sizes(freq: np.ndarray, alpha: float, budget: int, d_max: int = D_MAX) -> np.ndarray:
    """Integer sizes in [1, d_max] proportional to max(freq, 1)^alpha, with sum(sizes) <= budget
    and as close to it as the size range allows (the budget counts one table; callers divide
    the parameter budget by the number of tables)."""
    if not 0.0 <= alpha <= 4.0:
        raise ValueError(f"mde: alpha must lie in [0, 4], got {alpha}")
    weight = np.maximum(np.asarray(freq, dtype=np.float64), 1.0) ** alpha
    return proportional_sizes(weight, budget, d_max, who="mde")


def mde_mask(split, target_pct: int, alpha: float, n_tables: int, meta: dict):
    """The MDE mask of one budget and one alpha."""
    pop = split.popularity()
    per_table = budget_params(target_pct, split.n_users, split.n_items, n_tables) // n_tables
    sizes = power_sizes(np.concatenate([pop["user"], pop["item"]]), alpha, per_table)
    return sizes_mask(sizes[:split.n_users], sizes[split.n_users:], **meta)


@register("mde", params=DEFAULTS, label="MDE", device_test=([80], {"alphas": [0.2, 0.5]}))
def make_masks(ctx: MethodContext, targets: list) -> dict:
    alphas = [float(a) for a in ctx.params.get("alphas", DEFAULTS["alphas"])]
    return choose_on_validation(
        ctx, targets, "mde", "alpha", alphas,
        lambda pct, alpha, meta: mde_mask(ctx.split, pct, alpha, ctx.n_tables, meta))
