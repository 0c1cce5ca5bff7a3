"""Where a run's method was run with other settings than the paper profile's (config/config.yaml,
the paper's protocol), so that a table labels a reduced row instead of passing it off as the
paper's setting (e.g. CIESS searched 20 episodes on 2 CPU cores, the paper 30).

Compared: a CIESS result's search length (episodes, iterations, per-iteration training budget)
against the paper profile's `ciess:` block under the same recipe, and a baseline's `params`
against the paper profile's entry of that method. Training settings (`train:`) are the same for
every method of a profile and are named in each snapshot's provenance, not here.
"""
from __future__ import annotations

from ciess.labels import CANDIDATE_LABEL, DEFAULT_RECIPE
from ciess.profiles import FULL_PROFILE, REPO, read_yaml
from ciess.report.records import chosen_candidate_path
from ciess.search.recipes import recipe_config


def paper_profile() -> dict:
    """config/config.yaml alone: the paper's protocol (not merged with quick.yaml)."""
    return read_yaml(REPO / FULL_PROFILE)


def _leaves(value, prefix: str = "") -> dict:
    if isinstance(value, dict):
        out = {}
        for key, inner in value.items():
            out.update(_leaves(inner, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: value}


def _differences(ours: dict, paper: dict) -> list[str]:
    ours, paper = _leaves(ours), _leaves(paper)
    return [f"{key} {ours[key]} (paper profile {paper[key]})"
            for key in sorted(set(ours) & set(paper)) if ours[key] != paper[key]]


def settings_gap(record: dict, paper: dict) -> list[str]:
    """The settings of ``record``'s method that differ from ``paper`` (``paper_profile()``), as
    "episodes 20 (paper profile 30)"; empty when they agree or the paper profile has no such
    method (a plugin, Full, a candidate)."""
    settings = record.get("method_settings") or {}
    variant = record.get("variant") or {}
    if variant and "search" in settings:  # a CIESS result: its search's length
        recipe = variant.get("recipe", DEFAULT_RECIPE)
        try:
            ciess = recipe_config(paper["ciess"], None if recipe == DEFAULT_RECIPE else recipe)
        except ValueError:  # a recipe the paper profile does not define
            return []
        search = settings["search"]
        ours = {"episodes": search.get("episodes"), "iterations": search.get("iterations"),
                "budget": settings.get("budget")}
        return _differences(ours, {k: ciess.get(k) for k in ours})
    method = record.get("method")
    if method in paper.get("methods", {}) and "params" in settings:
        return _differences(settings["params"], paper["methods"][method].get("params", {}))
    return []


def gap_lines(records: dict, paper: dict) -> list[str]:
    """One line per (method label, differences) over ``records`` (path -> record) that differ
    from the paper profile: what a table prints under its rows. A CIESS selection written
    without its settings is read through the candidate it chose."""
    seen: dict[tuple[str, tuple[str, ...]], set] = {}
    for path, rec in records.items():
        source = rec
        if not rec.get("method_settings") and rec.get("candidate_method"):
            candidate = chosen_candidate_path(path, rec)
            source = {**rec, "method_settings": records.get(candidate, {}).get("method_settings")}
        gap = settings_gap(source, paper)
        if gap and rec.get("method_label") != CANDIDATE_LABEL:
            seen.setdefault((rec.get("method_label", rec.get("method")), tuple(gap)), set()).add(
                rec.get("budget"))
    return [f"- {label} ({', '.join(sorted(b for b in budgets if b))}): {'; '.join(gap)}"
            for (label, gap), budgets in sorted(seen.items())]
