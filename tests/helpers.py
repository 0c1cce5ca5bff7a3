"""Small synthetic data for unit tests."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp

from ciess.data.read_split import SplitData


def random_split(n_users=40, n_items=30, per_user=12, seed=0) -> SplitData:
    rng = np.random.default_rng(seed)
    parts = {"train": [], "valid": [], "test": []}
    for u in range(n_users):
        items = rng.choice(n_items, per_user, replace=False)
        a, b = per_user // 2, 3 * per_user // 4
        for name, chunk in zip(parts, (items[:a], items[a:b], items[b:])):
            parts[name] += [(u, i) for i in chunk]

    def csr(pairs):
        arr = np.array(pairs)
        return sp.csr_matrix((np.ones(len(arr), np.float32), (arr[:, 0], arr[:, 1])),
                             shape=(n_users, n_items))

    return SplitData("synthetic", n_users, n_items, csr(parts["train"]), csr(parts["valid"]),
                     csr(parts["test"]), "0" * 64)


def written_split(folder: Path, n_users=20, n_items=15, per_user=8) -> Path:
    """A toy split written to ``folder/split`` by the suite's own writer (per-user 50/25/25);
    returns its manifest.json."""
    import pandas as pd

    from ciess.data.split import split_per_user, write_split

    rng = np.random.default_rng(0)
    table = pd.DataFrame([(u, i) for u in range(n_users)
                          for i in rng.choice(n_items, per_user, False)],
                         columns=["user_id", "item_id"])
    parts, summary = split_per_user(table)
    write_split(parts, folder / "split", "toy", {"users": n_users, "items": n_items}, 42,
                (0.5, 0.25, 0.25), summary)
    return folder / "split" / "manifest.json"


def run_notebook(name: str, tmp_path, **parameters) -> list[dict]:
    """Execute notebooks/<name>.ipynb with papermill (figure and data paths in ``tmp_path``) and
    return every cell output of the executed copy."""
    from pathlib import Path

    import nbformat
    import papermill

    repo = Path(__file__).resolve().parents[1]
    parameters = {"figure_png": str(tmp_path / "f.png"), "data_csv": str(tmp_path / "f.csv"),
                  **parameters}
    out = tmp_path / f"{name}.ipynb"
    papermill.execute_notebook(str(repo / f"notebooks/{name}.ipynb"), str(out),
                               parameters=parameters, kernel_name="python3", progress_bar=False,
                               cwd=str(tmp_path))
    return [o for c in nbformat.read(out, as_version=4).cells for o in c.get("outputs", [])]


def has_image(outputs) -> bool:
    return any("image/png" in o.get("data", {}) for o in outputs)


def doc_block(doc: str, language: str, first_line: str) -> str:
    """The code block of a guide in docs/ that starts with ``first_line`` (tests follow guides
    verbatim)."""
    import re

    from conftest import REPO

    text = (REPO / "docs" / doc).read_text()
    return re.search(rf"```{language}\n({re.escape(first_line)}.*?)```", text, re.S).group(1)


def user_package(tmp_path, module: str, source: str) -> dict:
    """Write ``source`` as module ``module`` of a user's own folder; returns the environment
    that puts it on PYTHONPATH (how a user runs a plugin outside this repository)."""
    import os

    pkg = tmp_path / "userpkg"
    pkg.mkdir(exist_ok=True)
    (pkg / f"{module}.py").write_text(source)
    return {"PYTHONPATH": f"{pkg}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def benchmark_module(name: str):
    """A module of benchmarks/ (not a package: its scripts import each other by name)."""
    import importlib.util
    import sys

    from conftest import REPO

    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[name] = module
    return sys.modules[name]
