"""CIESS's selection with `merged_retraining: chosen` (docs/ciess.md section 11): candidates are
retrained on train only and only the chosen one gets the merged retraining, which must give the
record the candidate's whole run gives."""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from ciess.io import read_json, write_json
from ciess.labels import describe_run
from ciess.masks import save_mask, sizes_mask
from ciess.per_user import read_per_user
from ciess.report.costs import cost_table, cost_totals
from ciess.report.paired import runs_frame
from ciess.runs import train_and_record
from ciess.search.selective_retraining import MergeChosen, write_selection
from tests.helpers import written_split

CFG = {"batch_size": 64, "eval_every": 2, "patience": 2, "max_batches": 12}
SAME_RUN = ("valid", "test", "test_by_protocol", "best_step", "steps_trained", "history",
            "params", "sparsity", "users_evaluated_test", "mask_sha256", "settings_hash")


def _mask(tmp_path, name, user_size, item_size, n_users=20, n_items=15):
    path = tmp_path / "masks" / name / "mask.npz"
    path.parent.mkdir(parents=True)
    rng = np.random.default_rng(user_size)
    save_mask(path, sizes_mask(rng.integers(1, user_size + 1, n_users),
                               rng.integers(1, item_size + 1, n_items)))
    return str(path)


def _run(manifest, mask, metrics, protocol, seed=0, **kwargs):
    return train_and_record(str(manifest), "lightgcn", seed, CFG, protocol, {}, str(metrics),
                            mask_path=mask, per_user_path=str(metrics.with_name(
                                "per_user_test.npz")), **kwargs)


def test_the_chosen_candidates_merged_retraining_equals_its_whole_run(tmp_path):
    manifest = written_split(tmp_path)
    mask = _mask(tmp_path, "a", 16, 8)
    whole = _run(manifest, mask, tmp_path / "whole" / "metrics.json", "merge_fixed")
    part_path = tmp_path / "train_only" / "metrics.json"
    part = _run(manifest, mask, part_path, "train_val_es")
    merged = _run(manifest, mask, tmp_path / "merged" / "metrics.json", "merge_fixed",
                  trained_record=(str(part_path), part))
    assert whole["best_step"] > 0 and whole["merged_wall_time_s"] > 0
    assert {k: merged[k] for k in SAME_RUN} == {k: whole[k] for k in SAME_RUN}
    assert merged["test"] != part["test"]  # the merged model, not the train-only one
    assert merged["wall_time_s"] == pytest.approx(part["wall_time_s"] + merged["merged_wall_time_s"])
    ours, theirs = (read_per_user(tmp_path / d / "metrics.json") for d in ("merged", "whole"))
    assert all(np.array_equal(ours[m], theirs[m], equal_nan=True) for m in theirs)


@pytest.mark.parametrize("change, field", [({"seed": 1}, "seed"),
                                           ({"other_mask": True}, "mask_sha256")])
def test_a_train_only_record_of_another_run_is_refused(tmp_path, change, field):
    manifest = written_split(tmp_path)
    mask = _mask(tmp_path, "a", 16, 8)
    part_path = tmp_path / "train_only" / "metrics.json"
    part = _run(manifest, mask, part_path, "train_val_es")
    out = tmp_path / "merged" / "metrics.json"
    with pytest.raises(ValueError, match=rf"train_only/metrics.json: .*{field}"):
        _run(manifest, _mask(tmp_path, "b", 4, 4) if "other_mask" in change else mask, out,
             "merge_fixed", seed=change.get("seed", 0), trained_record=(str(part_path), part))
    assert not out.exists()
    with pytest.raises(ValueError, match="final_protocol is 'merge_fixed'"):
        whole = _run(manifest, mask, tmp_path / "whole" / "metrics.json", "merge_fixed")
        _run(manifest, mask, out, "merge_fixed", trained_record=("whole.json", whole))


def _candidates(tmp_path, protocol):
    """Two retrained candidates of one budget (the second better on validation)."""
    manifest = written_split(tmp_path)
    paths = []
    for rank, (episode, iteration, size) in enumerate([(1, 2, 4), (1, 3, 32)], start=1):
        method = f"ciess-g-rw-lam0.4-e{episode}i{iteration}"
        metrics = tmp_path / "runs" / "toy" / "lightgcn" / method / "cand" / "seed0" / "metrics.json"
        rec = _run(manifest, _mask(tmp_path, method, size, size), metrics, protocol,
                   labels={"method": method, "budget": "cand", "profile": "test",
                           "method_settings": {"top_l": 2}})
        rec["valid"]["avg"] = 0.1 * rank  # the order this test needs, whatever the toy data gives
        write_json(metrics, rec)
        paths.append(metrics)
    cands = tmp_path / "c80.csv"
    pd.DataFrame({"rank": [1, 2], "episode": [1, 1], "iteration": [2, 3],
                  "val_avg_user": [0.2, 0.1], "params": [1, 1], "sparsity": [0.9, 0.9]}
                 ).to_csv(cands, index=False)
    return manifest, cands, paths


def _select(tmp_path, manifest, cands, paths, merges):
    out = tmp_path / "runs" / "toy" / "lightgcn" / "ciess-g-rw-lam0.4" / "c80" / "seed0"
    merge = MergeChosen("merge_fixed", str(out / "metrics.json"), dict(
        manifest=str(manifest), model_name="lightgcn", seed=0, train_cfg=CFG,
        model_overrides={})) if merges else None
    labels = {"dataset": "toy", "model": "lightgcn", "budget": "c80", "seed": 0}
    return out, write_selection(cands, paths, out / "metrics.json", out / "selection.csv",
                                "ciess-g-rw-lam0.4", labels, logging.getLogger("t"),
                                "merge_fixed", merge=merge)


def test_the_selection_retrains_only_the_chosen_train_only_candidate_merged(tmp_path):
    manifest, cands, paths = _candidates(tmp_path, "train_val_es")
    out, result = _select(tmp_path, manifest, cands, paths, merges=True)
    chosen = read_json(paths[1])
    assert result == read_json(out / "metrics.json")
    assert result["final_protocol"] == "merge_fixed" and result["best_step"] == chosen["best_step"]
    assert result["selection"]["merged_after_selection"] is True
    assert result["selection"]["chosen_rank"] == 2
    assert result["candidate_method"] == "ciess-g-rw-lam0.4-e1i3"
    assert result["method"] == "ciess-g-rw-lam0.4" and result["budget"] == "c80"
    assert result["method_settings"] == {"top_l": 2} and result["profile"] == "test"
    assert result["test_by_protocol"]["train_val_es"] == chosen["test"]
    assert read_per_user(out / "metrics.json") is not None
    assert pd.read_csv(out / "selection.csv")["chosen"].tolist() == [False, True]
    # the candidate not chosen was never retrained merged
    assert read_json(paths[0])["final_protocol"] == "train_val_es"


def test_candidates_retrained_whole_are_copied_not_retrained(tmp_path):
    manifest, cands, paths = _candidates(tmp_path, "merge_fixed")
    out, result = _select(tmp_path, manifest, cands, paths, merges=True)
    chosen = read_json(paths[1])
    assert result["selection"]["merged_after_selection"] is False
    assert {k: result[k] for k in ("test", "wall_time_s", "history")} == \
        {k: chosen[k] for k in ("test", "wall_time_s", "history")}
    assert not (out / "per_user_test.npz").exists()


def test_a_train_only_candidate_is_never_a_merged_profiles_result(tmp_path):
    """merged_retraining: every with candidates made train-only: an error, not a result."""
    manifest, cands, paths = _candidates(tmp_path, "train_val_es")
    with pytest.raises(ValueError, match=r"e1i3/cand/seed0/metrics.json: retrained under "
                                         r"train_val_es, the final protocol is merge_fixed"):
        _select(tmp_path, manifest, cands, paths, merges=False)
    assert not (tmp_path / "runs" / "toy" / "lightgcn" / "ciess-g-rw-lam0.4" / "c80" / "seed0" /
                "metrics.json").exists()


def _labelled(out, paths):
    for path in [*paths, out / "metrics.json"]:  # the labels a workflow run carries
        rec = read_json(path)
        write_json(path, {**rec, **describe_run(rec["method"], rec["budget"], lambda *a: None)})


@pytest.mark.parametrize("protocol", ["train_val_es", "merge_fixed"])
def test_paired_values_come_from_the_run_that_made_the_result(tmp_path, protocol):
    """A selection that retrained its candidate merged has its own per-user values; one that
    copied a candidate's record reads the candidate's."""
    manifest, cands, paths = _candidates(tmp_path, protocol)
    out, _ = _select(tmp_path, manifest, cands, paths, merges=True)
    _labelled(out, paths)
    frame = runs_frame([out / "metrics.json"])
    assert frame["path"].tolist() == [out / "metrics.json" if protocol == "train_val_es"
                                      else paths[1]]
    assert read_per_user(frame["path"].iloc[0]) is not None


def test_the_cost_table_counts_a_merged_retraining_after_selection_once(tmp_path):
    manifest, cands, paths = _candidates(tmp_path, "train_val_es")
    out, result = _select(tmp_path, manifest, cands, paths, merges=True)
    _labelled(out, paths)
    costs = cost_table(tmp_path)
    row = costs[costs["budget"] == "c80"].iloc[0]
    candidates_s = sum(read_json(p)["wall_time_s"] for p in paths)
    assert row["candidates_retrain_s"] == pytest.approx(candidates_s)
    assert row["retrain_s"] == pytest.approx(result["wall_time_s"])
    totals = cost_totals(costs)
    ciess = totals[totals["method_label"] == row["method_label"]].iloc[0]
    assert ciess["candidates_retrain_min"] + ciess["retrain_min"] == pytest.approx(
        (candidates_s + result["merged_wall_time_s"]) / 60)
