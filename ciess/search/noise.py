"""Exploration noise processes in size units (docs/ciess.md §9.4), per entity or shared.

gaussian: N(0, sigma^2) fresh every iteration; uniform: U(-a, a); ou: Ornstein-Uhlenbeck
x <- x + theta (mu - x) dt + sigma sqrt(dt) N(0, 1), reset to x0 at every episode start;
none: zero. ``scope="entity"`` gives every entity its own draw (and OU state); ``"shared"``
one scalar for everyone, as the official code.
"""
from __future__ import annotations

import numpy as np

PROCESSES = ("gaussian", "uniform", "ou", "none")


class Noise:
    def __init__(self, kind: str, n: int, scope: str, rng: np.random.Generator, sigma: float = 6.0,
                 uniform_range: float = 11.0, ou_sigma: float = 40.0, ou_theta: float = 0.15,
                 ou_dt: float = 0.01, ou_mu: float = 0.0, ou_x0: float = 0.0):
        if kind not in PROCESSES:
            raise ValueError(f"noise must be one of {PROCESSES}, got {kind!r}")
        if scope not in ("entity", "shared"):
            raise ValueError(f"noise_scope must be 'entity' or 'shared', got {scope!r}")
        self.kind, self.n, self.scope, self.rng = kind, n, scope, rng
        self.sigma, self.uniform_range = sigma, uniform_range
        self.ou = dict(sigma=ou_sigma, theta=ou_theta, dt=ou_dt, mu=ou_mu, x0=ou_x0)
        self.reset()

    @property
    def _draws(self) -> int:
        return self.n if self.scope == "entity" else 1

    def reset(self) -> None:
        self.state = np.full(self._draws, self.ou["x0"], dtype=np.float64)

    def sample(self) -> np.ndarray:
        k = self._draws
        if self.kind == "gaussian":
            x = self.rng.normal(0.0, self.sigma, k)
        elif self.kind == "uniform":
            x = self.rng.uniform(-self.uniform_range, self.uniform_range, k)
        elif self.kind == "ou":
            o = self.ou
            self.state = (self.state + o["theta"] * (o["mu"] - self.state) * o["dt"]
                          + o["sigma"] * np.sqrt(o["dt"]) * self.rng.normal(size=k))
            x = self.state.copy()
        else:
            x = np.zeros(k)
        return np.broadcast_to(x, (self.n,)).copy() if k == 1 else x
