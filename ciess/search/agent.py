"""TD3 agent for one entity type (users or items), vectorised over entities (docs/ciess.md §8).

Actor: 3 -> 256 -> 256 -> 1, tanh, rescaled to [1, 128]. Critic: twin heads on
[state (3), normalised action (1)]. Replay buffer of the last ``buffer_iterations`` iterations.
One update = critic step on a batch, target smoothing, clipped-double-Q target; every
``policy_delay``-th update also an actor step and a soft update of the target actor; the target
critic is soft-updated every update (code) or only on the delayed step (standard TD3).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ciess import compat  # noqa: F401  (item 7: optimizers without the torch._dynamo import)
from ciess.masks import D_MAX


def to_size(tanh_out: torch.Tensor) -> torch.Tensor:
    """tanh output in (-1, 1) -> continuous size in [1, 128]."""
    return 1.0 + (D_MAX - 1) * (tanh_out + 1.0) / 2.0


def normalise_size(size: torch.Tensor) -> torch.Tensor:
    """Size in [1, 128] -> [-1, 1], the critic's action input."""
    return 2.0 * (size - 1.0) / (D_MAX - 1) - 1.0


class Actor(nn.Module):
    def __init__(self, hidden: int = 256, init_size: float | None = None):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                                 nn.ReLU(), nn.Linear(hidden, 1))
        nn.init.uniform_(self.net[-1].weight, -3e-3, 3e-3)  # weights only (docs/ciess.md §8, official code)
        if init_size is not None:  # start near a given size (quick profile only; see config)
            target = np.clip(2.0 * (init_size - 1.0) / (D_MAX - 1) - 1.0, -0.999, 0.999)
            nn.init.constant_(self.net[-1].bias, float(np.arctanh(target)))

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        return to_size(torch.tanh(self.net(state))).squeeze(-1)


class Critic(nn.Module):
    def __init__(self, hidden: int = 256):
        super().__init__()

        def head():
            return nn.Sequential(nn.Linear(4, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                                 nn.ReLU(), nn.Linear(hidden, 1))

        self.q1, self.q2 = head(), head()

    def forward(self, state: torch.Tensor, size: torch.Tensor):
        x = torch.cat([state, normalise_size(size).unsqueeze(-1)], dim=-1)
        return self.q1(x).squeeze(-1), self.q2(x).squeeze(-1)

    def q1_only(self, state: torch.Tensor, size: torch.Tensor) -> torch.Tensor:
        return self.q1(torch.cat([state, normalise_size(size).unsqueeze(-1)], dim=-1)).squeeze(-1)


class ReplayBuffer:
    """Ring buffer of (s, a, r, s') rows; ``add`` appends one row per entity."""

    def __init__(self, capacity: int):
        self.capacity, self.size, self.pos = capacity, 0, 0
        self.s = np.zeros((capacity, 3), np.float32)
        self.a = np.zeros(capacity, np.float32)
        self.r = np.zeros(capacity, np.float32)
        self.s2 = np.zeros((capacity, 3), np.float32)

    def add(self, s, a, r, s2) -> None:
        n = len(a)
        idx = (self.pos + np.arange(n)) % self.capacity
        self.s[idx], self.a[idx], self.r[idx], self.s2[idx] = s, a, r, s2
        self.pos = (self.pos + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def state_dict(self) -> dict:
        return {"size": self.size, "pos": self.pos, "s": self.s, "a": self.a, "r": self.r,
                "s2": self.s2}

    def load_state_dict(self, state: dict) -> None:
        if len(state["a"]) != self.capacity:
            raise ValueError(f"replay buffer of {len(state['a'])} rows, expected {self.capacity}")
        self.size, self.pos = int(state["size"]), int(state["pos"])
        self.s, self.a, self.r, self.s2 = (np.array(state[k]) for k in ("s", "a", "r", "s2"))

    def sample(self, batch: int, rng: np.random.Generator):
        idx = rng.integers(0, self.size, batch)
        return (torch.from_numpy(self.s[idx]), torch.from_numpy(self.a[idx]),
                torch.from_numpy(self.r[idx]), torch.from_numpy(self.s2[idx]))


@dataclass
class TD3Settings:
    hidden: int = 256
    actor_lr: float = 1e-3
    critic_lr: float = 3e-3
    gamma: float = 0.99
    tau: float = 0.005
    policy_delay: int = 2
    grad_clip: float = 0.01
    batch_size: int = 4096
    buffer_iterations: int = 100  # capacity = this x number of entities
    target_noise_std: float = 2.0
    target_noise_clip: float = 5.0
    target_noise_scope: str = "shared"  # shared (code) | per_sample (standard TD3)
    target_critic_every: str = "update"  # update (code) | delayed (standard TD3)
    updates_per_iteration: int = 1
    init_size: float | None = None  # None = docs/ciess.md §8's init (sizes start near 64.5)


def soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    with torch.no_grad():
        for t, s in zip(target.parameters(), source.parameters()):
            t.mul_(1.0 - tau).add_(s, alpha=tau)


class TD3Agent:
    def __init__(self, n_entities: int, settings: TD3Settings, rng: np.random.Generator):
        self.cfg, self.rng = settings, rng
        if settings.target_noise_scope not in ("shared", "per_sample"):
            raise ValueError("td3.target_noise_scope must be 'shared' or 'per_sample'")
        if settings.target_critic_every not in ("update", "delayed"):
            raise ValueError("td3.target_critic_every must be 'update' or 'delayed'")
        self.actor = Actor(settings.hidden, settings.init_size)
        self.critic = Critic(settings.hidden)
        self.actor_target = copy.deepcopy(self.actor)
        self.critic_target = copy.deepcopy(self.critic)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=settings.actor_lr)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=settings.critic_lr)
        self.buffer = ReplayBuffer(settings.buffer_iterations * n_entities)
        self.updates = 0

    PARTS = ("actor", "critic", "actor_target", "critic_target", "actor_opt", "critic_opt",
             "buffer")

    def state_dict(self) -> dict:
        """Everything an update depends on (networks, targets, optimisers, replay, counter)."""
        return {**{k: getattr(self, k).state_dict() for k in self.PARTS}, "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        for k in self.PARTS:
            getattr(self, k).load_state_dict(state[k])
        self.updates = int(state["updates"])

    @torch.no_grad()
    def act(self, state: np.ndarray) -> np.ndarray:
        return self.actor(torch.from_numpy(state.astype(np.float32))).cpu().numpy().astype(
            np.float64)

    @torch.no_grad()
    def best_candidate(self, state: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        """argmax over each row's candidates of Q1(s, x); ties go to the first candidate."""
        n, c = candidates.shape
        s = torch.from_numpy(state.astype(np.float32)).repeat_interleave(c, dim=0)
        q = self.critic.q1_only(s, torch.from_numpy(candidates.reshape(-1).astype(np.float32)))
        best = q.view(n, c).cpu().numpy().argmax(axis=1)
        return candidates[np.arange(n), best]

    def critic_slope(self, state: np.ndarray, sizes: np.ndarray) -> float:
        """Mean dQ1/d(size) at the executed sizes, per dimension: the direction the critic
        pushes the actor (diagnostic; compare with the reward's own slope)."""
        s = torch.from_numpy(state.astype(np.float32))
        a = torch.from_numpy(sizes.astype(np.float32)).requires_grad_(True)
        self.critic.q1_only(s, a).sum().backward()
        self.critic.zero_grad(set_to_none=True)
        return float(a.grad.mean())

    def target_values(self, r, s2) -> torch.Tensor:
        cfg = self.cfg
        with torch.no_grad():
            shape = (1,) if cfg.target_noise_scope == "shared" else (len(r),)
            eps = torch.from_numpy(np.clip(self.rng.normal(0.0, cfg.target_noise_std, shape),
                                           -cfg.target_noise_clip, cfg.target_noise_clip)
                                   .astype(np.float32))
            a2 = torch.clamp(self.actor_target(s2) + eps, 1.0, float(D_MAX))
            q1, q2 = self.critic_target(s2, a2)
            return r + cfg.gamma * torch.minimum(q1, q2)

    def update(self) -> dict:
        """One TD3 update from the buffer; returns the losses (actor loss None when delayed)."""
        cfg = self.cfg
        s, a, r, s2 = self.buffer.sample(cfg.batch_size, self.rng)
        y = self.target_values(r, s2)
        q1, q2 = self.critic(s, a)
        critic_loss = F.mse_loss(q1, y) + F.mse_loss(q2, y)
        self.critic_opt.zero_grad()
        critic_loss.backward()
        nn.utils.clip_grad_norm_(self.critic.parameters(), cfg.grad_clip)
        self.critic_opt.step()
        self.updates += 1
        actor_loss = None
        delayed_step = self.updates % cfg.policy_delay == 0
        if delayed_step:
            loss = -self.critic.q1_only(s, self.actor(s)).mean()
            self.actor_opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(self.actor.parameters(), cfg.grad_clip)
            self.actor_opt.step()
            soft_update(self.actor_target, self.actor, cfg.tau)
            actor_loss = float(loss)
        if cfg.target_critic_every == "update" or delayed_step:
            soft_update(self.critic_target, self.critic, cfg.tau)
        return {"critic_loss": float(critic_loss), "actor_loss": actor_loss}
