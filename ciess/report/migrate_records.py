"""Add the fields reports read (``method_label``, ``variant``, ``search``) to metrics JSONs
written before records carried them, e.g. a results folder or reference snapshot of an older
version. Idempotent: records that have the fields are left alone.

    python -m ciess.report.migrate_records RESULTS_FOLDER [...]
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ciess.io import read_json, write_json
from ciess.labels import describe_run


def migrate(folder: str | Path) -> int:
    """Rewrites (atomically) every run record under ``folder`` (a JSON object with ``method``
    and ``test``: metrics.json files, a snapshot's diagnostic runs) that lacks the fields;
    returns how many it changed. Method labels come from the method registry."""
    from baselines import table_label

    changed = 0
    for path in sorted(Path(folder).rglob("*.json")):
        rec = read_json(path)
        if not isinstance(rec, dict) or "method_label" in rec or not {"method", "test"} <= set(rec):
            continue
        rec.update(describe_run(rec["method"], rec.get("budget", "dense"), table_label))
        write_json(path, rec)
        changed += 1
    return changed


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folders", nargs="+")
    for folder in p.parse_args(argv).folders:
        print(f"{folder}: {migrate(folder)} run records given method_label/variant/search")


if __name__ == "__main__":
    main()
