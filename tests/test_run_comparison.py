"""The tools of the SLURM test: run-to-run comparison and the sbatch-log check can fail."""
from __future__ import annotations

import json

import numpy as np

from check_slurm_log import (REPO, parse_log, placement_problems, record_problems,
                             workflow_local_rules)
from run_comparison import compare_runs

METRICS = "results/runs/ml-100k/lightgcn/es/c80/seed0/metrics.json"
MASK = "results/masks/ml-100k/lightgcn/es/c80/seed0/mask.npz"
TABLES = ("results.csv", "table1.csv", "table2.csv")


def _run(root, recall=0.2, host="a", train_time=1.0, sizes=(4, 8), search_t=0.5):
    (root / METRICS).parent.mkdir(parents=True)
    (root / METRICS).write_text(json.dumps({
        "test": {"recall@20": recall}, "history": [{"step": 10, "loss": 0.5}],
        "train_time_s": train_time, "host": host, "slurm_job_id": host, "git_revision": "r1"}))
    (root / MASK).parent.mkdir(parents=True)
    np.savez(root / MASK, user_sizes=np.array(sizes))
    search = root / "results/search/ml-100k/lightgcn/ciess-g-rw-lam0.4/seed0"
    search.mkdir(parents=True)
    (search / "search_log.csv").write_text(f"episode,params,t_train_s\n1,100,{search_t}\n")
    np.savez(search / "masks.npz", m=np.array(sizes))
    (root / "results/tables").mkdir(parents=True)
    for name in TABLES:
        (root / "results/tables" / name).write_text(f"metric,value\nrecall@20,{recall}\n")
    return root


def test_runs_that_differ_only_in_where_and_how_long_are_equal(tmp_path):
    a = _run(tmp_path / "a")
    b = _run(tmp_path / "b", host="b", train_time=9.0, search_t=3.0)
    compared, problems = compare_runs(a, b)
    assert compared == 7 and problems == []


def test_a_changed_metric_mask_or_missing_file_is_reported(tmp_path):
    a = _run(tmp_path / "a")
    b = _run(tmp_path / "b", recall=0.21, sizes=(4, 9))
    (b / "results/tables/table2.csv").unlink()
    _, problems = compare_runs(a, b)
    text = "\n".join(problems)
    assert ".test.recall@20: 0.2 != 0.21" in text
    assert "mask.npz: array user_sizes differs" in text
    assert "table2.csv: only in reference run" in text


LOG = """
[Sat Nov 28 08:19:52 2026]
localrule fetch_dataset:
    output: results/data/ml-100k/source
    jobid: 3
[Sat Nov 28 08:19:53 2026]
rule pretrain_full:
    jobid: 5
Job 5 has been submitted with SLURM jobid 11 (log: x/11.log).
[Sat Nov 28 08:19:53 2026]
rule ciess_search:
    jobid: 7
Job 7 has been submitted with SLURM jobid 12 (log: x/12.log).
[Sat Nov 28 08:19:54 2026]
rule retrain_masked:
    jobid: 9
[Sat Nov 28 08:19:54 2026]
localcheckpoint ciess_candidates:
    jobid: 8
[Sat Nov 28 08:19:54 2026]
localrule make_masks_es:
    jobid: 10
[Sat Nov 28 08:19:55 2026]
localrule all:
    jobid: 0
6 of 6 steps (100%) done
"""


def test_sbatch_log_parser_finds_jobs_that_bypassed_slurm():
    remote, local, submitted, finished = parse_log(LOG)
    assert remote == {5: "pretrain_full", 7: "ciess_search", 9: "retrain_masked"}
    assert local == {3: "fetch_dataset", 8: "ciess_candidates", 10: "make_masks_es", 0: "all"}
    assert submitted == {5: "11", 7: "12"} and finished
    # the rules the workflow marks `localrule: True` may run locally; nothing else may
    assert placement_problems(remote, local, submitted, workflow_local_rules()) == [
        "job 9 (retrain_masked) ran without an sbatch submission",
        "job 10 (make_masks_es) ran on the submit host, not through SLURM"]


def test_every_trained_record_names_a_slurm_job_of_the_run_and_gap_records_hold_no_numbers():
    ok = {"status": "ok", "slurm_job_id": "11", "test": {"recall@20": 0.1}}
    gap = {"status": "not_reached", "budget": "c95", "message": "budget c95 not reached"}
    assert record_problems({"a/metrics.json": ok, "b/metrics.json": gap}, {"11"}) == []
    # a trained record from elsewhere, and a gap record that somehow holds numbers, both fail
    foreign = {**ok, "slurm_job_id": None}
    bad_gap = {**gap, "test": {"recall@20": 0.1}}
    assert record_problems({"a/metrics.json": foreign, "b/metrics.json": bad_gap}, {"11"}) == [
        "a/metrics.json: slurm_job_id None is not a job of this run",
        "b/metrics.json: a not_reached record carries trained numbers ['test']"]


def test_the_workflow_marks_only_the_light_bookkeeping_rules_local():
    # read from the Snakefile itself; `use rule ... with:` does not inherit `localrule`, so the
    # interval variant of ciess_select carries its own
    bookkeeping = {"fetch_dataset", "ciess_candidates", "ciess_candidate_mask", "aggregate_results"}
    assert workflow_local_rules() == bookkeeping | {"ciess_select", "ciess_select_interval"}
    # under the paper's merge_fixed a selection retrains its chosen candidate merged
    # (`merged_retraining: chosen`): a training job like any other
    assert workflow_local_rules(configfiles=(REPO / "config" / "config.yaml",)) == bookkeeping
