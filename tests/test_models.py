"""Maskable RecBole models: masks, gradients, adjacency, NeuMF scoring (docs/ciess.md §2)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ciess.masks import count_params, elements_mask, sizes_mask
from ciess.models import MODELS, build_model, normalized_adjacency
from helpers import random_split


def _mask(split, rng=np.random.default_rng(0)):
    return sizes_mask(rng.integers(0, 129, split.n_users), rng.integers(0, 129, split.n_items))


def _batch(model, split):
    users = torch.arange(8)
    pos = torch.from_numpy(split.train[users.numpy()].indices[:8].astype(np.int64))
    return {model.USER_ID: users, model.ITEM_ID: pos, model.NEG_ITEM_ID: (pos + 1) % split.n_items}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_masked_entries_get_zero_gradient_and_stay_unchanged(name):
    split = random_split()
    mask = _mask(split)
    model = build_model(name, split.n_users, split.n_items, split.train, mask=mask)
    tables = [t for pair in model.mask_tables() for t in pair]
    before = [t.parametrizations.weight.original.detach().clone() for t in tables]
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        model.calculate_loss(_batch(model, split)).backward()
        opt.step()
    for t, w0, dense in zip(tables, before, [mask.dense("user"), mask.dense("item")] * 2):
        w1 = t.parametrizations.weight.original.detach()
        off = torch.from_numpy(~dense)
        assert torch.equal(w1[off], w0[off])  # masked: untouched
        assert not torch.equal(w1[~off], w0[~off])  # kept: trained
        assert torch.count_nonzero(t.weight[off]) == 0  # the model only sees zeros there


@pytest.mark.parametrize("name", sorted(MODELS))
def test_masked_nnz_matches_the_parameter_account(name):
    split = random_split()
    mask = _mask(split)
    model = build_model(name, split.n_users, split.n_items, split.train, mask=mask)
    assert model.masked_nnz() == count_params(mask, model.n_tables)


def test_element_mask_is_applied_entrywise():
    split = random_split()
    rng = np.random.default_rng(1)
    mask = elements_mask(rng.random((split.n_users, 128)) < 0.3,
                         rng.random((split.n_items, 128)) < 0.3)
    model = build_model("lightgcn", split.n_users, split.n_items, split.train, mask=mask)
    w = model.user_embedding.weight.detach().numpy()
    assert np.all(w[~mask.dense("user")] == 0) and np.all(w[mask.dense("user")] != 0)


def test_neumf_code_option_masks_gmf_to_the_common_prefix():
    split = random_split()
    mask = sizes_mask(np.full(split.n_users, 4), np.r_[np.full(split.n_items - 1, 2), 9])
    model = build_model("neumf", split.n_users, split.n_items, split.train,
                        overrides={"mask_gmf": False}, mask=mask)
    gmf = model.user_mf_embedding.weight.detach()
    assert torch.count_nonzero(gmf[:, :9]) == gmf[:, :9].numel()
    assert torch.count_nonzero(gmf[:, 9:]) == 0
    assert torch.count_nonzero(model.user_mlp_embedding.weight[:, 4:]) == 0


def test_adjacency_equals_recboles_get_norm_adj_mat():
    from recbole.model.general_recommender import LightGCN

    split = random_split()
    model = build_model("lightgcn", split.n_users, split.n_items, split.train)
    theirs = LightGCN.get_norm_adj_mat(model).to_dense()  # RecBole's dok_matrix path (compat #2)
    ours = normalized_adjacency(split.train, torch.sparse_coo).to_dense()
    assert torch.allclose(ours, theirs, atol=1e-7)


def test_neumf_loss_looking_rows_up_once_has_recboles_loss_and_gradients():
    """calculate_loss looks each table's rows up once (positives and negatives as one pass of
    2B pairs, the L2 term on the same rows): in float64 its loss and every gradient equal the
    formulation with one look-up per use through RecBole's own NeuMF.forward."""
    from recbole.model.general_recommender.neumf import NeuMF

    split = random_split()
    model = build_model("neumf", split.n_users, split.n_items, split.train,
                        mask=_mask(split)).double()
    batch = _batch(model, split)
    user, pos, neg = (batch[k] for k in (model.USER_ID, model.ITEM_ID, model.NEG_ITEM_ID))
    params = [p for p in model.parameters() if p.requires_grad]
    loss = model.calculate_loss(batch)
    grads = torch.autograd.grad(loss, params)
    margin = NeuMF.forward(model, user, pos) - NeuMF.forward(model, user, neg)
    rows = [model.user_mf_embedding(user), model.item_mf_embedding(pos),
            model.item_mf_embedding(neg), model.user_mlp_embedding(user),
            model.item_mlp_embedding(pos), model.item_mlp_embedding(neg)]
    reference = (-torch.log(1e-10 + torch.sigmoid(margin)).mean()
                 + model.reg_weight * sum((r ** 2).sum() for r in rows) / len(user))
    reference_grads = torch.autograd.grad(reference, params)
    torch.testing.assert_close(loss, reference, rtol=1e-12, atol=0)
    for g, r in zip(grads, reference_grads):
        torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-15)
    assert sum(int(torch.count_nonzero(g)) for g in grads) > 0


def test_benchmarks_stock_neumf_trains_the_suites_objective_recboles_way():
    """benchmarks/speed.py compares the suite's NeuMF with RecBole's class trained like with
    like: pairwise batches, BPR, and the L2 term through RecBole's EmbLoss (which halves it)."""
    from recbole.utils import InputType

    from ciess.models.maskable import SplitAdapter
    from ciess.models.registry import model_config
    from helpers import benchmark_module

    split = random_split()
    suite = build_model("neumf", split.n_users, split.n_items, split.train)
    stock = benchmark_module("speed").stock_class("neumf")(
        model_config("neumf")[1], SplitAdapter(split.n_users, split.n_items, split.train))
    assert stock.input_type == InputType.PAIRWISE == suite.input_type
    stock.load_state_dict(suite.state_dict())
    batch = _batch(suite, split)
    user, pos, neg = (batch[k] for k in (suite.USER_ID, suite.ITEM_ID, suite.NEG_ITEM_ID))
    bpr = -torch.log(1e-10 + torch.sigmoid(suite.forward(user, pos) - suite.forward(user, neg)))
    ours, theirs = suite.calculate_loss(batch), stock.calculate_loss(batch)
    torch.testing.assert_close(theirs.reshape(()) - bpr.mean(), (ours - bpr.mean()) / 2)
    assert float(ours - bpr.mean()) > 0


def test_neumf_full_scores_equal_pairwise_forward():
    split = random_split()
    model = build_model("neumf", split.n_users, split.n_items, split.train, mask=_mask(split)).eval()
    users = torch.arange(split.n_users)
    fast = model.score_users(users, user_block=7)
    uu = users.repeat_interleave(split.n_items)
    ii = torch.arange(split.n_items).repeat(split.n_users)
    slow = model.forward(uu, ii).view(split.n_users, split.n_items)
    assert torch.allclose(fast, slow, atol=1e-5)


@pytest.mark.parametrize("name", ["lightgcn", "ngcf"])
def test_graph_scores_equal_recbole_full_sort_predict(name):
    split = random_split()
    model = build_model(name, split.n_users, split.n_items, split.train, mask=_mask(split)).eval()
    ours = model.score_users(torch.arange(5))
    model.restore_user_e = model.restore_item_e = None
    theirs = model.full_sort_predict({model.USER_ID: torch.arange(5)}).view(5, -1)
    assert torch.allclose(ours, theirs, atol=1e-6)


def test_registry_answers_without_loading_torch_or_recbole():
    """Reports ask the registry for labels and table counts: no torch, no RecBole import."""
    import subprocess
    import sys

    code = ("import sys; from ciess.models import model_spec; s = model_spec('neumf'); "
            "print(s.label, s.n_tables, 'torch' in sys.modules, 'recbole' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["NeuMF", "2", "False", "False"]


def test_registry_refuses_incomplete_or_inconsistent_models():
    import torch.nn as nn

    from ciess.models import MaskedLightGCN, ModelSpec, gmf_dense, model_spec, register_model

    class NotMaskable(nn.Module):
        def score_users(self, users):
            return users

    with pytest.raises(TypeError, match="lacks mask_tables\\(\\); derive it from"):
        register_model(ModelSpec("broken", "Broken", NotMaskable, {}))
    with pytest.raises(ValueError, match="the spec counts 2 table pair\\(s\\), MaskedLightGCN.n_tables is 1"):
        register_model(ModelSpec("lgcn2", "LGCN2", MaskedLightGCN, {}, n_tables=2))
    with pytest.raises(ValueError, match="model 'lightgcn' is registered twice"):
        register_model(ModelSpec("lightgcn", "Other", MaskedLightGCN, {}))
    with pytest.raises(KeyError, match="no base model 'mf' is registered .*docs/adding_a_model.md"):
        model_spec("mf")
    assert gmf_dense("neumf", {"mask_gmf": False}) and not gmf_dense("neumf", {})
    assert not gmf_dense("lightgcn", {"mask_gmf": False})  # only NeuMF has the switch
