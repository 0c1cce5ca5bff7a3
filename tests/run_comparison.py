"""Compare two runs of the workflow output by output: same files, same numbers.

Used by the SLURM test (a run through sbatch must equal a local run of the same profile) and
importable from tests. Only what legitimately differs between two executions is ignored: wall
times (keys ending in ``_time_s`` / ``_s`` timing columns), the host and the SLURM job id.

    python tests/run_comparison.py REFERENCE_WORKDIR OTHER_WORKDIR
    python tests/run_comparison.py --code-change [--ignore KEY ...] BEFORE_WORKDIR AFTER_WORKDIR

``--code-change`` compares runs of two code versions (a refactor must not change a number): the
git revision and config hash are ignored too, record fields only the newer run has are listed
as additions rather than differences (also in a mask's meta), and ``--ignore KEY`` drops a record field or CSV column
whose value was renamed (say which in the note).
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

EXECUTION_KEYS = {"host", "slurm_job_id"}
TIMING_COLUMNS = ("t_train_s", "t_eval_s", "t_rl_s")
# With --code-change: the code version, and the sha256 of the mask files, which are compared
# themselves, array by array and their meta field by field.
CODE_VERSION_KEYS = {"git_revision", "config_hash", "mask_sha256"}
IGNORED: set[str] = set()  # --ignore and, with --code-change, CODE_VERSION_KEYS
ADDED: list[str] = []  # with --code-change: fields only the newer run has
ALLOW_ADDED = [False]


def is_volatile(key: str) -> bool:
    return key in EXECUTION_KEYS or key in IGNORED or key.endswith("_time_s")


def stable_record(obj):
    """A metrics record without its execution-specific fields (recursively)."""
    if isinstance(obj, dict):
        return {k: stable_record(v) for k, v in obj.items() if not is_volatile(k)}
    if isinstance(obj, list):
        return [stable_record(v) for v in obj]
    return obj


def _diff(a, b, where: str, out: list[str]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if key not in a and ALLOW_ADDED[0]:
                ADDED.append(f"{where}.{key}")
            elif key not in a or key not in b:
                out.append(f"{where}.{key}: only in {'other' if key not in a else 'reference'}")
            else:
                _diff(a[key], b[key], f"{where}.{key}", out)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            _diff(x, y, f"{where}[{i}]", out)
    elif isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return
    elif a != b:
        out.append(f"{where}: {a!r} != {b!r}")


def compare_json(ref: Path, other: Path) -> list[str]:
    out: list[str] = []
    _diff(stable_record(json.loads(ref.read_text())), stable_record(json.loads(other.read_text())),
          "", out)
    return out


def compare_npz(ref: Path, other: Path) -> list[str]:
    with np.load(ref, allow_pickle=False) as a, np.load(other, allow_pickle=False) as b:
        if sorted(a.files) != sorted(b.files):
            return [f"arrays {sorted(a.files)} != {sorted(b.files)}"]
        out = []
        for k in a.files:
            if k == "meta" and ALLOW_ADDED[0]:  # JSON text: compared field by field
                _diff(stable_record(json.loads(str(a[k]))), stable_record(json.loads(str(b[k]))),
                      "meta", out)
            elif not np.array_equal(a[k], b[k]):
                out.append(f"array {k} differs")
        return out


def compare_csv(ref: Path, other: Path) -> list[str]:
    a, b = pd.read_csv(ref), pd.read_csv(other)
    drop = [c for c in (*TIMING_COLUMNS, *IGNORED) if c in a.columns]
    a, b = a.drop(columns=drop), b.drop(columns=[c for c in drop if c in b.columns])
    try:
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    except AssertionError as err:
        return [str(err).splitlines()[0]]
    return []


# What is compared: every run's metrics, every mask, every CIESS search log, and the tables.
PATTERNS = {
    "results/runs/**/metrics.json": compare_json,
    "results/masks/**/mask.npz": compare_npz,
    "results/search/**/search_log.csv": compare_csv,
    "results/search/**/masks.npz": compare_npz,
    "results/tables/results.csv": compare_csv,
    "results/tables/table1.csv": compare_csv,
    "results/tables/table2.csv": compare_csv,
}


def compare_runs(reference: Path, other: Path) -> tuple[int, list[str]]:
    """(files compared, differences) between two workflow working directories."""
    problems, compared = [], 0
    for pattern, compare in PATTERNS.items():
        ref_files = {p.relative_to(reference) for p in reference.glob(pattern)}
        other_files = {p.relative_to(other) for p in other.glob(pattern)}
        if not ref_files:
            problems.append(f"{pattern}: no files in the reference run")
        for rel in sorted(ref_files ^ other_files):
            problems.append(f"{rel}: only in {'reference' if rel in ref_files else 'other'} run")
        for rel in sorted(ref_files & other_files):
            compared += 1
            problems += [f"{rel}: {d}" for d in compare(reference / rel, other / rel)]
    return compared, problems


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(usage=__doc__)
    parser.add_argument("reference")
    parser.add_argument("other")
    parser.add_argument("--code-change", action="store_true")
    parser.add_argument("--ignore", action="append", default=[])
    args = parser.parse_args(argv)
    IGNORED.update(args.ignore)
    if args.code_change:
        IGNORED.update(CODE_VERSION_KEYS)
        ALLOW_ADDED[0] = True
    compared, problems = compare_runs(Path(args.reference), Path(args.other))
    for p in problems[:50]:
        print("DIFF", p)
    if ADDED:
        fields = sorted({a.split(".", 1)[-1] for a in ADDED})
        print(f"fields only in the newer run ({len(ADDED)} occurrences): {fields}")
    print(f"compared {compared} files: {len(problems)} differences")
    return 1 if problems or not compared else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
