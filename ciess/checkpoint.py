"""Resumable training: a long training phase saves its whole state every few minutes, so a job
killed by a session's end, a scheduler or a power cut goes on from its last save when the rule
runs again, and ends with the metrics the uninterrupted run would have written.

A checkpoint holds what the next batch depends on: the model's and Adam's state, the best state
so far and the early-stopping counters, the history and the phase's timers, and every random
stream the loop draws from (the sampler's generator, torch's, NumPy's and Python's global ones).
Restored, the loop continues bit for bit (same seed and thread count => same metrics on the
CPU; tests/test_checkpoint.py kills a run and compares). A phase that finished saves its
outcome, so a job killed in ``merge_fixed``'s merged retraining does not train its first phase
again.

Each checkpoint carries a ``key``: what identifies the run (data, model, mask, seed, settings,
protocol). One written for other inputs is ignored with a log line and overwritten: a changed
mask or setting never resumes an old run. Checkpoints sit beside the run's outputs as
``checkpoint-<phase>.pt`` and are deleted once its metrics are written; snapshots never copy
them.
"""
from __future__ import annotations

import hashlib
import logging
import random
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
import torch

from ciess.io import atomic_path
from ciess.provenance import package_versions

log = logging.getLogger(__name__)

CHECKPOINT_GLOB = "checkpoint-*.pt"

PACKAGE_ROOT = Path(__file__).parent
# Subpackages whose code never shapes a trained model or a search's state: a change there
# leaves every checkpoint resumable.
NOT_TRAINING_CODE = ("report",)
# Packages whose version can change what a training step computes.
NUMERIC_PACKAGES = ("torch", "numpy", "recbole")


@cache
def training_code_digest(package_root: Path = PACKAGE_ROOT) -> str:
    """sha256 over the paths and bytes of the package's Python sources that train and search
    (all but NOT_TRAINING_CODE): the code a checkpoint must have been written by. Unlike the
    git revision, a commit of docs, tests, workflow rules or reports leaves it unchanged, so a
    run stopped by a session's end resumes after such commits; an edit of training code, even
    uncommitted, changes it."""
    digest = hashlib.sha256()
    for path in sorted(package_root.rglob("*.py")):
        relative = path.relative_to(package_root)
        if relative.parts[0] in NOT_TRAINING_CODE:
            continue
        digest.update(relative.as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def resume_environment() -> dict:
    """What besides a run's inputs must match for its checkpoint to be resumed: the training
    code, the numeric packages' versions and the thread count (float reductions depend on
    it), so that a resumed run ends with the metrics an uninterrupted one would have."""
    return {"training_code": training_code_digest(),
            "packages": package_versions(NUMERIC_PACKAGES),
            "threads": torch.get_num_threads()}


RESTORED_BEGIN = "---- the earlier attempt's log, restored from the checkpoint ----"
RESTORED_END = "---- end of the earlier attempt's log; this attempt goes on below ----"


def _flush_log_handlers() -> None:
    """Write out what the logging handlers hold, before the rule log is read or appended to."""
    for handler in logging.getLogger().handlers:
        handler.flush()


def rule_log_text(rule_log: Path | None) -> str:
    """The job's log so far (saved in a checkpoint: Snakemake deletes a job's log before it
    reruns the job, so a resumed job writes it back with ``restore_rule_log``)."""
    if not rule_log or not Path(rule_log).exists():
        return ""
    _flush_log_handlers()
    return Path(rule_log).read_text(errors="replace")


def restore_rule_log(rule_log: Path, text: str) -> None:
    """Append an earlier attempt's log (saved in a checkpoint) to this attempt's ``rule_log``,
    between two marker lines; its lines keep their own time stamps."""
    _flush_log_handlers()
    with open(rule_log, "a") as fh:
        fh.write(f"{RESTORED_BEGIN}\n{text.rstrip()}\n{RESTORED_END}\n")


def random_streams() -> dict:
    """The global random streams a training loop may draw from (dropout, node dropout)."""
    out = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
           "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def restore_random_streams(streams: dict) -> None:
    torch.set_rng_state(streams["torch"])
    np.random.set_state(streams["numpy"])
    random.setstate(streams["python"])
    if "cuda" in streams:
        torch.cuda.set_rng_state_all(streams["cuda"])


@dataclass
class Checkpoint:
    """One checkpoint file (a training phase's, a CIESS search's): ``load`` the state this run
    saved (None when there is none, or it belongs to other inputs), ``save`` it when ``due``
    (``every_s`` seconds since the last save; 0 = at every opportunity). With ``rule_log``, each
    save holds the job's log so far (``resume_rule_log`` writes it back once, when the job
    resumes)."""

    path: Path
    key: dict
    every_s: float = 600.0
    rule_log: Path | None = None
    _last: float = field(default_factory=time.monotonic, repr=False)

    def due(self) -> bool:
        return time.monotonic() - self._last >= self.every_s

    def load(self) -> dict | None:
        if not self.path.exists():
            return None
        try:
            state = torch.load(self.path, weights_only=False, map_location="cpu")
        except Exception as exc:  # a file cut short by a kill mid-write cannot exist (atomic
            # rename), but a foreign or damaged file must not stop the run: it is retrained
            log.warning("%s: unreadable checkpoint (%s: %s); starting from the beginning",
                        self.path, type(exc).__name__, exc)
            return None
        if state.get("key") != self.key:
            log.warning("%s: a checkpoint of other inputs (data, settings, seed or code "
                        "changed); starting from the beginning", self.path)
            return None
        return state

    def save(self, state: dict) -> None:
        with atomic_path(self.path) as tmp:
            torch.save({**state, "key": self.key, "saved_at": time.time(),
                        "log_text": rule_log_text(self.rule_log)}, tmp)
        self._last = time.monotonic()


def resume_rule_log(checkpoints: list[Checkpoint], rule_log: Path | None) -> None:
    """Write the log of the attempts before this one back into ``rule_log``, once: the text
    saved by the latest of ``checkpoints`` that belongs to this run (each phase's checkpoint
    holds the whole log up to its save, so the latest one holds every earlier line)."""
    if rule_log is None:
        return
    saved = [s for s in (c.load() for c in checkpoints) if s is not None]
    if saved:
        latest = max(saved, key=lambda s: s["saved_at"])
        if latest.get("log_text"):
            restore_rule_log(Path(rule_log), latest["log_text"])


def remove_checkpoints(folder: str | Path) -> None:
    """Delete a finished run's checkpoints."""
    for path in Path(folder).glob(CHECKPOINT_GLOB):
        path.unlink(missing_ok=True)
