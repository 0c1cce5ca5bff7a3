"""The size-response diagnostic: one uniform size per model, at fixed budgets and to convergence."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ciess.size_response import Budget, size_response, verdict
from ciess.train import TrainSettings
from helpers import has_image, random_split, run_notebook


def _settings():
    return TrainSettings(batch_size=64, sampler="user_uniform", eval_every=4, patience=1,
                         max_batches=12, eval_batch_users=64, device="cpu")


def test_rows_per_budget_and_size_with_the_search_reward():
    split = random_split(n_users=40, n_items=30, per_user=12)
    peak_u, peak_i = np.full(split.n_users, 0.5), np.full(split.n_items, 0.5)
    budgets = [Budget.from_config({"unit": "batches", "value": 3}),
               Budget.from_config({"unit": "epochs", "value": 1}), Budget.from_config("converged")]
    table = size_response(split, "lightgcn", _settings(), {}, peak_u, peak_i, [2, 16, 128],
                          budgets, 0.4, "ratio", "size_squared", seed=0)
    assert list(table["budget"]) == ["3 batches"] * 3 + ["1 epochs"] * 3 + ["converged"] * 3
    assert list(table["size"]) == [2, 16, 128] * 3
    assert (table.loc[table["budget"] == "3 batches", "steps"] == 3).all()
    per_epoch = split.batches_per_epoch(64)
    assert (table.loc[table["budget"] == "1 epochs", "steps"] == per_epoch).all()
    conv = table[table["budget"] == "converged"]
    assert (conv["steps"] <= 12).all() and (conv["best_step"] <= conv["steps"]).all()
    # reward = q - lambda (d/128)^2 with q = min(eval/peak, 1), averaged: q's mean is bounded by 1
    assert np.allclose(table["penalty"], 0.4 * (table["size"] / 128) ** 2)
    for who in ("user", "item"):
        assert ((table[f"mean_q_{who}"] >= 0) & (table[f"mean_q_{who}"] <= 1)).all()
        assert np.allclose(table[f"mean_reward_{who}"], table[f"mean_q_{who}"] - table["penalty"])
    assert np.allclose(table.loc[table["size"] == 128, "sparsity"], 0.0)
    assert np.allclose(table.loc[table["size"] == 16, "sparsity"], 1 - 16 / 128)


def test_same_seed_same_table():
    split = random_split(n_users=30, n_items=20, per_user=10)
    peak = np.full(30, 0.3), np.full(20, 0.3)
    args = (split, "lightgcn", _settings(), {}, *peak, [4, 32],
            [Budget.from_config({"unit": "batches", "value": 4})], 0.4, "ratio", "size_squared")
    a, b = size_response(*args, seed=3), size_response(*args, seed=3)
    pd.testing.assert_frame_equal(a.drop(columns="t_train_s"), b.drop(columns="t_train_s"))


@pytest.mark.parametrize("entry", [{"unit": "epochs"}, {"unit": "steps", "value": 3},
                                   {"unit": "epochs", "value": 0}, "forever"])
def test_bad_budgets_are_named(entry):
    with pytest.raises(ValueError, match="size_response budget"):
        Budget.from_config(entry)


@pytest.mark.parametrize("sizes", [[0, 8], [8, 129], [2.5], []])
def test_bad_sizes_are_refused_before_training(sizes):
    split = random_split(n_users=10, n_items=10, per_user=6)
    with pytest.raises(ValueError, match="sizes must be integers in 1..128"):
        size_response(split, "lightgcn", _settings(), {}, np.ones(10), np.ones(10), sizes,
                      [Budget("converged")], 0.4, "ratio", "size_squared", seed=0)


def _table(values, budget="5 epochs"):
    sizes = [2, 8, 32, 128]
    return pd.DataFrame({"dataset": "d", "model": "m", "budget": budget, "size": sizes,
                         "val_avg": values, "lambda": 0.4,
                         "mean_reward_user": [v - 0.4 * (s / 128) ** 2 for v, s in zip(values, sizes)],
                         "mean_reward_item": [v - 0.4 * (s / 128) ** 2 for v, s in zip(values, sizes)]})


def test_verdict_sees_a_flat_curve_and_a_rising_one():
    flat = verdict(_table([0.50, 0.50, 0.50, 0.50])).iloc[0]
    assert flat["quality_gain_smallest_to_largest"] == pytest.approx(0)
    assert flat["reward_prefers_smallest"] and flat["reward_argmax_size"] == 2
    rising = verdict(_table([0.10, 0.30, 0.55, 0.60], budget="converged")).iloc[0]
    assert rising["quality_gain_smallest_to_largest"] == pytest.approx(0.5 / 0.6)
    assert rising["best_quality_size"] == 128 and rising["reward_argmax_size"] == 32
    assert not rising["reward_prefers_smallest"]


def test_notebook_shows_the_figure_and_the_verdict(tmp_path):
    rows = []
    for budget, base in (("3 batches", 0.2), ("converged", 0.1)):
        t = _table([base, base + 0.1, base + 0.2, base + 0.25], budget)
        t["seed"], t["val_recall@20"], t["val_ndcg@20"] = 0, t["val_avg"], t["val_avg"]
        t["steps"], t["best_step"], t["sparsity"], t["t_train_s"] = 3, 3, 1 - t["size"] / 128, 0.1
        t["penalty"], t["mean_q_user"], t["mean_q_item"] = 0.4 * (t["size"] / 128) ** 2, 0.5, 0.5
        rows.append(t)
    pd.concat(rows).to_csv(tmp_path / "sr.csv", index=False)
    outputs = run_notebook("size_response", tmp_path, tables=[str(tmp_path / "sr.csv")],
                           profile="quick")
    assert has_image(outputs)
    text = "".join(o.get("data", {}).get("text/markdown", "") for o in outputs)
    assert "smoke-level" in text and "reward is highest at d = 32" in text
    assert (tmp_path / "f.png").exists() and (tmp_path / "f.pdf").exists()
