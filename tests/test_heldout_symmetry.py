"""Held-out symmetry diagnostic (ciess/heldout_symmetry.py): the rearranged masks keep their
sizes and budget, and both held-out parts are scored with the other one excluded."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ciess import heldout_symmetry as hs
from ciess.masks import count_params, elements_mask, save_mask, sizes_mask
from ciess.profiles import REPO, load_profile
from ciess.train import TrainSettings
from helpers import random_split

TRAIN = TrainSettings(batch_size=256, eval_every=5, patience=2, max_batches=10,
                      eval_batch_users=64)


def test_popularity_variant_gives_the_largest_sizes_to_the_most_frequent_entities():
    split = random_split(n_users=50, n_items=40, per_user=10, seed=1)
    rng = np.random.default_rng(0)
    mask = sizes_mask(rng.integers(1, 40, 50), rng.integers(1, 40, 40))
    pop = split.popularity()
    for variant in ("popularity", "shuffled"):
        new = hs.rearranged(mask, variant, split, seed=0)
        for side in ("user", "item"):
            old_sizes, new_sizes = getattr(mask, side), getattr(new, side)
            assert sorted(old_sizes) == sorted(new_sizes)  # same multiset, same budget
        assert count_params(new) == count_params(mask)
    by_pop = hs.rearranged(mask, "popularity", split, seed=0)
    order = np.argsort(-pop["item"], kind="stable")
    assert (np.diff(by_pop.item[order].astype(int)) <= 0).all()
    assert hs.rearranged(mask, "as_is", split, 0) is mask


def test_tables_even_keeps_each_entitys_entries_and_splits_them_over_its_tables():
    split = random_split(n_users=50, n_items=40, per_user=10, seed=1)
    rng = np.random.default_rng(0)
    user = rng.random((2, 50, 128)) < np.linspace(0.05, 0.9, 2)[:, None, None]  # table 2 fuller
    item = rng.random((2, 40, 128)) < 0.3
    mask = elements_mask(user, item)
    even = hs.rearranged(mask, "tables_even", split, seed=0)
    for old, new in ((mask.user, even.user), (mask.item, even.item)):
        assert (new.sum(axis=(0, 2)) == old.sum(axis=(0, 2))).all()  # per entity, same entries
        sizes = new.sum(axis=2)
        assert (np.abs(sizes[0] - sizes[1]) <= 1).all() and (sizes[0] >= sizes[1]).all()
        assert (new == (np.arange(128) < sizes[..., None])).all()  # prefixes
    assert count_params(even, n_tables=2) == count_params(mask, n_tables=2)
    with pytest.raises(ValueError, match="per-table elements mask"):
        hs.rearranged(sizes_mask(np.ones(50), np.ones(40)), "tables_even", split, seed=0)


def test_prefixes_keep_each_entitys_entry_count_as_a_prefix():
    """A one-matrix elements mask (PEP on LightGCN/NGCF) as prefixes: the same entries per entity
    and parameters, only which dimensions are kept changes; the size-based variants read it so."""
    split = random_split(n_users=50, n_items=40, per_user=10, seed=1)
    rng = np.random.default_rng(0)
    mask = elements_mask(rng.random((50, 128)) < 0.2, rng.random((40, 128)) < 0.1)
    pre = hs.rearranged(mask, "prefixes", split, seed=0)
    assert pre.kind == "sizes"
    assert (pre.user == mask.user.sum(axis=1)).all() and (pre.item == mask.item.sum(axis=1)).all()
    assert count_params(pre) == count_params(mask)
    even = hs.rearranged(mask, "sides_even", split, seed=0)
    assert even.kind == "sizes" and count_params(even) == count_params(mask)
    assert np.ptp(even.user) <= 1 and np.ptp(even.item) <= 1
    per_table = elements_mask(rng.random((2, 50, 128)) < 0.2, rng.random((2, 40, 128)) < 0.1)
    with pytest.raises(ValueError, match="one matrix per table"):
        hs.rearranged(per_table, "prefixes", split, seed=0)


def test_sides_even_gives_each_side_its_mean_size_and_keeps_the_parameters():
    split = random_split(n_users=50, n_items=40, per_user=10, seed=1)
    rng = np.random.default_rng(0)
    mask = sizes_mask(rng.integers(1, 60, 50), rng.integers(1, 9, 40))
    even = hs.rearranged(mask, "sides_even", split, seed=0)
    for old, new in ((mask.user, even.user), (mask.item, even.item)):
        assert int(new.astype(int).sum()) == int(old.astype(int).sum())
        assert new.max() - new.min() <= 1  # one size per side, up to the remainder
    assert count_params(even, n_tables=2) == count_params(mask, n_tables=2)
    assert even.meta["rearranged"] == "sides_even"


def test_symmetric_scores_exclude_the_other_part(monkeypatch):
    split = random_split(n_users=40, n_items=30, per_user=12)
    calls = []
    real = hs.evaluate

    def spy(model, train, truth, exclude, **kw):
        calls.append((truth is split.valid, exclude[0] is split.test, truth is split.test,
                      exclude[0] is split.valid))
        return real(model, train, truth, exclude, **kw)

    monkeypatch.setattr(hs, "evaluate", spy)
    row = hs.symmetric_scores(split, "lightgcn", sizes_mask(np.full(40, 8), np.full(30, 8)), 0,
                              TRAIN)
    assert calls == [(True, True, False, False), (False, False, True, True)]
    assert 0 < row["valid_avg"] <= 1 and 0 < row["test_avg"] <= 1
    assert np.isclose(row["gap_avg_pct"], 100 * (row["valid_avg"] / row["test_avg"] - 1))


def test_cli_appends_rows_and_resumes(tmp_path, monkeypatch):
    split = random_split(n_users=40, n_items=30, per_user=12)
    monkeypatch.setattr(hs, "load_split", lambda manifest: split)
    monkeypatch.setattr(hs, "train_settings", lambda *a: TRAIN)
    path = tmp_path / "m.npz"
    save_mask(path, sizes_mask(np.arange(40) % 9 + 1, np.arange(30) % 7 + 1))
    out = tmp_path / "sym.csv"
    args = ["manifest.json", str(out), "--mask", f"x={path}", "--variants", "as_is", "popularity"]
    assert hs.main(args) == 0
    first = pd.read_csv(out)
    assert list(first["variant"]) == ["as_is", "popularity"]
    trained = []
    fake = {"valid_avg": 0.2, "test_avg": 0.2, "gap_avg_pct": 0.0}
    monkeypatch.setattr(hs, "symmetric_scores", lambda *a, **k: trained.append(1) or fake)
    assert hs.main(args + ["shuffled"]) == 0  # only the missing variant trains
    assert len(trained) == 1 and len(pd.read_csv(out)) == 3


def test_model_options_reach_the_model_and_the_rows(tmp_path, monkeypatch):
    split = random_split(n_users=40, n_items=30, per_user=12)
    monkeypatch.setattr(hs, "load_split", lambda manifest: split)
    monkeypatch.setattr(hs, "train_settings", lambda *a: TRAIN)
    built = []
    real = hs.initial_model
    monkeypatch.setattr(hs, "initial_model",
                        lambda *a, **k: built.append(real(*a, **k)) or built[-1])
    path = tmp_path / "m.npz"
    save_mask(path, sizes_mask(np.full(40, 8), np.full(30, 8)))
    out = tmp_path / "sym.csv"
    args = ["manifest.json", str(out), "--mask", f"x={path}", "--model", "ngcf"]
    assert hs.main(args + ["--model-option", "propagation=authors",
                           "--model-option", "node_dropout=0.0"]) == 0
    assert built[0].propagation == "authors" and built[0].node_dropout == 0.0
    row = pd.read_csv(out).iloc[0]
    assert row["model"] == "ngcf"
    assert row["model_options"] == "{node_dropout: 0.0, propagation: authors}"
    fake = {"valid_avg": 0.2, "test_avg": 0.2, "gap_avg_pct": 0.0}
    trained = []
    monkeypatch.setattr(hs, "symmetric_scores", lambda *a, **k: trained.append(k) or fake)
    assert hs.main(args + ["--model-option", "propagation=authors",
                           "--model-option", "node_dropout=0.0"]) == 0
    assert trained == []  # the same model options: done already
    assert hs.main(args + ["--model-option", "propagation=recbole"]) == 0
    assert trained[0]["model_options"] == {"propagation": "recbole"}  # other options: trained
    assert list(pd.read_csv(out)["model_options"]) == [
        "{node_dropout: 0.0, propagation: authors}", "{propagation: recbole}"]
    with pytest.raises(SystemExit, match="propagaton.*not a parameter of model 'ngcf'"):
        hs.main(args + ["--model-option", "propagaton=authors"])
    with pytest.raises(SystemExit, match="expected KEY=VALUE"):
        hs.main(args + ["--model-option", "authors"])


def test_a_models_train_overrides_reach_the_diagnostic(monkeypatch):
    """The diagnostic trains each model as the workflow does: the reference profile's NGCF runs
    get NGCF's own cap (train_overrides.ngcf), LightGCN's the `train:` block's."""
    monkeypatch.chdir(REPO)  # the CLI reads --profile relative to the working directory
    profile = Path("config/reference.yaml")
    config = hs.profile_config(profile)
    assert config == load_profile(profile)
    ngcf, lightgcn = hs.train_settings(config, "ngcf"), hs.train_settings(config, "lightgcn")
    assert ngcf.max_batches == config["train_overrides"]["ngcf"]["max_batches"]
    assert lightgcn.max_batches == config["train"]["max_batches"] != ngcf.max_batches
    assert ngcf.batch_size == lightgcn.batch_size == config["train"]["batch_size"]


def test_a_profiles_model_overrides_reach_the_model_under_the_cli_options(tmp_path, monkeypatch):
    """A profile's model_overrides entry builds the model as in the workflow; --model-option
    overrides it, and the row records the options the model was built with."""
    split = random_split(n_users=40, n_items=30, per_user=12)
    monkeypatch.setattr(hs, "load_split", lambda manifest: split)
    monkeypatch.setattr(hs, "train_settings", lambda *a: TRAIN)
    built = []
    real = hs.initial_model
    monkeypatch.setattr(hs, "initial_model",
                        lambda *a, **k: built.append(real(*a, **k)) or built[-1])
    profile = tmp_path / "over.yaml"
    profile.write_text("model_overrides: {ngcf: {propagation: recbole, node_dropout: 0.0}}\n")
    path = tmp_path / "m.npz"
    save_mask(path, sizes_mask(np.full(40, 8), np.full(30, 8)))
    out = tmp_path / "sym.csv"
    args = ["manifest.json", str(out), "--mask", f"x={path}", "--model", "ngcf",
            "--profile", str(profile)]
    assert hs.main(args) == 0
    assert built[0].propagation == "recbole" and built[0].node_dropout == 0.0
    assert hs.main(args + ["--model-option", "propagation=authors"]) == 0
    assert built[1].propagation == "authors" and built[1].node_dropout == 0.0
    assert list(pd.read_csv(out)["model_options"]) == [
        "{node_dropout: 0.0, propagation: recbole}", "{node_dropout: 0.0, propagation: authors}"]
