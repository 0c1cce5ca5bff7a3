"""Maskable base models on RecBole's LightGCN, NGCF and NeuMF.

RecBole's classes are reused as they are (propagation, layers, BPR loss). What changes:

* each user/item table gets a ``torch.nn.utils.parametrize`` mask, so ``table.weight`` (and every
  look-up through it) is ``W * M``. Masked entries get zero gradient and keep their initial value.
* the normalised adjacency is built once, straight from a COO matrix, as a CSR tensor (the same
  D^-1/2 A D^-1/2 as RecBole's ``get_norm_adj_mat``, without its dok_matrix detour);
* NeuMF is trained with BPR (``input_type`` PAIRWISE) and scores all items in one pass;
* ``score_users(users)`` returns (len(users), n_items) scores for full-ranking evaluation.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn as nn
import torch.nn.functional as F
import yaml
from torch.nn.utils import parametrize

from ciess import compat  # noqa: F401  (must precede every recbole import)
from recbole.model.general_recommender.lightgcn import LightGCN
from recbole.model.general_recommender.neumf import NeuMF
from recbole.model.general_recommender.ngcf import NGCF
from recbole.model.init import xavier_normal_initialization
from recbole.model.loss import BPRLoss
from recbole.utils import InputType

from ciess.masks import D_MAX, Mask
from ciess.models.propagation import Adjacency, SparseProduct, normalized_adjacency_scipy

DEFAULTS_DIR = Path(__file__).parent / "defaults"


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


class SquaredL2Loss(nn.Module):
    """The protocol's L2 term: sum of squared entries of the given batch embeddings / batch size.

    RecBole's ``EmbLoss(require_pow=True)`` also divides by the norm order (2), which halves the
    specified weight; this module does not. ``require_pow`` is accepted (RecBole's LightGCN passes
    it) and must be true: a plain (unsquared) norm is not what any of the suite's models uses.
    """

    def forward(self, *embeddings: torch.Tensor, require_pow: bool = True) -> torch.Tensor:
        if not require_pow:
            raise ValueError("SquaredL2Loss computes squared norms only (require_pow must be true)")
        flat = [e.reshape(-1) for e in embeddings]
        total = sum(torch.dot(f, f) for f in flat)  # no squared temporary: 4x faster than pow-sum
        return total / embeddings[-1].shape[0]


def _narrowed_table(table: nn.Embedding, width: int) -> nn.Embedding:
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


def _narrowed_linear(linear: nn.Linear, keep_inputs: torch.Tensor) -> nn.Linear:
    """``linear`` restricted to the input features ``keep_inputs`` (the others only ever see 0)."""
    new = nn.Linear(len(keep_inputs), linear.out_features, bias=linear.bias is not None,
                    device=linear.weight.device)
    with torch.no_grad():
        new.weight.copy_(linear.weight[:, keep_inputs])
        if linear.bias is not None:
            new.bias.copy_(linear.bias)
    return new


class MaskableMixin:
    """Shared mask plumbing. ``mask_tables()`` names the (user_table, item_table) pairs."""

    n_tables = 1

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
                setattr(self, names[id(table)], _narrowed_table(table, width))
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


class GraphScoringMixin:
    """BPR training and full-ranking scores for models whose final user/item embeddings come
    from ``forward()`` (LightGCN, NGCF)."""

    def calculate_loss(self, interaction):
        """RecBole's LightGCN/NGCF loss, leaner: rows gathered with ``index_select`` (its backward
        is an index-add, 3x cheaper than advanced indexing's), and the BPR margin computed as
        u·(p − n), one product instead of two. Same value (up to float rounding)."""
        with parametrize.cached():  # each masked table W * M computed once per step
            self.restore_user_e = self.restore_item_e = None
            user = interaction[self.USER_ID]
            pos, neg = interaction[self.ITEM_ID], interaction[self.NEG_ITEM_ID]
            user_all, item_all = self.forward()
            u = user_all.index_select(0, user)
            p, n = item_all.index_select(0, pos), item_all.index_select(0, neg)
            margin = (u * (p - n)).sum(dim=1)
            bpr = self.mf_loss(margin, torch.zeros_like(margin))
            reg = self.reg_loss(*self.regularised_embeddings(user, pos, neg, u, p, n))
            return bpr + self.reg_weight * reg

    def regularised_embeddings(self, user, pos, neg, u, p, n) -> tuple[torch.Tensor, ...]:
        raise NotImplementedError

    def score_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        user_e, item_e = self.forward()
        return (user_e[users] * item_e[items]).sum(dim=1)

    @torch.no_grad()
    def score_users(self, users: torch.Tensor) -> torch.Tensor:
        if self.restore_user_e is None or self.restore_item_e is None:
            self.restore_user_e, self.restore_item_e = self.forward()
        return self.restore_user_e[users] @ self.restore_item_e.T


class MaskedLightGCN(GraphScoringMixin, MaskableMixin, LightGCN):
    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.reg_loss = SquaredL2Loss()  # protocol: squared norm of the ego embeddings
        nn.init.normal_(self.user_embedding.weight, std=config["init_std"])
        nn.init.normal_(self.item_embedding.weight, std=config["init_std"])

    def get_norm_adj_mat(self):
        return Adjacency.from_interactions(self.interaction_matrix.tocsr())

    def mask_tables(self):
        return [(self.user_embedding, self.item_embedding)]

    def _narrow_layers(self, widths):
        self.latent_dim = widths[0]

    def regularised_embeddings(self, user, pos, neg, u, p, n):
        """The ego (layer-0) embeddings of the batch (protocol §6)."""
        return (self.user_embedding.weight.index_select(0, user),
                self.item_embedding.weight.index_select(0, pos),
                self.item_embedding.weight.index_select(0, neg))

    def forward(self):
        """RecBole's LightGCN propagation (mean of layers 0..L), through the symmetric product."""
        a, a_t = self.norm_adj_matrix.operands()
        x = self.get_ego_embeddings()
        total = x
        for _ in range(self.n_layers):
            x = SparseProduct.apply(a, a_t, x)
            total = total + x
        mean = total / (self.n_layers + 1)
        return torch.split(mean, [self.n_users, self.n_items])


class MaskedNGCF(GraphScoringMixin, MaskableMixin, NGCF):
    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.reg_loss = SquaredL2Loss()  # protocol: squared norm of the propagated embeddings
        del self.eye_matrix  # BiGNN adds the features itself; the identity is never read

    def get_norm_adj_mat(self):
        return Adjacency.from_interactions(self.interaction_matrix.tocsr())

    def mask_tables(self):
        return [(self.user_embedding, self.item_embedding)]

    def regularised_embeddings(self, user, pos, neg, u, p, n):
        """The propagated (concatenated) embeddings of the batch (protocol §6)."""
        return u, p, n

    def _narrow_layers(self, widths):
        self.embedding_size = widths[0]
        first = self.GNNlayers[0]
        keep = torch.arange(widths[0], device=first.linear.weight.device)
        first.linear = _narrowed_linear(first.linear, keep)
        first.interActTransform = _narrowed_linear(first.interActTransform, keep)
        first.in_dim = widths[0]

    def forward(self):
        """RecBole's NGCF forward (BiGNN layers, LeakyReLU, message dropout, L2-normalised layer
        outputs concatenated), with node dropout in ``Adjacency.operands`` and the product's
        backward through the (dropped) transpose."""
        a, a_t = self.norm_adj_matrix.operands(self.node_dropout if self.training else 0.0)
        x = self.get_ego_embeddings()
        layers = [x]
        for gnn in self.GNNlayers:
            side = SparseProduct.apply(a, a_t, x)
            x = gnn.linear(x + side) + gnn.interActTransform(side * x)
            x = F.normalize(self.emb_dropout(F.leaky_relu(x, negative_slope=0.2)), p=2, dim=1)
            layers.append(x)
        return torch.split(torch.cat(layers, dim=1), [self.n_users, self.n_items])


class MaskedNeuMF(MaskableMixin, NeuMF):
    """NeuMF with BPR. Tables: (GMF user, GMF item), (MLP user, MLP item); n_tables = 2."""

    input_type = InputType.PAIRWISE
    n_tables = 2

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.NEG_ITEM_ID = config["NEG_PREFIX"] + self.ITEM_ID
        self.reg_weight = config["reg_weight"]
        self.bpr = BPRLoss()
        self.apply(xavier_normal_initialization)
        if len(self.mlp_hidden_size) != 1:
            raise ValueError("score_users assumes one MLP hidden layer (mlp_hidden_size: [h])")
        self.restore_user_e = self.restore_item_e = None

    def mask_tables(self):
        return [(self.user_mf_embedding, self.item_mf_embedding),
                (self.user_mlp_embedding, self.item_mlp_embedding)]

    def _narrow_layers(self, widths):
        w_gmf, w_mlp = widths
        old_gmf, old_mlp = self.mf_embedding_size, self.mlp_embedding_size
        first = self.mlp_layers.mlp_layers[1]  # [Dropout, Linear, ReLU]: reads [user; item]
        dev = first.weight.device
        self.mlp_layers.mlp_layers[1] = _narrowed_linear(first, torch.cat([
            torch.arange(w_mlp, device=dev), old_mlp + torch.arange(w_mlp, device=dev)]))
        self.predict_layer = _narrowed_linear(self.predict_layer, torch.cat([  # reads [GMF; MLP]
            torch.arange(w_gmf, device=dev),
            torch.arange(old_gmf, self.predict_layer.in_features, device=dev)]))
        self.mf_embedding_size, self.mlp_embedding_size = w_gmf, w_mlp

    def score_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self.forward(users, items)

    def calculate_loss(self, interaction):
        with parametrize.cached():
            return self._bpr_loss(interaction)

    def _bpr_loss(self, interaction):
        user = interaction[self.USER_ID]
        pos, neg = interaction[self.ITEM_ID], interaction[self.NEG_ITEM_ID]
        loss = self.bpr(self.forward(user, pos), self.forward(user, neg))
        reg = SquaredL2Loss()(self.user_mf_embedding(user), self.item_mf_embedding(pos),
                              self.item_mf_embedding(neg), self.user_mlp_embedding(user),
                              self.item_mlp_embedding(pos), self.item_mlp_embedding(neg))
        return loss + self.reg_weight * reg

    @torch.no_grad()
    def score_users(self, users: torch.Tensor, user_block: int = 256) -> torch.Tensor:
        """All-item scores without sending (user, item) pairs through the towers.

        The first MLP layer is linear in [u; i]: W[u; i] + b = a_u + b_i with a_u = W_u u and
        b_i = W_i i + b. With relu(a + b) = max(a, -b) + b, the MLP part of the score is
        sum_k w_k max(a_uk, -b_ik) + b_i . w, computed one hidden unit at a time on
        (user_block x items) tiles that stay in cache (about 20x faster than (B, I, h) tensors).
        """
        linear = self.mlp_layers.mlp_layers[1]  # [Dropout, Linear, ReLU]
        d = self.mlp_embedding_size
        a = (self.user_mlp_embedding.weight[users] @ linear.weight[:, :d].T).T.contiguous()  # (h, B)
        b = self.item_mlp_embedding.weight @ linear.weight[:, d:].T + linear.bias  # (I, h)
        neg_b = (-b).T.contiguous()  # (h, I)
        out_w = self.predict_layer.weight[0]
        w_mf, w_mlp = out_w[: self.mf_embedding_size], out_w[self.mf_embedding_size:]
        scores = (self.user_mf_embedding.weight[users] * w_mf) @ self.item_mf_embedding.weight.T
        scores += (b @ w_mlp + self.predict_layer.bias)[None, :]
        weights = w_mlp.tolist()
        for start in range(0, len(users), user_block):
            block = scores[start:start + user_block]
            tmp = torch.empty_like(block)
            for k, w_k in enumerate(weights):
                torch.maximum(a[k, start:start + user_block, None], neg_b[k, None, :], out=tmp)
                block.add_(tmp, alpha=w_k)
        return scores


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


MODELS = {"lightgcn": MaskedLightGCN, "ngcf": MaskedNGCF, "neumf": MaskedNeuMF}


def gmf_dense(model_name: str, overrides: dict | None) -> bool:
    """NeuMF's code option `mask_gmf: false`: the GMF tables stay dense at the widest size and
    only the MLP tables follow the mask (counted so by ``masks.account``)."""
    return model_name == "neumf" and not (overrides or {}).get("mask_gmf", True)


def model_defaults(name: str) -> dict:
    if name not in MODELS:
        raise KeyError(f"unknown model '{name}' (known: {sorted(MODELS)})")
    return yaml.safe_load((DEFAULTS_DIR / f"{name}.yaml").read_text())


def build_model(name: str, n_users: int, n_items: int, train: sp.csr_matrix,
                overrides: dict | None = None, device: str = "cpu",
                mask: Mask | None = None, narrow: bool = False) -> nn.Module:
    """The model with its mask applied. ``narrow``: compute with only the columns the mask uses
    (``MaskableMixin.narrow_to_mask``; the same function, faster). Leave it off for methods that
    grow sizes during their own search (ESAPN) or re-parametrize the full tables (PEP, OptEmb)."""
    params = {**model_defaults(name), **(overrides or {})}
    cfg = RecBoleConfig(params, USER_ID_FIELD="user_id", ITEM_ID_FIELD="item_id",
                        NEG_PREFIX="neg_", LABEL_FIELD="label", device=torch.device(device))
    model = MODELS[name](cfg, SplitAdapter(n_users, n_items, train)).to(device)
    model.hparams = params
    model.apply_mask(mask, gmf_common_prefix=gmf_dense(name, params))
    if narrow and mask is not None:
        model.narrow_to_mask()
    return model
