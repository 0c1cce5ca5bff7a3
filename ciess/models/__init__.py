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
from recbole.model.general_recommender import NGCF, LightGCN, NeuMF
from recbole.model.init import xavier_normal_initialization
from recbole.model.loss import BPRLoss, EmbLoss
from recbole.utils import InputType

from ciess.masks import D_MAX, Mask

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
    """D^-1/2 A D^-1/2 of the bipartite graph, as RecBole's ``get_norm_adj_mat`` computes it."""
    n_users, n_items = train.shape
    coo = train.tocoo()
    rows = np.concatenate([coo.row, coo.col + n_users])
    cols = np.concatenate([coo.col + n_users, coo.row])
    n = n_users + n_items
    a = sp.coo_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n, n)).tocsr()
    a.data[:] = 1.0
    deg = np.asarray((a > 0).sum(axis=1)).ravel() + 1e-7
    d = sp.diags(np.power(deg, -0.5))
    lap = (d @ a @ d).tocoo()
    idx = torch.from_numpy(np.vstack([lap.row, lap.col]).astype(np.int64))
    t = torch.sparse_coo_tensor(idx, torch.from_numpy(lap.data.astype(np.float32)), (n, n))
    t = t.coalesce()
    return t.to_sparse_csr() if layout == torch.sparse_csr else t


class SquaredEmbLoss(EmbLoss):
    """EmbLoss with ``require_pow=True``: squared L2 / batch size (the code's NGCF regulariser)."""

    def forward(self, *embeddings, require_pow=True):
        return super().forward(*embeddings, require_pow=True)


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
    """Full-ranking scores for models whose final user/item embeddings come from ``forward()``."""

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
        nn.init.normal_(self.user_embedding.weight, std=config["init_std"])
        nn.init.normal_(self.item_embedding.weight, std=config["init_std"])

    def get_norm_adj_mat(self):
        return normalized_adjacency(self.interaction_matrix.tocsr(), torch.sparse_csr)

    def mask_tables(self):
        return [(self.user_embedding, self.item_embedding)]


class MaskedNGCF(GraphScoringMixin, MaskableMixin, NGCF):
    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.reg_loss = SquaredEmbLoss()

    def get_norm_adj_mat(self):
        # NGCF's SparseDropout needs COO indices; without node dropout CSR is faster.
        layout = torch.sparse_coo if self.node_dropout else torch.sparse_csr
        return normalized_adjacency(self.interaction_matrix.tocsr(), layout)

    def mask_tables(self):
        return [(self.user_embedding, self.item_embedding)]


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

    def score_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self.forward(users, items)

    def calculate_loss(self, interaction):
        with parametrize.cached():
            return self._bpr_loss(interaction)

    def _bpr_loss(self, interaction):
        user = interaction[self.USER_ID]
        pos, neg = interaction[self.ITEM_ID], interaction[self.NEG_ITEM_ID]
        loss = self.bpr(self.forward(user, pos), self.forward(user, neg))
        reg = EmbLoss()(self.user_mf_embedding(user), self.item_mf_embedding(pos),
                        self.item_mf_embedding(neg), self.user_mlp_embedding(user),
                        self.item_mlp_embedding(pos), self.item_mlp_embedding(neg),
                        require_pow=True)
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
            raw.copy_(initial[name].to(raw.device))


MODELS = {"lightgcn": MaskedLightGCN, "ngcf": MaskedNGCF, "neumf": MaskedNeuMF}


def model_defaults(name: str) -> dict:
    if name not in MODELS:
        raise KeyError(f"unknown model '{name}' (known: {sorted(MODELS)})")
    return yaml.safe_load((DEFAULTS_DIR / f"{name}.yaml").read_text())


def build_model(name: str, n_users: int, n_items: int, train: sp.csr_matrix,
                overrides: dict | None = None, device: str = "cpu",
                mask: Mask | None = None) -> nn.Module:
    params = {**model_defaults(name), **(overrides or {})}
    cfg = RecBoleConfig(params, USER_ID_FIELD="user_id", ITEM_ID_FIELD="item_id",
                        NEG_PREFIX="neg_", LABEL_FIELD="label", device=torch.device(device))
    model = MODELS[name](cfg, SplitAdapter(n_users, n_items, train)).to(device)
    model.hparams = params
    model.apply_mask(mask, gmf_common_prefix=(name == "neumf" and not params.get("mask_gmf", True)))
    return model
