"""Full-ranking evaluation (docs/protocol.md §4).

Every item is ranked for every user; the user's training items (and, on test, validation items)
are excluded. Ties are broken by the lower item index. Recall@k = hits / |held-out|; NDCG@k with
binary gains. Users without held-out items are left out of the means (and counted).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

KS = (5, 10, 20)


def metric_names(ks=KS) -> tuple[str, ...]:
    return tuple(f"{m}@{k}" for m in ("recall", "ndcg") for k in ks)


METRICS = metric_names(KS)


@dataclass
class EvalResult:
    means: dict[str, float]  # recall@k, ndcg@k, avg
    per_user: dict[str, np.ndarray]  # same keys, NaN for users without held-out items
    user_quality: np.ndarray  # eval(u): six-metric mean, 0 for users without held-out items
    item_quality: np.ndarray  # eval(v): mean eval(u) over v's training users, 0 if none
    n_users_evaluated: int


def topk_stable(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Top-k item ids per row, ordered by score descending, ties by lower item index.

    ``torch.topk`` picks the right set except where the k-th score is tied with items outside
    the top k (then which of the tied items it returns is unspecified): those rows, found by the
    (k+1)-th score equal to the k-th, are redone exactly; every row is then ordered by
    (score descending, item ascending)."""
    n_items = scores.shape[1]
    take = min(k + 1, n_items)
    values, chosen = torch.topk(scores, take, dim=1)
    chosen = chosen[:, :k]
    if take > k:
        tied = values[:, k] == values[:, k - 1]
        if tied.any():
            rows = tied.nonzero().squeeze(1)
            chosen = chosen.clone()
            chosen[rows] = _topk_set_lowest_ids(scores[rows], k)
    chosen = torch.sort(chosen, dim=1).values  # ascending item id, then a stable score sort
    chosen_scores = torch.gather(scores, 1, chosen)
    order = torch.sort(chosen_scores, dim=1, descending=True, stable=True).indices
    return torch.gather(chosen, 1, order)


def _topk_set_lowest_ids(scores: torch.Tensor, k: int) -> torch.Tensor:
    """The top-k set per row with ties at the k-th score broken by the lowest item ids."""
    kth = torch.topk(scores, k, dim=1).values[:, -1:]
    above = scores > kth
    need = k - above.sum(dim=1, keepdim=True)
    equal = scores == kth
    take_equal = equal & (torch.cumsum(equal.int(), dim=1) <= need)
    return (above | take_equal).nonzero()[:, 1].view(scores.shape[0], k)


def _row_block_entries(m: sp.csr_matrix, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(row - start, column) of the stored entries of rows start..stop-1, as index tensors."""
    lo, hi = m.indptr[start], m.indptr[stop]
    counts = np.diff(m.indptr[start:stop + 1])
    rows = np.repeat(np.arange(stop - start, dtype=np.int64), counts)
    return torch.from_numpy(rows), torch.from_numpy(m.indices[lo:hi].astype(np.int64))


def _rows_to_dense(m: sp.csr_matrix, start: int, stop: int) -> torch.Tensor:
    dense = torch.zeros(stop - start, m.shape[1], dtype=torch.bool, device="cpu")
    dense[_row_block_entries(m, start, stop)] = True
    return dense


def rank_metrics(top: torch.Tensor, truth: torch.Tensor, ks=KS,
                 n_pos: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Per-user Recall@k and NDCG@k from top-k ids (B, K) and a held-out bool matrix (B, I).
    ``n_pos``: held-out items per user, if known (else counted from ``truth``)."""
    hits = torch.gather(truth, 1, top).float()  # (B, K)
    n_pos = (truth.sum(dim=1) if n_pos is None else n_pos).float()
    discount = 1.0 / torch.log2(torch.arange(2, top.shape[1] + 2, dtype=torch.float32,
                                             device=top.device))
    out = {}
    for k in ks:
        h = hits[:, :k]
        out[f"recall@{k}"] = h.sum(dim=1) / n_pos.clamp(min=1)
        dcg = (h * discount[:k]).sum(dim=1)
        ideal_len = torch.clamp(n_pos, max=k).long()
        idcg = torch.cumsum(discount[:k], 0)[(ideal_len - 1).clamp(min=0)]
        out[f"ndcg@{k}"] = torch.where(n_pos > 0, dcg / idcg, torch.zeros_like(dcg))
    return out


@torch.no_grad()
def evaluate(model, train: sp.csr_matrix, target: sp.csr_matrix,
             exclude: list[sp.csr_matrix] | None = None, ks=KS, batch_users: int = 2048,
             device: str = "cpu") -> EvalResult:
    """Rank all items for every user against ``target``, excluding ``train`` and ``exclude``."""
    was_training = model.training
    model.eval()
    n_users, n_items = train.shape
    excluded = train
    for extra in exclude or []:
        excluded = excluded + extra
    excluded = excluded.tocsr()
    kmax = max(ks)
    names = metric_names(ks)
    per_user = {m: np.full(n_users, np.nan, dtype=np.float64) for m in names}
    for start in range(0, n_users, batch_users):
        stop = min(start + batch_users, n_users)
        rows = np.arange(start, stop)
        scores = model.score_users(torch.from_numpy(rows).to(device)).float().cpu()
        scores.index_put_(_row_block_entries(excluded, start, stop),
                          torch.tensor(-torch.inf, device="cpu"))  # ranking runs on the CPU
        top = topk_stable(scores, kmax)
        truth = _rows_to_dense(target, start, stop)
        n_pos = np.diff(target.indptr[start:stop + 1])  # from the CSR: no pass over (B, I)
        has = n_pos > 0
        for name, values in rank_metrics(top, truth, ks, torch.from_numpy(n_pos)).items():
            per_user[name][rows[has]] = values.cpu().numpy()[has]
    model.train(was_training)
    evaluated = ~np.isnan(per_user[names[0]])
    per_user["avg"] = np.mean([per_user[m] for m in names], axis=0)
    means = {m: float(np.nanmean(v)) for m, v in per_user.items()}
    user_quality = np.where(evaluated, per_user["avg"], 0.0)
    deg = np.asarray(train.sum(axis=0)).ravel()
    item_quality = (train.T @ user_quality) / np.maximum(deg, 1)
    return EvalResult(means, per_user, user_quality, np.asarray(item_quality).ravel(),
                      int(evaluated.sum()))
