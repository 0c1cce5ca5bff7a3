# Config: schema validation, the checks a schema cannot express, method selection, wildcards.
from snakemake.utils import validate


validate(config, schema="../schemas/config.schema.yaml")
if "active_methods" in config:  # an override cannot delete `methods:` blocks: select them here
    _unknown = sorted(set(config["active_methods"]) - set(config["methods"]))
    if _unknown:
        raise ValueError(
            f"config active_methods: {_unknown} not among methods {sorted(config['methods'])}"
        )
    config["methods"] = {m: config["methods"][m] for m in config["active_methods"]}


def _check_config():
    import yaml

    from baselines import method_params
    from ciess.config_checks import check_config
    from ciess.models import model_defaults

    with open(workflow.source_path("../schemas/config.schema.yaml")) as fh:
        schema = yaml.safe_load(fh)
    check_config(config, schema, model_defaults, method_params)


_check_config()
from ciess.models import gmf_dense

if "neumf" in config["models"] and gmf_dense("neumf", config["model_overrides"].get("neumf")):
    from baselines import DENSE_GMF_METHODS

    _unsupported = sorted(set(config["methods"]) - set(DENSE_GMF_METHODS))
    if _unsupported:
        raise ValueError(
            f"model_overrides.neumf.mask_gmf: false is implemented by CIESS and "
            f"{list(DENSE_GMF_METHODS)} only, not by {_unsupported}: drop those methods "
            f"(active_methods) or keep mask_gmf: true"
        )

SEARCH_RE = r"(g|u|ou|none)-(rw|norw)-lam[0-9.]+"


wildcard_constraints:
    dataset="|".join(config["datasets"]),
    model="|".join(config["models"]),
    seed=r"\d+",
    budget=r"c\d+|native|cand",
    method=r"[a-z][a-z0-9_.\-]*",
    search=SEARCH_RE,
    pool=r"all|ep\d+-\d+",
    episode=r"\d+",
    iteration=r"\d+",
