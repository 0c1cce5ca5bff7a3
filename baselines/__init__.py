"""Embedding-size methods behind one small interface, registered by name.

A method is a function ``make_mask(ctx: MethodContext) -> Mask`` decorated with
``@register("name")``. It reads what it needs from the context (the split, the base model's name,
the target sparsity or ``None`` for its native mode, the seed, its own config) and returns a
mask in the format of ``ciess.masks``. The workflow's ``make_mask`` rule saves it; retraining
and evaluation always go through the common ``retrain_masked`` rule.
"""
from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ciess.masks import Mask
from ciess.split_data import SplitData

N_TABLES = {"lightgcn": 1, "ngcf": 1, "neumf": 2}


@dataclass
class MethodContext:
    split: SplitData
    model: str  # base model name: lightgcn | ngcf | neumf
    target_pct: int | None  # e.g. 90 for 90% sparsity; None = the method's native mode
    seed: int
    params: dict = field(default_factory=dict)  # the method's own config block
    train: dict = field(default_factory=dict)  # shared training settings (TrainSettings keys)
    model_overrides: dict = field(default_factory=dict)
    full_run_dir: Path | None = None  # the pretrained full-size model of this dataset/model/seed
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("baselines"))

    @property
    def n_tables(self) -> int:
        return N_TABLES[self.model]

    def meta(self, method: str, **extra) -> dict:
        return {"dataset": self.split.name, "model": self.model, "method": method,
                "target_sparsity": None if self.target_pct is None else self.target_pct / 100,
                "seed": self.seed, "d_max": 128, **extra}


MakeMask = Callable[[MethodContext], Mask]
REGISTRY: dict[str, MakeMask] = {}
BUILTIN_MODULES = ("baselines.es",)


def register(name: str) -> Callable[[MakeMask], MakeMask]:
    def wrap(fn: MakeMask) -> MakeMask:
        if name in REGISTRY and REGISTRY[name] is not fn:
            raise ValueError(f"method '{name}' is registered twice")
        REGISTRY[name] = fn
        return fn
    return wrap


def get_method(name: str, module: str | None = None) -> MakeMask:
    """The registered method ``name``; ``module`` is imported first (methods outside this package)."""
    for mod in (*BUILTIN_MODULES, *([module] if module else [])):
        importlib.import_module(mod)
    if name not in REGISTRY:
        raise KeyError(f"no embedding-size method '{name}' is registered (known: {sorted(REGISTRY)})")
    return REGISTRY[name]
