# Python side of the workflow: config validation, wildcard constraints, input functions.
from snakemake.utils import validate

validate(config, schema="../schemas/config.schema.yaml")


wildcard_constraints:
    dataset="|".join(config["datasets"]),


def split_outputs(dataset):
    return [
        f"results/data/{dataset}/split/{dataset}.{part}.inter"
        for part in ("train", "valid", "test")
    ] + [f"results/data/{dataset}/split/manifest.json"]


def get_final_output():
    out = []
    for dataset in config["datasets"]:
        out += split_outputs(dataset)
    return out
