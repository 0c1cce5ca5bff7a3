"""The one train / retrain / evaluate path (docs/protocol.md §7) used by every method and rule.

build model with mask -> train on train with BPR + Adam (lr decay with a floor) -> evaluate the
validation AVG every ``eval_every`` batches -> stop after ``patience`` evaluations without
improvement or at ``max_batches`` -> restore the best state -> evaluate test once.
"""
from __future__ import annotations

import copy
import dataclasses
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from ciess import compat  # noqa: F401  (item 7: optimizers without the torch._dynamo import)
from ciess.checkpoint import Checkpoint, random_streams, restore_random_streams
from ciess.evaluate import EvalResult, evaluate
from ciess.masks import Mask, account
from ciess.models import build_model, gmf_dense, rewind_tables
from ciess.progress import eta_text
from ciess.sampler import TripleSampler
from ciess.data.read_split import SplitData, merge_train_valid

log = logging.getLogger(__name__)

FINAL_PROTOCOLS = ("train_val_es", "merge_fixed", "merge_code")
TRAINING_PHASES = ("train", "merged")  # train only; merged train + validation (merge_*)


@dataclass
class TrainSettings:
    batch_size: int = 10_000
    sampler: str = "user_uniform"
    eval_every: int = 3000  # batches between validation evaluations
    patience: int = 2  # evaluations without improvement before stopping
    max_batches: int = 60_000
    eval_batch_users: int = 2048
    device: str = "cpu"

    @classmethod
    def from_config(cls, cfg: dict) -> "TrainSettings":
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(cfg) - known
        if unknown:
            raise KeyError(f"train settings: unknown keys {sorted(unknown)} (known: {sorted(known)})")
        return cls(**{**cfg, "device": resolve_device(cfg.get("device", cls.device))})


@dataclass
class TrainHooks:
    """Extra behaviour a method's own training (e.g. OptEmb's supernet) plugs into the loop."""

    before_step: object = None  # callable(step): e.g. resample random prefix sizes
    extra_loss: object = None  # callable() -> tensor added to the loss (a regulariser)
    own_params: tuple = ()  # parameters the model's Adam must leave to `optimizer`
    optimizer: object = None  # stepped after the model's Adam (e.g. SGD on thresholds)


@dataclass
class TrainOutcome:
    model: torch.nn.Module
    best_valid: EvalResult
    best_step: int
    steps: int
    history: list = field(default_factory=list)
    seconds_train: float = 0.0
    seconds_eval: float = 0.0
    resumed_at: int | None = None  # the step a checkpoint restored (None: trained from the start)
    seconds_before_resume: float = 0.0  # train + eval seconds of the processes before it


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def resolve_device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device: cuda was asked for, but torch sees no CUDA device")
    return name


def lr_at(step: int, hp: dict) -> float:
    return max(hp["lr"] * hp["lr_decay"] ** (step // hp["decay_batches"]), hp["min_lr"])


def train_step(model: torch.nn.Module, optim: torch.optim.Optimizer, sampler: TripleSampler,
               device: str, hooks: TrainHooks | None = None, step: int = 0) -> torch.Tensor:
    """One BPR step of the shared training path (what ``benchmarks/`` time): sample a batch,
    loss (+ a hook's extra loss), backward, step the optimizer(s). Returns the loss."""
    hooks = hooks or TrainHooks()
    if hooks.before_step:
        hooks.before_step(step)
    users, pos, neg = (t.to(device) for t in sampler.sample())
    loss = model.calculate_loss({model.USER_ID: users, model.ITEM_ID: pos, model.NEG_ITEM_ID: neg})
    if hooks.extra_loss:
        loss = loss + hooks.extra_loss()
    optim.zero_grad(set_to_none=True)
    if hooks.optimizer:
        hooks.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optim.step()
    if hooks.optimizer:
        hooks.optimizer.step()
    return loss


def train_model(model: torch.nn.Module, split: SplitData, settings: TrainSettings, seed: int,
                target: str | None = "valid", fixed_steps: int | None = None,
                tag: str = "", hooks: TrainHooks | None = None,
                checkpoint: Checkpoint | None = None) -> TrainOutcome:
    """Train ``model`` on ``split.train``. Early-stops on ``target`` ("valid" or "test"), or
    runs exactly ``fixed_steps`` batches when given (then ``target`` is evaluated, and only
    logged, every ``eval_every`` batches). ``target=None`` (with ``fixed_steps``): no evaluation
    at all, as in ``merge_fixed``'s retraining, whose test split is evaluated once, afterwards.
    ``checkpoint``: resume from its saved state, save the state at evaluation points when it is
    due, and save the outcome when the phase ends (``ciess.checkpoint``)."""
    if target is None and fixed_steps is None:
        raise ValueError("training without an evaluation target needs fixed_steps")
    if checkpoint is not None and hooks is not None:
        raise ValueError("a training with hooks cannot be checkpointed (their state is not saved)")
    hp = model.hparams
    device = settings.device
    sampler = TripleSampler(split.train, settings.batch_size, settings.sampler, seed)
    hooks = hooks or TrainHooks()
    own = {id(p) for p in hooks.own_params}
    params = [p for p in model.parameters() if p.requires_grad and id(p) not in own]
    optim = torch.optim.Adam(params, lr=hp["lr"])
    truth = getattr(split, target) if target else None
    exclude = [split.valid] if target == "test" else []  # no-op when train already holds valid
    per_epoch = split.batches_per_epoch(settings.batch_size)
    limit = fixed_steps if fixed_steps is not None else settings.max_batches
    best, best_state, best_step, bad = None, None, 0, 0
    history, t_train, t_eval = [], 0.0, 0.0
    step, running = 0, 0.0
    saved = checkpoint.load() if checkpoint is not None else None
    if saved is not None:
        model.load_state_dict(saved["model"])
        if saved["finished"]:
            log.info("%sphase finished before (%s): %d steps, best at step %d", tag,
                     checkpoint.path, saved["step"], saved["best_step"])
            return TrainOutcome(model, saved["best"], saved["best_step"], saved["step"],
                                saved["history"], saved["t_train"], saved["t_eval"],
                                resumed_at=saved["step"],
                                seconds_before_resume=saved["t_train"] + saved["t_eval"])
        optim.load_state_dict(saved["optim"])
        sampler.restore(saved["sampler"])
        restore_random_streams(saved["random"])
        best, best_state, best_step, bad = (saved[k] for k in ("best", "best_state", "best_step",
                                                               "bad"))
        history, t_train, t_eval, step = (saved[k] for k in ("history", "t_train", "t_eval",
                                                             "step"))
        log.info("%sresumed at step %d/%d from %s", tag, step, limit, checkpoint.path)
    resumed_at, seconds_before = (step, t_train + t_eval) if saved is not None else (None, 0.0)

    def progress(finished: bool) -> dict:
        state = {"finished": finished, "model": model.state_dict(), "best": best,
                 "best_step": best_step, "step": step, "history": history,
                 "t_train": t_train, "t_eval": t_eval}
        if not finished:
            state |= {"optim": optim.state_dict(), "sampler": sampler.state(),
                      "random": random_streams(), "best_state": best_state, "bad": bad}
        return state

    while step < limit:
        chunk = min(settings.eval_every, limit - step)
        model.train()
        t0 = time.perf_counter()
        for _ in range(chunk):
            for group in optim.param_groups:
                group["lr"] = lr_at(step, hp)
            loss = train_step(model, optim, sampler, device, hooks, step)
            running += loss.item()
            step += 1
            if step % per_epoch == 0 and settings.eval_every > per_epoch:  # progress between evals
                log.info("%sepoch %d (step %d/%d): loss %.4f, lr %.5f", tag, step // per_epoch,
                         step, limit, loss.item(), lr_at(step - 1, hp))
        t_train += time.perf_counter() - t0
        eta = eta_text(t_train / step * (limit - step) + t_eval / max(len(history), 1) *
                   -(-(limit - step) // settings.eval_every))
        if truth is None:
            history.append({"step": step, "epoch": step / per_epoch, "loss": running / chunk,
                            "lr": lr_at(step - 1, hp)})
            log.info("%sstep %d/%d (epoch %.2f): loss %.4f [train %.1fs, ETA %s]", tag, step,
                     limit, step / per_epoch, running / chunk, t_train, eta)
            running = 0.0
        else:
            t0 = time.perf_counter()
            result = evaluate(model, split.train, truth, exclude,
                              batch_users=settings.eval_batch_users, device=device)
            t_eval += time.perf_counter() - t0
            score = result.means["avg"]
            history.append({"step": step, "epoch": step / per_epoch, "loss": running / chunk,
                            f"{target}_avg": score, "recall@20": result.means["recall@20"],
                            "lr": lr_at(step - 1, hp)})
            log.info("%sstep %d/%d (epoch %.2f): loss %.4f, %s AVG %.5f, Recall@20 %.5f, "
                     "NDCG@20 %.5f [train %.1fs, eval %.1fs, ETA %s at most]", tag, step, limit,
                     step / per_epoch, running / chunk, target, score,
                     result.means["recall@20"], result.means["ndcg@20"], t_train, t_eval, eta)
            running = 0.0
            if fixed_steps is not None:
                best, best_step = result, step
            elif best is None or score > best.means["avg"]:
                best, best_step, bad = result, step, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                bad += 1
                if bad >= settings.patience:
                    log.info("%searly stop at step %d: best %s AVG %.5f at step %d", tag, step,
                             target, best.means["avg"], best_step)
                    break
        if checkpoint is not None and step < limit and checkpoint.due():
            checkpoint.save(progress(finished=False))
    if best_state is not None:
        model.load_state_dict(best_state)
    if checkpoint is not None:
        checkpoint.save(progress(finished=True))
    return TrainOutcome(model, best, best_step, step, history, t_train, t_eval, resumed_at,
                        seconds_before)


REWIND_SEED_OFFSET = 10_007  # the RNG stream of the layers a rewinding retraining re-draws


def initial_model(model_name: str, split: SplitData, train, mask: Mask | None, seed: int,
                  device: str, model_overrides: dict | None = None,
                  initial_tables: dict | None = None) -> torch.nn.Module:
    """The model a retraining starts from.

    * fresh start: every layer initialised from ``seed``.
    * rewind (``initial_tables``, PEP and OptEmb; lottery-ticket style): the counted embedding
      tables take the values the method's search started from (its ``init_state.pt``), whatever
      the run seed; every other layer (NGCF's propagation weights, NeuMF's MLP and output) is
      re-initialised from a separate stream (``seed + REWIND_SEED_OFFSET``), not rewound
      (docs/baselines.md §4). A model without such layers (LightGCN) started with the search's
      seed is therefore the same as a fresh start: the tables are what ``seed`` draws anyway.
    """
    seed_everything(seed if initial_tables is None else seed + REWIND_SEED_OFFSET)
    model = build_model(model_name, split.n_users, split.n_items, train, model_overrides, device,
                        mask, narrow=True)
    if initial_tables is not None:
        rewind_tables(model, initial_tables)
    seed_everything(seed)  # training draws (dropout) from the run seed either way
    return model


@dataclass
class TrainOnlyPhase:
    """What a run's train-only phase hands on: the validation choice (best step, its scores)
    and the train-only model's test score, from this process or from the record of an earlier
    train-only run of the same mask (a CIESS candidate; ``from_record``)."""

    valid: dict  # validation means at the best step
    best_step: int
    steps: int
    history: list
    seconds_train: float
    seconds_eval: float
    wall_s: float  # the phase with its test evaluation, earlier processes' saved seconds included
    test: dict  # the train-only model's test means (the train_val_es number)
    resumed_at: int | None = None

    @classmethod
    def from_record(cls, rec: dict, source: str) -> "TrainOnlyPhase":
        if rec.get("final_protocol") != "train_val_es":
            raise ValueError(f"{source}: a train-only record is needed to continue a run, this "
                             f"one's final_protocol is {rec.get('final_protocol')!r}")
        return cls(rec["valid"], rec["best_step"], rec["steps_trained"], rec["history"],
                   rec["train_time_s"], rec["eval_time_s"], rec["wall_time_s"], rec["test"],
                   rec.get("resumed", {}).get("train"))


def run_masked_training(split: SplitData, model_name: str, mask: Mask | None, seed: int,
                        settings: TrainSettings, final_protocol: str = "train_val_es",
                        model_overrides: dict | None = None, tag: str = "",
                        initial_tables: dict | None = None,
                        checkpoint_for: Callable[[str], Checkpoint] | None = None,
                        trained: TrainOnlyPhase | None = None) -> dict:
    """Build, train, select on validation and test once: the single path behind every number.

    ``initial_tables`` rewinds the embedding tables to saved initial weights (PEP, OptEmb).
    ``checkpoint_for(phase)`` gives each training phase ("train", "merged") its checkpoint: a
    killed run resumes where it stopped (``ciess.checkpoint``); its record says where
    (``resumed``), and its wall time adds the saved phases' train and evaluation seconds (work
    after a phase's last save, lost with the process, is not counted).
    ``trained``: this run's train-only phase, done before (a CIESS candidate's record): only the
    merged retraining runs, and the record is the one the whole run would have written (the
    merged phase draws from ``seed`` afresh and takes nothing from the train-only phase but its
    number of steps), with the wall time of both.
    Returns a dict with the model, the validation result (None when ``trained`` gave it), the
    test result and a metrics record.
    """
    phase_checkpoint = checkpoint_for or (lambda phase: None)
    if final_protocol not in FINAL_PROTOCOLS:
        raise ValueError(f"final.protocol must be one of {FINAL_PROTOCOLS}, got {final_protocol!r}")
    device = resolve_device(settings.device)
    settings = dataclasses.replace(settings, device=device)
    def fresh_model(train):
        return initial_model(model_name, split, train, mask, seed, device, model_overrides,
                             initial_tables)

    t0 = time.perf_counter()
    valid = None
    if trained is None:
        model = fresh_model(split.train)
        outcome = train_model(model, split, settings, seed, tag=tag,
                              checkpoint=phase_checkpoint("train"))
        # the train-only model's test score: the train_val_es number, and under the merged
        # protocols a second, clearly named record (it takes no part in any choice)
        test = evaluate(model, split.train, split.test, [split.valid],
                        batch_users=settings.eval_batch_users, device=device)
        valid = outcome.best_valid
        trained = TrainOnlyPhase(
            {k: float(v) for k, v in valid.means.items()}, outcome.best_step, outcome.steps,
            outcome.history, outcome.seconds_train, outcome.seconds_eval,
            time.perf_counter() - t0 + outcome.seconds_before_resume,
            {k: float(v) for k, v in test.means.items()}, outcome.resumed_at)
    elif final_protocol == "train_val_es":
        raise ValueError("a train-only phase given to a train_val_es run: nothing left to train")
    t1 = time.perf_counter()
    test_by_protocol = {"train_val_es": trained.test}
    resumed = {"train": trained.resumed_at}
    merged_wall = None
    if final_protocol != "train_val_es":
        merged = merge_train_valid(split)
        model = fresh_model(merged.train)
        if final_protocol == "merge_fixed":  # steps chosen on validation; test never looked at
            outcome_m = train_model(model, merged, settings, seed, target=None,
                                    fixed_steps=trained.best_step, tag=tag + "[merged] ",
                                    checkpoint=phase_checkpoint("merged"))
        else:  # merge_code: early-stops on the test split itself -> leaks; diagnosis only
            log.warning("final.protocol merge_code early-stops on TEST: leaked, never headline")
            outcome_m = train_model(model, merged, settings, seed, target="test",
                                    tag=tag + "[merge_code] ", checkpoint=phase_checkpoint("merged"))
        resumed["merged"] = outcome_m.resumed_at
        model = outcome_m.model
        test = evaluate(model, merged.train, split.test, batch_users=settings.eval_batch_users,
                        device=device)
        test_by_protocol[final_protocol] = {k: float(v) for k, v in test.means.items()}
        merged_wall = time.perf_counter() - t1 + outcome_m.seconds_before_resume
    n_tables = model.n_tables
    acct = account(mask, n_tables, gmf_dense(model_name, model.hparams)) if mask is not None else {
        "params": model.masked_nnz(), "sparsity": 0.0, "density": 1.0,
        "capacity": model.masked_nnz()}
    per_epoch = split.batches_per_epoch(settings.batch_size)
    record = {
        "valid": trained.valid,
        "test": test_by_protocol[final_protocol],
        "test_by_protocol": test_by_protocol,
        "users_evaluated_test": test.n_users_evaluated,
        **{k: acct[k] for k in ("params", "sparsity", "density", "capacity")},
        "n_tables": n_tables, "steps_trained": trained.steps, "best_step": trained.best_step,
        "epochs_trained": trained.steps / per_epoch, "batches_per_epoch": per_epoch,
        "wall_time_s": trained.wall_s + (merged_wall or 0.0),
        "merged_wall_time_s": merged_wall,  # the merged retraining's share of wall_time_s
        "train_time_s": trained.seconds_train,
        "eval_time_s": trained.seconds_eval, "seed": seed, "device": device,
        "final_protocol": final_protocol, "data_manifest_sha256": split.manifest_sha256,
        "rewound": initial_tables is not None,
        "resumed": {phase: at for phase, at in resumed.items() if at is not None},
        "train_settings": settings.__dict__ | {"device": device}, "model_hparams": model.hparams,
        "history": trained.history,
    }
    return {"model": model, "valid": valid, "test": test, "record": record}
