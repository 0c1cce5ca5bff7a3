"""config/config.yaml is the one full profile; quick.yaml (the embedded default) and the others
are overlays. What the Snakefile resolves equals ciess.profiles.load_profile, the quick overlay
only sets keys the full profile has, and the full profile given on the command line is itself."""
from __future__ import annotations

from pathlib import Path

import pytest

from ciess.labels import Search
from ciess.profiles import EMBEDDED_DEFAULT, load_profile, merged, read_yaml
from conftest import REPO


def _key_paths(tree: dict, prefix: str = "") -> set[str]:
    paths = set()
    for key, value in tree.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        paths |= _key_paths(value, path) if isinstance(value, dict) and value else {path}
    return paths


def _snakemake_config(*configfiles: str) -> dict:
    """The config Snakemake resolves for the repository's Snakefile."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

    with SnakemakeApi(OutputSettings()) as api:
        workflow = api.workflow(
            resource_settings=ResourceSettings(cores=1),
            config_settings=ConfigSettings(configfiles=[REPO / f for f in configfiles]),
            snakefile=REPO / "Snakefile", workdir=REPO)
        return dict(workflow._workflow.config)


def test_merging_follows_snakemake_mappings_merge_everything_else_replaces():
    base = {"a": {"x": 1, "y": [1, 2]}, "b": 2}
    over = {"a": {"y": [3]}, "c": {"z": 1}}
    assert merged(base, over) == {"a": {"x": 1, "y": [3]}, "b": 2, "c": {"z": 1}}
    assert base == {"a": {"x": 1, "y": [1, 2]}, "b": 2}  # unchanged


def test_the_quick_overlay_sets_only_keys_of_the_full_profile():
    full = _key_paths(read_yaml(REPO / EMBEDDED_DEFAULT[0]))
    extra = sorted(_key_paths(read_yaml(REPO / EMBEDDED_DEFAULT[1])) - full)
    assert extra == [], f"config/quick.yaml sets keys config/config.yaml lacks: {extra}"
    # and it is an overlay, not a second copy: fewer than a third of the full profile's values
    assert len(_key_paths(read_yaml(REPO / EMBEDDED_DEFAULT[1]))) < len(full) / 3


def test_the_full_profile_on_the_command_line_is_the_paper_profile_whole():
    assert load_profile("config/config.yaml") == read_yaml(REPO / "config/config.yaml")


@pytest.mark.parametrize("overlays", [(), ("config/config.yaml",), ("config/reference.yaml",),
                                      ("config/stand-ins.yaml",)])
def test_the_snakefile_resolves_what_load_profile_says(overlays):
    resolved, expected = _snakemake_config(*overlays), load_profile(*overlays)
    # the workflow keeps only the active methods and recipes (workflow/rules/config.smk)
    recipes = expected["ciess"]["recipes"]
    expected["ciess"]["recipes"] = {r: recipes[r] for r in expected["ciess"]["active_recipes"]}
    if "active_methods" in expected:
        expected["methods"] = {m: expected["methods"][m] for m in expected["active_methods"]}
    assert resolved == expected
    assert resolved["profile"] == {(): "quick", ("config/config.yaml",): "paper",
                                   ("config/reference.yaml",): "reference",
                                   ("config/stand-ins.yaml",): "quick"}[overlays]


def test_stand_in_datasets_stay_out_of_the_real_profiles():
    catalog = read_yaml(REPO / "config/datasets.yaml")
    stand_ins = {name for name, entry in catalog.items()
                 if "STAND-IN" in str(entry.get("description", ""))}
    assert stand_ins == {"yelp2018-test"}
    for profile in ("config/config.yaml", "config/quick.yaml", "config/reference.yaml"):
        text = Path(REPO / profile).read_text()
        assert not any(name in text for name in stand_ins), profile
    assert set(load_profile("config/stand-ins.yaml")["ciess"]["lambda"]) >= stand_ins


def _value(tree: dict, path: str):
    for key in path.split("."):
        if not isinstance(tree, dict) or key not in tree:
            return "<absent>"
        tree = tree[key]
    return tree


@pytest.mark.parametrize("overlays", [("config/reference.yaml",),
                                      ("config/reference.yaml", "config/reference-gpu.yaml")])
def test_a_real_data_profile_inherits_no_quick_setting_it_uses(overlays):
    """A real-data overlay is applied over config.yaml + quick.yaml (the Snakefile loads both), so
    a key it does not set keeps quick's cheap value. For every method it runs and every dataset it
    uses, such a key must be set by the overlay itself (the reference profile once ran Sides with
    quick's two ratios instead of the six in config.yaml and docs/baselines.md §8)."""
    resolved = load_profile(*overlays)
    full, quick = read_yaml(REPO / "config/config.yaml"), read_yaml(REPO / "config/quick.yaml")
    own = set().union(*(_key_paths(read_yaml(REPO / o)) for o in overlays))
    unused_methods = set(full["methods"]) - set(resolved["methods"] if "active_methods" not in
                                               resolved else resolved["active_methods"])
    unused_datasets = set(quick["datasets"]) - set(resolved["datasets"])
    inherited = []
    for path in sorted(_key_paths(quick)):
        parts = path.split(".")
        if parts[0] == "methods" and parts[1] in unused_methods:
            continue
        if unused_datasets & set(parts):
            continue
        if any(path == o or path.startswith(o + ".") for o in own):
            continue
        if _value(resolved, path) == _value(quick, path) != _value(full, path):
            inherited.append(f"{path} = {_value(quick, path)!r} (config.yaml: "
                             f"{_value(full, path)!r})")
    assert not inherited, f"{overlays} inherits quick's {inherited}"


def test_the_pages_overlay_names_only_what_the_lightgcn_snapshot_holds():
    """config/reference-pages.yaml re-renders the shipped pages from the records of
    results/reference/ml-1m-lightgcn/ (docs/reference_profile.md, "Adding runs to the shipped
    snapshot"): every method and CIESS recipe it makes active, at every seed it names, must have
    records there, or the render would plan training jobs it cannot run."""
    resolved = load_profile("config/reference.yaml", "config/reference-pages.yaml")
    snap = REPO / "results/reference/ml-1m-lightgcn"
    for dataset in resolved["datasets"]:
        for model in resolved["models"]:
            runs = snap / "runs" / dataset / model
            missing = [f"{method}/seed{seed}" for method in resolved["active_methods"]
                       for seed in resolved["seeds"]
                       if not list(runs.glob(f"{method}/*/seed{seed}/metrics.json"))]
            lam = resolved["ciess"]["lambda"][dataset]
            missing += [f"CIESS recipe {recipe}" for recipe in resolved["ciess"]["active_recipes"]
                        if not list((snap / "search" / dataset / model).glob(
                            f"ciess-{Search('gaussian', True, lam, recipe).label}/seed*/"
                            "search_log.csv"))]
            assert not missing, f"{snap} has no records for {missing}"
