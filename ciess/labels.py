"""How the suite names budgets, CIESS searches and method variants, and how it reads them back.

Paths carry labels (``c90``, ``ciess-g-rw-lam0.4-ep1-6``); this module is the one grammar that
builds them (the workflow) and parses them (wildcards, and records written before the fields
below existed). Every metrics JSON also carries the parsed fields themselves (``method_label``,
``variant``), so reports read fields, not labels.

* budget: ``c<pct>`` (target sparsity pct %, any integer 1-99), ``native`` (the method reports
  its own sparsity), ``cand`` (a CIESS candidate's retraining: not a result), ``dense`` (Full);
* search: ``<noise>-<rw|norw>-lam<λ>[-<recipe>]`` with noise code g (Gaussian), u (uniform), ou
  (Ornstein-Uhlenbeck), none, and the name of a search recipe (``ciess.recipes``: lower-case
  letters and underscores, no digits) when the search is not the profile's default recipe;
* pool: ``all`` or ``ep<a>-<b>`` (the candidates of episodes a..b, Figure 5);
* CIESS method: ``ciess-<search>`` or ``ciess-<search>-<pool>``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

NOISE_CODE = {"gaussian": "g", "uniform": "u", "ou": "ou", "none": "none"}
NOISE_NAME = {code: noise for noise, code in NOISE_CODE.items()}
NOISE_TABLE_LABEL = {"gaussian": "G", "uniform": "U", "ou": "OU", "none": "none"}

BUDGET_PATTERN = r"c\d+|native|cand"
RECIPE_PATTERN = r"[a-z][a-z_]*"
SEARCH_PATTERN = rf"({'|'.join(NOISE_CODE.values())})-(rw|norw)-lam([0-9.]+)(?:-({RECIPE_PATTERN}))?"
POOL_PATTERN = r"all|ep\d+-\d+"
CIESS_METHOD_RE = re.compile(rf"^ciess-(?P<search>{SEARCH_PATTERN})(?:-(?P<pool>ep\d+-\d+))?$")


def budget_label(pct: int | str | None) -> str:
    """80 -> "c80"; None or "native" -> "native"."""
    if pct is None or pct == "native":
        return "native"
    pct = int(pct)
    if not 1 <= pct <= 99:
        raise ValueError(f"a target sparsity is a whole percentage in 1..99, got {pct}")
    return f"c{pct}"


def budget_pct(label: str) -> int | None:
    """"c80" -> 80; "native", "cand", "dense" -> None."""
    if re.fullmatch(r"c\d+", label) and 1 <= int(label[1:]) <= 99:
        return int(label[1:])
    if label in ("native", "cand", "dense"):
        return None
    raise ValueError(f"unknown budget label '{label}' (c1..c99, native, cand or dense)")


def target_sparsity(label: str) -> float | None:
    pct = budget_pct(label)
    return None if pct is None else pct / 100


@dataclass(frozen=True)
class Search:
    """One CIESS search variant: exploration noise, random walk on or off, reward weight λ, and
    the recipe (``ciess.recipes``) whose settings override the profile's (None: the default)."""

    noise: str  # gaussian | uniform | ou | none
    random_walk: bool
    lam: float
    recipe: str | None = None

    @property
    def label(self) -> str:
        """(gaussian, True, 0.4) -> "g-rw-lam0.4"."""
        lam = f"{float(self.lam):g}"
        if not re.fullmatch(r"[0-9.]+", lam):
            raise ValueError(f"λ = {self.lam} has no plain decimal label ({lam}); use a value "
                             "written with digits and a point, >= 0.0001")
        if self.recipe is not None and not re.fullmatch(RECIPE_PATTERN, self.recipe):
            raise ValueError(f"recipe name '{self.recipe}' must be lower-case letters and "
                             "underscores (no digits: they would read as an episode pool)")
        base = f"{NOISE_CODE[self.noise]}-{'rw' if self.random_walk else 'norw'}-lam{lam}"
        return base if self.recipe is None else f"{base}-{self.recipe}"

    @classmethod
    def parse(cls, label: str) -> Search:
        m = re.fullmatch(SEARCH_PATTERN, label)
        if not m:
            raise ValueError(f"not a CIESS search label: '{label}' "
                             "(expected <noise>-<rw|norw>-lam<λ>[-<recipe>])")
        code, walk, lam, recipe = m.groups()
        return cls(NOISE_NAME[code], walk == "rw", float(lam), recipe)


def pool_label(first: int, last: int) -> str:
    return f"ep{first}-{last}"


def pool_episodes(pool: str) -> tuple[int, int] | None:
    """"all" -> None; "ep7-12" -> (7, 12)."""
    if pool == "all":
        return None
    m = re.fullmatch(r"ep(\d+)-(\d+)", pool)
    if not m:
        raise ValueError(f"unknown candidate pool '{pool}' (all or ep<a>-<b>)")
    return int(m.group(1)), int(m.group(2))


def ciess_method(search: Search | str, pool: str = "all") -> str:
    label = search.label if isinstance(search, Search) else search
    return f"ciess-{label}" if pool == "all" else f"ciess-{label}-{pool}"


def ciess_label(recipe: str | None, main_recipe: str | None = None) -> str:
    """The table label of a CIESS search's results by its recipe (None: the profile's own
    settings), so that no table or average mixes two recipes: "CIESS" for the profile's main
    recipe (``ciess.main_recipe``; None: its own settings, the paper's), "CIESS (paper)" for the
    profile's own settings when a recipe is the main one, "CIESS (<recipe>)" for any other."""
    if recipe == main_recipe:
        return "CIESS"
    return PAPER_SEARCH_LABEL if recipe is None else f"CIESS ({recipe})"


def selection_label(record: dict, main_recipe: str | None) -> str | None:
    """The table label a run record (metrics JSON) of a CIESS selection carries in a profile
    whose ``ciess.main_recipe`` is ``main_recipe``, read from its ``variant.recipe``; None for a
    baseline, Full, a retrained candidate or a record too old to carry a label."""
    variant = record.get("variant") or {}
    if not variant or record.get("method_label") in (None, CANDIDATE_LABEL):
        return None
    recipe = variant.get("recipe", DEFAULT_RECIPE)
    return ciess_label(None if recipe == DEFAULT_RECIPE else recipe, main_recipe)


def ciess_variant(search: Search, pool: str = "all") -> dict:
    """The fields a CIESS result carries in its metrics JSON (``variant``) and in the tables."""
    episodes = pool_episodes(pool)
    return {"noise": NOISE_TABLE_LABEL[search.noise], "random_walk": search.random_walk,
            "lambda": float(search.lam), "recipe": search.recipe or DEFAULT_RECIPE,
            "episodes": "all" if episodes is None else f"{episodes[0]}-{episodes[1]}"}


DEFAULT_RECIPE = "default"  # a search run with the profile's own ciess: settings
PAPER_SEARCH_LABEL = "CIESS (paper)"  # its label when a recipe is the profile's main CIESS
CANDIDATE_LABEL = "CIESS candidate"  # a retrained candidate: part of its search, not a result
FULL = "full"  # the dense model every budget is measured against
# How tables and figures order the method labels (the paper's Table 1 order, then this suite's
# additions before CIESS, the method under study, last).
METHOD_ORDER = ["Full", "ES", "MR", "MDE", "Sides", "PEP", "ESAPN", "OptEmb", "ESAPN-B",
                "OptEmb-B", "CIESS", PAPER_SEARCH_LABEL, "CIESS (code)", "CIESS (code_noise)",
                "CIESS (held)", "CIESS (held_short)", "CIESS (holdout)",
                "CIESS (held_holdout)"]  # + the shipped recipes (docs/ciess.md §18)
CANDIDATE_RE = re.compile(rf"^ciess-(?P<search>{SEARCH_PATTERN})-e\d+i\d+$")


def candidate_method(search: Search | str, episode: int, iteration: int) -> str:
    """The method name of a retrained CIESS candidate (episode, iteration of its search)."""
    return f"{ciess_method(search)}-e{episode}i{iteration}"


def method_label(base: str, budget: str, native_mode: bool) -> str:
    """A baseline's table label: a method with a native mode of its own (ESAPN, OptEmb) is
    marked "-B" when it runs at a target budget instead."""
    return f"{base}-B" if native_mode and budget_pct(budget) is not None else base


def parse_ciess_method(method: str) -> tuple[str, Search, str] | None:
    """A CIESS method name read by the grammar: ("selection", Search, pool), ("candidate",
    Search, "all") or None. For records written before they carried their fields
    (``ciess.report.migrate_records``); the workflow looks names up in its label tables."""
    m = CANDIDATE_RE.match(method)
    if m:
        return "candidate", Search.parse(m["search"]), "all"
    m = CIESS_METHOD_RE.match(method)
    if m:
        return "selection", Search.parse(m["search"]), m["pool"] or "all"
    return None


def describe_run(method: str, budget: str, baseline_label, ciess_run=parse_ciess_method,
                 table_pool=lambda search: "all", main_recipe: str | None = None) -> dict:
    """The fields every metrics JSON carries besides its method name, so reports read fields:
    ``method_label`` (Full, ES, ESAPN-B, CIESS, CIESS candidate), ``variant`` (CIESS: noise,
    random_walk, lambda, episodes, and ``table_row``: whether this selection is its search's
    Table 1 row; else None) and ``search`` (the CIESS search's folder name).
    ``baseline_label(method, budget)``: a registered method's table label; ``ciess_run(method)``:
    what a CIESS method name stands for (``parse_ciess_method``'s form; the workflow passes
    a look-up in its label tables); ``table_pool(search)``: the pool of a search whose
    selection is its Table 1 row (default: all episodes, the paper's; a recipe's
    ``table_episodes`` in the workflow; None: none of its selections is, e.g. Table 2's and
    Figure 4's searches); ``main_recipe``: the recipe labelled "CIESS"
    (``ciess_label``)."""
    if method == FULL:
        return {"method_label": "Full", "variant": None, "search": None}
    run = ciess_run(method)
    if run is None:
        return {"method_label": baseline_label(method, budget), "variant": None, "search": None}
    kind, search, pool = run
    if kind == "candidate":
        return {"method_label": CANDIDATE_LABEL, "search": ciess_method(search),
                "variant": {**ciess_variant(search), "episodes": None}}
    return {"method_label": ciess_label(search.recipe, main_recipe), "search": ciess_method(search),
            "variant": {**ciess_variant(search, pool), "table_row": pool == table_pool(search)}}
