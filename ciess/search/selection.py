"""Selective retraining's candidate choice per budget (docs/ciess.md §11, Eq. 15-16)."""
from __future__ import annotations

import pandas as pd

from ciess.masks import within_budget


class BudgetNotReached(RuntimeError):
    pass


def eligible_rows(log: pd.DataFrame, pct: int, eligibility: str, budgets: list[int]) -> pd.Series:
    """inclusive (paper): every mask with sparsity >= c; exclusive (code): only masks whose
    tightest satisfied budget among ``budgets`` is c."""
    ok = within_budget(log["params"], log["capacity"], pct)
    if eligibility == "inclusive":
        return ok
    if eligibility != "exclusive":
        raise ValueError(f"selection.eligibility must be inclusive or exclusive, got {eligibility!r}")
    tighter = [b for b in budgets if b > pct]
    for b in tighter:
        ok &= ~within_budget(log["params"], log["capacity"], b)
    return ok


def episode_intervals(episodes: int, n_intervals: int, cumulative: bool = False) -> list[tuple[int, int]]:
    """Consecutive (first, last) episode ranges; cumulative ranges all start at episode 1."""
    if episodes % n_intervals:
        raise ValueError(f"{episodes} episodes do not split into {n_intervals} equal intervals")
    size = episodes // n_intervals
    return [(1 if cumulative else k * size + 1, (k + 1) * size) for k in range(n_intervals)]


def top_candidates(log: pd.DataFrame, pct: int, l: int, eligibility: str = "inclusive",
                   budgets: list[int] = (80, 90, 95),
                   episodes: tuple[int, int] | None = None) -> pd.DataFrame:
    """The top-l eligible masks by validation q (ties: earlier episode, then iteration)."""
    pool = log
    if episodes is not None:
        pool = pool[(pool["episode"] >= episodes[0]) & (pool["episode"] <= episodes[1])]
    pool = pool[eligible_rows(pool, pct, eligibility, list(budgets))]
    if pool.empty:
        where = f" in episodes {episodes[0]}-{episodes[1]}" if episodes else ""
        raise BudgetNotReached(f"budget {pct}% not reached{where}: no executed mask meets it; "
                               "raise lambda or M")
    pool = pool.assign(_neg=-pool["val_avg_user"]).sort_values(["_neg", "episode", "iteration"],
                                                                 kind="stable")
    return pool.drop(columns="_neg").head(l)
