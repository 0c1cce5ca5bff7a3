"""Held-out symmetry: does a mask carry information fitted to the validation split?

Validation and test are two random parts of every user's interactions of the same size
(docs/protocol.md §3), so they are exchangeable: for a model trained on train, the validation
metrics with the test items excluded from the ranking and the test metrics with the validation
items excluded have the same expectation, unless something was chosen by looking at one of them.
A mask chosen by validation (CIESS: per-entity rewards from validation quality, candidates
ranked by validation) then scores higher on validation than on test by more than a mask chosen
without validation (ES, MR) does. The only validation use common to all is early stopping.

Each mask is trained once through the shared loop (train split, early stopping on validation)
and scored both ways. Variants of a sizes mask isolate *which* part carries the fit:
``popularity`` gives the same multiset of sizes (per side) to entities in order of training
popularity (largest to the most frequent), ``shuffled`` in a seeded random order; for a model
with several tables, ``tables_even`` keeps each entity's number of entries and spreads them evenly
over its tables (``--model neumf``); ``sides_even`` gives every entity of a side the side's mean
size (what the user/item split alone is worth); ``prefixes`` keeps an elements mask's entries per
entity as a prefix (which dimensions a search kept, against how many: PEP on NGCF). The
size-based variants read an elements mask of one matrix per side as its prefixes.

    python -m ciess.heldout_symmetry results/data/ml-1m/split/manifest.json OUT.csv \\
        --profile config/reference.yaml --mask es-c90=PATH --mask ciess-c90=PATH \\
        --variants as_is popularity shuffled

Rows are appended to OUT.csv as they finish; a rerun skips the (mask, variant) pairs it holds
for the same model and --model-option values.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from ciess.evaluate import evaluate
from ciess.io import atomic_path
from ciess.masks import Mask, account, elements_mask, load_mask, sizes_mask
from ciess.models.registry import model_spec
from ciess.profiles import load_profile, model_overrides_block, model_train_block
from ciess.progress import Progress
from ciess.data.read_split import SplitData, load_split
from ciess.train import TrainSettings, initial_model, resolve_device, train_model

log = logging.getLogger(__name__)
VARIANTS = ("as_is", "popularity", "shuffled", "tables_even", "sides_even", "prefixes")
REPORTED = ("avg", "recall@20", "ndcg@20")


def rearranged(mask: Mask, variant: str, split: SplitData, seed: int) -> Mask:
    """The mask itself, its sizes (per side) re-assigned by popularity or at random,
    (``tables_even``) a per-table mask's entries per entity spread evenly over its tables,
    (``sides_even``) each side's entries spread evenly over its entities, or (``prefixes``) an
    elements mask's entries per entity kept as a prefix (which dimensions a search kept, against
    how many). The size-based variants read a one-matrix elements mask (PEP on LightGCN or NGCF)
    as its prefixes first."""
    if variant == "as_is":
        return mask
    if variant == "tables_even":
        return tables_even(mask)
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    if mask.kind != "sizes":
        if mask.per_table:
            raise ValueError(f"variant {variant!r} needs a sizes mask or an elements mask of one "
                             f"matrix per side, got one matrix per table (use tables_even)")
        mask = prefixes(mask)
    if variant == "prefixes":
        return mask
    if variant == "sides_even":
        return sides_even(mask)
    pop, rng = split.popularity(), np.random.default_rng(seed)
    out = {}
    for side, sizes in (("user", mask.user), ("item", mask.item)):
        ordered = np.sort(sizes.astype(np.int64))[::-1]  # largest first
        if variant == "popularity":
            order = np.argsort(-pop[side], kind="stable")  # most frequent first
        else:
            order = rng.permutation(len(sizes))
        new = np.empty_like(ordered)
        new[order] = ordered
        out[side] = new
    return sizes_mask(out["user"], out["item"], **{**mask.meta, "rearranged": variant})


def prefixes(mask: Mask) -> Mask:
    """A one-matrix elements mask as a sizes mask: each entity keeps as many dimensions as it
    kept entries, as a prefix (parameters kept exactly)."""
    return sizes_mask(mask.row_nnz("user"), mask.row_nnz("item"),
                      **{**mask.meta, "rearranged": "prefixes"})


def sides_even(mask: Mask) -> Mask:
    """Every entity of a side at the side's mean size (its total kept exactly: the remainder
    as one more dimension for the first entities): what a search's user/item split alone is
    worth, without the spread of sizes within a side."""
    out = {}
    for side, sizes in (("user", mask.user), ("item", mask.item)):
        total, n = int(sizes.astype(np.int64).sum()), len(sizes)
        out[side] = np.full(n, total // n) + (np.arange(n) < total % n)
    return sizes_mask(out["user"], out["item"], **{**mask.meta, "rearranged": "sides_even"})


def tables_even(mask: Mask) -> Mask:
    """The same number of entries per entity, as equal prefixes of each of its tables
    (remainders to the first tables): does it matter *which* table a search gave them to? A
    NeuMF PEP mask keeps GMF entries and prunes the MLP tables (docs/baselines.md §4, "PEP on
    NeuMF")."""
    if not mask.per_table:
        raise ValueError(f"variant 'tables_even' needs a per-table elements mask, got {mask.kind}"
                         f"{'' if mask.kind != 'elements' else ' with one matrix for all tables'}")
    out = {}
    for side, m in (("user", mask.user), ("item", mask.item)):
        n_tables, total = m.shape[0], m.sum(axis=(0, 2))
        per = np.stack([(total + n_tables - 1 - k) // n_tables for k in range(n_tables)])
        out[side] = np.arange(m.shape[2])[None, None, :] < per[:, :, None]
    return elements_mask(out["user"], out["item"], **{**mask.meta, "rearranged": "tables_even"})


def symmetric_scores(split: SplitData, model_name: str, mask: Mask, seed: int,
                     settings: TrainSettings, tag: str = "",
                     model_options: dict | None = None) -> dict:
    """Train on train (early stopping on validation); validation scored with the test items
    excluded, test with the validation items excluded. ``model_options`` override the model's
    defaults (``ciess/models/defaults/<model>.yaml``), as ``model_overrides`` do in a profile."""
    device = resolve_device(settings.device)
    model = initial_model(model_name, split, split.train, mask, seed, device,
                          model_overrides=model_options)
    outcome = train_model(model, split, settings, seed, tag=tag)
    kw = dict(batch_users=settings.eval_batch_users, device=device)
    valid = evaluate(model, split.train, split.valid, [split.test], **kw).means
    test = evaluate(model, split.train, split.test, [split.valid], **kw).means
    row = {"best_step": outcome.best_step, "steps": outcome.steps,
           "sparsity": account(mask, model.n_tables)["sparsity"],
           "train_s": round(outcome.seconds_train, 1)}
    for m in REPORTED:
        row[f"valid_{m}"], row[f"test_{m}"] = valid[m], test[m]
    row["gap_avg_pct"] = 100 * (valid["avg"] - test["avg"]) / test["avg"]
    return row


def parse_model_options(items: list[str], model_name: str) -> dict:
    """``KEY=VALUE`` strings as a dict, each value read as YAML (``0.1`` a float, ``authors`` a
    string); a malformed item or a key that is not a parameter of the model is refused by name."""
    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--model-option {item!r}: expected KEY=VALUE")
        options[key] = yaml.safe_load(value)
    known = model_spec(model_name).defaults
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise SystemExit(f"--model-option {unknown}: not a parameter of model {model_name!r} "
                         f"(its defaults: {sorted(known)})")
    return options


def profile_config(profile: Path | None) -> dict:
    """The embedded default with ``profile`` (an overlay, relative to the working directory)."""
    return load_profile(*([profile] if profile else []), root=Path.cwd())


def train_settings(config: dict, model: str) -> TrainSettings:
    """What a run of ``model`` trains with under ``config``: its `train:` block and the model's
    `train_overrides:` entry (NGCF's longer cap in the reference profile), as the workflow's
    training jobs get it."""
    return TrainSettings.from_config({**model_train_block(config, model), "device": "cpu"})


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("manifest", type=Path)
    p.add_argument("out", type=Path, help="CSV, appended row by row")
    p.add_argument("--mask", action="append", required=True, metavar="LABEL=PATH")
    p.add_argument("--variants", nargs="+", default=["as_is"], choices=VARIANTS)
    p.add_argument("--model", default="lightgcn")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--profile", type=Path,
                   help="overlay profile whose train: block and the model's train_overrides and "
                        "model_overrides entries apply, as in the workflow")
    p.add_argument("--model-option", action="append", default=[], metavar="KEY=VALUE",
                   help="override a model default or the profile's entry (e.g. "
                        "propagation=authors for NGCF); every row records the options the model "
                        "was built with in model_options")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cli_options = parse_model_options(args.model_option, args.model)  # refused before loading
    config = profile_config(args.profile)
    # the profile's model_overrides entry, as the workflow builds the model; --model-option over it
    model_options = {**model_overrides_block(config, args.model), **cli_options}
    options_text = yaml.safe_dump(model_options, default_flow_style=True).strip()
    split = load_split(args.manifest)
    settings = train_settings(config, args.model)
    masks = dict(item.split("=", 1) for item in args.mask)
    done = pd.read_csv(args.out) if args.out.exists() else pd.DataFrame()
    # a row counts as done only for the same model and model options (rows written before these
    # columns existed read NaN there and match nothing: trained again, not silently reused)
    keys = done.reindex(columns=["label", "variant", "model", "model_options"])
    have = set(keys.itertuples(index=False, name=None))
    jobs = [(label, path, v) for label, path in masks.items() for v in args.variants
            if (label, v, args.model, options_text) not in have]
    progress = Progress(len(jobs))
    for k, (label, path, variant) in enumerate(jobs, 1):
        mask = rearranged(load_mask(path, split.n_users, split.n_items), variant, split, args.seed)
        row = {"label": label, "variant": variant, "mask_file": str(path), "seed": args.seed,
               "model": args.model, "model_options": options_text,
               **symmetric_scores(split, args.model, mask, args.seed, settings,
                                  tag=f"[{label} {variant}] ", model_options=model_options)}
        done = pd.concat([done, pd.DataFrame([row])], ignore_index=True)
        with atomic_path(args.out) as tmp:
            done.to_csv(tmp, index=False)
        progress.advance()
        log.info("%s %s: valid AVG %.5f, test AVG %.5f, gap %+.2f%% (%d/%d, %.0fs, ETA %s)",
                 label, variant, row["valid_avg"], row["test_avg"], row["gap_avg_pct"], k,
                 len(jobs), progress.elapsed_s, progress.eta())
    return 0


if __name__ == "__main__":
    sys.exit(main())
