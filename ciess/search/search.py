"""The CIESS search loop (docs/ciess.md §1, §9-10, §14): episodes x iterations of
select sizes -> fresh model -> validate -> reward -> replay -> TD3 update."""
from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ciess.checkpoint import (Checkpoint, random_streams, restore_random_streams,
                              restore_rule_log, resume_environment)
from ciess.evaluate import METRICS
from ciess.labels import Search
from ciess.masks import D_MAX, budget_params, proportional_sizes
from ciess.search.agent import TD3Agent, TD3Settings
from ciess.search.env import SizeSearchEnv, quality_ratio, reward
from ciess.search.noise import Noise
from ciess.search.walk import SizeGraph
from ciess.progress import Progress

log = logging.getLogger(__name__)


@dataclass
class SearchSettings:
    episodes: int = 30  # M
    iterations: int = 10  # T
    lam: float = 0.4
    reward_quality: str = "ratio"  # ratio (paper) | raw (code)
    reward_memory: str = "size_squared"  # size_squared (paper) | size_minus_one_squared (code)
    noise: str = "gaussian"  # gaussian | uniform | ou | none
    noise_scope: str = "entity"  # entity | shared (code)
    noise_position: str = "before_walk"  # before_walk (paper) | after_argmax (code)
    random_walk: bool = True
    walk_threshold: int = 5
    walk_steps: int = 5
    init_quality: float = 1.0  # quality at an episode start: 1.0 (paper) | 0.5 (code: encoded 0)
    held_budgets: tuple = ()  # () = execute the chosen sizes (paper); else §18's budget hold
    noise_params: dict = field(default_factory=dict)  # sigma, uniform_range, ou_* overrides
    td3: TD3Settings = field(default_factory=TD3Settings)

    @classmethod
    def from_config(cls, ciess: dict, search: Search) -> SearchSettings:
        """The config's `ciess:` block for one search variant (noise, walk, λ from ``search``)."""
        return cls(
            episodes=ciess["episodes"], iterations=ciess["iterations"], lam=search.lam,
            reward_quality=ciess["reward"]["quality"], reward_memory=ciess["reward"]["memory"],
            noise=search.noise, noise_scope=ciess["noise_scope"],
            noise_position=ciess["noise_position"], random_walk=search.random_walk,
            walk_threshold=ciess["walk"]["threshold"], walk_steps=ciess["walk"]["steps"],
            init_quality=ciess["init_quality"], noise_params=ciess["noise_params"],
            held_budgets=tuple(ciess["selection"]["budgets"]) if ciess["hold_budget"] else (),
            td3=TD3Settings(**ciess["td3"]))

    @classmethod
    def method_settings(cls, ciess: dict, search: Search) -> dict:
        """What shapes one search's masks, as recorded beside every run retrained from them
        (``method_settings``, ciess.provenance.settings_hash): the search settings, the
        per-iteration training budget and the carve-out."""
        return {"search": asdict(cls.from_config(ciess, search)), "budget": ciess["budget"],
                "search_holdout": ciess["search_holdout"]}

    def held_budget(self, episode: int) -> int | None:
        """The target sparsity an episode holds (§18): the budgets in turn, or None."""
        if not self.held_budgets:
            return None
        return int(self.held_budgets[(episode - 1) % len(self.held_budgets)])


def select_sizes(agent: TD3Agent, state: np.ndarray, eps: np.ndarray | float, graph: SizeGraph,
                 cfg: SearchSettings, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Actor + noise ``eps`` (+ random walk and critic argmax) -> integer sizes in [1, 128].
    Returns (executed sizes, the noise-free policy's sizes round(actor))."""
    actor = agent.act(state)
    policy = np.clip(np.rint(actor), 1, D_MAX).astype(np.int64)
    if not cfg.random_walk:
        return np.clip(np.rint(actor + eps), 1, D_MAX).astype(np.int64), policy
    if cfg.noise_position == "before_walk":
        start = np.clip(np.rint(actor + eps), 1, D_MAX).astype(np.int64)
        return agent.best_candidate(state, graph.walk(start, cfg.walk_steps, rng)), policy
    if cfg.noise_position == "after_argmax":
        chosen = agent.best_candidate(state, graph.walk(policy, cfg.walk_steps, rng))
        return np.clip(np.rint(chosen + eps), 1, D_MAX).astype(np.int64), policy
    raise ValueError(f"noise_position must be before_walk or after_argmax, got {cfg.noise_position!r}")


def hold_to_budget(user_sizes: np.ndarray, item_sizes: np.ndarray, target_pct: int,
                   n_tables: int) -> tuple[np.ndarray, np.ndarray]:
    """The chosen sizes rescaled by one common factor to meet ``target_pct`` exactly (§18):
    the agents decide the relative allocation, the budget decides the total."""
    nu = len(user_sizes)
    per_table = budget_params(target_pct, nu, len(item_sizes), n_tables) // n_tables
    sizes = proportional_sizes(np.concatenate([user_sizes, item_sizes]), per_table,
                               who="hold_budget")
    return sizes[:nu], sizes[nu:]


class SearchNoise:
    """The exploration noise of one iteration for users and items (docs/ciess.md §9.3):
    ``entity`` scope draws per entity from one process per side; ``shared`` draws one scalar
    per iteration from one process and adds it to every user and every item (the official
    code's uniform shift of all sizes)."""

    def __init__(self, cfg: SearchSettings, sides: dict, rng: np.random.Generator):
        if cfg.noise_scope == "shared":
            self.shared = Noise(cfg.noise, 1, "shared", rng, **cfg.noise_params)
            self.per_side = {}
        else:
            self.shared = None
            self.per_side = {w: Noise(cfg.noise, n, cfg.noise_scope, rng, **cfg.noise_params)
                             for w, n in sides.items()}
        self._draw = None

    def reset(self) -> None:
        for noise in (self.shared, *self.per_side.values()):
            if noise is not None:
                noise.reset()

    def next_iteration(self) -> None:
        """Draw the shared scalar once per iteration (entity draws happen per side)."""
        self._draw = float(self.shared.sample()[0]) if self.shared is not None else None

    def sample(self, side: str) -> np.ndarray | float:
        return self._draw if self.shared is not None else self.per_side[side].sample()


def own_size_slope(sizes: np.ndarray, q: np.ndarray) -> float:
    """Least-squares slope of an entity's quality ratio on its own size within one iteration
    (per dimension): what the reward pays an entity for one more dimension, other entities'
    sizes being what they are. NaN when every entity got the same size."""
    x = sizes.astype(float)
    if np.ptp(x) == 0:
        return float("nan")
    x = x - x.mean()
    return float(x @ (q - q.mean()) / (x @ x))


@dataclass
class SearchOutput:
    log: pd.DataFrame
    user_sizes: np.ndarray  # (M*T, U) uint8
    item_sizes: np.ndarray  # (M*T, I) uint8


CHECKPOINT_FORMAT = 3  # 3: ciess.checkpoint.Checkpoint's file (key, log text, streams)


def search_fingerprint(env: SizeSearchEnv, cfg: SearchSettings, seed: int, labels: dict) -> str:
    """What a checkpoint must match to be resumed: the settings, seed, labels and data."""
    return repr((CHECKPOINT_FORMAT, asdict(cfg), seed, sorted(labels.items()), env.split.name,
                 env.split.n_users, env.split.n_items, env.model_name, env.batches,
                 sorted(env.train.__dict__.items())))


def run_search(env: SizeSearchEnv, cfg: SearchSettings, seed: int, labels: dict,
               checkpoint: Path | None = None, rule_log: Path | None = None) -> SearchOutput:
    """The search; with ``checkpoint``, its state is saved after every episode and a search
    stopped part-way resumes after its last finished episode. With ``rule_log`` (the job's log
    file), the log of the attempts before a resume is kept: saved in the checkpoint and written
    back into the log on resuming."""
    rule_log = Path(rule_log) if rule_log else None
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    nu, ni = env.split.n_users, env.split.n_items
    agents = {"user": TD3Agent(nu, cfg.td3, rng), "item": TD3Agent(ni, cfg.td3, rng)}
    noise = SearchNoise(cfg, {"user": nu, "item": ni}, rng)
    graph = SizeGraph(D_MAX, cfg.walk_threshold)
    peak = {"user": env.peak_user, "item": env.peak_item}
    q0 = float(cfg.init_quality)
    if cfg.held_budgets and env.gmf_dense:
        raise NotImplementedError("ciess.hold_budget is not implemented for NeuMF with "
                                  "mask_gmf: false (its GMF tables count dense at the widest size)")
    rows, all_u, all_i = [], [], []
    # the search's whole state after each episode (docs/ciess.md §14), with the log so far:
    # resuming gives the same log and masks as a search that was never stopped (tested)
    ckpt = (Checkpoint(Path(checkpoint), {"search": search_fingerprint(env, cfg, seed, labels),
                                          **resume_environment()},
                       every_s=0.0, rule_log=rule_log) if checkpoint else None)
    saved = ckpt.load() if ckpt else None
    first = 1
    total = cfg.episodes * cfg.iterations
    if saved is not None:
        rows, all_u, all_i = saved["rows"], saved["user_sizes"], saved["item_sizes"]
        for w, agent in agents.items():
            agent.load_state_dict(saved["agents"][w])
        rng.bit_generator.state = saved["rng"]
        restore_random_streams(saved["random"])
        first = saved["episode"] + 1
        if rule_log and saved.get("log_text"):
            restore_rule_log(rule_log, saved["log_text"])
        log.info("resuming after episode %d of %d (%s)", saved["episode"], cfg.episodes,
                 checkpoint)
    progress = Progress(total, done=(first - 1) * cfg.iterations)
    for episode in range(first, cfg.episodes + 1):
        sizes = {"user": np.full(nu, D_MAX), "item": np.full(ni, D_MAX)}
        state = {w: env.state(sizes[w], np.full(len(sizes[w]), q0), w) for w in sizes}
        noise.reset()
        for iteration in range(1, cfg.iterations + 1):
            t0 = time.perf_counter()
            noise.next_iteration()
            picked = {w: select_sizes(agents[w], state[w], noise.sample(w), graph, cfg, rng)
                      for w in agents}
            chosen = {w: sizes for w, (sizes, _) in picked.items()}
            held = cfg.held_budget(episode)
            if held is not None:
                chosen["user"], chosen["item"] = hold_to_budget(chosen["user"], chosen["item"],
                                                                held, env.n_tables)
            t_select = time.perf_counter() - t0
            step = env.step(chosen["user"], chosen["item"], episode, iteration)
            evals = {"user": step.user_eval, "item": step.item_eval}
            t0 = time.perf_counter()
            rewards, nxt, slopes = {}, {}, {}
            for w in agents:
                q = quality_ratio(evals[w], peak[w])
                slopes[w] = {"own_slope_q": own_size_slope(chosen[w], q),
                             "critic_slope": agents[w].critic_slope(state[w], chosen[w])}
                rewards[w] = reward(evals[w], q, chosen[w].astype(float), cfg.lam,
                                    cfg.reward_quality, cfg.reward_memory)
                nxt[w] = env.state(chosen[w].astype(float), q, w)
                agents[w].buffer.add(state[w], chosen[w].astype(np.float32), rewards[w], nxt[w])
                for _ in range(cfg.td3.updates_per_iteration):
                    agents[w].update()
            state = nxt
            t_rl = t_select + time.perf_counter() - t0
            all_u.append(chosen["user"].astype(np.uint8))
            all_i.append(chosen["item"].astype(np.uint8))
            row = {**labels, "episode": episode, "iteration": iteration,
                   "held_budget": held if held is not None else np.nan,
                   "mean_reward_user": float(rewards["user"].mean()),
                   "mean_reward_item": float(rewards["item"].mean()),
                   "mean_action_user": float(chosen["user"].mean()),
                   "mean_action_item": float(chosen["item"].mean()),
                   "policy_mean_user": float(picked["user"][1].mean()),
                   "policy_mean_item": float(picked["item"][1].mean()),
                   "policy_sparsity": env.sparsity(picked["user"][1], picked["item"][1]),
                   "params": step.account["params"], "capacity": step.account["capacity"],
                   "sparsity": step.account["sparsity"], "density": step.account["density"],
                   "val_avg_user": step.means["avg"],
                   **{f"{k}_{w}": v for w in agents for k, v in slopes[w].items()},
                   **{f"val_{m}": step.means[m] for m in METRICS},
                   "t_train_s": step.t_train, "t_eval_s": step.t_eval, "t_rl_s": t_rl}
            rows.append(row)
            progress.advance()
            log.info("episode %d/%d iteration %d/%d (%d/%d): mean size user %.1f item %.1f, "
                     "sparsity %.4f, val AVG %.5f, reward user %.4f item %.4f [train %.2fs, "
                     "eval %.2fs, RL %.2fs, ETA %s]", episode, cfg.episodes, iteration,
                     cfg.iterations, progress.done, total, row["mean_action_user"],
                     row["mean_action_item"], row["sparsity"], row["val_avg_user"],
                     row["mean_reward_user"], row["mean_reward_item"], step.t_train,
                     step.t_eval, t_rl, progress.eta())
        if ckpt:
            ckpt.save({"episode": episode, "rows": rows, "user_sizes": all_u, "item_sizes": all_i,
                       "agents": {w: a.state_dict() for w, a in agents.items()},
                       "rng": rng.bit_generator.state, "random": random_streams()})
    return SearchOutput(pd.DataFrame(rows), np.stack(all_u), np.stack(all_i))


def write_search(out, log_csv: str, masks_npz: str, log: logging.Logger) -> None:
    """A finished search's outputs: the per-iteration log and every executed mask (sizes)."""
    from ciess.io import atomic_path

    t = out.log[["t_train_s", "t_eval_s", "t_rl_s"]].sum()
    log.info("time split: train %.1fs, evaluate %.1fs, RL %.1fs (RL share %.1f%%)", t.t_train_s,
             t.t_eval_s, t.t_rl_s, 100 * t.t_rl_s / t.sum())
    with atomic_path(masks_npz) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, episode=out.log["episode"].to_numpy(),
                                iteration=out.log["iteration"].to_numpy(),
                                user_sizes=out.user_sizes, item_sizes=out.item_sizes)
    with atomic_path(log_csv) as tmp:
        out.log.to_csv(tmp, index=False)
