"""ESAPN: per-entity keep/enlarge policies over candidate sizes, trained with REINFORCE
(docs/baselines.md §5, the benchmark's CF adaptation §5.2).

The recommender is the shared 128-wide masked model; an entity's size is a prefix of its row,
starting at 2 and only growing through {2, 4, 8, 16, 64, 128}. Per batch of BPR triples:
(1) controller update on the previous batch: sample keep/enlarge, apply tentatively, per-triple
loss l = softplus(s(u,j) - s(u,i)) without gradient, advantage = mean of the entity's last 5
credited losses - l, REINFORCE; (2) greedy decisions for this batch's users and positive items;
(3) one Adam step on the recommender. Native mode: the sizes at the end. ESAPN-B (an extension):
enlargements are accepted by decreasing p(enlarge) while the total stays within the tightest
pending budget; when one would exceed it, the sizes are captured for that budget.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from baselines import MethodContext, register
from ciess.masks import D_MAX, budget_params, sizes_mask
from ciess.models import build_model
from ciess.progress import Progress
from ciess.sampler import TripleSampler
from ciess.train import seed_everything

CANDIDATES = (2, 4, 8, 16, 64, 128)


class Policy(nn.Module):
    """freq-emb(32) + BN, concat one-hot(size index) -> 512 -> BN -> tanh -> 2 logits."""

    def __init__(self, max_freq: int, n_sizes: int = len(CANDIDATES)):
        super().__init__()
        self.freq = nn.Embedding(max_freq + 1, 32)
        self.bn_in = nn.BatchNorm1d(32)
        self.net = nn.Sequential(nn.Linear(32 + n_sizes, 512), nn.BatchNorm1d(512), nn.Tanh(),
                                 nn.Linear(512, 2))
        self.n_sizes = n_sizes

    def forward(self, freq: torch.Tensor, size_idx: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.bn_in(self.freq(freq)), F.one_hot(size_idx, self.n_sizes).float()], 1)
        return self.net(x)


class EntityState:
    """Size index, running credited frequency and the last ``history`` losses of each entity."""

    def __init__(self, n: int, max_freq: int, history: int = 5):
        self.size_idx = np.zeros(n, np.int64)
        self.freq = np.zeros(n, np.int64)
        self.max_freq = max_freq
        self.losses = np.full((n, history), np.nan)
        self.cursor = np.zeros(n, np.int64)

    def baseline(self, ids: np.ndarray, fallback: np.ndarray) -> np.ndarray:
        seen = self.losses[ids]
        count = (~np.isnan(seen)).sum(axis=1)
        total = np.nansum(seen, axis=1)
        return np.where(count > 0, total / np.maximum(count, 1), fallback)

    def record(self, ids: np.ndarray, losses: np.ndarray) -> None:
        for n, loss in zip(ids, losses):  # one row per distinct entity of a batch
            self.losses[n, self.cursor[n] % self.losses.shape[1]] = loss
            self.cursor[n] += 1

    def sizes(self) -> np.ndarray:
        return np.asarray(CANDIDATES)[self.size_idx]


class PolicyTrace:
    """What the policy learns from, summed over a logging window (the search log's policy lines):
    the advantage of sampled enlargements and of sampled keeps (entities below 128), the policy's
    mean p(enlarge) there, the advantage of the forced keeps of entities at 128, and how many
    greedy decisions enlarged."""

    def __init__(self):
        self.sums = {k: 0.0 for k in ("adv_enlarge", "adv_keep", "p_enlarge", "adv_forced")}
        self.counts = {k: 0 for k in ("enlarge", "keep", "forced", "decided", "grown")}

    def sampled(self, adv: np.ndarray, act: np.ndarray, p_enlarge: np.ndarray,
                forced: np.ndarray) -> None:
        """One controller update: ``forced`` marks the entities at 128 (their keep is forced)."""
        free = ~forced
        self.sums["adv_enlarge"] += float(adv[free & (act == 1)].sum())
        self.sums["adv_keep"] += float(adv[free & (act == 0)].sum())
        self.sums["p_enlarge"] += float(p_enlarge[free].sum())
        self.sums["adv_forced"] += float(adv[forced].sum())
        self.counts["enlarge"] += int((free & (act == 1)).sum())
        self.counts["keep"] += int((free & (act == 0)).sum())
        self.counts["forced"] += int(forced.sum())

    def decided(self, n: int, grown: int) -> None:
        self.counts["decided"] += n
        self.counts["grown"] += grown

    def text(self) -> str:
        c, s = self.counts, self.sums
        mean = lambda k, n: s[k] / n if n else float("nan")  # noqa: E731
        return (f"advantage of sampled enlarge {mean('adv_enlarge', c['enlarge']):+.4f} "
                f"(n={c['enlarge']}), keep {mean('adv_keep', c['keep']):+.4f} (n={c['keep']}); "
                f"mean p(enlarge) {mean('p_enlarge', c['enlarge'] + c['keep']):.3f}; forced keep "
                f"at 128 {mean('adv_forced', c['forced']):+.4f} (n={c['forced']}); greedy "
                f"enlarged {c['grown']} of {c['decided']} decisions")


def _per_entity_mean(ids: np.ndarray, values: np.ndarray):
    uniq, inv = np.unique(ids, return_inverse=True)
    return uniq, np.bincount(inv, weights=values) / np.bincount(inv)


class ESAPNSearch:
    def __init__(self, ctx: MethodContext, p: dict, budgets: list[int] | None):
        split = ctx.split
        self.ctx, self.p = ctx, {**DEFAULTS, **p}
        p = self.p
        settings = ctx.train_settings()
        self.device = settings.device
        seed_everything(ctx.seed)
        self.model = build_model(ctx.model, split.n_users, split.n_items, split.train,
                                 ctx.model_overrides, settings.device,
                                 sizes_mask(np.full(split.n_users, 2), np.full(split.n_items, 2)))
        self.opt = torch.optim.Adam(self.model.parameters(), lr=p["model_lr"])
        deg_u = np.asarray(split.train.sum(axis=1)).ravel().astype(int)
        deg_i = np.asarray(split.train.sum(axis=0)).ravel().astype(int)
        self.state = {"user": EntityState(split.n_users, deg_u.max()),
                      "item": EntityState(split.n_items, deg_i.max())}
        self.policy = {w: Policy(self.state[w].max_freq) for w in self.state}
        self.policy_opt = {w: torch.optim.Adam(self.policy[w].parameters(), lr=p["policy_lr"])
                           for w in self.state}
        self.sampler = TripleSampler(split.train, p["batch_size"], settings.sampler, ctx.seed)
        self.rng = np.random.default_rng(ctx.seed)
        self.budgets = sorted(budgets or [], reverse=True)  # tightest (95) first
        self.captured: dict[int, np.ndarray] = {}
        self.n_users = split.n_users
        self.trace = {w: PolicyTrace() for w in self.state}  # reset at every progress line

    # -- masks ---------------------------------------------------------------------------------
    def _apply(self, which: str, ids: np.ndarray, size_idx: np.ndarray) -> None:
        for pair in self.model.mask_tables():
            mask = (pair[0] if which == "user" else pair[1]).parametrizations.weight[0].mask
            sizes = torch.as_tensor(np.asarray(CANDIDATES)[size_idx], device=mask.device)
            cols = torch.arange(D_MAX, device=mask.device)[None, :] < sizes[:, None]
            mask[torch.as_tensor(ids, device=mask.device)] = cols.float()

    def _logits(self, which: str, ids: np.ndarray) -> torch.Tensor:
        st = self.state[which]
        # the policies are small MLPs and stay on the CPU, whatever the recommender's device
        freq = torch.as_tensor(np.minimum(st.freq[ids], st.max_freq), device="cpu")
        return self.policy[which](freq, torch.as_tensor(st.size_idx[ids], device="cpu"))

    def _triple_losses(self, u, i, j) -> np.ndarray:
        """Per-triple BPR losses of a (CPU) batch, computed where the model lives."""
        u, i, j = (x.to(self.device) for x in (u, i, j))
        with torch.no_grad():
            losses = F.softplus(self.model.score_pairs(u, j) - self.model.score_pairs(u, i))
        return losses.cpu().numpy()

    # -- one batch -----------------------------------------------------------------------------
    def controller_update(self, batch) -> None:
        u, i, j = batch
        ids = {"user": u.cpu().numpy(), "item": i.cpu().numpy()}  # batches are sampled on the CPU
        uniq, sampled = {}, {}
        self.model.eval()
        for w in ("user", "item"):
            uniq[w] = np.unique(ids[w])
            self.policy[w].train()
            logits = self._logits(w, uniq[w])
            act = torch.distributions.Categorical(logits=logits).sample()
            at_top = self.state[w].size_idx[uniq[w]] == len(CANDIDATES) - 1
            act[torch.as_tensor(at_top, device="cpu")] = 0  # an entity at 128 always keeps
            sampled[w] = (logits, act, at_top)
            tentative = np.minimum(self.state[w].size_idx[uniq[w]] + act.cpu().numpy(),
                                   len(CANDIDATES) - 1)
            self._apply(w, uniq[w], tentative)
        losses = self._triple_losses(u, i, j)
        for w in ("user", "item"):
            self._apply(w, uniq[w], self.state[w].size_idx[uniq[w]])  # undo the tentative sizes
            ents, mean_loss = _per_entity_mean(ids[w], losses)
            adv = self.state[w].baseline(ents, mean_loss) - mean_loss
            logits, act, forced = sampled[w]  # uniq[w] == ents: one row per entity of the batch
            self.trace[w].sampled(adv, act.numpy(), torch.softmax(logits.detach(), 1)[:, 1].numpy(),
                                  forced)
            terms = (F.cross_entropy(logits, act, reduction="none")
                     * torch.as_tensor(adv, dtype=torch.float32, device="cpu"))
            if not self.p["update_forced_keeps"]:
                terms = terms[torch.as_tensor(~forced)]
            if len(terms) == 0:
                continue
            loss = terms.mean()
            self.policy_opt[w].zero_grad()
            loss.backward()
            self.policy_opt[w].step()
        self.model.train()

    def greedy_update(self, batch) -> None:
        u, i, _ = batch
        for w, ids in (("user", u.cpu().numpy()), ("item", i.cpu().numpy())):
            uniq = np.unique(ids)
            st = self.state[w]
            self.policy[w].eval()
            with torch.no_grad():
                prob = torch.softmax(self._logits(w, uniq), dim=1)[:, 1].cpu().numpy()
            below = st.size_idx[uniq] < len(CANDIDATES) - 1
            grow = (prob > 0.5) & below
            grow_ids, grow_p = uniq[grow], prob[grow]
            if self.budgets:
                grow_ids = self._within_budget(w, grow_ids, grow_p)
            self.trace[w].decided(int(below.sum()), len(grow_ids))
            st.size_idx[grow_ids] += 1
            self._apply(w, grow_ids, st.size_idx[grow_ids])

    def _total(self) -> int:
        return int(self.state["user"].sizes().sum() + self.state["item"].sizes().sum())

    def _within_budget(self, which, ids, prob) -> np.ndarray:
        """ESAPN-B: accept enlargements by decreasing p(enlarge) while within the tightest
        pending budget; capture the sizes when the next one would exceed it."""
        split, st = self.ctx.split, self.state[which]
        order = np.argsort(-prob, kind="stable")
        accepted, total = [], self._total()
        sizes = np.asarray(CANDIDATES)
        for n in ids[order]:
            step = sizes[st.size_idx[n] + 1] - sizes[st.size_idx[n]]
            while self.budgets:
                limit = budget_params(self.budgets[0], split.n_users, split.n_items,
                                      self.ctx.n_tables) // self.ctx.n_tables
                if total + step <= limit:
                    break
                self._capture(which, accepted)
                self.budgets.pop(0)
            if not self.budgets:
                break
            accepted.append(n)
            total += step
        return np.asarray(accepted, np.int64)

    def _capture(self, which, accepted) -> None:
        user, item = self.state["user"].sizes().copy(), self.state["item"].sizes().copy()
        grown = user if which == "user" else item
        for n in accepted:
            grown[n] = CANDIDATES[self.state[which].size_idx[n] + 1]
        self.captured[self.budgets[0]] = np.concatenate([user, item])
        self.ctx.log.info("ESAPN-B captured %d%%: %d dims per table", self.budgets[0],
                          int(user.sum() + item.sum()))

    def train_step(self, batch) -> float:
        u, i, j = batch
        for w, ids in (("user", u.cpu().numpy()), ("item", i.cpu().numpy())):
            uniq, counts = np.unique(ids, return_counts=True)
            self.state[w].freq[uniq] += counts
        loss = self.model.calculate_loss({self.model.USER_ID: u.to(self.device),
                                          self.model.ITEM_ID: i.to(self.device),
                                          self.model.NEG_ITEM_ID: j.to(self.device)})
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        losses = self._triple_losses(u, i, j)
        for w, ids in (("user", u.cpu().numpy()), ("item", i.cpu().numpy())):
            ents, mean_loss = _per_entity_mean(ids, losses)
            self.state[w].record(ents, mean_loss)
        return loss.item()

    def run(self) -> None:
        split = self.ctx.split
        n_batches = int(self.p["search_epochs"] * -(-split.n_train // self.p["batch_size"]))
        previous = None
        progress = Progress(n_batches)
        for b in range(1, n_batches + 1):
            batch = self.sampler.sample()
            if previous is not None:
                self.controller_update(previous)
            self.greedy_update(batch)
            loss = self.train_step(batch)
            previous = batch
            progress.advance()
            if b % 50 == 0 or b == n_batches:
                self.ctx.log.info("ESAPN batch %d/%d: loss %.4f, mean size user %.2f item %.2f "
                                  "[ETA %s%s]", b, n_batches, loss,
                                  self.state["user"].sizes().mean(),
                                  self.state["item"].sizes().mean(), progress.eta(),
                                  " at most" if self.p.get("budgeted") else "")
                for w in self.trace:
                    self.ctx.log.info("ESAPN %s policy, batches %d-%d: %s", w,
                                      b - (b - 1) % 50, b, self.trace[w].text())
                    self.trace[w] = PolicyTrace()
            if self.p.get("budgeted") and not self.budgets:
                break


# update_forced_keeps: the REINFORCE update also learns from the forced "keep" of entities already
# at 128, as the official code's update does (every row of the batch); False learns from sampled
# decisions only (a forced action is not a decision; measured on ML-1M LightGCN: native sparsity
# 8.0% instead of 6.4%, docs/baselines.md §5). The official behaviour stays the default.
DEFAULTS = {"batch_size": 500, "search_epochs": 1.0, "model_lr": 1e-3, "policy_lr": 1e-4,
            "update_forced_keeps": True}


@register("esapn", params=DEFAULTS, label="ESAPN", native_mode=True, device_test=([None, 80], dict(
    batch_size=64, search_epochs=0.3, model_lr=1e-3, policy_lr=1e-4)))
def make_masks(ctx: MethodContext, targets: list) -> dict:
    p = {**DEFAULTS, **ctx.params}
    out = {}
    if None in targets:  # native ESAPN: the paper's row
        search = ESAPNSearch(ctx, p, None)
        search.run()
        user, item = search.state["user"].sizes(), search.state["item"].sizes()
        out[None] = sizes_mask(user, item, **ctx.meta("esapn", None, variant="native"))
    budgets = [t for t in targets if t is not None]
    if budgets:  # ESAPN-B: an extension, labelled -B in the reports
        search = ESAPNSearch(ctx, {**p, "budgeted": True}, budgets)
        search.run()
        final = np.concatenate([search.state["user"].sizes(), search.state["item"].sizes()])
        for pct in budgets:
            sizes = search.captured.get(pct, final)  # end-of-search sizes if it never bound
            out[pct] = sizes_mask(sizes[:search.n_users], sizes[search.n_users:],
                                  **ctx.meta("esapn", pct, variant="ESAPN-B (budgeted extension)",
                                             captured=pct in search.captured))
    return out
