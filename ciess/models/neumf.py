"""NeuMF on RecBole's class, trained with BPR, with exact all-item scoring."""
from __future__ import annotations

import torch
from torch.nn.utils import parametrize

from ciess import compat  # noqa: F401  (must precede every recbole import)
from recbole.model.general_recommender.neumf import NeuMF
from recbole.model.init import xavier_normal_initialization
from recbole.model.loss import BPRLoss
from recbole.utils import InputType

from ciess.models.maskable import MaskableMixin, SquaredL2Loss, narrowed_linear


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
        self.mlp_layers.mlp_layers[1] = narrowed_linear(first, torch.cat([
            torch.arange(w_mlp, device=dev), old_mlp + torch.arange(w_mlp, device=dev)]))
        self.predict_layer = narrowed_linear(self.predict_layer, torch.cat([  # reads [GMF; MLP]
            torch.arange(w_gmf, device=dev),
            torch.arange(old_gmf, self.predict_layer.in_features, device=dev)]))
        self.mf_embedding_size, self.mlp_embedding_size = w_gmf, w_mlp

    def forward(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        return self._score(self.user_mf_embedding(user), self.item_mf_embedding(item),
                           self.user_mlp_embedding(user), self.item_mlp_embedding(item))

    def _score(self, user_mf, item_mf, user_mlp, item_mlp) -> torch.Tensor:
        """RecBole's NeuMF forward on looked-up rows: the GMF product and the MLP, concatenated
        into the prediction layer."""
        mlp = self.mlp_layers(torch.cat((user_mlp, item_mlp), -1))
        return self.predict_layer(torch.cat((user_mf * item_mf, mlp), -1)).squeeze(-1)

    def score_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self.forward(users, items)

    def calculate_loss(self, interaction):
        with parametrize.cached():
            return self._bpr_loss(interaction)

    def _bpr_loss(self, interaction):
        """BPR on (user, positive) vs (user, negative) plus the L2 term, with every table's rows
        looked up once: positives and negatives as one look-up and one pass of 2B pairs, and the
        L2 term on the same rows. (One look-up per use, RecBole's way, is 12 look-ups, each with
        a gradient the size of its whole table: 1.24x the step on ML-1M.) The same loss and
        gradients up to float rounding (tests/test_models.py)."""
        user = interaction[self.USER_ID]
        items = torch.cat((interaction[self.ITEM_ID], interaction[self.NEG_ITEM_ID]))
        user_mf, user_mlp = self.user_mf_embedding(user), self.user_mlp_embedding(user)
        item_mf, item_mlp = self.item_mf_embedding(items), self.item_mlp_embedding(items)
        pos, neg = self._score(user_mf.repeat(2, 1), item_mf, user_mlp.repeat(2, 1),
                               item_mlp).chunk(2)
        reg = SquaredL2Loss()(user_mf, item_mf, user_mlp, item_mlp, batch_size=len(user))
        return self.bpr(pos, neg) + self.reg_weight * reg

    @torch.no_grad()
    def score_users(self, users: torch.Tensor, user_block: int = 512) -> torch.Tensor:
        """All-item scores without sending (user, item) pairs through the towers.

        The first MLP layer is linear in [u; i]: W[u; i] + b = a_u + b_i with a_u = W_u u and
        b_i = W_i i + b. With relu(a + b) = max(a, -b) + b, the MLP part of the score is
        sum_k w_k max(a_uk, -b_ik) + b_i . w, computed one hidden unit at a time on
        (user_block x items) tiles (about 20x faster than (B, I, h) tensors; 512 users per tile
        measured 8% faster than 256 on ML-1M, 2 threads).
        The item side is computed once per evaluation (kept until the next mode switch).
        """
        linear = self.mlp_layers.mlp_layers[1]  # [Dropout, Linear, ReLU]
        d = self.mlp_embedding_size
        out_w = self.predict_layer.weight[0]
        w_mf, w_mlp = out_w[: self.mf_embedding_size], out_w[self.mf_embedding_size:]
        items = self.restore_item_e if not self.training else None
        if items is None:
            b = self.item_mlp_embedding.weight @ linear.weight[:, d:].T + linear.bias  # (I, h)
            items = ((-b).T.contiguous().unsqueeze(1),  # (h, 1, I)
                     b @ w_mlp + self.predict_layer.bias, self.item_mf_embedding.weight.T)
            if not self.training:
                self.restore_item_e = items
        neg_b, item_constant, item_mf_t = items
        a = (self.user_mlp_embedding.weight[users] @ linear.weight[:, :d].T).T  # (h, B)
        scores = (self.user_mf_embedding.weight[users] * w_mf) @ item_mf_t
        scores += item_constant[None, :]
        weights = w_mlp.tolist()
        for start in range(0, len(users), user_block):
            block = scores[start:start + user_block]
            a_block = a[:, start:start + user_block].unsqueeze(2).contiguous()  # (h, B, 1)
            tmp = torch.empty_like(block)
            for k, w_k in enumerate(weights):
                torch.maximum(a_block[k], neg_b[k], out=tmp)
                block.add_(tmp, alpha=w_k)
        return scores
