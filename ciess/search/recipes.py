"""CIESS search recipes (docs/ciess.md §18): named sets of search settings that override the
profile's `ciess:` block for one search, so that the paper's setting, the authors' code's
choices and the suite's own variants run side by side and land in separate folders
(``ciess-g-rw-lam0.01-code``). A recipe may set the keys in RECIPE_KEYS (``seeds``: its own
search seeds, e.g. more than the default search's; ``table_episodes``: the episodes whose
candidates make its Table 1 row, §18.3); mappings (``lambda``, ``reward``, ``budget``) replace
the profile's keys they name and keep the others."""
from __future__ import annotations

import copy

RECIPE_KEYS = ("lambda", "reward", "noise_scope", "noise_position", "hold_budget", "budget",
               "init_quality", "search_holdout", "seeds", "table_episodes")


def recipe_overrides(ciess: dict, recipe: str) -> dict:
    recipes = ciess.get("recipes") or {}
    if recipe not in recipes:
        raise ValueError(f"config ciess.recipes has no recipe '{recipe}' "
                         f"(known: {sorted(recipes) or 'none'})")
    unknown = sorted(set(recipes[recipe]) - set(RECIPE_KEYS))
    if unknown:
        raise ValueError(f"config ciess.recipes.{recipe}: {unknown} cannot be set by a recipe "
                         f"(allowed: {list(RECIPE_KEYS)})")
    return recipes[recipe]


def recipe_config(ciess: dict, recipe: str | None) -> dict:
    """The `ciess:` block a search of ``recipe`` runs with (None: the profile's own)."""
    if recipe is None:
        return ciess
    out = copy.deepcopy(ciess)
    for key, value in recipe_overrides(ciess, recipe).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = copy.deepcopy(value)
    return out


def recipe_lambda(ciess: dict, recipe: str | None, dataset: str) -> float:
    """λ of a recipe's search on ``dataset``: the recipe's own, else the profile's."""
    lam = recipe_config(ciess, recipe)["lambda"]
    if dataset not in lam:
        raise ValueError(f"config ciess.lambda has no value for dataset '{dataset}'")
    return float(lam[dataset])


def table_episodes(ciess: dict, recipe: str | None) -> tuple[int, int] | None:
    """The episode range whose candidates make a search's Table 1 row: a recipe's
    ``table_episodes`` ([first, last], e.g. where a held policy has settled, §18.3), or None:
    every episode (the paper's selection, and the default search's always)."""
    if recipe is None:
        return None
    value = recipe_overrides(ciess, recipe).get("table_episodes")
    if value is None or value == "all":
        return None
    episodes = ciess["episodes"]
    if not (isinstance(value, (list, tuple)) and len(value) == 2
            and all(isinstance(v, int) for v in value) and 1 <= value[0] <= value[1] <= episodes):
        raise ValueError(f"config ciess.recipes.{recipe}.table_episodes: {value!r} is not 'all' or "
                         f"[first, last] within 1..{episodes} (ciess.episodes)")
    return int(value[0]), int(value[1])
