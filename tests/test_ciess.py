"""CIESS units (docs/ciess.md §16): walk, noise, TD3, reward and state, selection."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from ciess.search.agent import TD3Agent, TD3Settings, normalise_size, soft_update, to_size
from ciess.search.env import encode_popularity, encode_size, quality_ratio, reward
from ciess.search.noise import Noise
from ciess.masks import budget_params, sparsity
from ciess.search.search import SearchNoise, SearchSettings, hold_to_budget, select_sizes
from ciess.search.selection import BudgetNotReached, episode_intervals, top_candidates
from ciess.search.walk import SizeGraph


# ------------------------------------------------------------------------------ random walk
def test_interior_transition_probabilities_match_the_spec():
    probs = SizeGraph().transition_probs(64)
    expected = np.array([1, 1 / 2, 1 / 3, 1 / 4, 1 / 5])
    expected = expected / (2 * expected.sum())
    for dist, p in enumerate(expected, start=1):
        assert probs[64 + dist] == pytest.approx(p) and probs[64 - dist] == pytest.approx(p)
    assert [probs[64 + d] for d in range(1, 6)] == pytest.approx([0.219, 0.110, 0.073, 0.055, 0.044],
                                                                 abs=1e-3)


def test_border_rows_drop_outside_neighbours_and_renormalise():
    probs = SizeGraph().transition_probs(1)
    assert sorted(probs) == [2, 3, 4, 5, 6] and sum(probs.values()) == pytest.approx(1)
    assert probs[2] == pytest.approx(1 / sum(1 / d for d in range(1, 6)))
    top = SizeGraph().transition_probs(128)
    assert max(top) == 127 and min(top) == 123


def test_walk_candidates_are_six_reachable_sizes_in_range():
    rng = np.random.default_rng(0)
    start = rng.integers(1, 129, 5000)
    cands = SizeGraph().walk(start, 5, rng)
    assert cands.shape == (5000, 6) and (cands[:, 0] == start).all()
    assert cands.min() >= 1 and cands.max() <= 128
    steps = np.abs(np.diff(cands, axis=1))
    assert (steps >= 1).all() and (steps <= 5).all()


def test_walk_step_frequencies_follow_inverse_distance():
    rng = np.random.default_rng(1)
    nxt = SizeGraph().step(np.full(200_000, 64), rng)
    freq = np.bincount(np.abs(nxt - 64), minlength=6)[1:] / len(nxt)
    assert freq == pytest.approx([0.438, 0.219, 0.146, 0.109, 0.088], abs=0.005)


def test_argmax_picks_the_highest_q1_candidate_and_first_on_ties():
    agent = TD3Agent(3, TD3Settings(hidden=8), np.random.default_rng(0))
    with torch.no_grad():  # Q1 = -(normalised size): smaller is better
        for layer in agent.critic.q1:
            if isinstance(layer, torch.nn.Linear):
                layer.weight.zero_()
                layer.bias.zero_()
        agent.critic.q1[0].weight[0, 3] = -1.0
        agent.critic.q1[2].weight[0, 0] = 1.0
        agent.critic.q1[4].weight[0, 0] = 1.0
        agent.critic.q1[0].bias[0] = 1.0  # keep ReLU active: 1 - a_norm >= 0
    state = np.zeros((3, 3), np.float32)
    cands = np.array([[10, 5, 20, 5, 7, 9], [1, 1, 2, 3, 4, 5], [128, 127, 126, 125, 124, 123]])
    assert agent.best_candidate(state, cands).tolist() == [5, 1, 123]


# ------------------------------------------------------------------------------ noise
@pytest.mark.parametrize("kind,std", [("gaussian", 6.0), ("uniform", 22 / np.sqrt(12))])
def test_noise_moments(kind, std):
    x = Noise(kind, 200_000, "entity", np.random.default_rng(0)).sample()
    assert abs(x.mean()) < 0.05 and x.std() == pytest.approx(std, rel=0.01)
    if kind == "uniform":
        assert x.min() >= -11 and x.max() <= 11


def test_ou_increment_std_is_4_and_reset_returns_to_zero():
    noise = Noise("ou", 100_000, "entity", np.random.default_rng(0))
    first = noise.sample()
    assert first.std() == pytest.approx(4.0, rel=0.02)  # sigma * sqrt(dt) = 40 * 0.1
    for _ in range(8):
        noise.sample()
    assert noise.state.std() == pytest.approx(4.0 * np.sqrt(9), rel=0.05)
    noise.reset()
    assert (noise.state == 0).all()


def test_shared_scope_gives_one_value_to_every_entity_and_none_is_zero():
    shared = Noise("gaussian", 50, "shared", np.random.default_rng(0)).sample()
    assert len(set(shared.tolist())) == 1
    assert (Noise("none", 5, "entity", np.random.default_rng(0)).sample() == 0).all()


# ------------------------------------------------------------------------------ TD3
def _agent(**kw):
    return TD3Agent(10, TD3Settings(hidden=16, batch_size=32, **kw), np.random.default_rng(0))


def _fill(agent, n=200):
    rng = np.random.default_rng(1)
    for _ in range(n // 10):
        agent.buffer.add(rng.uniform(-1, 1, (10, 3)), rng.integers(1, 129, 10).astype(np.float32),
                         rng.normal(size=10), rng.uniform(-1, 1, (10, 3)))


def test_target_equals_r_plus_gamma_min_of_target_critics():
    agent = _agent(target_noise_std=0.0)
    s2 = torch.rand(6, 3) * 2 - 1
    r = torch.arange(6, dtype=torch.float32)
    with torch.no_grad():
        a2 = agent.actor_target(s2)
        q1, q2 = agent.critic_target(s2, a2)
        expected = r + 0.99 * torch.minimum(q1, q2)
    assert torch.allclose(agent.target_values(r, s2), expected)


def test_actor_changes_only_on_every_second_update():
    agent = _agent()
    _fill(agent)
    snapshot = lambda: [p.detach().clone() for p in agent.actor.parameters()]
    for k in range(1, 5):
        before = snapshot()
        out = agent.update()
        changed = any(not torch.equal(a, b) for a, b in zip(before, snapshot()))
        assert changed == (k % 2 == 0) and (out["actor_loss"] is None) == (k % 2 == 1)


def test_target_critic_update_schedule():
    for mode, expect_first in (("update", True), ("delayed", False)):
        agent = _agent(target_critic_every=mode)
        _fill(agent)
        before = [p.detach().clone() for p in agent.critic_target.parameters()]
        agent.update()
        moved = any(not torch.equal(a, b) for a, b in zip(before, agent.critic_target.parameters()))
        assert moved == expect_first


def test_soft_update_with_tau_one_copies_weights():
    agent = _agent()
    with torch.no_grad():
        for p in agent.actor.parameters():
            p.add_(1.0)
    soft_update(agent.actor_target, agent.actor, 1.0)
    assert all(torch.equal(a, b) for a, b in zip(agent.actor.parameters(),
                                                 agent.actor_target.parameters()))


def test_replay_buffer_keeps_the_last_iterations():
    agent = TD3Agent(4, TD3Settings(hidden=4, buffer_iterations=2), np.random.default_rng(0))
    for it in range(3):
        agent.buffer.add(np.zeros((4, 3)), np.full(4, it + 1.0), np.zeros(4), np.zeros((4, 3)))
    assert agent.buffer.size == 8 and sorted(set(agent.buffer.a.tolist())) == [2.0, 3.0]


def test_action_scaling_round_trips():
    t = torch.tensor([-1.0, 0.0, 1.0])
    assert to_size(t).tolist() == [1.0, 64.5, 128.0]
    assert torch.allclose(normalise_size(to_size(t)), t)


def test_sizes_are_integers_in_range_with_and_without_walk():
    rng = np.random.default_rng(0)
    agent = TD3Agent(500, TD3Settings(hidden=8), rng)
    state = rng.uniform(-1, 1, (500, 3)).astype(np.float32)
    for rw, pos in ((True, "before_walk"), (True, "after_argmax"), (False, "before_walk")):
        cfg = SearchSettings(random_walk=rw, noise_position=pos)
        d, policy = select_sizes(agent, state, Noise("gaussian", 500, "entity", rng,
                                                     sigma=200).sample(), SizeGraph(), cfg, rng)
        assert d.dtype.kind == "i" and d.min() >= 1 and d.max() <= 128
        assert policy.dtype.kind == "i" and policy.min() >= 1 and policy.max() <= 128


def test_shared_scope_adds_one_scalar_to_users_and_items_after_the_argmax():
    """The official code's exploration: one draw per iteration, the same for every user and
    every item, added to the critic's choice; entity scope draws per entity and per side."""
    rng = np.random.default_rng(3)
    cfg = SearchSettings(noise_scope="shared", noise_position="after_argmax",
                         noise_params={"sigma": 10.0})
    noise = SearchNoise(cfg, {"user": 40, "item": 30}, rng)
    draws = []
    for _ in range(3):
        noise.next_iteration()
        u, i = noise.sample("user"), noise.sample("item")
        assert np.isscalar(u) and u == i
        draws.append(u)
    assert len(set(draws)) == 3  # a fresh draw every iteration
    agent = TD3Agent(40, TD3Settings(hidden=8), rng)
    state = rng.uniform(-1, 1, (40, 3)).astype(np.float32)
    walk_rng = np.random.default_rng(7)
    base, _ = select_sizes(agent, state, 0.0, SizeGraph(), cfg, np.random.default_rng(7))
    shifted, _ = select_sizes(agent, state, 10.4, SizeGraph(), cfg, walk_rng)
    assert (shifted == np.clip(base + 10, 1, 128)).all()
    entity = SearchNoise(SearchSettings(), {"user": 40, "item": 30}, rng)
    entity.next_iteration()
    assert entity.sample("user").shape == (40,) and entity.sample("item").shape == (30,)


# ------------------------------------------------------------------------------ budget hold
def test_hold_to_budget_meets_the_target_exactly_and_keeps_the_order_of_sizes():
    rng = np.random.default_rng(5)
    users, items = rng.integers(1, 129, 300), rng.integers(1, 129, 200)
    for target in (80, 90, 95):
        u, i = hold_to_budget(users, items, target, n_tables=2)
        params = 2 * (u.sum() + i.sum())
        assert budget_params(target, 300, 200, 2) - 2 <= params <= budget_params(target, 300, 200, 2)
        assert sparsity(params, 300, 200, 2) >= target / 100
        both, held = np.concatenate([users, items]), np.concatenate([u, i])
        bigger = both[:, None] > both[None, :]
        assert not (bigger & (held[:, None] < held[None, :] - 1)).any()  # order kept (±rounding)
        assert held.min() >= 1 and held.max() <= 128


def test_held_budget_cycles_through_the_selection_budgets_by_episode():
    cfg = SearchSettings(held_budgets=(80, 90, 95))
    assert [cfg.held_budget(e) for e in range(1, 8)] == [80, 90, 95, 80, 90, 95, 80]
    assert SearchSettings().held_budget(3) is None


# ------------------------------------------------------------------------------ reward, state
def test_reward_formulas_on_hand_values():
    evals, q, d = np.array([0.2]), np.array([0.5]), np.array([64.0])
    assert reward(evals, q, d, 0.4, "ratio", "size_squared")[0] == pytest.approx(0.5 - 0.4 * 0.25)
    assert reward(evals, q, d, 0.01, "raw", "size_minus_one_squared")[0] == pytest.approx(0.2 - 0.01 * (63 / 128) ** 2)


def test_quality_ratio_is_clipped_and_guards_zero_peak():
    q = quality_ratio(np.array([0.1, 0.5, 0.3]), np.array([0.2, 0.25, 0.0]))
    assert q.tolist() == [0.5, 1.0, 1.0]


def test_state_encodings_map_extremes_to_plus_minus_one():
    assert encode_size(np.array([1.0, 128.0])).tolist() == [-1.0, 1.0]
    assert encode_popularity(np.array([3.0, 10.0, 17.0])).tolist() == [-1.0, 0.0, 1.0]


# ------------------------------------------------------------------------------ selection
def _log(rows):
    return pd.DataFrame(rows, columns=["episode", "iteration", "val_avg_user", "params", "capacity"])


def test_inclusive_eligibility_lets_a_96pct_mask_compete_at_80_but_exclusive_does_not():
    log = _log([(1, 1, 0.30, 4, 100), (1, 2, 0.20, 15, 100)])  # 96% and 85% sparse
    assert top_candidates(log, 80, 3, "inclusive")["iteration"].tolist() == [1, 2]
    assert top_candidates(log, 80, 3, "exclusive")["iteration"].tolist() == [2]


def test_selection_orders_by_quality_then_earlier_and_never_violates_budget():
    log = _log([(1, 1, 0.3, 9, 100), (1, 2, 0.5, 21, 100), (2, 1, 0.4, 10, 100),
                (2, 2, 0.4, 5, 100), (1, 3, 0.4, 8, 100)])
    chosen = top_candidates(log, 90, 3, "inclusive")
    assert list(zip(chosen.episode, chosen.iteration)) == [(1, 3), (2, 1), (2, 2)]
    assert (100 * chosen.params <= 10 * chosen.capacity).all()


def test_missing_budget_raises_and_intervals_restrict_the_pool():
    log = _log([(1, 1, 0.3, 50, 100), (2, 1, 0.3, 4, 100)])
    with pytest.raises(BudgetNotReached, match="95% not reached"):
        top_candidates(log, 95, 3, episodes=(1, 1))
    assert top_candidates(log, 95, 3, episodes=(2, 2))["episode"].tolist() == [2]
    assert episode_intervals(30, 5) == [(1, 6), (7, 12), (13, 18), (19, 24), (25, 30)]
    assert episode_intervals(30, 5, cumulative=True)[-1] == (1, 30)


def test_actor_reinitialises_only_its_last_layer_weights():
    """ciess spec §8 / official code: last layer weights U(-3e-3, 3e-3); its bias keeps
    PyTorch's default initialisation (it is not squeezed to ±3e-3)."""
    import torch.nn as nn

    from ciess.search.agent import Actor

    torch.manual_seed(5)
    actor = Actor(hidden=256)
    torch.manual_seed(5)
    plain = nn.Sequential(nn.Linear(3, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                          nn.Linear(256, 1))
    assert torch.equal(actor.net[-1].bias, plain[-1].bias)
    assert actor.net[-1].weight.abs().max() <= 3e-3


def test_own_size_slope_is_the_within_iteration_least_squares_slope():
    from ciess.search.search import own_size_slope
    sizes = np.array([2, 4, 6, 8])
    assert own_size_slope(sizes, 0.1 + 0.05 * sizes) == pytest.approx(0.05)
    assert np.isnan(own_size_slope(np.full(4, 7), np.arange(4.0)))


def test_critic_slope_is_dq_dsize_at_the_executed_sizes():
    agent = TD3Agent(3, TD3Settings(hidden=8), np.random.default_rng(0))
    with torch.no_grad():  # Q1 = normalised size (> 0 above 64.5): dQ/dsize = 2 / 127
        for layer in agent.critic.q1:
            if isinstance(layer, torch.nn.Linear):
                layer.weight.zero_()
                layer.bias.zero_()
        agent.critic.q1[0].weight[0, 3] = 1.0
        agent.critic.q1[2].weight[0, 0] = 1.0
        agent.critic.q1[4].weight[0, 0] = 1.0
    state = np.zeros((3, 3), np.float32)
    assert agent.critic_slope(state, np.array([70, 100, 120])) == pytest.approx(2 / 127, rel=1e-5)
    assert all(p.grad is None for p in agent.critic.parameters())


def test_trajectory_counts_budgets_per_episode_and_says_where_the_search_settles():
    from ciess.search.trajectory import per_episode, settled

    sparsity = [0.5, 0.6, 0.92, 0.96, 0.7, 0.72]  # crosses every budget in episode 2 only
    log = pd.DataFrame({"episode": [1, 1, 2, 2, 3, 3], "iteration": [1, 2] * 3,
                        "sparsity": sparsity, "mean_action_user": 10.0, "mean_action_item": 5.0,
                        "val_avg_user": 0.1, "policy_sparsity": 0.7})
    table = per_episode(log)
    assert table["met_c80"].tolist() == [0, 2, 0] and table["met_c95"].tolist() == [0, 1, 0]
    assert table.loc[3, "policy_sparsity"] == pytest.approx(0.7)
    text = settled(table, last=1)
    assert "last 1 episodes: executed sparsity 0.710" in text and "met there: none" in text
    assert "95%: episodes 2-2" in text


def test_trajectory_reads_a_running_searchs_job_log(tmp_path):
    """The per-iteration lines ciess.search.search logs, read back as the search log's columns."""
    import logging

    from ciess.search.trajectory import per_episode, read_job_log

    path = tmp_path / "seed0.log"
    handler = logging.FileHandler(path)
    logger = logging.getLogger("ciess.search.search")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        from ciess.search.env import SizeSearchEnv
        from ciess.search.search import run_search
        from ciess.train import TrainSettings
        from helpers import random_split

        split = random_split()
        env = SizeSearchEnv(split, "lightgcn", np.full(split.n_users, 0.5),
                            np.full(split.n_items, 0.5), "batches", 1,
                            TrainSettings(batch_size=64, eval_every=1, max_batches=1), {}, 0)
        out = run_search(env, SearchSettings(episodes=2, iterations=2, td3=TD3Settings(
            hidden=8, batch_size=16)), 0, {})
    finally:
        logger.removeHandler(handler)
        handler.close()
    log = read_job_log(path)
    assert (log[["episode", "iteration"]].to_numpy() == out.log[["episode", "iteration"]]
            .to_numpy()).all()
    for col, printed in (("mean_action_user", 0.05), ("sparsity", 5e-5), ("val_avg_user", 5e-6)):
        assert np.allclose(log[col], out.log[col], atol=printed * 1.001), col  # as printed
    text = path.read_text()
    assert "episode 2/2 iteration 2/2 (4/4)" in text and "ETA" in text  # totals and an ETA
    older = tmp_path / "older.log"  # the line as searches logged it before the totals
    older.write_text("episode 3 iteration 7: mean size user 13.6 item 11.5, sparsity 0.9000, "
                     "val AVG 0.14491, reward user 0.6259 item 0.8100 [train 16.22s]\n")
    assert read_job_log(older).iloc[0].to_dict() == {
        "episode": 3, "iteration": 7, "mean_action_user": 13.6, "mean_action_item": 11.5,
        "sparsity": 0.9, "val_avg_user": 0.14491}
    assert per_episode(log)["iterations"].tolist() == [2, 2]
    (tmp_path / "empty.log").write_text("nothing here\n")
    with pytest.raises(ValueError, match="no search iteration lines"):
        read_job_log(tmp_path / "empty.log")


# ------------------------------------------------------------------------------ resumable search
def test_a_stopped_search_resumes_to_the_same_log_and_masks(tmp_path, monkeypatch):
    from ciess.search.env import SizeSearchEnv
    from ciess.checkpoint import RESTORED_BEGIN, RESTORED_END
    from ciess.search.search import run_search
    from ciess.train import TrainSettings
    from helpers import random_split

    split = random_split()

    def search(checkpoint=None):
        env = SizeSearchEnv(split, "lightgcn", np.full(split.n_users, 0.5),
                            np.full(split.n_items, 0.5), "batches", 2,
                            TrainSettings(batch_size=64, eval_every=2, max_batches=2), {}, 0)
        cfg = SearchSettings(episodes=3, iterations=2, held_budgets=(80, 90),
                             td3=TD3Settings(hidden=16, batch_size=32))
        return env, cfg, checkpoint

    timing = ["t_train_s", "t_eval_s", "t_rl_s"]
    env, cfg, _ = search()
    whole = run_search(env, cfg, 0, {"seed": 0})
    ckpt = tmp_path / "resume.pt"
    env, cfg, _ = search()
    real_step, calls = env.step, []

    def stop_in_episode_3(u, i, episode, iteration):
        calls.append(episode)
        if episode == 3:
            raise KeyboardInterrupt  # the session ends mid-episode
        return real_step(u, i, episode, iteration)

    monkeypatch.setattr(env, "step", stop_in_episode_3)
    rule_log = tmp_path / "seed0.log"
    rule_log.write_text("2026-01-01 00:00:00 INFO first attempt: episode 1 and 2\n")
    with pytest.raises(KeyboardInterrupt):
        run_search(env, cfg, 0, {"seed": 0}, ckpt, rule_log)
    assert ckpt.exists() and calls == [1, 1, 2, 2, 3]
    rule_log.write_text("2026-01-02 00:00:00 INFO second attempt\n")  # Snakemake began afresh
    env, cfg, _ = search()
    resumed = run_search(env, cfg, 0, {"seed": 0}, ckpt, rule_log)
    text = rule_log.read_text()  # the first attempt's lines came back, marked, after the header
    assert text.index("second attempt") < text.index(RESTORED_BEGIN) \
        < text.index("first attempt: episode 1 and 2") < text.index(RESTORED_END)
    pd.testing.assert_frame_equal(resumed.log.drop(columns=timing),
                                  whole.log.drop(columns=timing))
    assert (resumed.user_sizes == whole.user_sizes).all()
    assert (resumed.item_sizes == whole.item_sizes).all()
    env, cfg, _ = search()
    other = run_search(env, cfg, 1, {"seed": 1}, ckpt)  # other settings: starts afresh
    assert len(other.log) == 6


# ------------------------------------------------------------------------------ search hold-out
def test_a_holdout_search_trains_and_scores_on_train_alone():
    from ciess.search.env import SizeSearchEnv, carve_holdout
    from ciess.train import TrainSettings
    from helpers import random_split

    split = random_split(n_users=30, n_items=25, per_user=10)
    rest, carved = carve_holdout(split.train, 0.2, seed=3)
    assert rest.multiply(carved).nnz == 0 and (rest + carved != split.train).nnz == 0
    per_user = np.diff(carved.tocsr().indptr)
    assert (per_user == np.maximum(1, np.rint(0.2 * np.diff(split.train.indptr)))).all()
    settings = TrainSettings(batch_size=64, eval_every=2, max_batches=2)
    env = SizeSearchEnv(split, "lightgcn", None, None, "batches", 2, settings, {}, 3, holdout=0.2)
    assert (env.split.valid != carved).nnz == 0 and (env.split.train != rest).nnz == 0
    assert env.peak_user.shape == (30,) and env.peak_user.max() > 0  # a dense model's carve-out
    step = env.step(np.full(30, 8), np.full(25, 8), 1, 1)
    assert step.user_eval.shape == (30,)
    with pytest.raises(ValueError, match="computes its own peak"):
        SizeSearchEnv(split, "lightgcn", np.ones(30), np.ones(25), "batches", 2, settings, {}, 3,
                      holdout=0.2)
    with pytest.raises(ValueError, match="needs the Full run's peak"):
        SizeSearchEnv(split, "lightgcn", None, None, "batches", 2, settings, {}, 3)


def test_the_search_verdict_says_where_budgets_were_met_or_how_a_held_search_moved():
    from ciess.search.trajectory import verdict

    rows = []
    for episode, sparsity in enumerate([0.5, 0.85, 0.96, 0.7, 0.7], start=1):
        for iteration in (1, 2):
            rows.append({"episode": episode, "iteration": iteration, "sparsity": sparsity,
                         "mean_action_user": 10.0 + episode, "mean_action_item": 20.0 - episode,
                         "val_avg_user": 0.1 + 0.01 * episode})
    free = pd.DataFrame(rows)
    text = verdict(free, last=2)
    assert "80% in episodes 2–3, 90% in episodes 3–3, 95% in episodes 3–3" in text
    assert "last 2 episodes settle at 70.0% sparsity (max 70.0%) and meet no budget" in text
    held = free.assign(held_budget=free["episode"].map({1: 80, 2: 90, 3: 80, 4: 90, 5: 80}))
    text = verdict(held)
    assert text.startswith("Every executed mask is held at its episode's budget")
    assert "at 80% (episodes 1–5) users 11.0 → 15.0, items 19.0 → 15.0, score 0.110 → 0.150 " \
           "(best 0.150 in episode 5)" in text
    assert "at 90% (episodes 2–4)" in text
