"""Checks of the resolved workflow config that a JSON schema cannot express, run at DAG start.

Every problem is reported with its config key, all at once, before any job starts.
"""
from __future__ import annotations

import re
from pathlib import Path

from ciess.masks import D_MAX

# Old config names still accepted: (path, old name or value, new), with a deprecation message.
RENAMED_KEYS = [(("ciess", "selection"), "l", "top_l"),
                (("data",), "ml1m_drop_first_line", "drop_official_code_first_line")]
RENAMED_VALUES = [(("ciess", "reward", "memory"), "paper", "size_squared"),
                  (("ciess", "reward", "memory"), "code", "size_minus_one_squared"),
                  (("ciess", "init_quality"), "one", 1.0),
                  (("ciess", "init_quality"), "code", 0.5)]


class ConfigError(ValueError):
    """The config is invalid; the message lists every offending key."""


def schema_integers(value, schema: dict, key: str = "") -> list[str]:
    """Keys where the schema asks for an integer but the value is not a true integer (YAML
    ``5.0`` passes a JSON schema's integer type; the code would fail deep in training)."""
    problems = []
    kind = schema.get("type")
    if kind == "integer" or (isinstance(kind, list) and "integer" in kind and "number" not in kind):
        if isinstance(value, float) or isinstance(value, bool):
            problems.append(f"config {key}: must be an integer, got {value!r}")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for k, v in value.items():
            sub = props.get(k, extra if isinstance(extra, dict) else None)
            if sub:
                problems += schema_integers(v, sub, f"{key}.{k}" if key else k)
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, v in enumerate(value):
            problems += schema_integers(v, schema["items"], f"{key}[{i}]")
    return problems


def rename_deprecated(config: dict) -> list[str]:
    """Rewrite old config names in place to the current ones; returns one message per rename.
    An old key given together with its new name wins (an override file still using it)."""
    messages = []
    for path, old, new in RENAMED_KEYS:
        block = config
        for part in path:
            block = block.get(part, {}) if isinstance(block, dict) else {}
        if isinstance(block, dict) and old in block:
            block[new] = block.pop(old)
            messages.append(f"config {'.'.join(path)}.{old} is now {'.'.join(path)}.{new}")
    for path, old, new in RENAMED_VALUES:
        block = config
        for part in path[:-1]:
            block = block.get(part, {}) if isinstance(block, dict) else {}
        if isinstance(block, dict) and block.get(path[-1]) == old:
            block[path[-1]] = new
            messages.append(f"config {'.'.join(path)}: '{old}' is now written {new!r}")
    return messages


def model_override_problems(model: str, overrides: dict, defaults: dict,
                            suite_settings: dict) -> list[str]:
    problems = []
    known = set(defaults) | set(suite_settings)
    for key, value in overrides.items():
        where = f"config model_overrides.{model}.{key}"
        if key not in known:
            problems.append(f"{where}: unknown setting (known: {sorted(known)})")
            continue
        if key == "embedding_size" and value != D_MAX:
            problems.append(f"{where}: the tables' physical width is fixed at d_max = {D_MAX}; "
                            "sizes are set by masks")
            continue
        default = defaults.get(key)
        if isinstance(default, bool) or isinstance(suite_settings.get(key), bool):
            if not isinstance(value, bool):
                problems.append(f"{where}: must be true or false, got {value!r}")
        elif isinstance(default, int):
            if isinstance(value, bool) or not isinstance(value, int) or (default > 0 and value < 1):
                problems.append(f"{where}: must be an integer >= 1, got {value!r}")
        elif isinstance(default, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                problems.append(f"{where}: must be a number >= 0, got {value!r}")
        elif isinstance(default, list) and not isinstance(value, list):
            problems.append(f"{where}: must be a list like {default!r}, got {value!r}")
    return problems


SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def path_problems(config: dict, catalog: dict) -> list[str]:
    """Names that become folder names (datasets, models, methods) must be one plain path
    component, and catalog file paths must stay inside their root: a name like '../../x'
    would write outside results/."""
    problems = []
    named = [("datasets", d) for d in config["datasets"]] + \
        [("dataset catalog", d) for d in catalog] + \
        [("models", m) for m in config["models"]] + [("methods", m) for m in config["methods"]]
    for where, name in named:
        if not isinstance(name, str) or not SAFE_NAME.fullmatch(name) or ".." in name:
            problems.append(f"config {where}: '{name}' is not a safe name (letters, digits, "
                            "'.', '_', '-'; no '/', no '..'; it becomes a folder under results/)")
    for dataset, entry in catalog.items():
        for source in entry.get("sources", []):
            for rel in source.get("files", {}):
                parts = Path(rel).parts
                if Path(rel).is_absolute() or ".." in parts or not parts:
                    problems.append(f"dataset catalog entry '{dataset}': file path '{rel}' must "
                                    "be relative to its root, without '..'")
    return problems


def dataset_problems(config: dict, catalog: dict) -> list[str]:
    """Every profile dataset must be a catalog entry and have the per-dataset CIESS settings."""
    from ciess.data.preprocess import PARSERS

    problems = []
    for dataset in config["datasets"]:
        if dataset not in catalog:
            problems.append(f"config datasets: '{dataset}' is not in the dataset catalog "
                            f"{config['dataset_catalog']} (entries: {sorted(catalog)}); add it "
                            "there (docs/adding_a_dataset.md)")
        elif catalog[dataset]["parser"] not in PARSERS:
            problems.append(f"dataset catalog entry '{dataset}': unknown parser "
                            f"'{catalog[dataset]['parser']}' (known: {sorted(PARSERS)})")
        for key in ("lambda",):
            if dataset not in config["ciess"][key]:
                problems.append(f"config ciess.{key}: no value for dataset '{dataset}'")
        if config["ciess"]["studies"]["lambda_models"] and \
                dataset not in config["ciess"]["studies"]["lambda_grid"]:
            problems.append(f"config ciess.studies.lambda_grid: no grid for dataset '{dataset}' "
                            "(or empty ciess.studies.lambda_models)")
    return problems


def model_problems(config: dict, registry: dict) -> list[str]:
    """Models named anywhere in the config must be registered; their overrides known settings."""
    problems = []
    studies = config["ciess"]["studies"]
    named = [("models", m) for m in config["models"]] + \
        [(f"model_overrides.{m}", m) for m in config["model_overrides"]] + \
        [(f"train_overrides.{m}", m) for m in config.get("train_overrides", {})] + \
        [(f"ciess.studies.{k}", m) for k in ("main_models", "ablation_models", "lambda_models",
                                              "interval_models") for m in studies[k]] + \
        [("ciess.studies.recipe_models", m) for m in studies.get("recipe_models", [])] + \
        [("size_response.models", m) for m in config.get("size_response", {}).get("models", [])]
    for where, model in named:
        if model not in registry:
            problems.append(f"config {where}: no base model '{model}' is registered (known: "
                            f"{sorted(registry)}); a model of your own is named in `plugins` "
                            "(docs/adding_a_model.md)")
    for model, overrides in config["model_overrides"].items():
        if model in registry:
            spec = registry[model]
            problems += model_override_problems(model, overrides or {}, spec.defaults,
                                                spec.suite_settings)
    return problems


def check_config(config: dict, schema: dict, catalog: dict, registry: dict,
                 method_params) -> None:
    """Raise ConfigError listing every problem. ``catalog``: the merged dataset catalog;
    ``registry``: the model registry (name -> ModelSpec); ``method_params(name, params,
    module)`` comes from the method registry."""
    problems = schema_integers(config, schema)
    ratios = config["data"]["split"]["ratios"]
    if len(ratios) != 3 or abs(sum(ratios) - 1.0) > 1e-9 or min(ratios) <= 0:
        problems.append(f"config data.split.ratios: three positive numbers summing to 1, got {ratios}")
    if not config["data"].get("drop_duplicates", True):
        problems.append("config data.drop_duplicates: false would put repeated (user, item) "
                        "pairs into train and into validation/test at once (a leak: a model that "
                        "remembers train scores on test); keep it true")
    problems += path_problems(config, catalog)
    problems += dataset_problems(config, catalog)
    problems += model_problems(config, registry)
    for name, spec in config["methods"].items():
        try:
            method_params(name, spec.get("params") or {}, spec.get("module"))
        except (KeyError, ModuleNotFoundError) as exc:
            problems.append(str(exc).strip("'\""))
    if not config["ciess"]["selection"]["budgets"]:
        problems.append("config ciess.selection.budgets: empty; give at least one budget "
                        "(or run no CIESS study: empty ciess.studies lists)")
    if problems:
        raise ConfigError("invalid config:\n  - " + "\n  - ".join(problems))
