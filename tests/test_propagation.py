"""Fast propagation and training at the mask's width compute exactly what they replace.

* ``SparseProduct`` / ``Adjacency``: losses and gradients equal torch's own autograd through
  RecBole's LightGCN and NGCF forward (``torch.sparse.mm``) in float64, on the CPU and on CUDA.
* the L2 regulariser is Σ‖e‖² / B times the weight (protocol §6), computed by hand.
* a model narrowed to its mask's width w gives the same losses, gradients on kept entries and
  metrics as the 128-wide masked model, for every base model.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from recbole.model.general_recommender import NGCF, LightGCN

from ciess.evaluate import evaluate
from ciess.masks import sizes_mask
from ciess.models import MODELS, build_model
from ciess.models.propagation import (Adjacency, SparseProduct, normalized_adjacency_scipy,
                                      row_normalized_with_self_loops_scipy,
                                      stock_forward)
from helpers import random_split

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device: the CUDA case runs on a GPU machine"))]


@pytest.mark.parametrize("device", DEVICES)
def test_sparse_product_gradient_is_the_transpose_product(device):
    rng = np.random.default_rng(0)
    dense = torch.from_numpy(rng.random((7, 5)) * (rng.random((7, 5)) < 0.5)).to(device)
    x = torch.randn(5, 3, dtype=torch.float64, device=device, requires_grad=True)
    g = torch.randn(7, 3, dtype=torch.float64, device=device)
    SparseProduct.apply(dense.to_sparse_csr(), dense.T.to_sparse_csr(), x).backward(g)
    ours = x.grad.clone()
    x.grad = None
    (dense @ x).backward(g)
    torch.testing.assert_close(ours, x.grad, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("device", DEVICES)
def test_dropped_adjacency_and_its_transpose(device):
    split = random_split()
    adj = Adjacency.from_interactions(split.train).to(device)
    torch.manual_seed(0)
    a, a_t = adj.operands(0.3)
    a, a_t = a.to_dense(), a_t.to_dense()
    full = adj.csr().to_dense()
    torch.testing.assert_close(a_t, a.T, rtol=0, atol=0)
    kept = a != 0
    assert 0.5 < kept.sum() / (full != 0).sum() < 0.9  # about 70% kept
    torch.testing.assert_close(a[kept], full[kept] / 0.7)


def test_adjacency_refuses_an_asymmetric_matrix():
    lap = normalized_adjacency_scipy(random_split().train)
    lap[0, 1] += 1.0
    with pytest.raises(ValueError, match="symmetric"):
        Adjacency(lap)


def _bipartite_dense(train) -> np.ndarray:
    n_users, n_items = train.shape
    a = np.zeros((n_users + n_items,) * 2)
    dense = (train.toarray() > 0).astype(float)
    a[:n_users, n_users:], a[n_users:, :n_users] = dense, dense.T
    return a


def test_authors_ngcf_matrix_is_row_normalised_with_self_loops():
    """The CIESS code's NGCF matrix: D^-1 (A + I), computed densely here."""
    train = random_split().train
    a = _bipartite_dense(train) + np.eye(sum(train.shape))
    expected = a / a.sum(axis=1, keepdims=True)
    got = row_normalized_with_self_loops_scipy(train).toarray()
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=1e-6)


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_a_matrix_with_asymmetric_values_is_handed_its_transpose(dropout):
    adj = Adjacency.row_normalized_with_self_loops(random_split().train)
    assert not adj.symmetric
    torch.manual_seed(0)
    a, a_t = (m.to_dense() for m in adj.operands(dropout))
    torch.testing.assert_close(a_t, a.T, rtol=0, atol=0)
    assert not torch.equal(a, a.T)


def _authors_ngcf_reference(model, train):
    """The CIESS code's NGCF.computer() (eval mode: no dropout), written densely from its
    equations with the model's own weights."""
    p = torch.from_numpy(row_normalized_with_self_loops_scipy(train).toarray()).double()
    ego = model.get_ego_embeddings()
    outs = [ego]
    for gnn in model.GNNlayers:
        side = p @ ego
        ego = F.leaky_relu(gnn.linear(side) + gnn.interActTransform(ego * side), 0.2)
        outs.append(F.normalize(ego, p=2, dim=1))
    return torch.split(torch.cat(outs, dim=1), [model.n_users, model.n_items])


def test_ngcf_authors_propagation_equals_the_authors_equations():
    split = random_split()
    torch.manual_seed(0)
    model = build_model("ngcf", split.n_users, split.n_items, split.train,
                        {"propagation": "authors"}).double().eval()
    ours = model.forward()
    theirs = _authors_ngcf_reference(model, split.train)
    for x, y in zip(ours, theirs):
        torch.testing.assert_close(x, y, rtol=1e-10, atol=1e-12)
    recbole = build_model("ngcf", split.n_users, split.n_items, split.train,
                          {"propagation": "recbole"}).double().eval()
    recbole.load_state_dict(model.state_dict())
    assert not torch.allclose(recbole.forward()[0], ours[0])  # a different function


def test_ngcf_refuses_an_unknown_propagation():
    split = random_split()
    with pytest.raises(ValueError, match="NGCF propagation 'paper'"):
        build_model("ngcf", split.n_users, split.n_items, split.train, {"propagation": "paper"})


def _float64_model(name, split, device, **overrides):
    torch.manual_seed(0)
    model = build_model(name, split.n_users, split.n_items, split.train, overrides, device)
    return model.double().train()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name,cls,overrides", [
    ("lightgcn", LightGCN, {}),
    ("ngcf", NGCF, {"node_dropout": 0.0, "message_dropout": 0.0, "propagation": "recbole"}),
])
def test_graph_forward_and_gradients_equal_recboles_autograd(name, cls, overrides, device):
    split = random_split()
    model = _float64_model(name, split, device, **overrides)
    weights = [torch.randn(n, model.forward()[0].shape[1], dtype=torch.float64, device=device)
               for n in (split.n_users, split.n_items)]

    def loss_and_grads(forward):
        model.zero_grad()
        users, items = forward()
        loss = (users * weights[0]).sum() + (items * weights[1]).pow(2).sum()
        loss.backward()
        return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}

    ours = loss_and_grads(model.forward)
    theirs = loss_and_grads(stock_forward(model, cls, torch.sparse_coo))
    torch.testing.assert_close(ours[0], theirs[0], rtol=1e-12, atol=1e-12)
    assert ours[1].keys() == theirs[1].keys()
    for key in ours[1]:
        torch.testing.assert_close(ours[1][key], theirs[1][key], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_l2_regulariser_is_weight_times_squared_norm_over_batch(name):
    """protocol §6: reg_weight · Σ‖e‖² / B (no ½), on LightGCN's ego embeddings, NGCF's
    propagated embeddings and NeuMF's four tables."""
    split = random_split()
    model = _float64_model(name, split, "cpu", **({"node_dropout": 0.0, "message_dropout": 0.0}
                                                  if name == "ngcf" else {}))
    users = torch.tensor([0, 1, 2, 1])
    pos = torch.tensor([3, 4, 5, 6])
    neg = torch.tensor([7, 8, 9, 10])
    batch = {model.USER_ID: users, model.ITEM_ID: pos, model.NEG_ITEM_ID: neg}
    if name == "neumf":
        pos_s, neg_s = model.forward(users, pos), model.forward(users, neg)
        embs = [model.user_mf_embedding(users), model.item_mf_embedding(pos),
                model.item_mf_embedding(neg), model.user_mlp_embedding(users),
                model.item_mlp_embedding(pos), model.item_mlp_embedding(neg)]
    else:
        u_all, i_all = model.forward()
        pos_s = (u_all[users] * i_all[pos]).sum(1)
        neg_s = (u_all[users] * i_all[neg]).sum(1)
        if name == "lightgcn":
            embs = [model.user_embedding(users), model.item_embedding(pos), model.item_embedding(neg)]
        else:
            embs = [u_all[users], i_all[pos], i_all[neg]]
    bpr = -torch.log(1e-10 + torch.sigmoid(pos_s - neg_s)).mean()
    squared = sum(float((e.detach() ** 2).sum()) for e in embs)
    expected = float(bpr) + model.hparams["reg_weight"] * squared / len(users)
    assert float(model.calculate_loss(batch)) == pytest.approx(expected, rel=1e-10)


def _mixed_mask(split, widest):
    rng = np.random.default_rng(3)
    return sizes_mask(rng.integers(1, widest + 1, split.n_users),
                      rng.integers(0, widest + 1, split.n_items))


@pytest.mark.parametrize("name,overrides", [(name, {}) for name in sorted(MODELS)]
                         + [("ngcf", {"propagation": "recbole"})])  # NGCF's other form
@pytest.mark.parametrize("widest", [6, 25])
def test_narrowed_model_computes_the_same_function(name, overrides, widest):
    split = random_split()
    mask = _mixed_mask(split, widest)
    models = []
    for narrow in (False, True):
        torch.manual_seed(0)
        models.append(build_model(name, split.n_users, split.n_items, split.train, overrides,
                                  mask=mask, narrow=narrow).double())  # float64: rounding stays far below
    wide, narrow = models
    assert narrow.table_widths() == [widest] * narrow.n_tables
    assert wide.table_widths() == [128] * wide.n_tables
    assert narrow.masked_nnz() == wide.masked_nnz()
    opts = [torch.optim.Adam(m.parameters(), lr=0.05) for m in models]
    gen = np.random.default_rng(0)
    for _ in range(3):
        users = torch.from_numpy(gen.integers(0, split.n_users, 32))
        pos = torch.from_numpy(gen.integers(0, split.n_items, 32))
        neg = torch.from_numpy(gen.integers(0, split.n_items, 32))
        losses = []
        for model, opt in zip(models, opts):
            torch.manual_seed(1)  # the same dropout draws for both
            model.train()
            opt.zero_grad()
            loss = model.calculate_loss({model.USER_ID: users, model.ITEM_ID: pos,
                                         model.NEG_ITEM_ID: neg})
            loss.backward()
            losses.append(loss.detach())
        torch.testing.assert_close(losses[0], losses[1], rtol=1e-12, atol=1e-14)
        for (tw, tn) in zip([t for p in wide.mask_tables() for t in p],
                            [t for p in narrow.mask_tables() for t in p]):
            gw = tw.parametrizations.weight.original.grad
            gn = tn.parametrizations.weight.original.grad
            torch.testing.assert_close(gw[:, :widest], gn, rtol=1e-9, atol=1e-13)
            assert torch.count_nonzero(gw[:, widest:]) == 0
        for opt in opts:
            opt.step()
    results = [evaluate(m.eval(), split.train, split.valid) for m in models]
    for key, value in results[0].means.items():
        assert results[1].means[key] == pytest.approx(value, abs=1e-6), key


def test_narrowing_without_a_mask_or_at_full_width_changes_nothing():
    split = random_split()
    model = build_model("lightgcn", split.n_users, split.n_items, split.train, narrow=True)
    assert model.table_widths() == [128]
    full = sizes_mask(np.full(split.n_users, 128), np.full(split.n_items, 128))
    model = build_model("ngcf", split.n_users, split.n_items, split.train, mask=full, narrow=True)
    assert model.table_widths() == [128]
    assert model.GNNlayers[0].linear.in_features == 128
