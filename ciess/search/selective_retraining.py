"""CIESS's selective retraining around the common training path: the top-l candidates of a
search per budget (rule ciess_candidates), one candidate's mask in the shared mask format
(ciess_candidate_mask), and the validation-best retrained candidate as the result
(ciess_select), with its merged retraining when the candidates were trained on train only
(``MergeChosen``)."""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ciess.io import atomic_path, load_npz, read_json, write_json
from ciess.per_user import per_user_path
from ciess.masks import save_mask, sizes_mask
from ciess.search.selection import BudgetNotReached, top_candidates

CANDIDATE_COLUMNS = ["rank", "episode", "iteration", "val_avg_user", "params", "sparsity"]


def write_candidates(log_csv, out_csv, pct: int, pool: str, episodes: tuple[int, int] | None,
                     l: int, eligibility: str, budgets, allow_not_reached: bool,
                     log: logging.Logger) -> pd.DataFrame:
    """The top-``l`` executed masks of a search meeting ``pct`` % sparsity, from the episodes
    ``episodes`` (first, last; None: all) of the pool named ``pool``."""
    search_log = pd.read_csv(log_csv)
    try:
        cands = top_candidates(search_log, pct, l, eligibility, budgets, episodes)
        cands = cands.assign(rank=range(1, len(cands) + 1))[CANDIDATE_COLUMNS]
        log.info("budget %d%%, pool %s: %d candidates\n%s", pct, pool, len(cands), cands)
    except BudgetNotReached as exc:
        if not allow_not_reached:
            raise
        log.error("%s (recorded as a gap for this study)", exc)
        cands = pd.DataFrame(columns=CANDIDATE_COLUMNS)
    with atomic_path(out_csv) as tmp:
        cands.to_csv(tmp, index=False)
    return cands


def write_candidate_mask(masks_npz, episode: int, iteration: int, out, meta: dict,
                         log: logging.Logger) -> None:
    """The mask executed at (episode, iteration) of a search, in the shared mask format."""
    masks = load_npz(masks_npz, ("episode", "iteration", "user_sizes", "item_sizes"))
    hit = np.flatnonzero((masks["episode"] == episode) & (masks["iteration"] == iteration))
    if len(hit) != 1:
        raise KeyError(f"{masks_npz}: no mask for episode {episode} iteration {iteration}")
    user, item = masks["user_sizes"][hit[0]], masks["item_sizes"][hit[0]]
    save_mask(out, sizes_mask(user, item, episode=episode, iteration=iteration, **meta))
    log.info("mask of episode %d iteration %d: mean size user %.2f item %.2f", episode,
             iteration, user.mean(), item.mean())


def write_selection(cands_csv, metrics_paths, out_metrics, out_selection, method: str,
                    labels: dict, log: logging.Logger, final_protocol: str,
                    merge=None) -> dict:
    """The retrained candidate best on validation is the result (ties: better search rank).

    A candidate retrained under ``final_protocol`` is the result as it is. One retrained
    train-only (``ciess.selection.merged_retraining: chosen``) gets the final protocol's merged
    retraining here, and only the chosen one: ``merge(source, candidate record, labels)`` runs it
    through the common path, writes ``out_metrics`` and returns the record. Without ``merge`` a
    chosen record of another protocol is an error, never a result."""
    cands = pd.read_csv(cands_csv)
    records = [read_json(p) for p in metrics_paths]
    if not records:
        result = {"status": "not_reached", **labels, "method": method,
                  "message": f"budget {labels['budget']} not reached by this search; no result"}
        log.error(result["message"])
        selection = cands.assign(retrained_val_avg=[], chosen=[])
    else:
        scores = [r["valid"]["avg"] for r in records]
        best = max(range(len(records)), key=lambda i: (scores[i], -i))
        chosen = records[best]
        merge_here = chosen["final_protocol"] != final_protocol
        if merge_here and merge is None:
            raise ValueError(
                f"{metrics_paths[best]}: retrained under {chosen['final_protocol']}, the final "
                f"protocol is {final_protocol}: retrain the candidates again, or let the selection "
                "retrain the chosen one merged (ciess.selection.merged_retraining: chosen)")
        result_labels = {**labels, "status": "ok", "method": method,
                         "candidate_method": chosen["method"],
                         "selection": {"candidates": len(records), "chosen_rank": best + 1,
                                       "retrained_val_avg": scores,
                                       "episode": int(cands.iloc[best].episode),
                                       "iteration": int(cands.iloc[best].iteration),
                                       "merged_after_selection": merge_here}}
        selection = cands.assign(retrained_val_avg=scores,
                                 chosen=[i == best for i in range(len(records))])
        log.info("chose candidate %d (episode %d, iteration %d): val AVG %.5f%s", best + 1,
                 result_labels["selection"]["episode"], result_labels["selection"]["iteration"],
                 scores[best], ", trained on train only: its merged retraining follows"
                 if merge_here else f", test Recall@20 {chosen['test']['recall@20']:.5f}")
    selection.insert(0, "budget", labels["budget"])
    with atomic_path(out_selection) as tmp:
        selection.to_csv(tmp, index=False)
    if records and merge_here:
        return merge(str(metrics_paths[best]), chosen, result_labels)
    if records:
        result = {**chosen, **result_labels}
    write_json(out_metrics, result)
    return result


class MergeChosen:
    """The merged retraining of a chosen candidate that was trained on train only, through the
    common path (``ciess.runs.train_and_record`` with ``trained_record``): the record it writes
    is the one the candidate's full run would have written, with the selection's labels.
    ``run``: the keyword arguments of that call a retrain_masked job gets (manifest, model_name,
    seed, train_cfg, model_overrides, config, checkpoint_minutes, rule_log)."""

    CARRIED = ("profile", "method_settings")  # a candidate's labels the result keeps

    def __init__(self, final_protocol: str, metrics_path: str, run: dict):
        self.final_protocol, self.metrics_path, self.run = final_protocol, metrics_path, run

    def __call__(self, source: str, candidate: dict, labels: dict) -> dict:
        from ciess.runs import train_and_record
        carried = {k: candidate[k] for k in self.CARRIED if k in candidate}
        return train_and_record(**self.run, final_protocol=self.final_protocol,
                                metrics_path=self.metrics_path, mask_path=candidate["mask_file"],
                                labels={**carried, **labels}, per_user_path=per_user_path(self.metrics_path),
                                trained_record=(source, candidate))
