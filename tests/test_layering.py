"""The layering contracts, read from the source (every import, also those inside functions):

* no import cycles among the modules of ``ciess`` and ``baselines`` (module-level imports);
* the shared training path never imports a method (``baselines``) or the CIESS search, so a
  result cannot depend on which method produced its mask;
* methods never import each other (only the ``baselines`` package interface);
* only ``ciess.report`` (reporting and provenance) imports ``ciess.report``.
"""
from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

TRAINING_PATH = ("ciess.train", "ciess.runs", "ciess.evaluate", "ciess.sampler", "ciess.masks",
                 "ciess.data.read_split", "ciess.models")


def _modules() -> dict[str, Path]:
    out = {}
    for package in ("ciess", "baselines"):
        for path in (REPO / package).rglob("*.py"):
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path
    return out


def _imports(path: Path, module: str, top_level_only: bool) -> set[str]:
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}
    return found


def _internal(names: set[str], modules: dict) -> set[str]:
    return {n for n in names if n in modules and n.split(".")[0] in ("ciess", "baselines")}


def test_no_import_cycles():
    modules = _modules()
    graph = {m: _internal(_imports(p, m, top_level_only=True), modules) - {m}
             for m, p in modules.items()}
    # a module importing its own package's __init__ is how Python loads it, not a cycle
    graph = {m: {d for d in deps if not m.startswith(d + ".")} for m, deps in graph.items()}
    state: dict[str, int] = {}

    def visit(node, stack):
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack + [node, dep]))
            if dep not in state:
                visit(dep, stack + [node])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [])


def test_training_path_imports_no_method_and_no_search():
    modules = _modules()
    offenders = []
    for name, path in modules.items():
        if name.startswith(TRAINING_PATH):
            for imported in _imports(path, name, top_level_only=False):
                if imported.startswith(("baselines", "ciess.search")):
                    offenders.append(f"{name} imports {imported}")
    assert not offenders, offenders


def test_only_reporting_imports_the_report_package():
    """ciess.report reads what runs wrote; no method, search or training module depends on it."""
    modules = _modules()
    offenders = [f"{name} imports {imported}" for name, path in modules.items()
                 if not name.startswith("ciess.report")
                 for imported in _imports(path, name, top_level_only=False)
                 if imported.startswith("ciess.report")]
    assert not offenders, offenders


def test_methods_do_not_import_each_other():
    modules = _modules()
    offenders = []
    for name, path in modules.items():
        if name.startswith("baselines."):
            for imported in _imports(path, name, top_level_only=False):
                if imported.startswith("baselines.") and not imported.startswith(name):
                    if imported.rpartition(".")[0] != "baselines" or imported in modules:
                        offenders.append(f"{name} imports {imported}")
    assert not offenders, offenders


def test_the_contract_checks_can_fail(tmp_path, monkeypatch):
    """The checks see an import inside a function and a relative import."""
    path = tmp_path / "m.py"
    path.write_text("def f():\n    from baselines import es\nfrom .x import y\n")
    found = _imports(path, "ciess.sub.m", top_level_only=False)
    assert {"baselines", "baselines.es", "ciess.sub.x", "ciess.sub.x.y"} <= found
