# Python side of the workflow: config validation, wildcard constraints, input functions.
from snakemake.utils import validate

validate(config, schema="../schemas/config.schema.yaml")


wildcard_constraints:
    dataset="|".join(config["datasets"]),
    model="|".join(config["models"]),
    seed=r"\d+",
    budget=r"c\d+|native",
    method=r"[a-z][a-z0-9_]*",


def budget_label(budget):
    """Config budget (80 or "native") -> path label (c80 or native)."""
    return "native" if budget == "native" else f"c{int(budget)}"


def target_pct(label):
    return None if label == "native" else int(label[1:])


def split_outputs(dataset):
    return [
        f"results/data/{dataset}/split/{dataset}.{part}.inter"
        for part in ("train", "valid", "test")
    ] + [f"results/data/{dataset}/split/manifest.json"]


def full_run(dataset, model, seed):
    return f"results/runs/{dataset}/{model}/full/dense/seed{seed}/metrics.json"


def method_runs():
    """Every (dataset, model, method, budget, seed) retraining the active profile asks for."""
    for dataset in config["datasets"]:
        for model in config["models"]:
            for method, spec in config["methods"].items():
                for budget in spec["budgets"]:
                    for seed in config["seeds"]:
                        yield dataset, model, method, budget_label(budget), seed


def method_inputs(wildcards):
    spec = config["methods"][wildcards.method]
    inputs = {"manifest": f"results/data/{wildcards.dataset}/split/manifest.json"}
    if spec.get("needs_full_model", False):
        inputs["full_metrics"] = full_run(
            wildcards.dataset, wildcards.model, wildcards.seed
        )
    return inputs


def get_final_output():
    out = []
    for dataset in config["datasets"]:
        out += split_outputs(dataset)
        for model in config["models"]:
            out += [full_run(dataset, model, seed) for seed in config["seeds"]]
    out += [
        f"results/runs/{d}/{m}/{meth}/{b}/seed{s}/metrics.json"
        for d, m, meth, b, s in method_runs()
    ]
    return out
