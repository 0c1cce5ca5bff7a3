"""Checks of the resolved workflow config that a JSON schema cannot express, run at DAG start.

Every problem is reported with its config key, all at once, before any job starts.
"""
from __future__ import annotations

from ciess.masks import D_MAX

EXTRA_MODEL_KEYS = {"neumf": {"mask_gmf"}}  # settings the suite adds to a model's own


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


def model_override_problems(model: str, overrides: dict, defaults: dict) -> list[str]:
    problems = []
    known = set(defaults) | EXTRA_MODEL_KEYS.get(model, set())
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
        if isinstance(default, bool) or key in EXTRA_MODEL_KEYS.get(model, set()):
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


def check_config(config: dict, schema: dict, model_defaults, method_params) -> None:
    """Raise ConfigError listing every problem. ``model_defaults(name)`` and
    ``method_params(name, params, module)`` come from the model and method registries."""
    problems = schema_integers(config, schema)
    ratios = config["data"]["split"]["ratios"]
    if len(ratios) != 3 or abs(sum(ratios) - 1.0) > 1e-9 or min(ratios) <= 0:
        problems.append(f"config data.split.ratios: three positive numbers summing to 1, got {ratios}")
    for model, overrides in config["model_overrides"].items():
        problems += model_override_problems(model, overrides or {}, model_defaults(model))
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
