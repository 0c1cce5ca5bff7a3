"""The profiles in config/: config.yaml is the one full profile (the paper's), every other file is
an overlay of what differs. The Snakefile loads config.yaml, then quick.yaml (the embedded
default); a ``--configfile`` is applied over both. Code outside Snakemake that needs a profile's
values (benchmarks, diagnostics, tests) reads them here, merged the way Snakemake merges them."""
from __future__ import annotations

import copy
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
FULL_PROFILE = Path("config/config.yaml")
QUICK_OVERLAY = Path("config/quick.yaml")
EMBEDDED_DEFAULT = (FULL_PROFILE, QUICK_OVERLAY)  # the Snakefile's `configfile:` directives


def merged(base: dict, overlay: dict) -> dict:
    """``overlay`` over ``base``: mappings merge key by key, any other value replaces (lists too),
    as Snakemake's ``update_config``; neither argument is changed."""
    out = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def read_yaml(path: Path) -> dict:
    data = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a profile must be a mapping of keys, not {type(data).__name__}")
    return data


def load_profile(*overlays: Path | str, root: Path = REPO) -> dict:
    """The embedded default with ``overlays`` (paths relative to ``root``) applied in order, as
    ``snakemake --configfile OVERLAY...`` resolves it."""
    config: dict = {}
    for path in (*EMBEDDED_DEFAULT, *overlays):
        config = merged(config, read_yaml(root / path))
    return config


def model_train_block(config: dict, model: str | None) -> dict:
    """The `train:` block a run of ``model`` trains with: config ``train:`` with the model's
    ``train_overrides:`` entry over it (``model=None``: the block as it is). The workflow's training
    jobs and the diagnostics outside Snakemake both read a model's settings here."""
    overrides = (config.get("train_overrides") or {}).get(model, {}) if model else {}
    return {**config["train"], **overrides}


def model_overrides_block(config: dict, model: str) -> dict:
    """The model options a run of ``model`` is built with beyond its defaults: the profile's
    ``model_overrides:`` entry for it (empty where the profile names none)."""
    return dict((config.get("model_overrides") or {}).get(model) or {})
