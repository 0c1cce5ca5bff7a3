# Notebooks: their inputs, declared figures and papermill parameters.


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
                    for s in ciess_seeds(search)
                ]
    return logs


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

    out = [NOT_RUN_YAML] if Path(NOT_RUN_YAML).exists() else []
    for snap in reference_snapshots():
        out.append(f"{snap}/provenance.json")
        out += sorted(str(p) for p in Path(snap).rglob("runs/**/metrics.json"))
    return out


def results_params(input):
    """Parameters of the notebooks that read results.csv."""
    return {"results_csv": input.data[0], "default_lambda": config["ciess"]["lambda"]}


def reference_params(input):
    """Parameters of the notebooks that read Table 1 beside the paper and the snapshots."""
    return {
        "table_csv": input.data[0],
        "paper_csv": PAPER_CSV,
        "reference_snapshots": reference_snapshots(),
    }


# Each notebook: its inputs (papermill reads them in this order), the figure files it writes,
# and its own papermill parameters (notebook_parameters adds the profile and figure paths).
NOTEBOOKS = {
    "table1": {
        "inputs": lambda: ["results/tables/table1.csv", PROVENANCE_CSV, PAPER_CSV]
        + reference_inputs(),
        "figures": [],
        "params": lambda input: {
            **reference_params(input),
            "provenance_csv": input.data[1],
            "not_run_yaml": NOT_RUN_YAML,
        },
    },
    "table2": {
        "inputs": lambda: ["results/tables/table2.csv", PROVENANCE_CSV],
        "figures": [],
        "params": lambda input: {
            "table_csv": input.data[0],
            "provenance_csv": input.data[1],
        },
    },
    "fig3_random_walk": {
        "inputs": fig3_logs,
        "figures": ["png", "pdf", "csv"],
        "params": lambda input: {
            "search_logs": list(input.data),
            "per_episode": "mean",
        },
    },
    "fig4_lambda": {
        "inputs": lambda: [RESULTS_CSV],
        "figures": ["png", "pdf", "csv"],
        "params": lambda input: {
            **results_params(input),
            "lambda_grid": {
                d: config["ciess"]["studies"]["lambda_grid"][d]
                for d in config["datasets"]
            },
            "paper_best_lambda": {"ml-1m": 0.4, "yelp2018": 0.2},  # the paper's Fig. 4
        },
    },
    "fig5_episodes": {
        "inputs": lambda: [RESULTS_CSV],
        "figures": ["png", "pdf", "csv"],
        "params": results_params,
    },
    "pareto": {
        "inputs": lambda: [RESULTS_CSV],
        "figures": ["png", "pdf", "csv"],
        "params": results_params,
    },
    "size_response": {
        "inputs": size_response_tables,
        "figures": ["png", "pdf", "csv"],
        "params": lambda input: {"tables": list(input.data)},
    },
    "ciess_search": {
        "inputs": main_search_inputs,
        "figures": ["png", "pdf", "csv"],
        "params": lambda input: {
            "searches": main_searches(),
            "budgets": config["ciess"]["selection"]["budgets"],
        },
    },
    "fidelity": {
        "inputs": lambda: ["results/tables/table1.csv", PAPER_CSV] + reference_inputs(),
        "figures": ["png", "pdf", "csv"],
        "params": reference_params,
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
    """The notebook's `parameters` cell values, as JSON for papermill -y: the profile, the
    figure paths of a notebook that draws, and the notebook's own (NOTEBOOKS[name]["params"]).
    """
    import json

    p = {"profile": config["profile"]}
    if NOTEBOOKS[name]["figures"]:
        p.update(figure_png=output.get("figure_png"), data_csv=output.get("figure_csv"))
    return json.dumps({**p, **NOTEBOOKS[name]["params"](input)})
