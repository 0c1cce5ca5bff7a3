"""Size response: can the CIESS reward see the embedding size at the search's training budget?

A search can only learn sizes its reward distinguishes. This diagnostic trains fresh models with
one uniform size d for every user and item, at the per-iteration budget the search uses (and at
larger ones, and to convergence), and records validation quality and the reward the search would
pay for that size: mean q - lambda (d / D_MAX)^2, with q each entity's quality over its peak in
the full model (``ciess.search.env.reward``). A flat or inverted quality curve at the search
budget means the reward sees only the memory term, and the search must drift to the smallest
sizes whatever the data.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ciess.masks import D_MAX, account, sizes_mask
from ciess.models import build_model
from ciess.search.env import quality_ratio, reward
from ciess.data.read_split import SplitData
from ciess.train import TrainSettings, seed_everything, train_model

log = logging.getLogger(__name__)

CONVERGED = "converged"


@dataclass(frozen=True)
class Budget:
    """One training budget: a fixed number of epochs or batches, or early stopping."""

    unit: str  # "epochs" | "batches" | "converged"
    value: float = 0.0

    @classmethod
    def from_config(cls, entry) -> "Budget":
        if entry == CONVERGED:
            return cls(CONVERGED)
        if not isinstance(entry, dict) or set(entry) != {"unit", "value"} \
                or entry["unit"] not in ("epochs", "batches") or not entry["value"] > 0:
            raise ValueError(f"size_response budget {entry!r}: expected 'converged' or "
                             "{unit: epochs|batches, value: > 0}")
        return cls(entry["unit"], float(entry["value"]))

    @property
    def label(self) -> str:
        return CONVERGED if self.unit == CONVERGED else f"{self.value:g} {self.unit}"

    def batches(self, per_epoch: int) -> int | None:
        """Fixed batches to train, or None for early stopping."""
        if self.unit == CONVERGED:
            return None
        return max(1, int(round(self.value * per_epoch))) if self.unit == "epochs" \
            else int(self.value)


def size_response(split: SplitData, model_name: str, train: TrainSettings, overrides: dict,
                  peak_user: np.ndarray, peak_item: np.ndarray, sizes, budgets, lam: float,
                  reward_quality: str, reward_memory: str, seed: int) -> pd.DataFrame:
    """One row per (budget, size): validation quality and the reward at that uniform size."""
    bad = [d for d in sizes if not (isinstance(d, (int, np.integer)) and 1 <= d <= D_MAX)]
    if bad or not sizes:
        raise ValueError(f"size_response sizes must be integers in 1..{D_MAX}, got {list(sizes)}")
    per_epoch = split.batches_per_epoch(train.batch_size)
    rows, total = [], len(sizes) * len(budgets)
    for budget in budgets:
        fixed = budget.batches(per_epoch)
        settings = train if fixed is None else TrainSettings(
            **{**train.__dict__, "eval_every": fixed, "max_batches": fixed})
        for d in sizes:
            seed_everything(seed)
            mask = sizes_mask(np.full(split.n_users, d), np.full(split.n_items, d))
            model = build_model(model_name, split.n_users, split.n_items, split.train, overrides,
                                train.device, mask, narrow=True)
            out = train_model(model, split, settings, seed, fixed_steps=fixed,
                              tag=f"[{budget.label}, d={d}] ")
            res = out.best_valid
            row = {"dataset": split.name, "model": model_name, "seed": seed, "lambda": lam,
                   "budget": budget.label, "size": int(d), "steps": out.steps,
                   "best_step": out.best_step, "epochs": out.steps / per_epoch,
                   "sparsity": account(mask, model.n_tables)["sparsity"],
                   "penalty": lam * (d / D_MAX) ** 2,
                   **{f"val_{m}": float(v) for m, v in res.means.items()},
                   "t_train_s": out.seconds_train}
            for who, evals, peak in (("user", res.user_quality, peak_user),
                                     ("item", res.item_quality, peak_item)):
                q = quality_ratio(evals, peak)
                row[f"mean_q_{who}"] = float(q.mean())
                row[f"mean_reward_{who}"] = float(reward(
                    evals, q, np.full(len(q), float(d)), lam, reward_quality,
                    reward_memory).mean())
            rows.append(row)
            log.info("size response %d/%d: %s, d=%d: val AVG %.5f, Recall@20 %.5f, mean q user "
                     "%.3f item %.3f, reward user %.4f item %.4f", len(rows), total,
                     budget.label, d, row["val_avg"], row["val_recall@20"], row["mean_q_user"],
                     row["mean_q_item"], row["mean_reward_user"], row["mean_reward_item"])
    return pd.DataFrame(rows)


def verdict(table: pd.DataFrame) -> pd.DataFrame:
    """Per budget: how much quality the size buys, and which size the reward prefers."""
    out = []
    for (dataset, model, budget), g in table.groupby(["dataset", "model", "budget"], sort=False):
        g = g.sort_values("size")
        g = g.assign(reward=(g["mean_reward_user"] + g["mean_reward_item"]) / 2)
        top, low = g.iloc[-1], g.iloc[0]
        gain = (top["val_avg"] - low["val_avg"]) / max(top["val_avg"], 1e-12)
        best = g.loc[g["reward"].idxmax()]
        out.append({"dataset": dataset, "model": model, "budget": budget,
                    "val_avg_smallest": low["val_avg"], "val_avg_largest": top["val_avg"],
                    "quality_gain_smallest_to_largest": gain,
                    "best_quality_size": int(g.loc[g["val_avg"].idxmax(), "size"]),
                    "reward_argmax_size": int(best["size"]),
                    "reward_prefers_smallest": bool(best["size"] == low["size"])})
    return pd.DataFrame(out)
