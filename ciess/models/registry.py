"""The base-model registry: one ``ModelSpec`` per model, and ``build_model``.

Every per-model fact lives in the model's spec, and every module asks the registry for it:
the class, its hyper-parameter defaults, the number of (user, item) table pairs, how tables and
figures name it, the settings the suite adds to the model's own, which RecBole class it is
compared with, and whether its first table pair stays dense (NeuMF's `mask_gmf: false`).
The built-in specs are declared here, with their classes named by import path, so asking for a
label or a table count imports neither torch nor RecBole. A model of your own registers itself
when its module is imported (``register_model``), which the config key ``plugins`` arranges in
the DAG and in every job (docs/adding_a_model.md).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ciess.masks import Mask

DEFAULTS_DIR = Path(__file__).parent / "defaults"


def defaults_file(name: str, folder: Path = DEFAULTS_DIR) -> dict:
    """A model's hyper-parameter defaults from ``<folder>/<name>.yaml``."""
    return yaml.safe_load((folder / f"{name}.yaml").read_text())


@dataclass(frozen=True)
class ModelSpec:
    """Everything the suite needs to know about one base model."""

    name: str  # config and path name, e.g. "lightgcn"
    label: str  # how tables and figures name it, e.g. "LightGCN"
    cls: type | str  # a MaskableMixin class, or its "module:Class" path (imported when needed)
    defaults: dict  # hyper-parameters (RecBole's keys); config `model_overrides.<name>` updates them
    n_tables: int = 1  # (user, item) table pairs the masks and the parameter account count
    recbole_class: str | None = None  # the stock RecBole class it is benchmarked against
    suite_settings: dict = field(default_factory=dict)  # settings the suite adds, with defaults
    # A boolean setting that, set false, keeps the first table pair dense at the widest size
    # (NeuMF's `mask_gmf`, the official code's option); None: every table follows the mask.
    dense_first_pair_unless: str | None = None

    def model_class(self) -> type:
        if isinstance(self.cls, str):
            module, name = self.cls.split(":")
            return getattr(importlib.import_module(module), name)
        return self.cls

    def gmf_dense(self, params: dict) -> bool:
        switch = self.dense_first_pair_unless
        return switch is not None and not params.get(switch, True)

    def params(self, overrides: dict | None = None) -> dict:
        return {**self.defaults, **(overrides or {})}


MODELS: dict[str, ModelSpec] = {}


def check_model_class(spec: ModelSpec, cls: type) -> None:
    """What a registered class must provide (docs/adding_a_model.md)."""
    for method in ("mask_tables", "score_users", "score_pairs", "calculate_loss", "apply_mask",
                   "narrow_to_mask"):
        if not callable(getattr(cls, method, None)):
            raise TypeError(f"model '{spec.name}': {cls.__name__} lacks {method}(); derive it "
                            "from ciess.models.maskable.MaskableMixin and the RecBole model")
    if getattr(cls, "n_tables", 1) != spec.n_tables:
        raise ValueError(f"model '{spec.name}': the spec counts {spec.n_tables} table pair(s), "
                         f"{cls.__name__}.n_tables is {cls.n_tables}")


def register_model(spec: ModelSpec) -> ModelSpec:
    if not isinstance(spec.cls, str):
        check_model_class(spec, spec.cls)
    known = MODELS.get(spec.name)
    if known is not None and known.cls is not spec.cls:
        raise ValueError(f"model '{spec.name}' is registered twice")
    MODELS[spec.name] = spec
    return spec


for _spec in (
    ModelSpec("lightgcn", "LightGCN", "ciess.models.graph:MaskedLightGCN",
              defaults_file("lightgcn"), recbole_class="LightGCN"),
    ModelSpec("ngcf", "NGCF", "ciess.models.graph:MaskedNGCF", defaults_file("ngcf"),
              recbole_class="NGCF"),
    ModelSpec("neumf", "NeuMF", "ciess.models.neumf:MaskedNeuMF", defaults_file("neumf"),
              n_tables=2, recbole_class="NeuMF", suite_settings={"mask_gmf": True},
              dense_first_pair_unless="mask_gmf"),
):
    register_model(_spec)


def import_plugins(modules) -> None:
    """Import the config's `plugins` modules (their imports register models and methods)."""
    for module in modules or ():
        importlib.import_module(module)


def model_spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise KeyError(f"no base model '{name}' is registered (known: {sorted(MODELS)}); a model "
                       "of your own is named in the config's `plugins` (docs/adding_a_model.md)")
    return MODELS[name]


def model_defaults(name: str) -> dict:
    return dict(model_spec(name).defaults)


def gmf_dense(model_name: str, overrides: dict | None) -> bool:
    """Whether the model keeps its first table pair dense under these overrides."""
    spec = model_spec(model_name)
    return spec.gmf_dense(spec.params(overrides))


def model_config(name: str, overrides: dict | None = None, device: str = "cpu"):
    """(resolved hyper-parameters, the mapping RecBole's constructors read) for model ``name``."""
    import torch

    from ciess.models.maskable import RecBoleConfig

    params = model_spec(name).params(overrides)
    return params, RecBoleConfig(params, USER_ID_FIELD="user_id", ITEM_ID_FIELD="item_id",
                                 NEG_PREFIX="neg_", LABEL_FIELD="label",
                                 device=torch.device(device))


def build_model(name: str, n_users: int, n_items: int, train,
                overrides: dict | None = None, device: str = "cpu",
                mask: Mask | None = None, narrow: bool = False):
    """The model with its mask applied. ``narrow``: compute with only the columns the mask uses
    (``MaskableMixin.narrow_to_mask``; the same function, faster). Leave it off for methods that
    grow sizes during their own search (ESAPN) or re-parametrize the full tables (PEP, OptEmb)."""
    from ciess.models.maskable import SplitAdapter

    spec = model_spec(name)
    cls = spec.model_class()
    check_model_class(spec, cls)
    params, cfg = model_config(name, overrides, device)
    model = cls(cfg, SplitAdapter(n_users, n_items, train)).to(device)
    model.hparams = params
    model.apply_mask(mask, gmf_common_prefix=spec.gmf_dense(params))
    if narrow and mask is not None:
        model.narrow_to_mask()
    return model
