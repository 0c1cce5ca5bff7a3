"""Mask format and the one parameter account (docs/protocol.md §5, docs/ciess.md §3)."""
from __future__ import annotations


import numpy as np
import pytest

from baselines.es import equal_size_for_budget
from ciess.masks import (MaskFileError, account, budget_params, count_params, elements_mask,
                         load_mask, meets_budget, save_mask, sizes_mask, sparsity)


def test_prefix_mask_counts_sum_of_sizes_per_table():
    m = sizes_mask([1, 2, 3], [128, 0], dataset="t")
    assert m.dense("user").sum() == 6 and m.dense("item").sum() == 128
    assert m.dense("user")[1].tolist()[:3] == [True, True, False]
    assert count_params(m, n_tables=1) == 134
    assert count_params(m, n_tables=2) == 268


def test_element_mask_counts_ones():
    u = np.zeros((2, 128), bool)
    u[0, [3, 70]] = True
    i = np.zeros((3, 128), bool)
    i[2, :5] = True
    assert count_params(elements_mask(u, i), 1) == 7


def test_sparsity_and_density_add_up_and_match_hand_values():
    m = sizes_mask(np.full(3, 64), np.full(2, 32))  # 192 + 64 = 256 of 128*5 = 640
    acct = account(m, 1)
    assert acct["params"] == 256 and acct["sparsity"] == pytest.approx(1 - 256 / 640)
    assert acct["sparsity"] + acct["density"] == pytest.approx(1.0)
    assert sparsity(256, 3, 2, n_tables=2) == pytest.approx(1 - 256 / 1280)


def test_neumf_code_option_counts_gmf_dense_at_max_size():
    m = sizes_mask([4, 8], [2])  # MLP: 14; GMF dense at width 8 for 3 entities: 24
    assert count_params(m, 2, gmf_dense_at_max=True) == 38


def test_budget_check_is_exact_at_the_boundary():
    # ML-1M, one table: capacity 1,247,488; 90% leaves 124,748.8 -> 124,748 allowed
    assert budget_params(90, 6040, 3706) == 124_748
    assert meets_budget(124_748, 90, 6040, 3706)
    assert not meets_budget(124_749, 90, 6040, 3706)
    assert budget_params(80, 943, 1682) == 67_200  # docs/protocol.md §5 table
    assert meets_budget(67_200, 80, 943, 1682) and not meets_budget(67_201, 80, 943, 1682)


@pytest.mark.parametrize("pct,n_tables", [(80, 1), (90, 1), (95, 1), (80, 2), (95, 2)])
def test_equal_size_meets_budget_and_is_the_largest(pct, n_tables):
    size = equal_size_for_budget(pct, 6040, 3706, n_tables)
    params = size * (6040 + 3706) * n_tables
    assert meets_budget(params, pct, 6040, 3706, n_tables)
    assert not meets_budget(params + (6040 + 3706) * n_tables, pct, 6040, 3706, n_tables)


def test_mask_file_roundtrip(tmp_path):
    m = sizes_mask(np.arange(1, 6), np.array([128, 1]), dataset="d", method="x")
    save_mask(tmp_path / "m.npz", m)
    back = load_mask(tmp_path / "m.npz", n_users=5, n_items=2)
    assert back.kind == "sizes" and back.user.tolist() == [1, 2, 3, 4, 5]
    assert back.meta["method"] == "x" and back.user.dtype == np.uint8
    e = elements_mask(np.eye(3, 128, dtype=bool), np.ones((1, 128), bool))
    save_mask(tmp_path / "e.npz", e)
    assert load_mask(tmp_path / "e.npz").dense("user").sum() == 3


def _raw(tmp_path, **fields):
    path = tmp_path / "bad.npz"
    np.savez(path, **fields)
    return path


@pytest.mark.parametrize("fields,field_name", [
    (dict(kind="sizes", item_sizes=np.ones(2, np.uint8), meta="{}"), "user_sizes"),
    (dict(kind="sizes", user_sizes=np.full(3, 200, np.int64), item_sizes=np.ones(2, np.uint8),
          meta="{}"), "user_sizes"),
    (dict(kind="sizes", user_sizes=np.ones(3, np.float32), item_sizes=np.ones(2, np.uint8),
          meta="{}"), "user_sizes"),
    (dict(kind="elements", user_mask=np.ones((3, 64), bool), item_mask=np.ones((2, 128), bool),
          meta="{}"), "user_mask"),
    (dict(kind="blocks", meta="{}"), "kind"),
    (dict(kind="sizes", user_sizes=np.ones(3, np.uint8), item_sizes=np.ones(2, np.uint8),
          meta="{not json"), "meta"),
])
def test_malformed_mask_file_names_file_and_field(tmp_path, fields, field_name):
    path = _raw(tmp_path, **fields)
    with pytest.raises(MaskFileError) as err:
        load_mask(path)
    assert str(path) in str(err.value) and f"'{field_name}'" in str(err.value)


def test_mask_with_wrong_entity_count_is_rejected(tmp_path):
    save_mask(tmp_path / "m.npz", sizes_mask(np.ones(3), np.ones(2)))
    with pytest.raises(MaskFileError, match="item_sizes.*has 2 rows but the split has 5 items"):
        load_mask(tmp_path / "m.npz", n_users=3, n_items=5)


def test_not_an_npz_file(tmp_path):
    (tmp_path / "x.npz").write_text("hello")
    with pytest.raises(MaskFileError, match="not a readable"):
        load_mask(tmp_path / "x.npz")
