# Paths: every output location that more than one rule or function needs, defined once.


from ciess.labels import budget_label  # config budget (80 or "native") -> c80 or native


def split_manifest(dataset="{dataset}"):
    """The split's manifest; without an argument, the pattern with the {dataset} wildcard."""
    return f"results/data/{dataset}/split/manifest.json"


def split_outputs(dataset):
    return [
        f"results/data/{dataset}/split/{dataset}.{part}.inter"
        for part in ("train", "valid", "test")
    ] + [split_manifest(dataset)]


def split_files(wildcards):
    """The three split files: declared inputs of every rule that reads the split, so an edited
    file reruns its consumers (load_split also checks them against the manifest)."""
    return split_outputs(wildcards.dataset)[:3]


def full_run(dataset, model, seed):
    return f"results/runs/{dataset}/{model}/full/dense/seed{seed}/metrics.json"


def init_state_path(method):
    return f"results/masks/{{dataset}}/{{model}}/{method}/seed{{seed}}/init_state.pt"


def repo_path(relative):
    """A file of this repository, relative to the working directory (the repository root in
    normal use): paths in params and inputs then survive moving or copying the clone."""
    import os

    return os.path.relpath(os.path.join(workflow.basedir, relative))


PAPER_CSV = repo_path("notebooks/reference/paper_results.csv")
NOT_RUN_YAML = repo_path("results/reference/not_run.yaml")  # why a printed cell is not shipped
RESULTS_CSV = "results/tables/results.csv"
PROVENANCE_CSV = "results/tables/provenance.csv"
