"""The initial embedding tables of a rewinding method (PEP, OptEmb): ``init_state.pt``.

A rewinding method's search starts from the model built full-size right after
``seed_everything(seed)``; it saves that model's embedding tables, and its retrainings rewind the
tables to them (``ciess.train.initial_model``). The tables are therefore a function of the split's
sizes, the model, its overrides and the seed alone: reference snapshots leave the file out (5 MB a
model on MovieLens-1M), and this module's command rebuilds it, checking it against a kept copy
when there is one::

    python -m ciess.init_state results/data/ml-1m/split/manifest.json lightgcn 0 \\
        results/masks/ml-1m/lightgcn/optemb/seed0/init_state.pt [--profile config/reference.yaml]
        [--same-as OTHER_INIT_STATE]
"""
from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import torch

from ciess.io import atomic_path


def search_start(model_name: str, split, seed: int, device: str,
                 model_overrides: dict | None = None) -> tuple[torch.nn.Module, dict]:
    """The model a rewinding search starts from, and its embedding tables ({name: nn.Embedding},
    user/item, x GMF/MLP for NeuMF): what ``init_state.pt`` holds. ``build_model`` draws the
    weights on the CPU before moving them to ``device``, so they do not depend on the device."""
    from ciess.models import build_model, embedding_tables
    from ciess.train import seed_everything

    seed_everything(seed)
    model = build_model(model_name, split.n_users, split.n_items, split.train,
                        model_overrides or {}, device)
    return model, embedding_tables(model)


def table_values(tables: dict) -> dict:
    """{name: weight tensor on the CPU} from {name: nn.Embedding or tensor}."""
    return {k: (t.weight if hasattr(t, "weight") else t).detach().cpu() for k, t in tables.items()}


def save_tables(tables: dict, path: str | Path) -> None:
    """Write the tables' weights (on the CPU) to ``path``, whole or not at all."""
    with atomic_path(path) as tmp:
        torch.save(table_values(tables), tmp)


def load_tables(path: str | Path) -> dict:
    """Saved initial embedding tables; errors name the file."""
    try:
        return torch.load(path, weights_only=True)
    except Exception as exc:  # torch raises RuntimeError, EOFError, UnpicklingError, ...
        raise ValueError(f"{path}: not a readable tables file ({type(exc).__name__}: {exc})") \
            from exc


def tables_sha256(tables: dict) -> str:
    """A checksum of the tables' names, shapes, dtypes and values, not of the file: torch.save
    stores the name it was written under, so two files of equal tables differ byte for byte."""
    digest = hashlib.sha256()
    for name in sorted(tables):
        t = tables[name].detach().cpu().contiguous()
        digest.update(f"{name} {tuple(t.shape)} {t.dtype}\n".encode())
        digest.update(t.numpy().tobytes())
    return digest.hexdigest()


def differences(a: dict, b: dict) -> list[str]:
    """What differs between two saved table sets (names, shapes, values); empty when identical."""
    if set(a) != set(b):
        return [f"tables {sorted(a)} vs {sorted(b)}"]
    out = []
    for name in sorted(a):
        if a[name].shape != b[name].shape:
            out.append(f"{name}: shape {tuple(a[name].shape)} vs {tuple(b[name].shape)}")
        elif not torch.equal(a[name], b[name]):
            diff = (a[name] - b[name]).abs().max().item()
            out.append(f"{name}: values differ (max |diff| {diff:.3g})")
    return out


def main(argv=None) -> int:
    from ciess.data.read_split import load_split
    from ciess.profiles import load_profile, model_overrides_block

    p = argparse.ArgumentParser(description="Rebuild a rewinding method's init_state.pt.")
    p.add_argument("manifest", help="the split's manifest.json")
    p.add_argument("model", help="a registered base model: lightgcn, ngcf, neumf")
    p.add_argument("seed", type=int)
    p.add_argument("out", help="where to write init_state.pt")
    p.add_argument("--profile", action="append", default=[],
                   help="profile overlay(s) whose model_overrides apply (as --configfile)")
    p.add_argument("--same-as", help="a kept init_state.pt that the rebuilt one must equal")
    args = p.parse_args(argv)
    split = load_split(args.manifest)
    overrides = model_overrides_block(load_profile(*args.profile), args.model)
    _, tables = search_start(args.model, split, args.seed, "cpu", overrides)
    rebuilt = table_values(tables)
    if args.same_as:
        if diff := differences(rebuilt, load_tables(args.same_as)):
            print(f"rebuilt tables differ from {args.same_as}: " + "; ".join(diff), file=sys.stderr)
            return 1
        print(f"rebuilt tables equal {args.same_as}")
    save_tables(rebuilt, args.out)
    print(f"wrote {args.out}: " + ", ".join(f"{k} {tuple(v.shape)}" for k, v in rebuilt.items())
          + f"; tables sha256 {tables_sha256(rebuilt)} (a record's init_state_sha256)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
