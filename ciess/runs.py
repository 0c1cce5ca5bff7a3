"""Rule-level helpers: run the shared training path and write its outputs atomically."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch

from ciess.checkpoint import (Checkpoint, remove_checkpoints, resume_environment,
                              resume_rule_log)
from ciess.init_state import load_tables, tables_sha256
from ciess.io import atomic_path, sha256_file, write_json
from ciess.masks import Mask, check_budget, load_mask
from ciess.models import gmf_dense, model_spec
from ciess.per_user import write_per_user
from ciess.provenance import PLACEMENT_TRAIN_KEYS, run_provenance, settings_hash
from ciess.data.read_split import load_split
from ciess.train import TRAINING_PHASES, TrainOnlyPhase, TrainSettings, run_masked_training

log = logging.getLogger(__name__)


def train_and_record(manifest: str, model_name: str, seed: int, train_cfg: dict,
                     final_protocol: str, model_overrides: dict, metrics_path: str,
                     mask_path: str | None = None, target_pct: int | None = None,
                     labels: dict | None = None,
                     config: dict | None = None, model_path: str | None = None,
                     quality_path: str | None = None, init_state_path: str | None = None,
                     per_user_path: str | None = None,
                     checkpoint_minutes: float = 0.0, rule_log: str | None = None,
                     trained_record: tuple[str, dict] | None = None) -> dict:
    """Train with ``mask_path`` (or full size; checked against ``target_pct`` % sparsity when
    given), write metrics JSON, optionally the model and the per-entity validation quality.
    ``checkpoint_minutes`` > 0: save the training state that often beside the metrics and resume
    from it when the same run starts again (``ciess.checkpoint``); the checkpoints are deleted
    once the metrics are written, and the log of the attempts before (``rule_log``, the job's
    log file) is written back into it. ``trained_record``: (path, record) of this same run made
    train-only before (a CIESS candidate): its phase is taken from there and only the merged
    retraining of ``final_protocol`` runs (``check_same_run`` first). Returns the metrics record."""
    split = load_split(manifest)
    mask: Mask | None = None
    if mask_path is not None:
        mask = load_mask(mask_path, split.n_users, split.n_items)
        check_budget(mask, target_pct, model_spec(model_name).n_tables,
                     gmf_dense(model_name, model_overrides), str(mask_path))
    settings = TrainSettings.from_config(train_cfg)
    log.info("training %s on %s (%d users, %d items, %d train) with %s, seed %d, protocol %s",
             model_name, split.name, split.n_users, split.n_items, split.n_train,
             mask_path or "the full-size tables", seed, final_protocol)
    initial = load_tables(init_state_path) if init_state_path else None
    mask_sha256 = sha256_file(mask_path) if mask_path else None
    init_state_sha256 = tables_sha256(initial) if initial is not None else None  # values, not file
    trained = None
    if trained_record is not None:
        if quality_path:
            raise ValueError("per-entity validation quality needs the train-only phase run here; "
                             f"{trained_record[0]} gives only its record")
        source, earlier = trained_record
        check_same_run(earlier, source, {
            "data_manifest_sha256": split.manifest_sha256, "model": model_name, "seed": seed,
            "mask_sha256": mask_sha256, "init_state_sha256": init_state_sha256,
            "model_hparams": model_spec(model_name).params(model_overrides),
            "train_settings": settings.__dict__})
        trained = TrainOnlyPhase.from_record(earlier, source)
        log.info("train-only phase from %s: best step %d of %d, validation AVG %.5f", source,
                 trained.best_step, trained.steps, trained.valid["avg"])
    run_folder = Path(metrics_path).parent
    checkpoint_for = None
    if checkpoint_minutes > 0:
        # what identifies this run: a checkpoint of other inputs or code is not resumed
        key = {"data": split.manifest_sha256, "model": model_name, "seed": seed,
               "mask_sha256": mask_sha256,
               "init_state_sha256": init_state_sha256,
               "train": {k: v for k, v in settings.__dict__.items() if k != "eval_batch_users"},
               "final_protocol": final_protocol, "model_overrides": model_overrides,
               "trained_best_step": trained.best_step if trained else None,
               **resume_environment()}
        checkpoint_for = lambda phase: Checkpoint(  # noqa: E731
            run_folder / f"checkpoint-{phase}.pt", key, every_s=60.0 * checkpoint_minutes,
            rule_log=rule_log)
        resume_rule_log([checkpoint_for(phase) for phase in TRAINING_PHASES], rule_log)
    out = run_masked_training(split, model_name, mask, seed, settings, final_protocol,
                              model_overrides, initial_tables=initial,
                              checkpoint_for=checkpoint_for, trained=trained)
    record = {**(labels or {}), "dataset": split.name, "model": model_name, **out["record"],
              "mask_file": mask_path, "mask_sha256": mask_sha256,
              "mask_meta": mask.meta if mask else None, "init_state": init_state_path,
              "init_state_sha256": init_state_sha256,
              **run_provenance(config)}
    record["settings_hash"] = settings_hash(record)
    if model_path:
        with atomic_path(model_path) as tmp:
            torch.save(out["model"].state_dict(), tmp)
    if quality_path:  # (never with trained_record: checked above)
        with atomic_path(quality_path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, user_quality=out["valid"].user_quality,
                                    item_quality=out["valid"].item_quality)
    if per_user_path:  # each user's test values, for paired comparisons (ciess.report.paired)
        write_per_user(per_user_path, out["test"].per_user)
    write_json(metrics_path, record)  # last: its presence means the run completed
    remove_checkpoints(run_folder)
    log.info("test: %s | params %d, sparsity %.4f", {k: round(v, 5) for k, v in record["test"].items()},
             record["params"], record["sparsity"])
    return record


def check_same_run(record: dict, source: str, expected: dict) -> None:
    """``record`` (read from ``source``) was made with the ``expected`` inputs and settings
    (training settings compared without where they ran: PLACEMENT_TRAIN_KEYS); else ValueError
    naming each field that differs."""
    def comparable(key, value):
        if key == "train_settings":
            value = {k: v for k, v in (value or {}).items() if k not in PLACEMENT_TRAIN_KEYS}
        return json.loads(json.dumps(value))  # as a record holds it (lists, not tuples)

    differ = [key for key, value in expected.items()
              if comparable(key, record.get(key)) != comparable(key, value)]
    if differ:
        raise ValueError(f"{source}: not a train-only phase of this run; it differs in "
                         + ", ".join(f"{k} ({record.get(k)!r}, here {expected[k]!r})"
                                     for k in differ))
