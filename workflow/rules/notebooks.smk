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
                    for s in ciess_seeds()
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

    out = []
    for snap in reference_snapshots():
        out.append(f"{snap}/provenance.json")
        out += sorted(str(p) for p in Path(snap).rglob("runs/**/metrics.json"))
    return out


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
    "fig5_episodes": {
        "inputs": lambda: [RESULTS_CSV],
        "figures": ["png", "pdf", "csv"],
    },
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
