"""Baselines (docs/baselines.md §10): ES, MR, MDE, Sides, PEP, ESAPN, OptEmb."""
from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from baselines import MethodContext, get_method
from baselines.mde import power_sizes
from baselines.mr import draw_sizes
from ciess.masks import repair_to_budget
from baselines.pep import SoftThreshold
from ciess.masks import account, meets_budget
from ciess.models import build_model, embedding_tables, rewind_tables
from helpers import random_split


def _ctx(split, model="lightgcn", seed=0, **params):
    return MethodContext(split=split, model=model, seed=seed, params=params,
                         train={"batch_size": 256, "sampler": "user_uniform", "eval_every": 5,
                                "patience": 2, "max_batches": 10, "eval_batch_users": 64,
                                "device": "cpu"},
                         log=logging.getLogger("test"))


@pytest.mark.parametrize("model", ["lightgcn", "neumf"])
def test_es_and_mr_meet_every_budget(model):
    split = random_split(n_users=97, n_items=61)
    for name in ("es", "mr"):
        masks = get_method(name)(_ctx(split, model), [80, 90, 95])
        for pct, mask in masks.items():
            params = account(mask, 2 if model == "neumf" else 1)["params"]
            assert meets_budget(params, pct, 97, 61, 2 if model == "neumf" else 1)


def test_es_sizes_match_the_spec_table():
    split = random_split(n_users=6040 // 10, n_items=3706 // 10)
    masks = get_method("es")(_ctx(split), [80, 90, 95])
    assert [int(masks[c].user[0]) for c in (80, 90, 95)] == [25, 12, 6]


def test_mr_is_seeded_and_its_draw_is_flat_before_repair():
    split = random_split()
    a = get_method("mr")(_ctx(split, seed=3), [90])[90]
    b = get_method("mr")(_ctx(split, seed=3), [90])[90]
    c = get_method("mr")(_ctx(split, seed=4), [90])[90]
    assert np.array_equal(a.user, b.user) and not np.array_equal(a.user, c.user)
    draw = draw_sizes(200_000, 90, np.random.default_rng(0))
    counts = np.bincount(draw)[1:]
    assert draw.min() == 1 and draw.max() == 25
    assert counts.std() / counts.mean() < 0.05


def test_mr_repair_hits_the_budget_exactly_when_it_must():
    sizes = np.full(10, 5)
    fixed = repair_to_budget(sizes, 37, np.random.default_rng(0))
    assert fixed.sum() == 37 and fixed.min() == 3 and (fixed <= 4).all()


# --------------------------------------------------------------------------------------- MDE
def test_mde_sizes_follow_popularity_power_and_meet_the_budget_exactly():
    rng = np.random.default_rng(0)
    freq = rng.integers(0, 500, 400)
    budget = 400 * 13
    for alpha in (0.0, 0.2, 0.5, 1.0):
        sizes = power_sizes(freq, alpha, budget)
        assert sizes.sum() == budget and sizes.min() >= 1 and sizes.max() <= 128
        order = np.argsort(freq, kind="stable")
        assert (np.diff(sizes[order]) >= -1).all()  # monotone up to the one-unit remainder
    assert set(power_sizes(freq, 0.0, budget).tolist()) == {13}  # alpha 0: equal sizes
    # hand values: f = 1, 4, 16 at alpha 0.5 -> weights 1, 2, 4; budget 14 -> lambda 2 -> 2, 4, 8
    assert power_sizes(np.array([1, 4, 16]), 0.5, 14).tolist() == [2, 4, 8]
    assert power_sizes(np.array([0, 1]), 1.0, 300).tolist() == [128, 128]  # room for all
    with pytest.raises(ValueError, match="less than one dimension"):
        power_sizes(freq, 0.5, 399)


@pytest.mark.parametrize("model", ["lightgcn", "neumf"])
def test_mde_chooses_alpha_on_validation_without_reading_test(model, monkeypatch):
    split = random_split(n_users=60, n_items=40, per_user=14)
    tables = 2 if model == "neumf" else 1
    seen = []
    import ciess.train as train_mod
    real_evaluate = train_mod.evaluate

    def spy(model_, train, truth, *a, **k):
        seen.append(truth is split.valid)
        return real_evaluate(model_, train, truth, *a, **k)

    monkeypatch.setattr(train_mod, "evaluate", spy)
    masks = get_method("mde")(_ctx(split, model, alphas=[0.2, 0.6]), [80, 95])
    assert seen and all(seen)  # every evaluation during the choice was on validation
    for pct, mask in masks.items():
        meta = mask.meta
        scores = meta["valid_avg_by_alpha"]
        assert set(scores) == {"0.2", "0.6"}
        assert meta["alpha"] == float(max(scores, key=scores.get))
        assert meets_budget(account(mask, tables)["params"], pct, 60, 40, tables)
    one = get_method("mde")(_ctx(split, model, alphas=[0.3]), [90])[90]
    assert one.meta["alpha"] == 0.3 and one.meta["valid_avg_by_alpha"] == {}  # nothing to choose
    with pytest.raises(ValueError, match="distinct alphas"):
        get_method("mde")(_ctx(split, model, alphas=[]), [90])


def test_pep_threshold_matches_hand_values():
    th = SoftThreshold((1, 4), init=0.0)  # sigmoid(0) = 0.5
    v = torch.tensor([[0.7, -0.7, 0.2, -2.0]])
    assert torch.allclose(th(v), torch.tensor([[0.2, -0.2, 0.0, -1.5]]))


def test_pep_captures_each_budget_at_its_first_crossing_and_rewinds(tmp_path):
    split = random_split(n_users=60, n_items=50, per_user=16)
    ctx = _ctx(split, threshold_init=-6.0, s_lr=0.05, max_steps=2000, batch_size=128, model_lr=1e-3)
    ctx.init_state_path = tmp_path / "init.pt"
    masks = get_method("pep")(ctx, [80, 90, 95])
    for pct, mask in masks.items():
        assert mask.meta["sparsity_at_previous_check"] < pct / 100
        params = account(mask, 1)["params"]
        assert params == mask.meta["nnz"] and meets_budget(params, pct, 60, 50)
    steps = [masks[c].meta["captured_step"] for c in (80, 90, 95)]
    assert steps == sorted(steps)
    initial = torch.load(tmp_path / "init.pt", weights_only=True)
    model = build_model("lightgcn", 60, 50, split.train, mask=masks[90])
    rewind_tables(model, initial)
    w = model.user_embedding.weight.detach()
    keep = torch.from_numpy(masks[90].dense("user"))
    assert torch.equal(w[keep], initial["user_embedding"][keep]) and (w[~keep] == 0).all()


def test_pep_on_neumf_keeps_one_mask_per_table(tmp_path):
    split = random_split(n_users=30, n_items=40, per_user=12)
    ctx = _ctx(split, "neumf", threshold_init=-4.0, s_lr=0.1, max_steps=2000, batch_size=128,
               model_lr=1e-3)
    ctx.init_state_path = tmp_path / "init.pt"
    mask = get_method("pep")(ctx, [80])[80]
    assert mask.per_table and mask.user.shape == (2, 30, 128)
    model = build_model("neumf", 30, 40, split.train, mask=mask)
    assert model.masked_nnz() == account(mask, 2)["params"]
    assert set(torch.load(tmp_path / "init.pt")) == set(embedding_tables(model))


def test_pep_refuses_a_mask_that_overshoots_its_budget_between_two_checks(tmp_path):
    """Checks too far apart for fast thresholds: the first check past 80% is far past it."""
    split = random_split(n_users=60, n_items=50, per_user=16)
    ctx = _ctx(split, threshold_init=-6.0, s_lr=0.05, max_steps=2000, batch_size=128,
               model_lr=1e-3, check_every=200)
    ctx.init_state_path = tmp_path / "init.pt"
    with pytest.raises(RuntimeError, match=r"past 80% by more than max_overshoot=0.02"):
        get_method("pep")(ctx, [80])


def test_pep_fails_loudly_when_a_budget_is_not_crossed(tmp_path):
    split = random_split()
    ctx = _ctx(split, threshold_init=-15.0, s_lr=1e-4, max_steps=3)
    ctx.init_state_path = tmp_path / "init.pt"
    with pytest.raises(RuntimeError, match=r"before the budgets \[80, 95\]%"):
        get_method("pep")(ctx, [95, 80])


def test_unknown_method_names_the_registry():
    with pytest.raises(KeyError, match="no embedding-size method 'nope'"):
        get_method("nope")


def test_esapn_sizes_only_grow_within_candidates_and_budgeted_masks_hold():
    from baselines.esapn import CANDIDATES, ESAPNSearch

    split = random_split(n_users=40, n_items=30, per_user=12)
    ctx = _ctx(split)
    p = {"batch_size": 64, "search_epochs": 3.0, "model_lr": 1e-2, "policy_lr": 1e-2}
    search = ESAPNSearch(ctx, p, None)
    before = {w: search.state[w].size_idx.copy() for w in search.state}
    for _ in range(15):
        batch = search.sampler.sample()
        search.controller_update(batch)
        search.greedy_update(batch)
        search.train_step(batch)
        for w in search.state:
            now = search.state[w].size_idx
            assert (now >= before[w]).all() and set(search.state[w].sizes()) <= set(CANDIDATES)
            before[w] = now.copy()
    masks = get_method("esapn")(_ctx(split, search_epochs=3.0, batch_size=64), [None, 90, 95])
    assert masks[None].meta["variant"] == "native"
    for pct in (90, 95):
        assert meets_budget(account(masks[pct], 1)["params"], pct, 40, 30)
        assert set(masks[pct].user) <= set(CANDIDATES)


def test_esapn_entity_at_the_largest_size_always_keeps():
    from baselines.esapn import CANDIDATES, ESAPNSearch

    split = random_split(n_users=20, n_items=20, per_user=8)
    search = ESAPNSearch(_ctx(split), {"batch_size": 32, "search_epochs": 1.0, "model_lr": 1e-3,
                                       "policy_lr": 1e-3}, None)
    for w in search.state:
        search.state[w].size_idx[:] = len(CANDIDATES) - 1
        search._apply(w, np.arange(20), search.state[w].size_idx)
    for _ in range(3):
        batch = search.sampler.sample()
        search.controller_update(batch)
        search.greedy_update(batch)
    assert all((search.state[w].sizes() == 128).all() for w in search.state)


def test_binary_step_forward_and_backward_follow_the_piecewise_rule():
    from baselines.optemb import BinaryStep

    x = torch.tensor([-1.5, -0.7, -0.2, 0.0, 0.3, 0.9, 2.0], requires_grad=True)
    y = BinaryStep.apply(x)
    assert y.tolist() == [0, 0, 0, 0, 1, 1, 1]
    y.sum().backward()
    assert x.grad.tolist() == pytest.approx([0, 0.4, 2 - 0.8, 2.0, 2 - 1.2, 0.4, 0])


@pytest.mark.parametrize("pct,alpha", [(80, 1.0391), (90, 1.0847), (95, 1.1852)])
def test_optemb_b_alpha_gives_the_budget_mean(pct, alpha):
    from baselines.optemb import alpha_for_mean

    a = alpha_for_mean((100 - pct) / 100 * 128)
    s = np.arange(1, 129)
    w = a ** (128 - s)
    assert a == pytest.approx(alpha, abs=1e-4)
    assert (s * w).sum() / w.sum() == pytest.approx((100 - pct) / 100 * 128, abs=1e-3)


def test_optemb_every_budgeted_candidate_is_feasible_and_masks_validate(tmp_path, monkeypatch):
    from baselines import optemb

    seen = []
    original = optemb.Evolution.fitness

    def record(self, cand):
        if self.target_pct is not None:
            seen.append(self.params(cand) <= self.limit)
        return original(self, cand)

    monkeypatch.setattr(optemb.Evolution, "fitness", record)
    split = random_split(n_users=40, n_items=30, per_user=12)
    ctx = _ctx(split, alpha=1e-2, t_lr=1e-2, generations=3, population=6, crossovers=3,
               mutations=3, elites=4)
    ctx.init_state_path = tmp_path / "init.pt"
    masks = optemb.make_masks(ctx, [None, 90])
    assert seen and all(seen)
    assert meets_budget(account(masks[90], 1)["params"], 90, 40, 30)
    assert masks[None].meta["variant"].startswith("OptEmb (native)")
    assert (tmp_path / "init.pt").exists()


@pytest.mark.parametrize("learn_from_forced", [True, False])
def test_esapn_forced_keeps_at_128_teach_the_policy_only_when_asked(learn_from_forced):
    """update_forced_keeps (official: True): the REINFORCE update also learns from the forced
    keep of entities already at 128; False leaves the policy untouched by them."""
    from baselines.esapn import CANDIDATES, DEFAULTS, ESAPNSearch

    split = random_split(n_users=20, n_items=20, per_user=8)
    p = {**DEFAULTS, "batch_size": 32, "update_forced_keeps": learn_from_forced}
    search = ESAPNSearch(_ctx(split), p, None)
    for w in search.state:  # every entity at 128: every keep of the batch is forced
        search.state[w].size_idx[:] = len(CANDIDATES) - 1
        search._apply(w, np.arange(20), search.state[w].size_idx)
        search.state[w].losses[:, 0] = 5.0  # a baseline far from the batch's loss: advantage != 0
    before = {w: [t.detach().clone() for t in search.policy[w].parameters()] for w in search.policy}
    search.controller_update(search.sampler.sample())
    changed = {w: any(not torch.equal(a, b) for a, b in zip(before[w], search.policy[w].parameters()))
               for w in search.policy}
    assert changed == {"user": learn_from_forced, "item": learn_from_forced}


def test_esapn_policy_trace_separates_the_advantage_of_each_sampled_action():
    from baselines.esapn import PolicyTrace

    trace = PolicyTrace()
    trace.sampled(np.array([0.2, 0.4, -0.1, -0.5]), np.array([1, 1, 0, 0]),
                  np.array([0.6, 0.7, 0.4, 0.9]), forced=np.array([False, False, False, True]))
    trace.sampled(np.array([0.3]), np.array([0]), np.array([0.5]), forced=np.array([False]))
    trace.decided(10, 4)
    assert trace.text() == ("advantage of sampled enlarge +0.3000 (n=2), keep +0.1000 (n=2); "
                            "mean p(enlarge) 0.550; forced keep at 128 -0.5000 (n=1); greedy "
                            "enlarged 4 of 10 decisions")
    assert "enlarge +nan (n=0)" in PolicyTrace().text()  # an empty window says so, no crash


def test_esapn_and_optemb_searches_log_totals_and_an_eta(tmp_path, caplog):
    """Every long step shows progress with totals and an ETA (python -m ciess.logs reads it)."""
    split = random_split(n_users=40, n_items=30, per_user=12)
    ctx = _ctx(split, search_epochs=3.0, batch_size=64)
    with caplog.at_level(logging.INFO, logger="test"):
        get_method("esapn")(ctx, [None])
    batches = [r.getMessage() for r in caplog.records if "ESAPN batch" in r.getMessage()]
    assert batches and batches[-1].startswith("ESAPN batch 12/12") and "[ETA 0m00s]" in batches[-1]
    caplog.clear()
    ctx = _ctx(split, alpha=1e-2, t_lr=1e-2, generations=2, population=4, crossovers=2,
               mutations=2, elites=3)
    ctx.init_state_path = tmp_path / "init.pt"
    with caplog.at_level(logging.INFO, logger="test"):
        get_method("optemb")(ctx, [None, 90])
    gens = [r.getMessage() for r in caplog.records if "generation" in r.getMessage()]
    assert len(gens) == 4  # two evolutions (native, 90%) of two generations, counted together
    assert "[1/4 generations of all budgets, ETA" in gens[0]
    assert gens[-1].endswith("[4/4 generations of all budgets, ETA 0m00s]")


def test_optemb_b_redraws_the_same_operation_then_repairs():
    """§6.5: an infeasible child is redrawn by the operation that made it (crossover or mutation,
    not a fresh prior draw), up to REDRAWS times; then it is repaired into the budget."""
    from types import SimpleNamespace

    from baselines import optemb

    evo = SimpleNamespace(target_pct=90, limit=40, keep=np.ones(10, bool), repairs=0,
                          rng=np.random.default_rng(0))
    evo.params = lambda cand: int(cand.sum())
    draws = iter([np.full(10, 9), np.full(10, 8), np.full(10, 4), np.full(10, 1)])
    made = []

    def child():
        made.append(next(draws))
        return made[-1]

    got = optemb.Evolution.feasible(evo, child)
    assert len(made) == 3 and got.tolist() == [4] * 10 and evo.repairs == 0
    calls = []
    got = optemb.Evolution.feasible(evo, lambda: calls.append(1) or np.full(10, 9))
    assert len(calls) == optemb.REDRAWS + 1 and evo.repairs == 1
    assert got.sum() <= evo.limit and got.min() >= 1


def test_pep_model_weight_decay_shrinks_the_entries_under_the_thresholds(tmp_path):
    """Decay on the model's own parameters (off by default) lets the same threshold schedule
    prune more: the search reaches a budget in fewer steps than without it."""
    split = random_split(n_users=60, n_items=50, per_user=16)
    steps = {}
    for decay in (0.0, 0.5):
        ctx = _ctx(split, threshold_init=-6.0, s_lr=0.05, max_steps=2000, batch_size=128,
                   model_lr=1e-3, model_weight_decay=decay)
        ctx.init_state_path = tmp_path / f"init{decay}.pt"
        mask = get_method("pep")(ctx, [90])[90]
        steps[decay] = mask.meta["captured_step"]
    assert steps[0.5] < steps[0.0]


def test_pep_reg_weight_shrinks_the_entries_during_the_search_only(tmp_path, monkeypatch):
    """A larger batch L2 factor during the search (the lightweight benchmark's way) reaches a
    budget in fewer steps; the model of the search gets it, the base settings do not change."""
    import ciess.models as models  # ciess.init_state.search_start builds the search's model

    built = []
    real_build = models.build_model
    monkeypatch.setattr(models, "build_model",
                        lambda *a, **k: built.append(a[4]) or real_build(*a, **k))
    split = random_split(n_users=60, n_items=50, per_user=16)
    steps = {}
    for reg in (None, 5.0):
        ctx = _ctx(split, threshold_init=-6.0, s_lr=0.05, max_steps=2000, batch_size=128,
                   model_lr=1e-3, reg_weight=reg)
        ctx.init_state_path = tmp_path / f"init{reg}.pt"
        steps[reg] = get_method("pep")(ctx, [90])[90].meta["captured_step"]
        assert ctx.model_overrides == {}  # the profile's overrides are not changed
    assert built == [{}, {"reg_weight": 5.0}]
    assert steps[5.0] < steps[None]


def test_pep_growing_l2_factor_passes_the_level_where_a_fixed_one_stalls(tmp_path):
    """`reg_growth` multiplies the search's batch L2 factor every `reg_growth_every` steps: at a
    fixed factor the sparsity levels off below the budgets (the search fails loudly), a growing
    one carries the same search through 80 and 95%; each mask records its factor."""
    split = random_split(n_users=60, n_items=50, per_user=16)
    settings = dict(threshold_init=-6.0, s_lr=0.005, max_steps=1500, batch_size=128,
                    model_lr=1e-3, reg_weight=0.01, reg_growth_every=20)
    ctx = _ctx(split, **settings)
    ctx.init_state_path = tmp_path / "fixed.pt"
    with pytest.raises(RuntimeError, match=r"before the budgets \[80, 95\]%"):
        get_method("pep")(ctx, [80, 95])
    ctx = _ctx(split, **settings, reg_growth=3.0)
    ctx.init_state_path = tmp_path / "growing.pt"
    masks = get_method("pep")(ctx, [80, 95])
    for pct, mask in masks.items():
        step = mask.meta["captured_step"]
        assert mask.meta["l2_factor"] == pytest.approx(0.01 * 3.0 ** ((step - 1) // 20))
        assert meets_budget(account(mask, 1)["params"], pct, 60, 50)
    ctx = _ctx(split, reg_weight=0.01, reg_growth=0.5)
    ctx.init_state_path = tmp_path / "bad.pt"
    with pytest.raises(ValueError, match="reg_growth must be >= 1"):
        get_method("pep")(ctx, [80])


# ------------------------------------------------------------------------------------- Sides
def test_sides_splits_the_budget_between_users_and_items_by_the_ratio():
    from baselines.sides import sides_mask

    split = random_split(n_users=60, n_items=40)
    for pct in (80, 90, 95):
        es = get_method("es")(_ctx(split), [pct])[pct]
        one = sides_mask(split, pct, 1.0, 1, {})
        # ratio 1 is ES: the same size everywhere (up to the one-unit remainders ES leaves unspent)
        assert abs(int(one.user.mean()) - int(es.user[0])) <= 1 and one.user.min() >= es.user[0]
        for ratio in (0.5, 2.0, 4.0):
            mask = sides_mask(split, pct, ratio, 1, {})
            assert meets_budget(account(mask, 1)["params"], pct, 60, 40, 1)
            assert len(set(mask.user.tolist())) <= 2 and len(set(mask.item.tolist())) <= 2
            assert mask.user.mean() / mask.item.mean() == pytest.approx(ratio, rel=0.35)
    # hand values: 90% of 100 x 128 leaves 1,280 parameters; ratio 2: 60 * 2λ + 40 * λ = 1,280
    # -> λ = 8: every user 16, every item 8
    mask = sides_mask(split, 90, 2.0, 1, {})
    assert set(mask.user.tolist()) == {16} and set(mask.item.tolist()) == {8}
    with pytest.raises(ValueError, match="ratio must lie in"):
        sides_mask(split, 90, 0.0, 1, {})


def test_sides_chooses_the_ratio_on_validation():
    split = random_split(n_users=60, n_items=40, per_user=14)
    masks = get_method("sides")(_ctx(split, ratios=[1.0, 4.0]), [90])
    meta = masks[90].meta
    assert set(meta["valid_avg_by_ratio"]) == {"1.0", "4.0"}
    assert meta["ratio"] == float(max(meta["valid_avg_by_ratio"], key=meta["valid_avg_by_ratio"].get))
    with pytest.raises(ValueError, match="distinct ratios"):
        get_method("sides")(_ctx(split, ratios=[2.0, 2.0]), [90])
