"""The shared training path: sampler, schedule, early stopping, determinism, final protocols."""
from __future__ import annotations

import numpy as np
import pytest

from ciess.sampler import TripleSampler
from ciess.train import TrainSettings, lr_at, run_masked_training
from ciess.masks import sizes_mask
from helpers import random_split


@pytest.mark.parametrize("kind", ["user_uniform", "interaction"])
def test_sampler_positives_are_trained_and_negatives_are_not(kind):
    split = random_split(n_users=30, n_items=20, per_user=12)
    sampler = TripleSampler(split.train, 500, kind, seed=3)
    dense = split.train.toarray() > 0
    for _ in range(5):
        u, p, n = (t.numpy() for t in sampler.sample())
        assert dense[u, p].all() and not dense[u, n].any()


@pytest.mark.parametrize("kind", ["user_uniform", "interaction"])
def test_the_training_pair_bitmap_draws_the_same_triples_as_the_binary_search(kind, monkeypatch):
    """The bitmap look-up (ciess.sampler.BITMAP_MAX_CELLS) only replaces how membership is
    answered: the same seed gives the same triples as the sorted-pairs binary search."""
    import ciess.sampler

    split = random_split(n_users=50, n_items=25, per_user=15)  # dense: many rejected negatives
    fast = TripleSampler(split.train, 300, kind, seed=7)
    monkeypatch.setattr(ciess.sampler, "BITMAP_MAX_CELLS", 0)
    slow = TripleSampler(split.train, 300, kind, seed=7)
    assert fast._bitmap is not None and slow._bitmap is None
    for _ in range(10):
        for a, b in zip(fast.sample(), slow.sample()):
            assert np.array_equal(a.numpy(), b.numpy())


def test_the_search_benchmark_times_both_membership_tests():
    from helpers import benchmark_module

    line = benchmark_module("search_iteration").sampling_ratio(
        random_split(n_users=50, n_items=25, per_user=15), batches=3, batch=100)
    assert line.startswith("sampling 3 batches of 100: bitmap ") and "binary search" in line
    import ciess.sampler
    assert ciess.sampler.BITMAP_MAX_CELLS == 1 << 30  # restored after timing the fallback


def test_user_uniform_draws_users_without_replacement_when_there_are_enough():
    """Official sampler: distinct users when U >= batch (Yelp2018), repeats when U < batch."""
    split = random_split(n_users=40, n_items=30, per_user=12)
    for _ in range(5):
        users = TripleSampler(split.train, 40, "user_uniform", seed=1).sample()[0].numpy()
        assert len(np.unique(users)) == 40  # every user exactly once
        users = TripleSampler(split.train, 25, "user_uniform", seed=2).sample()[0].numpy()
        assert len(np.unique(users)) == 25
    users = TripleSampler(split.train, 400, "user_uniform", seed=3).sample()[0].numpy()
    counts = np.bincount(users, minlength=40)
    assert counts.max() > 1 and (counts > 0).all()  # U < batch: with replacement, all users seen


def test_interaction_sampler_visits_every_training_pair_once_per_epoch():
    split = random_split(n_users=10, n_items=20, per_user=8)
    n = split.n_train
    sampler = TripleSampler(split.train, n, "interaction", seed=0)
    u, p, _ = (t.numpy() for t in sampler.sample())
    assert sorted(zip(u.tolist(), p.tolist())) == sorted(zip(*split.train.nonzero()))


def test_lr_decays_every_decay_batches_with_a_floor():
    hp = {"lr": 0.03, "lr_decay": 0.9, "decay_batches": 200, "min_lr": 1e-3}
    assert lr_at(199, hp) == pytest.approx(0.03)
    assert lr_at(200, hp) == pytest.approx(0.027)
    assert lr_at(10**6, hp) == pytest.approx(1e-3)


def test_same_seed_gives_identical_metrics_on_cpu():
    split = random_split(n_users=60, n_items=50, per_user=16)
    settings = TrainSettings(batch_size=256, eval_every=3, max_batches=9)
    mask = sizes_mask(np.full(60, 16), np.full(50, 8))
    runs = [run_masked_training(split, "ngcf", mask, 7, settings)["record"] for _ in range(2)]
    assert runs[0]["test"] == runs[1]["test"] and runs[0]["valid"] == runs[1]["valid"]
    other = run_masked_training(split, "ngcf", mask, 8, settings)["record"]
    assert other["test"] != runs[0]["test"]


def test_early_stopping_and_best_checkpoint_restore():
    split = random_split(n_users=60, n_items=50, per_user=16)
    # lr so large that validation degrades after the first evaluations
    out = run_masked_training(split, "lightgcn", None, 0,
                              TrainSettings(batch_size=256, eval_every=1, patience=2,
                                            max_batches=200),
                              model_overrides={"lr": 5.0, "min_lr": 5.0})
    rec = out["record"]
    assert rec["steps_trained"] < 200
    best = max(h["valid_avg"] for h in rec["history"])
    assert rec["valid"]["avg"] == pytest.approx(best)
    assert rec["steps_trained"] - rec["best_step"] == 2  # exactly `patience` evaluations later


@pytest.mark.parametrize("protocol", ["merge_fixed", "merge_code"])
def test_merged_final_protocols_run_and_are_recorded(protocol):
    split = random_split(n_users=30, n_items=40, per_user=12)
    rec = run_masked_training(split, "lightgcn", None, 0,
                              TrainSettings(batch_size=128, eval_every=2, max_batches=4),
                              final_protocol=protocol)["record"]
    assert rec["final_protocol"] == protocol and 0 <= rec["test"]["recall@20"] <= 1


def test_unknown_final_protocol_is_rejected():
    with pytest.raises(ValueError, match="final.protocol"):
        run_masked_training(random_split(), "lightgcn", None, 0, TrainSettings(),
                            final_protocol="merge_everything")


def test_merge_fixed_never_looks_at_test_while_retraining(monkeypatch):
    """merge_fixed: steps chosen on validation; the merged model trains blind for that many
    steps, then test is evaluated once. The train-only model's test score is recorded apart."""
    import ciess.train as train_module

    split = random_split(n_users=30, n_items=40, per_user=12)
    calls = []
    real = train_module.evaluate

    def spy(model, train, target, *args, **kwargs):
        calls.append(("test" if target is split.test else "valid", train.nnz))
        return real(model, train, target, *args, **kwargs)

    monkeypatch.setattr(train_module, "evaluate", spy)
    rec = run_masked_training(split, "lightgcn", None, 0,
                              TrainSettings(batch_size=128, eval_every=2, max_batches=6),
                              final_protocol="merge_fixed")["record"]
    merged_nnz = split.n_train + split.valid.nnz
    test_calls = [c for c in calls if c[0] == "test"]
    assert test_calls == [("test", split.n_train), ("test", merged_nnz)]
    assert calls[-1] == ("test", merged_nnz)  # the last evaluation of all: once, at the end
    assert set(rec["test_by_protocol"]) == {"train_val_es", "merge_fixed"}
    assert rec["test_by_protocol"]["merge_fixed"] == rec["test"]


def test_rewind_restores_the_saved_tables_and_redraws_the_other_layers():
    """rewind: tables = the search's saved initial tables whatever the run seed; NGCF's
    propagation layers are re-initialised (not the fresh start's draw). LightGCN, which has no
    other layers, rewound to tables drawn with the run seed equals its fresh start."""
    import torch

    from ciess.models import build_model, embedding_tables
    from ciess.train import initial_model, seed_everything

    split = random_split(n_users=30, n_items=20, per_user=8)
    seed_everything(0)  # the search's start
    search = build_model("ngcf", 30, 20, split.train)
    saved = {n: t.weight.detach().clone() for n, t in embedding_tables(search).items()}
    fresh = initial_model("ngcf", split, split.train, None, 3, "cpu")
    rewound = initial_model("ngcf", split, split.train, None, 3, "cpu", initial_tables=saved)
    for name, table in embedding_tables(rewound).items():
        assert torch.equal(table.weight, saved[name])
        assert not torch.equal(embedding_tables(fresh)[name].weight, saved[name])
    w = rewound.GNNlayers[0].linear.weight
    assert not torch.equal(w, fresh.GNNlayers[0].linear.weight)
    assert not torch.equal(w, search.GNNlayers[0].linear.weight)
    seed_everything(0)
    lgcn = build_model("lightgcn", 30, 20, split.train)
    lgcn_saved = {n: t.weight.detach().clone() for n, t in embedding_tables(lgcn).items()}
    same = initial_model("lightgcn", split, split.train, None, 0, "cpu", initial_tables=lgcn_saved)
    plain = initial_model("lightgcn", split, split.train, None, 0, "cpu")
    assert all(torch.equal(same.state_dict()[k], v) for k, v in plain.state_dict().items())
