"""Full-ranking metrics on hand-computed values, tie-breaking, and RecBole's evaluator."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from ciess.evaluate import evaluate, rank_metrics, topk_stable
from helpers import benchmark_module


class FixedScores(torch.nn.Module):
    def __init__(self, scores):
        super().__init__()
        self.scores = torch.as_tensor(scores, dtype=torch.float32)

    def score_users(self, users):
        return self.scores[users]


def _csr(rows, n_users, n_items):
    pairs = [(u, i) for u, items in enumerate(rows) for i in items]
    u, i = zip(*pairs)
    return sp.csr_matrix((np.ones(len(u)), (u, i)), shape=(n_users, n_items))


def test_topk_breaks_ties_by_lower_item_index():
    scores = torch.tensor([[1.0, 3.0, 3.0, 2.0, 3.0, 0.0]])
    assert topk_stable(scores, 2).tolist() == [[1, 2]]
    assert topk_stable(scores, 4).tolist() == [[1, 2, 4, 3]]
    assert topk_stable(torch.zeros(1, 5), 3).tolist() == [[0, 1, 2]]


@pytest.mark.parametrize("k", [1, 5, 20])
def test_topk_equals_a_full_lexicographic_sort_with_and_without_ties(k):
    gen = torch.Generator().manual_seed(k)
    tied = torch.randint(0, 6, (64, 40), generator=gen).float()  # many ties at every rank
    distinct = torch.rand(64, 40, generator=gen)
    scores = torch.cat([tied, distinct, torch.where(tied > 3, distinct, -torch.inf)])
    for row, got in zip(scores.numpy(), topk_stable(scores, k).numpy()):
        expected = np.lexsort((np.arange(len(row)), -row))[:k]  # score desc, then item id asc
        assert got.tolist() == expected.tolist()


def test_metrics_match_hand_computed_values():
    # one user, 8 items; item 0 is a training item (excluded), held-out positives {2, 5, 7}
    scores = [[9.0, 1.0, 8.0, 7.0, 0.5, 6.0, 0.1, 0.2]]
    train, target = _csr([[0]], 1, 8), _csr([[2, 5, 7]], 1, 8)
    res = evaluate(FixedScores(scores), train, target, ks=(1, 3, 5))
    # ranking without item 0: 2, 3, 5, 1, 4, 7, 6 -> hits at ranks 1 and 3 within top 3
    assert res.per_user["recall@5"][0] == pytest.approx(2 / 3)
    idcg3 = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert res.per_user["ndcg@3"][0] == pytest.approx((1 + 1 / math.log2(4)) / idcg3)
    assert res.per_user["recall@1"][0] == pytest.approx(1 / 3)
    assert res.per_user["ndcg@1"][0] == pytest.approx(1.0)


def test_recall_denominator_is_all_held_out_items_not_min_k():
    top = torch.tensor([[0, 1]])
    truth = torch.zeros(1, 10, dtype=torch.bool)
    truth[0, [0, 1, 2, 3]] = True
    out = rank_metrics(top, truth, ks=(2,))
    assert out["recall@2"].item() == pytest.approx(0.5)
    assert out["ndcg@2"].item() == pytest.approx(1.0)


def test_users_without_held_out_items_are_not_averaged_and_item_quality_uses_train_users():
    scores = np.arange(12, dtype=float).reshape(3, 4)
    train = _csr([[0], [0, 1], [2]], 3, 4)
    target = sp.csr_matrix((np.ones(2), ([0, 1], [3, 3])), shape=(3, 4))  # user 2: none
    res = evaluate(FixedScores(scores), train, target, ks=(1,))
    assert res.n_users_evaluated == 2 and np.isnan(res.per_user["recall@1"][2])
    assert res.means["recall@1"] == pytest.approx(1.0)
    assert res.user_quality.tolist() == [1.0, 1.0, 0.0]
    # item 0 trained by users 0 and 1 -> mean 1.0; item 2 by user 2 -> 0; item 3 by nobody -> 0
    assert res.item_quality.tolist() == [1.0, 1.0, 0.0, 0.0]


def test_test_evaluation_excludes_validation_items_too():
    scores = [[5.0, 4.0, 3.0, 2.0]]
    train, valid, test = _csr([[0]], 1, 4), _csr([[1]], 1, 4), _csr([[2]], 1, 4)
    res = evaluate(FixedScores(scores), train, test, [valid], ks=(1,))
    assert res.means["recall@1"] == 1.0


@pytest.mark.slow
@pytest.mark.parametrize("model_name", ["lightgcn", "neumf"])
def test_same_means_as_recboles_evaluator_on_the_same_trained_model(tmp_path, monkeypatch,
                                                                      model_name):
    """Train a suite model briefly on the quick split, then let RecBole's own Trainer.evaluate
    rank the same model (through its id mapping) and compare the means."""
    from recbole.utils import get_trainer

    from ciess.data.split import split_per_user, write_split
    from ciess.data.fetch import fetch_dataset, load_catalog
    from ciess.data.preprocess import PARSERS, preprocess
    bridge = benchmark_module("recbole_bridge")  # stock RecBole on the suite's split
    SuiteModelForRecBole, recbole_config, recbole_data = (
        bridge.SuiteModelForRecBole, bridge.recbole_config, bridge.recbole_data)
    from ciess.data.read_split import load_split
    from ciess.train import TrainSettings, run_masked_training
    from conftest import REPO

    monkeypatch.chdir(tmp_path)
    catalog = load_catalog(REPO / "config/datasets.yaml")
    prov = fetch_dataset(catalog, "ml-100k", tmp_path / "src")
    raw = PARSERS["movielens"](tmp_path / "src", prov["form"], [f["path"] for f in prov["files"]])
    table, stats = preprocess(raw)
    parts, _ = split_per_user(table)
    write_split(parts, tmp_path / "split", "ml-100k", stats, 42, (0.5, 0.25, 0.25))
    split = load_split(tmp_path / "split/manifest.json")
    out = run_masked_training(split, model_name, None, 0,
                              TrainSettings(eval_every=5, max_batches=5))
    ours = out["valid"].means

    cfg = recbole_config(tmp_path / "split", "ml-100k", "Pop", workdir=tmp_path)
    dataset, _, valid_data, _ = recbole_data(cfg)
    wrapped = SuiteModelForRecBole(out["model"].eval(), dataset)
    trainer = get_trainer(cfg["MODEL_TYPE"], cfg["model"])(cfg, wrapped)
    theirs = trainer.evaluate(valid_data, load_best_model=False, show_progress=False)
    for k in (5, 10, 20):
        assert float(theirs[f"recall@{k}"]) == pytest.approx(ours[f"recall@{k}"], abs=1e-4)
        assert float(theirs[f"ndcg@{k}"]) == pytest.approx(ours[f"ndcg@{k}"], abs=1e-4)
