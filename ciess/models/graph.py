"""LightGCN and NGCF on RecBole's classes, propagating through the symmetric sparse product
(``propagation.SparseProduct``) and scoring all items from ``forward()``."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import parametrize

from ciess import compat  # noqa: F401  (must precede every recbole import)
from recbole.model.general_recommender.lightgcn import LightGCN
from recbole.model.general_recommender.ngcf import NGCF

from ciess.models.maskable import MaskableMixin, SquaredL2Loss, narrowed_linear
from ciess.models.propagation import Adjacency, SparseProduct


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


NGCF_PROPAGATIONS = ("recbole", "authors")


class MaskedNGCF(GraphScoringMixin, MaskableMixin, NGCF):
    """``propagation`` (docs/reference_profile.md, the NGCF recipe check): ``recbole`` is
    RecBole's NGCF, side = L x with L = D^-1/2 A D^-1/2, layer = W1 (x + side) + W2 (x ⊙ side),
    the next layer reading the normalised output; ``authors`` is the CIESS authors' code, side =
    D^-1 (A + I) x, layer = W1 side + W2 (x ⊙ side), the next layer reading the activation before
    normalisation (only the concatenated outputs are normalised)."""

    def __init__(self, config, dataset):
        self.propagation = config["propagation"]
        if self.propagation not in NGCF_PROPAGATIONS:
            raise ValueError(f"NGCF propagation {self.propagation!r}: expected one of "
                             f"{list(NGCF_PROPAGATIONS)}")
        super().__init__(config, dataset)
        self.reg_loss = SquaredL2Loss()  # protocol: squared norm of the propagated embeddings
        del self.eye_matrix  # BiGNN adds the features itself; the identity is never read

    def get_norm_adj_mat(self):
        train = self.interaction_matrix.tocsr()
        if self.propagation == "authors":
            return Adjacency.row_normalized_with_self_loops(train)
        return Adjacency.from_interactions(train)

    def mask_tables(self):
        return [(self.user_embedding, self.item_embedding)]

    def regularised_embeddings(self, user, pos, neg, u, p, n):
        """The propagated (concatenated) embeddings of the batch (protocol §6)."""
        return u, p, n

    def _narrow_layers(self, widths):
        self.embedding_size = widths[0]
        first = self.GNNlayers[0]
        keep = torch.arange(widths[0], device=first.linear.weight.device)
        first.linear = narrowed_linear(first.linear, keep)
        first.interActTransform = narrowed_linear(first.interActTransform, keep)
        first.in_dim = widths[0]

    def forward(self):
        """RecBole's NGCF forward (BiGNN layers, LeakyReLU, message dropout, L2-normalised layer
        outputs concatenated), with node dropout in ``Adjacency.operands`` and the product's
        backward through the (dropped) transpose."""
        a, a_t = self.norm_adj_matrix.operands(self.node_dropout if self.training else 0.0)
        x = self.get_ego_embeddings()
        layers = [x]
        authors = self.propagation == "authors"
        for gnn in self.GNNlayers:
            side = SparseProduct.apply(a, a_t, x)
            x = gnn.linear(side if authors else x + side) + gnn.interActTransform(side * x)
            x = self.emb_dropout(F.leaky_relu(x, negative_slope=0.2))
            out = F.normalize(x, p=2, dim=1)
            if not authors:
                x = out
            layers.append(out)
        return torch.split(torch.cat(layers, dim=1), [self.n_users, self.n_items])
