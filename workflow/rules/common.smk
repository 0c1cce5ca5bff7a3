# Python side of the workflow: config validation, wildcard constraints, input functions.
from snakemake.utils import validate

from ciess.search.selection import episode_intervals

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


def budget_label(budget):
    """Config budget (80 or "native") -> path label (c80 or native)."""
    return "native" if budget == "native" else f"c{int(budget)}"


def target_pct(label):
    return None if label in ("native", "cand") else int(label[1:])


def split_outputs(dataset):
    return [
        f"results/data/{dataset}/split/{dataset}.{part}.inter"
        for part in ("train", "valid", "test")
    ] + [f"results/data/{dataset}/split/manifest.json"]


def split_files(wildcards):
    """The three split files: declared inputs of every rule that reads the split, so an edited
    file reruns its consumers (load_split also checks them against the manifest)."""
    return split_outputs(wildcards.dataset)[:3]


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


def method_inputs(method):
    """Input function of make_masks_<method>: the split, and the full model if asked for."""

    def inputs(wildcards):
        spec = config["methods"][method]
        out = {
            "manifest": f"results/data/{wildcards.dataset}/split/manifest.json",
            "split_files": split_files(wildcards),
        }
        if spec.get("needs_full_model", False):
            out["full_metrics"] = full_run(
                wildcards.dataset, wildcards.model, wildcards.seed
            )
        return out

    return inputs


def method_outputs(method):
    """Outputs of make_masks_<method>: one mask per budget (+ the initial tables to rewind to)."""
    spec = config["methods"][method]
    out = {
        "masks": [
            f"results/masks/{{dataset}}/{{model}}/{method}/{budget_label(b)}/seed{{seed}}/mask.npz"
            for b in spec["budgets"]
        ]
    }
    if spec.get("rewind", False):
        out["init_state"] = init_state_path(method)
    return out


def init_state_path(method):
    return f"results/masks/{{dataset}}/{{model}}/{method}/seed{{seed}}/init_state.pt"


def retrain_inputs(wildcards):
    """retrain_masked reads the split, the mask, and for rewinding methods the initial tables."""
    out = {
        "manifest": f"results/data/{wildcards.dataset}/split/manifest.json",
        "split_files": split_files(wildcards),
        "mask": f"results/masks/{wildcards.dataset}/{wildcards.model}/{wildcards.method}/{wildcards.budget}/seed{wildcards.seed}/mask.npz",
    }
    spec = config["methods"].get(wildcards.method, {})
    if spec.get("rewind", False):
        out["init_state"] = init_state_path(wildcards.method).format(**wildcards)
    return out


def all_metric_files():
    """Every metrics JSON the profile produces: Full, every method, every CIESS selection."""
    out = [
        full_run(d, m, s)
        for d in config["datasets"]
        for m in config["models"]
        for s in config["seeds"]
    ]
    out += [
        f"results/runs/{d}/{m}/{meth}/{b}/seed{s}/metrics.json"
        for d, m, meth, b, s in method_runs()
    ]
    return out + ciess_results()


def get_final_output():
    out = ["results/tables/results.csv"]
    out += [f"results/notebooks/{name}.html" for name in NOTEBOOKS]
    for dataset in config["datasets"]:
        out += split_outputs(dataset)
        for model in config["models"]:
            out += [full_run(dataset, model, seed) for seed in config["seeds"]]
    out += [
        f"results/runs/{d}/{m}/{meth}/{b}/seed{s}/metrics.json"
        for d, m, meth, b, s in method_runs()
    ]
    return out + ciess_results()


# ---------------------------------------------------------------------------- CIESS studies
NOISE_CODE = {"gaussian": "g", "uniform": "u", "ou": "ou", "none": "none"}
CODE_NOISE = {code: noise for noise, code in NOISE_CODE.items()}


def search_label(noise, random_walk, lam):
    """(gaussian, True, 0.4) -> g-rw-lam0.4: the CIESS variant in every path."""
    return f"{NOISE_CODE[noise]}-{'rw' if random_walk else 'norw'}-lam{float(lam):g}"


def parse_search(label):
    code, walk, lam = label.split("-")
    return CODE_NOISE[code], walk == "rw", float(lam[3:])


def ciess_seeds():
    """Seeds of the CIESS searches: `ciess.seeds` (searches cost the most), else the profile's."""
    return config["ciess"].get("seeds", config["seeds"])


def default_search(dataset):
    return search_label("gaussian", True, config["ciess"]["lambda"][dataset])


def ciess_searches():
    """(dataset, model, search label) of every search: Table 1, Table 2, Figure 4."""
    studies, out = config["ciess"]["studies"], []
    for dataset in config["datasets"]:
        lam = config["ciess"]["lambda"][dataset]
        for model in studies["main_models"]:
            out.append((dataset, model, default_search(dataset)))
        for model in studies["ablation_models"]:
            for v in studies["ablation_variants"]:
                out.append(
                    (dataset, model, search_label(v["noise"], v["random_walk"], lam))
                )
        for model in studies["lambda_models"]:
            for grid_lam in studies["lambda_grid"][dataset]:
                out.append((dataset, model, search_label("gaussian", True, grid_lam)))
    return [s for s in dict.fromkeys(out) if s[1] in config["models"]]


def interval_pools():
    """Figure 5's episode pools as path labels, e.g. ep1-6 (ciess.search.selection)."""
    sel = config["ciess"]["selection"]
    intervals = episode_intervals(
        config["ciess"]["episodes"],
        sel["episode_intervals"],
        sel["cumulative_intervals"],
    )
    return [f"ep{first}-{last}" for first, last in intervals]


def ciess_method(search, pool):
    return f"ciess-{search}" if pool == "all" else f"ciess-{search}-{pool}"


def ciess_results():
    """Selected-mask metrics of every search at every budget, and Figure 5's interval pools."""
    out = []
    budgets = [budget_label(b) for b in config["ciess"]["selection"]["budgets"]]
    for dataset, model, search in ciess_searches():
        pools = ["all"]
        if model in config["ciess"]["studies"][
            "interval_models"
        ] and search == default_search(dataset):
            pools += interval_pools()
        for pool in pools:
            for b in budgets:
                for seed in ciess_seeds():
                    out.append(
                        f"results/runs/{dataset}/{model}/{ciess_method(search, pool)}/{b}/seed{seed}/metrics.json"
                    )
    return out


def main_searches():
    """Table 1's default searches (G + walk, the dataset's lambda) with what their notebook reads:
    the search log, the executed masks, the split (for popularity) and the per-budget selection."""
    out = []
    for dataset, model, search in ciess_searches():
        if model not in config["ciess"]["studies"]["main_models"]:
            continue
        if search != default_search(dataset):
            continue
        for seed in ciess_seeds():
            base = f"results/search/{dataset}/{model}/ciess-{search}/seed{seed}"
            out.append({
                "dataset": dataset, "model": model, "search": search, "seed": seed,
                "log": f"{base}/search_log.csv", "masks": f"{base}/masks.npz",
                "manifest": f"results/data/{dataset}/split/manifest.json",
                "selections": [
                    f"results/runs/{dataset}/{model}/ciess-{search}/{budget_label(b)}/seed{seed}/selection.csv"
                    for b in config["ciess"]["selection"]["budgets"]
                ],
            })
    return out


def main_search_inputs():
    return [
        path
        for s in main_searches()
        for path in (s["log"], s["masks"], s["manifest"], *s["selections"])
    ]


def allow_not_reached(wildcards):
    """Table 1's default search must reach every budget (fail loudly); the ablation, lambda
    grid and episode intervals record an unreached budget as a gap."""
    main = (
        wildcards.model in config["ciess"]["studies"]["main_models"]
        and wildcards.search == default_search(wildcards.dataset)
        and wildcards.pool == "all"
    )
    return not main


def candidate_metrics(wildcards):
    """The retrained candidates of one (search, pool, budget): known once candidates exist."""
    pool = wildcards.get("pool", "all")
    cands = checkpoints.ciess_candidates.get(
        dataset=wildcards.dataset,
        model=wildcards.model,
        search=wildcards.search,
        seed=wildcards.seed,
        pool=pool,
        budget=wildcards.budget,
    ).output.candidates
    import pandas as pd

    # Candidates are named by (episode, iteration), not by budget: a mask that is a candidate
    # for several budgets or episode pools is retrained once.
    rows = pd.read_csv(cands)
    return [
        f"results/runs/{wildcards.dataset}/{wildcards.model}/ciess-{wildcards.search}-e{e}i{i}/cand/seed{wildcards.seed}/metrics.json"
        for e, i in zip(rows["episode"], rows["iteration"])
    ]


# ---------------------------------------------------------------------------- diagnostics
def size_response_budgets():
    """The CIESS search's per-iteration budget, the profile's extra budgets, and convergence."""
    sr = config["size_response"]
    return [config["ciess"]["budget"], *sr["extra_budgets"], "converged"]


def size_response_tables():
    """One table per dataset and size_response model of this profile, first seed only."""
    models = [m for m in config["size_response"]["models"] if m in config["models"]]
    return [
        f"results/diagnostics/size_response/{d}/{m}/seed{config['seeds'][0]}.csv"
        for d in config["datasets"]
        for m in models
    ]


# ---------------------------------------------------------------------------- notebooks
def fig3_logs():
    """Figure 3: LightGCN, noise G, with and without the walk, default lambda, every seed."""
    if "lightgcn" not in config["models"]:
        return []
    logs = []
    for dataset in config["datasets"]:
        lam = config["ciess"]["lambda"][dataset]
        for search in (
            search_label("gaussian", True, lam),
            search_label("gaussian", False, lam),
        ):
            if (dataset, "lightgcn", search) in ciess_searches():
                logs += [
                    f"results/search/{dataset}/lightgcn/ciess-{search}/seed{s}/search_log.csv"
                    for s in ciess_seeds()
                ]
    return logs


def repo_path(relative):
    """A file of this repository, relative to the working directory (the repository root in
    normal use): paths in params and inputs then survive moving or copying the clone."""
    import os

    return os.path.relpath(os.path.join(workflow.basedir, relative))


def reference_snapshots():
    """Shipped reference snapshots (results/reference/<name>/ in the repository)."""
    from pathlib import Path

    root = Path(workflow.basedir) / "results" / "reference"
    return sorted(
        repo_path(p.parent.relative_to(workflow.basedir))
        for p in root.glob("*/provenance.json")
    )


def reference_inputs():
    from pathlib import Path

    out = []
    for snap in reference_snapshots():
        out.append(f"{snap}/provenance.json")
        out += sorted(str(p) for p in Path(snap).rglob("runs/**/metrics.json"))
    return out


PAPER_CSV = repo_path("notebooks/reference/paper_results.csv")
RESULTS_CSV = "results/tables/results.csv"
PROVENANCE_CSV = "results/tables/provenance.csv"
NOTEBOOKS = {
    "table1": {
        "inputs": lambda: ["results/tables/table1.csv", PROVENANCE_CSV, PAPER_CSV]
        + reference_inputs(),
        "figures": [],
    },
    "table2": {
        "inputs": lambda: ["results/tables/table2.csv", PROVENANCE_CSV],
        "figures": [],
    },
    "fig3_random_walk": {"inputs": fig3_logs, "figures": ["png", "pdf", "csv"]},
    "fig4_lambda": {"inputs": lambda: [RESULTS_CSV], "figures": ["png", "pdf", "csv"]},
    "fig5_episodes": {"inputs": lambda: [RESULTS_CSV], "figures": ["png", "pdf", "csv"]},
    "pareto": {"inputs": lambda: [RESULTS_CSV], "figures": ["png", "pdf", "csv"]},
    "size_response": {"inputs": size_response_tables, "figures": ["png", "pdf", "csv"]},
    "ciess_search": {"inputs": main_search_inputs, "figures": ["png", "pdf", "csv"]},
    "fidelity": {
        "inputs": lambda: ["results/tables/table1.csv", PAPER_CSV] + reference_inputs(),
        "figures": ["png", "pdf", "csv"],
    },
}


def notebook_figures(name):
    out = {}
    for ext in NOTEBOOKS[name]["figures"]:
        path = f"results/figures/{name}.{ext}"
        if ext == "png":  # figures go into `snakemake --report`
            path = report(path, caption=f"../report/{name}.rst", category="Figures")
        out[f"figure_{ext}"] = path
    return out


def notebook_parameters(name, input, output):
    """The notebook's `parameters` cell values, as YAML for papermill -y."""
    import json

    p = {
        "figure_png": output.get("figure_png"),
        "data_csv": output.get("figure_csv"),
        "profile": config["profile"],
    }
    if name in ("table1", "table2"):
        p = {
            "table_csv": input.data[0],
            "provenance_csv": input.data[1],
            "profile": config["profile"],
        }
        if name == "table1":
            p["paper_csv"] = input.data[2]
            p["reference_snapshots"] = reference_snapshots()
    elif name == "fig3_random_walk":
        p["search_logs"] = list(input.data)
        p["per_episode"] = "mean"
    elif name == "fidelity":
        p["table_csv"] = input.data[0]
        p["paper_csv"] = input.data[1]
        p["reference_snapshots"] = reference_snapshots()
    elif name == "ciess_search":
        p["searches"] = main_searches()
        p["budgets"] = config["ciess"]["selection"]["budgets"]
        p["profile"] = config["profile"]
    elif name == "size_response":
        p["tables"] = list(input.data)
        p["profile"] = config["profile"]
    else:
        p["results_csv"] = input.data[0]
        p["default_lambda"] = config["ciess"]["lambda"]
        if name == "fig4_lambda":
            p["lambda_grid"] = {
                d: config["ciess"]["studies"]["lambda_grid"][d]
                for d in config["datasets"]
            }
            p["paper_best_lambda"] = {"ml-1m": 0.4, "yelp2018": 0.2}
    return json.dumps(p)
