"""ciess.init_state: a rewinding method's init_state.pt rebuilt from split, model and seed, equal
to what the method's own search saved (a snapshot leaves the file out), and a rebuild that
differs from a kept copy refused."""
from __future__ import annotations

import logging

import pytest
import torch

from baselines import MethodContext, get_method
from ciess.data.read_split import load_split
from ciess.init_state import differences, load_tables, main, tables_sha256
from helpers import written_split


def _manifest(tmp_path):
    return written_split(tmp_path, n_users=60, n_items=50, per_user=16)


def _search(method, manifest, model, seed, out, **params):
    ctx = MethodContext(split=load_split(manifest), model=model, seed=seed, params=params,
                        train={"batch_size": 128, "eval_every": 5, "patience": 2,
                               "max_batches": 10, "device": "cpu"},
                        init_state_path=out, log=logging.getLogger("test"))
    get_method(method)(ctx, [80])


@pytest.mark.parametrize("method,model,params", [
    ("pep", "lightgcn", dict(threshold_init=-6.0, s_lr=0.05, max_steps=2000, batch_size=128,
                             model_lr=1e-3)),
    ("optemb", "neumf", dict(alpha=1e-2, t_lr=1e-2, generations=1, population=4, crossovers=2,
                             mutations=2, elites=3)),
])
def test_the_rebuilt_init_state_equals_the_searchs_own(tmp_path, capsys, method, model, params):
    manifest = _manifest(tmp_path)
    _search(method, manifest, model, 3, tmp_path / "search.pt", **params)
    rebuilt = tmp_path / "masks" / "init_state.pt"
    assert main([str(manifest), model, "3", str(rebuilt), "--same-as",
                 str(tmp_path / "search.pt")]) == 0
    ours, theirs = load_tables(rebuilt), load_tables(tmp_path / "search.pt")
    assert set(ours) == set(theirs) and all(torch.equal(ours[k], theirs[k]) for k in ours)
    printed = capsys.readouterr().out
    assert "rebuilt tables equal" in printed and tables_sha256(theirs) in printed


def test_the_tables_checksum_follows_the_values_not_the_file(tmp_path):
    a = {"user_embedding": torch.arange(6.0).reshape(2, 3), "item_embedding": torch.ones(1, 3)}
    for name in ("one.pt", "two.pt"):
        torch.save(a, tmp_path / name)
    assert tables_sha256(load_tables(tmp_path / "one.pt")) == tables_sha256(a)
    b = {**a, "item_embedding": torch.tensor([[1.0, 1.0, 1.0 + 1e-7]])}
    assert tables_sha256(b) != tables_sha256(a)
    assert tables_sha256({**a, "item_embedding": torch.ones(3, 1)}) != tables_sha256(a)


def test_a_rebuild_that_differs_from_the_kept_copy_is_refused_and_not_written(tmp_path, capsys):
    manifest = _manifest(tmp_path)
    assert main([str(manifest), "lightgcn", "0", str(tmp_path / "seed0.pt")]) == 0
    out = tmp_path / "seed1.pt"
    assert main([str(manifest), "lightgcn", "1", str(out), "--same-as",
                 str(tmp_path / "seed0.pt")]) == 1
    err = capsys.readouterr().err
    assert "seed0.pt" in err and "user_embedding: values differ" in err and not out.exists()


def test_differences_name_tables_shapes_and_values():
    a = {"user_embedding": torch.zeros(3, 4), "item_embedding": torch.zeros(2, 4)}
    assert differences(a, {k: v.clone() for k, v in a.items()}) == []
    assert differences(a, {"user_embedding": a["user_embedding"]}) == [
        "tables ['item_embedding', 'user_embedding'] vs ['user_embedding']"]
    b = {"user_embedding": torch.zeros(3, 5), "item_embedding": torch.ones(2, 4)}
    assert differences(a, b) == ["item_embedding: values differ (max |diff| 1)",
                                 "user_embedding: shape (3, 4) vs (3, 5)"]


def test_a_rewound_run_records_its_tables_checksum(tmp_path):
    """The record says which step-0 tables a rewound run started from; the file written again
    (its bytes may differ: torch.save stores the name it wrote) gives the same checksum."""
    from ciess.runs import train_and_record

    manifest = _manifest(tmp_path)
    main([str(manifest), "lightgcn", "0", str(tmp_path / "init_state.pt")])
    main([str(manifest), "lightgcn", "0", str(tmp_path / "rebuilt.pt")])
    cfg = {"batch_size": 256, "eval_every": 2, "patience": 2, "max_batches": 4}
    records = [train_and_record(str(manifest), "lightgcn", 0, cfg, "merge_fixed", {},
                                str(tmp_path / name / "metrics.json"), init_state_path=str(path))
               for name, path in (("a", tmp_path / "init_state.pt"), ("b", tmp_path / "rebuilt.pt"))]
    expected = tables_sha256(load_tables(tmp_path / "init_state.pt"))
    assert [r["init_state_sha256"] for r in records] == [expected, expected]
    assert records[0]["test"] == records[1]["test"]
