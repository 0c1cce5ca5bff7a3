"""PEP: learnable per-entry soft thresholds, masks captured at each budget's first crossing,
lottery-ticket retraining with the fixed unstructured mask (docs/baselines.md §4).

Forward: V~ = sign(V) * relu(|V| - sigmoid(S)), S of V's shape (``feature_dim``), one S per
table (four for NeuMF). One Adam with two groups: S (lr ``s_lr``, coupled weight decay
``s_weight_decay``, which is what drives S up, §4.5) and the rest (the base model's settings, or
a fixed ``model_lr`` as the official code's Adam 1e-3). Coupled decay pulls S towards 0, so the
threshold sigmoid(S) levels off near 0.5: entries whose weights outgrow it cannot be pruned, and
a budget that needs them fails loudly (raise ``max_steps``, lower ``model_lr``).
``model_weight_decay`` (default 0: the earlier behaviour) adds coupled L2 decay on the model's
own parameters during the search, so that entries shrink under the thresholds instead of
outgrowing them (docs/reference_profile.md: the threshold probe that stalled at 56%).
``reg_weight`` (default None: the base model's) sets the model's batch L2 factor during the
search only, the way the lightweight benchmark keeps entries small (docs/baselines.md §4).
``reg_growth`` (default 1: constant) multiplies that factor every ``reg_growth_every`` steps: at
a fixed factor PEP's sparsity levels off where the task loss balances the L2 term (the
benchmark runs one search per target, each with its own factor); a growing factor carries one
search through all three budgets, each mask captured at its first crossing. A crossing that
overshoots its budget by more than ``max_overshoot`` (a fraction of the table) fails: the checks
(``check_every``) were too far apart for the pace of the thresholds.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
from torch.nn.utils import parametrize

from baselines import MethodContext, register
from ciess.masks import capacity, elements_mask, meets_budget
from ciess.progress import Progress
from ciess.sampler import TripleSampler
from ciess.train import lr_at, train_step


class SoftThreshold(nn.Module):
    """Parametrization V -> sign(V) * relu(|V| - sigmoid(S))."""

    def __init__(self, shape, init: float, device: torch.device | str = "cpu"):
        super().__init__()
        self.s = nn.Parameter(torch.full(shape, float(init), device=device))

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        return torch.sign(v) * torch.relu(v.abs() - torch.sigmoid(self.s))


def thresholded_nnz(tables) -> int:
    with torch.no_grad():
        return int(sum(torch.count_nonzero(t.weight) for t in tables))


DEFAULTS = {"threshold_init": -15.0, "s_lr": 1e-3, "s_weight_decay": 1e-5, "check_every": 1,
            "max_steps": 30000, "batch_size": None, "model_lr": None, "model_weight_decay": 0.0,
            "reg_weight": None, "reg_growth": 1.0, "reg_growth_every": 1000, "max_overshoot": 0.02}


@register("pep", params=DEFAULTS, label="PEP", device_test=([80], dict(
    threshold_init=-6.0, s_lr=0.05, max_steps=300, batch_size=128, model_lr=1e-3)))
def make_masks(ctx: MethodContext, targets: list[int]) -> dict:
    p = {**DEFAULTS, **ctx.params}
    if any(t is None for t in targets):
        raise ValueError("PEP has no native mode: give target sparsities")
    split, settings = ctx.split, ctx.train_settings()
    # `reg_weight` (None: the base model's) sets the batch L2 factor for the search only, as the
    # lightweight benchmark's PEP runs do (docs/baselines.md §4); retraining keeps the base one
    overrides = {**ctx.model_overrides,
                 **({} if p["reg_weight"] is None else {"reg_weight": float(p["reg_weight"])})}
    model, named = ctx.rewindable_start(overrides)  # {name: nn.Embedding}, user/item (x GMF/MLP)
    for t in named.values():
        parametrize.register_parametrization(t, "weight", SoftThreshold(t.weight.shape, p["threshold_init"],
                                                                      t.weight.device))
    s_params = [t.parametrizations.weight[0].s for t in named.values()]
    ids = {id(x) for x in s_params}
    rest = [x for x in model.parameters() if id(x) not in ids]
    hp = model.hparams
    opt = torch.optim.Adam([
        {"params": s_params, "lr": p["s_lr"], "weight_decay": p["s_weight_decay"], "name": "s"},
        {"params": rest, "lr": hp["lr"], "weight_decay": p["model_weight_decay"], "name": "model"},
    ])
    batch = p["batch_size"] or settings.batch_size  # default: the base model's batch
    sampler = TripleSampler(split.train, batch, settings.sampler, ctx.seed)
    cap = capacity(split.n_users, split.n_items, ctx.n_tables)
    pending = sorted(targets)
    captured, previous_sparsity = {}, 0.0
    reg_start, growth, every = model.reg_weight, float(p["reg_growth"]), int(p["reg_growth_every"])
    if growth < 1.0 or every < 1:
        raise ValueError(f"PEP params: reg_growth must be >= 1 and reg_growth_every >= 1 "
                         f"(got {growth}, {every})")
    progress = Progress(int(p["max_steps"]))
    for step in range(1, int(p["max_steps"]) + 1):
        progress.advance()
        # the rest of the model: the base model's schedule, or a fixed `model_lr` (official 1e-3)
        opt.param_groups[1]["lr"] = p["model_lr"] or lr_at(step - 1, hp)
        model.reg_weight = reg_start * growth ** ((step - 1) // every)
        loss = train_step(model, opt, sampler, settings.device)  # the shared training step
        if step % p["check_every"] and step != p["max_steps"]:
            continue
        nnz = thresholded_nnz(named.values())
        while pending and meets_budget(nnz, pending[0], split.n_users, split.n_items, ctx.n_tables):
            pct = pending.pop(0)
            if 1 - nnz / cap > pct / 100 + p["max_overshoot"]:
                raise RuntimeError(
                    f"PEP jumped from sparsity {previous_sparsity:.4f} to {1 - nnz / cap:.4f} "
                    f"between two checks, past {pct}% by more than max_overshoot="
                    f"{p['max_overshoot']}; lower check_every or reg_growth (never a mask this "
                    f"much sparser than its budget)")
            with torch.no_grad():
                keep = {n: (t.weight != 0).cpu().numpy() for n, t in named.items()}
            captured[pct] = _to_mask(ctx, keep, pct, step, nnz, cap, previous_sparsity,
                                     model.reg_weight)
            ctx.log.info("PEP captured %d%% at step %d: %d params (sparsity %.4f, L2 factor %.3g)",
                         pct, step, nnz, 1 - nnz / cap, model.reg_weight)
        previous_sparsity = 1 - nnz / cap
        if step % 100 == 0:
            s_mean = float(torch.stack([s.detach().mean() for s in s_params]).mean())
            ctx.log.info("PEP step %d/%d: loss %.4f, sparsity %.4f, mean S %.3f, L2 factor %.3g "
                         "[ETA %s at most]", step, int(p["max_steps"]), loss.item(), 1 - nnz / cap,
                         s_mean, model.reg_weight, progress.eta())
        if not pending:
            break
    if pending:
        raise RuntimeError(f"PEP reached max_steps={p['max_steps']} before the budgets "
                           f"{pending}%; raise max_steps or s_lr (never a looser mask)")
    return captured


def _to_mask(ctx, keep: dict, pct: int, step: int, nnz: int, cap: int, previous: float,
             l2_factor: float):
    names = list(keep)
    users = np.stack([keep[n] for n in names if n.startswith("user")])
    items = np.stack([keep[n] for n in names if n.startswith("item")])
    if len(users) == 1:
        users, items = users[0], items[0]
    return elements_mask(users, items, **ctx.meta(
        "pep", pct, captured_step=step, nnz=nnz, rewind=True, tables=names,
        sparsity_at_previous_check=previous, l2_factor=l2_factor))
