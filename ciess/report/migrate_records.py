"""Bring run records written by an older version up to what reports read, e.g. a results
folder or a reference snapshot:

* records written before they carried ``method_label``, ``variant`` and ``search`` get them;
* ``--main-recipe NAME`` (or ``none``): CIESS selections get the table label a profile with that
  ``ciess.main_recipe`` gives them (``ciess.labels.ciess_label``), e.g. records made before the
  held recipe became Table 1's CIESS (docs/ciess.md §18.5).

Idempotent: records that already say what they should are left alone.

    python -m ciess.report.migrate_records [--main-recipe NAME] RESULTS_FOLDER [...]
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ciess.io import read_json, write_json
from ciess.labels import describe_run, selection_label


def _run_records(folder: str | Path):
    """(path, record) of every run record under ``folder``: a JSON object with ``method`` and
    ``test`` (metrics.json files, a snapshot's diagnostic runs)."""
    for path in sorted(Path(folder).rglob("*.json")):
        rec = read_json(path)
        if isinstance(rec, dict) and {"method", "test"} <= set(rec):
            yield path, rec


def migrate(folder: str | Path) -> int:
    """Rewrites (atomically) every run record under ``folder`` that lacks the fields; returns how
    many it changed. Method labels come from the method registry."""
    from baselines import table_label

    changed = 0
    for path, rec in _run_records(folder):
        if "method_label" in rec:
            continue
        rec.update(describe_run(rec["method"], rec.get("budget", "dense"), table_label))
        write_json(path, rec)
        changed += 1
    return changed


def relabel(folder: str | Path, main_recipe: str | None) -> int:
    """Rewrites (atomically) the ``method_label`` of every CIESS selection record under
    ``folder`` to the one a profile whose ``ciess.main_recipe`` is ``main_recipe`` gives it;
    returns how many it changed. Candidates and baselines are left alone."""
    changed = 0
    for path, rec in _run_records(folder):
        label = selection_label(rec, main_recipe)
        if label not in (None, rec.get("method_label")):
            rec["method_label"] = label
            write_json(path, rec)
            changed += 1
    return changed


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--main-recipe", help="label CIESS selections as a profile with this "
                   "ciess.main_recipe does ('none': the profile's own search is CIESS)")
    p.add_argument("folders", nargs="+")
    args = p.parse_args(argv)
    main_recipe = None if args.main_recipe in (None, "none") else args.main_recipe
    for folder in args.folders:
        print(f"{folder}: {migrate(folder)} run records given method_label/variant/search")
        if args.main_recipe is not None:
            print(f"{folder}: {relabel(folder, main_recipe)} CIESS records relabelled for "
                  f"ciess.main_recipe {main_recipe}")


if __name__ == "__main__":
    main()
