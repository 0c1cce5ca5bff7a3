"""What every maskable base model shares: the table mask, mask plumbing, narrowing to the mask's
width, the protocol's L2 term, and the adapters RecBole's constructors need.

A maskable model is a RecBole model class with ``MaskableMixin`` in front:

* each user/item table gets a ``torch.nn.utils.parametrize`` mask, so ``table.weight`` (and every
  look-up through it) is ``W * M``. Masked entries get zero gradient and keep their initial value.
* ``mask_tables()`` names its (user_table, item_table) pairs; ``n_tables`` is their number;
* ``score_users(users)`` returns (len(users), n_items) scores for full-ranking evaluation;
* ``_narrow_layers(widths)`` cuts the layers that read the tables' columns directly.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn as nn
from torch.nn.utils import parametrize

from ciess.masks import D_MAX, Mask
from ciess.models.propagation import normalized_adjacency_scipy


class TableMask(nn.Module):
    """Parametrization ``W -> W * M`` with a fixed 0/1 buffer ``M``."""

    def __init__(self, mask: torch.Tensor):
        super().__init__()
        self.register_buffer("mask", mask.to(torch.float32), persistent=True)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight * self.mask


class RecBoleConfig(dict):
    """The few keys RecBole's model constructors read, as a plain mapping."""


class SplitAdapter:
    """What RecBole's model constructors need from a Dataset, served by our materialised split."""

    def __init__(self, n_users: int, n_items: int, train: sp.csr_matrix):
        self._n = {"user_id": n_users, "item_id": n_items}
        self._train = train

    def num(self, field: str) -> int:
        return self._n[field]

    def inter_matrix(self, form: str = "coo", value_field=None):
        return self._train.tocoo() if form == "coo" else self._train.asformat(form)


def normalized_adjacency(train: sp.csr_matrix, layout=torch.sparse_csr) -> torch.Tensor:
    """D^-1/2 A D^-1/2 of the bipartite graph as a plain torch sparse tensor (tests, RecBole
    comparisons); the models propagate through ``propagation.Adjacency``."""
    lap = normalized_adjacency_scipy(train).tocoo()
    idx = torch.from_numpy(np.vstack([lap.row, lap.col]).astype(np.int64))
    t = torch.sparse_coo_tensor(idx, torch.from_numpy(lap.data), lap.shape).coalesce()
    return t.to_sparse_csr() if layout == torch.sparse_csr else t


class _SumOfSquares(torch.autograd.Function):
    """sum(x ** 2) as one dot product, with the backward as one product 2g * x (torch's ``dot``
    backward computes g * x twice and adds them: the same numbers, two more passes over x)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        flat = x.reshape(-1)
        return torch.dot(flat, flat)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return x * (2 * grad)


class SquaredL2Loss(nn.Module):
    """The protocol's L2 term: sum of squared entries of the given batch embeddings / batch size.

    RecBole's ``EmbLoss(require_pow=True)`` also divides by the norm order (2), which halves the
    specified weight; this module does not. ``require_pow`` is accepted (RecBole's LightGCN passes
    it) and must be true: a plain (unsquared) norm is not what any of the suite's models uses.
    """

    def forward(self, *embeddings: torch.Tensor, require_pow: bool = True,
                batch_size: int | None = None) -> torch.Tensor:
        """``batch_size``: the divisor, if not the last embedding's row count."""
        if not require_pow:
            raise ValueError("SquaredL2Loss computes squared norms only (require_pow must be true)")
        total = sum(_SumOfSquares.apply(e) for e in embeddings)  # no squared temporary
        return total / (embeddings[-1].shape[0] if batch_size is None else batch_size)


def narrowed_table(table: nn.Embedding, width: int) -> nn.Embedding:
    """The first ``width`` columns of a (possibly masked) table, as a new table with its mask."""
    masked = parametrize.is_parametrized(table, "weight")
    raw = table.parametrizations.weight.original if masked else table.weight
    new = nn.Embedding(raw.shape[0], width, device=raw.device)
    with torch.no_grad():
        new.weight.copy_(raw[:, :width])
    if masked:
        mask = table.parametrizations.weight[0].mask[:, :width]
        parametrize.register_parametrization(new, "weight", TableMask(mask))
    return new


def narrowed_linear(linear: nn.Linear, keep_inputs: torch.Tensor) -> nn.Linear:
    """``linear`` restricted to the input features ``keep_inputs`` (the others only ever see 0)."""
    new = nn.Linear(len(keep_inputs), linear.out_features, bias=linear.bias is not None,
                    device=linear.weight.device)
    with torch.no_grad():
        new.weight.copy_(linear.weight[:, keep_inputs])
        if linear.bias is not None:
            new.bias.copy_(linear.bias)
    return new


class MaskableMixin:
    """Shared mask plumbing. ``mask_tables()`` names the (user_table, item_table) pairs.
    ``hparams``: the resolved hyper-parameters ``build_model`` constructed the model with."""

    n_tables = 1
    hparams: dict = {}

    def mask_tables(self) -> list[tuple[nn.Embedding, nn.Embedding]]:
        raise NotImplementedError

    def apply_mask(self, mask: Mask | None, gmf_common_prefix: bool = False) -> None:
        for user_table, item_table in self.mask_tables():
            for table in (user_table, item_table):
                if parametrize.is_parametrized(table, "weight"):
                    parametrize.remove_parametrizations(table, "weight", leave_parametrized=False)
        if mask is None:
            return
        if mask.d_max != D_MAX:
            raise ValueError(f"mask d_max {mask.d_max} != model width {D_MAX}")
        for k, (user_table, item_table) in enumerate(self.mask_tables()):
            mu = torch.from_numpy(mask.dense("user", k))
            mi = torch.from_numpy(mask.dense("item", k))
            if gmf_common_prefix and k == 0:
                widest = int(max(mask.user.max(initial=0), mask.item.max(initial=0)))
                cu = torch.zeros_like(mu)
                cu[:, :widest] = True
                ci = torch.zeros_like(mi)
                ci[:, :widest] = True
                self._register(user_table, cu)
                self._register(item_table, ci)
            else:
                self._register(user_table, mu)
                self._register(item_table, mi)

    @staticmethod
    def _register(table: nn.Embedding, dense: torch.Tensor) -> None:
        parametrize.register_parametrization(table, "weight", TableMask(dense.to(table.weight.device)))

    def mask_widths(self) -> list[int]:
        """Per table pair, the number of leading columns any entity uses (D_MAX without a mask)."""
        widths = []
        for pair in self.mask_tables():
            w = 0
            for table in pair:
                if not parametrize.is_parametrized(table, "weight"):
                    w = max(w, table.weight.shape[1])
                    continue
                used = table.parametrizations.weight[0].mask.any(dim=0).nonzero()
                w = max(w, int(used.max()) + 1 if len(used) else 1)
            widths.append(w)
        return widths

    def narrow_to_mask(self) -> list[int]:
        """Compute with only the columns the mask uses: a model whose widest entity has size
        w < 128 becomes a w-wide model computing the same function (the dropped columns are 0 in
        every look-up, get no gradient, and the layers reading them lose the matching inputs).
        Returns the widths per table pair."""
        widths = self.mask_widths()
        for (user_table, item_table), width, old in zip(self.mask_tables(), widths,
                                                        self.table_widths()):
            if width == old:
                continue
            names = {id(m): n for n, m in self.named_children()}
            for table in (user_table, item_table):
                setattr(self, names[id(table)], narrowed_table(table, width))
        self._narrow_layers(widths)
        return widths

    def table_widths(self) -> list[int]:
        return [pair[0].weight.shape[1] for pair in self.mask_tables()]

    def _narrow_layers(self, widths: list[int]) -> None:
        """Cut the layers that read the tables' columns directly (model-specific)."""

    def masked_nnz(self) -> int:
        """Non-zeros actually present in the masked tables (a cross-check of the account)."""
        total = 0
        with torch.no_grad():
            for user_table, item_table in self.mask_tables():
                for table in (user_table, item_table):
                    if parametrize.is_parametrized(table, "weight"):
                        total += int(table.parametrizations.weight[0].mask.sum())
                    else:
                        total += table.weight.numel()
        return total

    def train(self, mode: bool = True):
        self.restore_user_e = self.restore_item_e = None  # drop the eval cache on mode switch
        return super().train(mode)

    def calculate_loss(self, interaction):
        # Each masked table W * M is computed once per step, whichever trainer calls this.
        with parametrize.cached():
            return super().calculate_loss(interaction)


def embedding_tables(model: nn.Module) -> dict[str, nn.Embedding]:
    """The counted tables by attribute name, users first: user_*, item_* (per pair)."""
    pairs = model.mask_tables()
    names = {id(m): n for n, m in model.named_children()}
    return {names[id(t)]: t for t in [p[0] for p in pairs] + [p[1] for p in pairs]}


def rewind_tables(model: nn.Module, initial: dict[str, torch.Tensor]) -> None:
    """Lottery-ticket rewind: set each counted table's raw weights to its saved initial values
    (the mask still applies on top). Other layers keep their fresh initialisation."""
    tables = embedding_tables(model)
    if set(initial) != set(tables):
        raise ValueError(f"initial state has tables {sorted(initial)}, model has {sorted(tables)}")
    with torch.no_grad():
        for name, table in tables.items():
            raw = (table.parametrizations.weight.original
                   if parametrize.is_parametrized(table, "weight") else table.weight)
            raw.copy_(initial[name][:, :raw.shape[1]].to(raw.device))  # a narrowed table: prefix
