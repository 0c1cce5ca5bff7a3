# Config: old names, schema validation, the checks a schema cannot express, method selection,
# wildcards.
import sys

from snakemake.utils import validate

from ciess import labels
from ciess.config_checks import rename_deprecated
from ciess.profiles import model_overrides_block, model_train_block

# jsonschema registers an "iri" format check by importing rfc3987_syntax, which builds its grammar
# at import: 1.2 s of every Snakemake start-up, two of which every cluster job pays. The config
# schema uses no "iri" format.
sys.modules.setdefault("rfc3987_syntax", None)
for _message in rename_deprecated(config):
    if workflow.is_main_process:
        print(f"DEPRECATED: {_message}; please update your config", file=sys.stderr)
validate(config, schema="../schemas/config.schema.yaml")
# an override cannot delete `methods:` blocks: select them here
if "active_methods" in config:
    _unknown = sorted(set(config["active_methods"]) - set(config["methods"]))
    if _unknown:
        raise ValueError(
            f"config active_methods: {_unknown} not among methods {sorted(config['methods'])}"
        )
    config["methods"] = {m: config["methods"][m] for m in config["active_methods"]}
# likewise for CIESS search recipes (docs/ciess.md §18)
if "active_recipes" in config["ciess"]:
    _recipes = config["ciess"].get("recipes") or {}
    _unknown = sorted(set(config["ciess"]["active_recipes"]) - set(_recipes))
    if _unknown:
        raise ValueError(
            f"config ciess.active_recipes: {_unknown} not among ciess.recipes {sorted(_recipes)}"
        )
    config["ciess"]["recipes"] = {
        r: _recipes[r] for r in config["ciess"]["active_recipes"]
    }
# the recipe whose search is Table 1's CIESS (docs/ciess.md §18.5); None: the profile's own
_main_recipe = config["ciess"].get("main_recipe")
if _main_recipe is not None and _main_recipe not in (config["ciess"].get("recipes") or {}):
    raise ValueError(
        f"config ciess.main_recipe: '{_main_recipe}' is not among the recipes this profile runs "
        f"{sorted(config['ciess'].get('recipes') or {})} (ciess.recipes, ciess.active_recipes)"
    )
if "paper" in (config["ciess"].get("recipes") or {}):
    raise ValueError(
        "config ciess.recipes: 'paper' names the profile's own ciess: settings in tables "
        f"({labels.PAPER_SEARCH_LABEL}); give the recipe another name"
    )


def _check_config():
    import yaml

    from baselines import method_params
    from ciess.config_checks import check_config
    from ciess.data.fetch import load_catalog, repair_fetched_sources
    from ciess.models.registry import MODELS, import_plugins

    import_plugins(config.get("plugins"))
    if not workflow.is_main_process:
        # a job's process (cluster job, group): the main process checked this config at DAG
        # start; importing every method module again (torch, 1.3 s) would only repeat it
        return
    with open(workflow.source_path("../schemas/config.schema.yaml")) as fh:
        schema = yaml.safe_load(fh)
    catalog = load_catalog(config["dataset_catalog"])
    check_config(config, schema, catalog, MODELS, method_params)
    # a cached source truncated or removed since it was fetched is fetched again now, not left
    # for the next preprocessing to find (docs/reliability.md, 9d)
    for message in repair_fetched_sources(
        catalog, config["datasets"], "results/data", config["data"]["mirror"]
    ):
        print(f"NOTE: {message}", file=sys.stderr)


_check_config()
from ciess.models.registry import gmf_dense, model_spec

_dense_gmf_models = [
    m for m in config["models"] if gmf_dense(m, model_overrides_block(config, m))
]
if _dense_gmf_models:
    from baselines import DENSE_GMF, dense_gmf_methods

    _supported = dense_gmf_methods(config["methods"])
    _unsupported = sorted(set(config["methods"]) - set(_supported))
    if _unsupported:
        raise ValueError(
            f"model_overrides.{_dense_gmf_models[0]}."
            f"{model_spec(_dense_gmf_models[0]).dense_first_pair_unless}: false is implemented by CIESS and "
            f"{sorted(DENSE_GMF)} only, not by {_unsupported}: drop those methods "
            f"(active_methods) or keep mask_gmf: true"
        )


wildcard_constraints:
    dataset="|".join(config["datasets"]),
    model="|".join(config["models"]),
    seed=r"\d+",
    budget=labels.BUDGET_PATTERN,
    method=r"[a-z][a-z0-9_.\-]*",
    search=labels.SEARCH_PATTERN,
    pool=labels.POOL_PATTERN,
    episode=r"\d+",
    iteration=r"\d+",


def train_params(wildcards=None):
    """The shared training settings a training job receives: config `train:`, the model's
    `train_overrides:` entry (a job with a model wildcard) and the device."""
    model = getattr(wildcards, "model", None) if wildcards is not None else None
    return {**model_train_block(config, model), "device": config["device"]}
