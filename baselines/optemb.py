"""OptEmb (OptEmbed): supernet with learnable row pruning and random prefix dimensions, then an
evolutionary search over per-user / per-item sizes, then rewind retraining
(docs/baselines.md §6, the CF adaptation of §6.2).

Supernet table: W * m_E * m_D with m_E(n) = BinaryStep(||w_n||_1 - t) (one learnable t per
table, SGD with lr ``t_lr``, regulariser alpha * exp(-t)) and m_D a prefix of a size drawn per
row, uniform on {1..128}, at every training step (no m_D at evaluation). Evolution: candidates
are (user_sizes, item_sizes); fitness = validation AVG of the supernet with those prefixes and
m_E. Native mode reports the achieved sparsity; OptEmb-B (extension) samples sizes biased to
the budget and rejects or repairs infeasible candidates.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
from torch.nn.utils import parametrize

from baselines import MethodContext, register
from ciess.evaluate import evaluate
from ciess.masks import D_MAX, budget_params, repair_to_budget, sizes_mask
from ciess.progress import Progress
from ciess.train import TrainHooks, train_model


class BinaryStep(torch.autograd.Function):
    """Forward: 1 if x > 0 else 0. Backward: 2 - 4|x| for |x| <= 0.4, 0.4 for |x| <= 1, else 0."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        a = x.abs()
        slope = torch.where(a <= 0.4, 2 - 4 * a, torch.where(a <= 1, torch.full_like(a, 0.4),
                                                             torch.zeros_like(a)))
        return grad * slope


class SupernetMask(nn.Module):
    """Parametrization W -> W * m_E(row) * m_D(prefix of ``dims``)."""

    def __init__(self, n: int, device: torch.device | str = "cpu"):
        super().__init__()
        self.t = nn.Parameter(torch.zeros(1, device=device))
        self.register_buffer("dims", torch.full((n,), D_MAX, device=device))
        self.use_dims = False  # at evaluation, apply ``dims`` only while scoring a candidate

    def row_mask(self, w: torch.Tensor) -> torch.Tensor:
        return BinaryStep.apply(w.abs().sum(dim=1) - self.t)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        out = w * self.row_mask(w)[:, None]
        if self.training or self.use_dims:
            out = out * (torch.arange(w.shape[1], device=w.device)[None, :] < self.dims[:, None])
        return out


def alpha_for_mean(target_mean: float, d_max: int = D_MAX) -> float:
    """alpha with E[s] = target_mean for P(s) proportional to alpha^(d_max - s), s in 1..d_max."""
    s = np.arange(1, d_max + 1)

    def mean(a):
        w = np.exp((d_max - s) * np.log(a) - (d_max - 1) * np.log(a))
        return float((s * w).sum() / w.sum())

    lo, hi = 1.0 + 1e-9, 2.0
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if mean(mid) > target_mean else (lo, mid)
    return (lo + hi) / 2


REDRAWS = 100  # redraws of an infeasible candidate before it is repaired (docs/baselines.md §6)


class Evolution:
    def __init__(self, ctx: MethodContext, model, tables, p: dict, target_pct: int | None):
        self.ctx, self.model, self.tables, self.p = ctx, model, tables, p
        self.rng = np.random.default_rng([ctx.seed, target_pct or 0])
        self.repairs = 0  # candidates that stayed infeasible after REDRAWS redraws
        split = ctx.split
        self.nu, self.ni = split.n_users, split.n_items
        with torch.no_grad():
            keep = {n: t.parametrizations.weight[0].row_mask(t.parametrizations.weight.original)
                    .bool().cpu().numpy() for n, t in tables.items()}
        # one size per entity for all its tables: a row survives if any of its tables keeps it
        self.keep = np.concatenate([np.any([keep[n] for n in keep if n.startswith(w)], axis=0)
                                    for w in ("user", "item")])
        self.target_pct = target_pct
        if target_pct is not None:
            self.limit = budget_params(target_pct, self.nu, self.ni, ctx.n_tables) // ctx.n_tables
            self.probs = self._biased_probs(alpha_for_mean((100 - target_pct) / 100 * D_MAX))

    @staticmethod
    def _biased_probs(alpha: float) -> np.ndarray:
        s = np.arange(1, D_MAX + 1)
        w = alpha ** (D_MAX - s - (D_MAX - 1) / 2)
        return w / w.sum()

    def params(self, cand: np.ndarray) -> int:
        return int((cand * self.keep).sum())

    def feasible(self, draw) -> np.ndarray:
        """A candidate from ``draw()`` (a prior draw, a crossover or a mutation) within the
        budget: the same operation is redrawn up to ``REDRAWS`` times, then repaired (§6.5)."""
        cand = draw()
        if self.target_pct is None:
            return cand
        for _ in range(REDRAWS):
            if self.params(cand) <= self.limit:
                return cand
            cand = draw()
        self.repairs += 1
        kept = cand * self.keep  # repair on the counted rows, as MR's repair (§6.5)
        fixed = repair_to_budget(np.maximum(kept[self.keep], 1), self.limit, self.rng)
        cand = cand.copy()
        cand[self.keep] = fixed
        return cand

    def crossover(self, elites) -> np.ndarray:
        a, b = self.rng.choice(len(elites), 2, replace=len(elites) < 2)
        pick = self.rng.random(len(elites[a][1])) < 0.5
        return np.where(pick, elites[a][1], elites[b][1])

    def mutation(self, elites) -> np.ndarray:
        child = elites[self.rng.integers(len(elites))][1].copy()
        flip = self.rng.random(len(child)) < self.p["p_mutate"]
        child[flip] = self.sample()[flip]
        return child

    def sample(self) -> np.ndarray:
        n = self.nu + self.ni
        if self.target_pct is None:
            return self.rng.integers(1, D_MAX + 1, n)
        return self.rng.choice(np.arange(1, D_MAX + 1), n, p=self.probs)

    def fitness(self, cand: np.ndarray) -> float:
        for name, t in self.tables.items():
            sizes = cand[: self.nu] if name.startswith("user") else cand[self.nu:]
            mod = t.parametrizations.weight[0]
            mod.dims.copy_(torch.as_tensor(sizes, device=mod.dims.device))
            mod.use_dims = True
        split = self.ctx.split
        res = evaluate(self.model, split.train, split.valid)
        for t in self.tables.values():
            t.parametrizations.weight[0].use_dims = False
        metric = self.p["fitness"]
        return res.means[metric]

    def run(self, progress: Progress) -> tuple[np.ndarray, float]:
        """The evolution; ``progress`` counts generations over all of the rule's evolutions."""
        p = self.p
        pop = [self.feasible(self.sample) for _ in range(p["population"])]
        elites: list[tuple[float, np.ndarray]] = []
        for gen in range(1, p["generations"] + 1):
            scored = [(self.fitness(c), c) for c in pop]
            elites = sorted(elites + scored, key=lambda x: -x[0])[: p["elites"]]
            progress.advance()
            self.ctx.log.info("OptEmb%s generation %d/%d: best fitness %.5f, best params %d "
                              "[%d/%d generations of all budgets, ETA %s]",
                              "" if self.target_pct is None else f"-B {self.target_pct}%", gen,
                              p["generations"], elites[0][0], self.params(elites[0][1]),
                              progress.done, progress.total, progress.eta())
            children = [self.feasible(lambda: self.crossover(elites))
                        for _ in range(p["crossovers"])]
            children += [self.feasible(lambda: self.mutation(elites))
                         for _ in range(p["mutations"])]
            pop = children
        return elites[0][1], elites[0][0]


DEFAULTS = {"alpha": 1e-4, "t_lr": 1e-4, "generations": 30, "population": 20, "crossovers": 10,
            "mutations": 10, "elites": 15, "p_mutate": 0.1, "fitness": "avg"}


@register("optemb", params=DEFAULTS, label="OptEmb", native_mode=True, device_test=([None, 80], dict(
    alpha=1e-2, t_lr=1e-2, generations=2, population=4, crossovers=2, mutations=2, elites=3,
    p_mutate=0.1, fitness="avg")))
def make_masks(ctx: MethodContext, targets: list) -> dict:
    p = {**DEFAULTS, **ctx.params}
    split, settings = ctx.split, ctx.train_settings()
    model, tables = ctx.rewindable_start()
    for t in tables.values():
        parametrize.register_parametrization(t, "weight",
                                             SupernetMask(t.weight.shape[0], t.weight.device))
    masks = [t.parametrizations.weight[0] for t in tables.values()]
    rng = np.random.default_rng(ctx.seed)

    def resample_dims(step):
        for m in masks:
            m.dims.copy_(torch.as_tensor(rng.integers(1, D_MAX + 1, len(m.dims)),
                                         device=m.dims.device))

    hooks = TrainHooks(
        before_step=resample_dims,
        extra_loss=lambda: p["alpha"] * sum(torch.exp(-m.t).sum() for m in masks),
        own_params=tuple(m.t for m in masks),
        optimizer=torch.optim.SGD([m.t for m in masks], lr=p["t_lr"]),
    )
    outcome = train_model(model, split, settings, ctx.seed, tag="[supernet] ", hooks=hooks)
    ctx.log.info("supernet: best validation AVG %.5f at step %d; thresholds %s",
                 outcome.best_valid.means["avg"], outcome.best_step,
                 [round(float(m.t.detach()), 6) for m in masks])
    model.eval()
    out = {}
    progress = Progress(p["generations"] * len(targets))
    for target in targets:
        evo = Evolution(ctx, model, tables, p, target)
        best, fit = evo.run(progress)
        sizes = best * evo.keep  # pruned rows get size 0
        label = "OptEmb (native)" if target is None else "OptEmb-B (budgeted extension)"
        out[target] = sizes_mask(sizes[: split.n_users], sizes[split.n_users:],
                                 **ctx.meta("optemb", target, variant=label, fitness=fit,
                                            rows_pruned=int((~evo.keep).sum()), rewind=True))
    return out
