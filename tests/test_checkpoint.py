"""Resumable training (ciess/checkpoint.py): a run killed in either phase of merge_fixed and
started again ends with the metrics, history and weights of the run that was never killed."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import ciess.train as train_module
from ciess.checkpoint import RESTORED_BEGIN, RESTORED_END, Checkpoint, training_code_digest
from ciess.masks import sizes_mask
from ciess.train import TrainSettings, run_masked_training
from helpers import random_split


class Killed(Exception):
    """Stands for the process being killed."""


def _split_and_mask():
    split = random_split(n_users=60, n_items=50, per_user=16)
    return split, sizes_mask(np.full(60, 16), np.full(50, 8))


SETTINGS = TrainSettings(batch_size=256, eval_every=2, patience=3, max_batches=14)


def _run(split, mask, folder, key=None, every_s=0.0):
    """NGCF (node and message dropout: global random streams in use) under merge_fixed."""
    checkpoint_for = None
    if folder is not None:
        checkpoint_for = lambda phase: Checkpoint(folder / f"checkpoint-{phase}.pt",  # noqa: E731
                                                  key or {"run": 1}, every_s=every_s)
    return run_masked_training(split, "ngcf", mask, 3, SETTINGS, "merge_fixed",
                               checkpoint_for=checkpoint_for)


def _kill_after(monkeypatch, steps: int):
    """Make the training loop die after ``steps`` batches (counted across both phases)."""
    real, done = train_module.train_step, [0]

    def step(*args, **kwargs):
        if done[0] == steps:
            raise Killed
        done[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(train_module, "train_step", step)


def _same_run(a: dict, b: dict) -> None:
    ra, rb = a["record"], b["record"]
    for key in ("valid", "test", "test_by_protocol", "best_step", "steps_trained"):
        assert ra[key] == rb[key], key
    assert ra["history"] == rb["history"]
    for (name, x), (_, y) in zip(a["model"].state_dict().items(), b["model"].state_dict().items()):
        assert torch.equal(x, y), name


@pytest.mark.parametrize("phase", ["train", "merged"])
def test_a_killed_run_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch, phase):
    split, mask = _split_and_mask()
    whole = _run(split, mask, None)
    assert whole["record"]["resumed"] == {}
    train_steps, merged_steps = whole["record"]["steps_trained"], whole["record"]["best_step"]
    assert train_steps >= 6 and merged_steps >= 6  # each phase has mid-phase save points
    kill_at = train_steps // 2 + 1 if phase == "train" else train_steps + merged_steps // 2 + 1
    with monkeypatch.context() as m:
        _kill_after(m, kill_at)
        with pytest.raises(Killed):
            _run(split, mask, tmp_path)
    saved = sorted(p.name for p in tmp_path.glob("checkpoint-*.pt"))
    assert saved == {"train": ["checkpoint-train.pt"],
                     "merged": ["checkpoint-merged.pt", "checkpoint-train.pt"]}[phase]
    resumed = _run(split, mask, tmp_path)
    _same_run(whole, resumed)
    at = resumed["record"]["resumed"]
    if phase == "train":  # resumed inside the first phase, at its last save before the kill
        assert set(at) == {"train"} and kill_at - SETTINGS.eval_every < at["train"] <= kill_at
    else:  # the first phase was not trained again; the merged one resumed inside
        assert at["train"] == train_steps
        assert kill_at - SETTINGS.eval_every < train_steps + at["merged"] <= kill_at


def test_a_checkpoint_of_other_inputs_is_not_resumed(tmp_path, monkeypatch, caplog):
    split, mask = _split_and_mask()
    with monkeypatch.context() as m:
        _kill_after(m, 5)
        with pytest.raises(Killed):
            _run(split, mask, tmp_path, key={"mask": "a"})
    other = _run(split, mask, tmp_path, key={"mask": "b"})
    assert other["record"]["resumed"] == {}
    assert "a checkpoint of other inputs" in caplog.text
    _same_run(_run(split, mask, None), other)


def test_checkpoints_are_saved_only_when_due(tmp_path, monkeypatch):
    """every_s: no mid-phase save before it has passed (a finished phase is always saved)."""
    split, mask = _split_and_mask()
    saves = []
    real = Checkpoint.save

    def spy(self, state):
        saves.append(state["finished"])
        real(self, state)

    monkeypatch.setattr(Checkpoint, "save", spy)
    _run(split, mask, tmp_path, every_s=3600.0)
    assert saves == [True, True]  # one per phase, at its end
    saves.clear()
    _run(split, mask, tmp_path / "often", every_s=0.0)
    assert saves.count(False) > 2 and saves.count(True) == 2


def test_train_and_record_deletes_its_checkpoints_and_a_rerun_resumes(tmp_path, monkeypatch):
    """The rule path: checkpoints sit beside metrics.json while the run lasts, are gone once the
    metrics are written, and a rerun after a kill writes the uninterrupted run's metrics."""
    import ciess.runs

    split, _ = _split_and_mask()
    monkeypatch.setattr(ciess.runs, "load_split", lambda manifest: split)
    cfg = {"batch_size": 256, "eval_every": 2, "patience": 3, "max_batches": 14}

    def record(folder, minutes, rule_log=None):
        return ciess.runs.train_and_record("manifest.json", "lightgcn", 0, cfg, "merge_fixed", {},
                                           str(folder / "metrics.json"),
                                           checkpoint_minutes=minutes, rule_log=rule_log)

    whole = record(tmp_path / "whole", 0.0)
    rule_log = tmp_path / "job.log"
    rule_log.write_text("2026-01-01 00:00:00 INFO first attempt\n")
    with monkeypatch.context() as m:
        _kill_after(m, 5)
        with pytest.raises(Killed):
            record(tmp_path / "killed", 1e-9, rule_log)
    assert (tmp_path / "killed" / "checkpoint-train.pt").exists()
    assert not (tmp_path / "killed" / "metrics.json").exists()
    rule_log.write_text("2026-01-02 00:00:00 INFO second attempt\n")  # Snakemake began afresh
    again = record(tmp_path / "killed", 1e-9, rule_log)
    text = rule_log.read_text()  # the first attempt's log came back once, marked
    assert text.count(RESTORED_BEGIN) == 1 and text.index("second attempt") \
        < text.index(RESTORED_BEGIN) < text.index("first attempt") < text.index(RESTORED_END)
    assert again["resumed"] == {"train": 4}
    assert again["test"] == whole["test"] and again["history"] == whole["history"]
    assert not list((tmp_path / "killed").glob("checkpoint-*"))
    assert not list((tmp_path / "whole").glob("checkpoint-*"))


def test_the_code_key_follows_training_code_not_reports_or_docs(tmp_path):
    """A checkpoint's code key changes with the package's training code (even uncommitted)
    and not with its reports or with files that are not code, unlike the git revision."""
    package = tmp_path / "package"
    (package / "report").mkdir(parents=True)
    (package / "search").mkdir()
    (package / "train.py").write_text("STEPS = 1\n")
    (package / "search" / "loop.py").write_text("EPISODES = 1\n")
    (package / "report" / "table1.py").write_text("TITLE = 'a'\n")

    def digest():
        return training_code_digest.__wrapped__(package)  # uncached: the files change below

    before = digest()
    (package / "report" / "table1.py").write_text("TITLE = 'b'\n")
    (package / "NOTES.md").write_text("a note\n")
    assert digest() == before
    (package / "search" / "loop.py").write_text("EPISODES = 2\n")
    changed = digest()
    assert changed != before
    (package / "search" / "loop.py").rename(package / "search" / "walk.py")
    assert digest() not in (before, changed)


def test_a_checkpoint_of_other_training_code_is_not_resumed(tmp_path, monkeypatch, caplog):
    """The rule path keys its checkpoints on ``resume_environment``: after a change of training
    code (or thread count, or torch) the killed run starts over and ends like a fresh one."""
    import ciess.runs
    from ciess.checkpoint import resume_environment

    split, _ = _split_and_mask()
    monkeypatch.setattr(ciess.runs, "load_split", lambda manifest: split)
    cfg = {"batch_size": 256, "eval_every": 2, "patience": 3, "max_batches": 14}

    def record(folder):
        return ciess.runs.train_and_record("manifest.json", "lightgcn", 0, cfg, "merge_fixed", {},
                                           str(folder / "metrics.json"), checkpoint_minutes=1e-9)

    whole = record(tmp_path / "whole")
    with monkeypatch.context() as m:
        _kill_after(m, 5)
        with pytest.raises(Killed):
            record(tmp_path / "killed")
    monkeypatch.setattr(ciess.runs, "resume_environment",
                        lambda: {**resume_environment(), "training_code": "edited"})
    again = record(tmp_path / "killed")
    assert "a checkpoint of other inputs" in caplog.text
    assert not again.get("resumed")
    assert again["test"] == whole["test"] and again["history"] == whole["history"]
