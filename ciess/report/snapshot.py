"""Reference snapshots: the evidence of a real-data run, verified and small enough to commit.

    python -m ciess.report.snapshot RESULTS_DIR results/reference/NAME --profile config/reference.yaml

copies from a run's ``results/`` folder what a reader needs to check its numbers, and nothing
heavy: every metrics JSON, every mask, CIESS search logs, executed masks, candidates and
selections, the tables, the figures,
the rendered notebooks, labelled side runs under ``diagnostics/`` and every rule's log (never
model weights or initial tables: ``python -m ciess.init_state`` rebuilds a rewinding method's
``init_state.pt`` from split, model and seed). Machine-specific paths in copied text (the run folder, this
repository, the data mirror) become ``<run>``, ``<repo>``, ``<mirror>``. Before anything is
written it verifies each run: its data-manifest checksum equals the split's manifest, its mask file's sha256
equals the one the run recorded, and a budgeted mask meets its budget. It then writes
``provenance.json`` and ``PROVENANCE.md`` (profile, machine, wall time per rule and in all, git
revisions, package versions, data checksums), refuses a snapshot over ``MAX_BYTES``, and moves
the finished folder into place in one rename (a failed snapshot leaves nothing behind).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import sys
from pathlib import Path

from ciess.per_user import PER_USER_FILE
from ciess.io import read_json, sha256_file
from ciess.logs import log_span
from ciess.masks import count_params, load_mask, meets_budget
from ciess.provenance import cpu_model
from ciess.report.records import RecordError, read_record

MAX_BYTES = 20 * 1024 * 1024
KEEP_NAMES = ("metrics.json", "mask.npz", "search_log.csv", "masks.npz", "selection.csv",
              "candidates.csv", "stats.json", "manifest.json", "provenance.json", PER_USER_FILE)
KEEP_TOP = {"tables": (".csv", ".tex"), "figures": (".png", ".pdf", ".svg", ".csv"),
            "search": (".csv",),  # CIESS candidates per budget and pool
            "notebooks": (".html",),
            "diagnostics": (".json", ".log", ".csv", ".md")}  # labelled side runs, never tables
TEXT_SUFFIXES = (".json", ".log", ".csv", ".md", ".html", ".tex")
REPO = Path(__file__).resolve().parents[2]  # ciess/report/snapshot.py -> the repository


class SnapshotError(ValueError):
    """A run in the results folder failed verification (the message names the file)."""


def _manifests(results: Path) -> dict[str, dict]:
    out = {}
    for path in sorted(results.glob("data/*/split/manifest.json")):
        manifest = read_json(path)
        out[manifest["dataset"]] = manifest
    return out


def verify_run(metrics_path: Path, results: Path, manifests: dict[str, dict]) -> dict:
    """Check one metrics JSON against its data and mask; return it (raises SnapshotError)."""
    try:
        rec = read_record(metrics_path)  # metric ranges, budget label, path = record fields
    except (RecordError, ValueError) as exc:
        raise SnapshotError(str(exc)) from None
    dataset = rec.get("dataset")
    if dataset not in manifests:
        raise SnapshotError(f"{metrics_path}: dataset {dataset!r} has no split manifest in "
                            f"{results / 'data'}")
    manifest = manifests[dataset]
    if rec.get("status", "ok") != "ok":  # e.g. a budget a search never reached: no numbers
        return rec
    if rec.get("data_manifest_sha256") != manifest["manifest_sha256"]:
        raise SnapshotError(f"{metrics_path}: data_manifest_sha256 "
                            f"{rec.get('data_manifest_sha256')} != split manifest "
                            f"{manifest['manifest_sha256']}")
    mask_file = rec.get("mask_file")
    if mask_file:
        mask_path = Path(mask_file) if Path(mask_file).is_absolute() else results.parent / mask_file
        if not mask_path.exists():
            raise SnapshotError(f"{metrics_path}: its mask {mask_file} is missing")
        if sha256_file(mask_path) != rec.get("mask_sha256"):
            raise SnapshotError(f"{metrics_path}: mask {mask_file} changed since the run "
                                f"(sha256 differs from the recorded {rec.get('mask_sha256')})")
        budget = rec.get("budget", "")
        if re.fullmatch(r"c\d+", budget):
            from ciess.models import gmf_dense

            params = count_params(load_mask(mask_path, manifest["users"], manifest["items"]),
                                  rec["n_tables"], gmf_dense(rec.get("model"), rec.get("model_hparams")))
            if params != rec["params"] or not meets_budget(
                    params, int(budget[1:]), manifest["users"], manifest["items"],
                    rec["n_tables"]):
                raise SnapshotError(f"{metrics_path}: mask has {params} parameters (run recorded "
                                    f"{rec['params']}), over the {budget} budget or inconsistent")
    return rec


def machine() -> dict:
    cpu = cpu_model()
    mem_gb = None
    try:
        mem_gb = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024 ** 3, 1)
    except (ValueError, OSError):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": mem_gb,
            "platform": platform.platform(), "python": platform.python_version()}


def redactions(results: Path, extra: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """Machine-specific path prefixes and the labels that replace them in copied text files:
    the run folder, this repository, the Python environment (a venv outside the repository
    shows in warnings), the data mirror, and any ``extra`` (longest first)."""
    pairs = {str(results.parent): "<run>", str(REPO): "<repo>",
             str(Path(sys.prefix).resolve()): "<python env>", sys.prefix: "<python env>",
             **(extra or {})}
    mirror = os.environ.get("CIESS_DATA_MIRROR")
    if mirror:
        pairs[str(Path(mirror).resolve())] = "<mirror>"
    for root in fetched_from(results):  # the mirror the run used, whatever this shell sets
        pairs.setdefault(root, "<mirror>")
    return sorted(pairs.items(), key=lambda kv: -len(kv[0]))


def fetched_from(results: Path) -> set[str]:
    """The local folders the run's dataset files were copied from (their fetch records hold each
    file's origin, ``<folder>/<path>``); downloaded files have a URL and name no folder."""
    roots = set()
    for record in results.glob("data/*/source/provenance.json"):
        for f in read_json(record).get("files", []):
            origin, rel = str(f.get("origin", "")), str(f.get("path", ""))
            if "://" not in origin and rel and origin.endswith("/" + rel):
                roots.add(origin[: -len(rel) - 1])
    return roots


def _copy(src: Path, dst: Path, replace: list[tuple[str, str]]) -> None:
    if src.suffix not in TEXT_SUFFIXES:
        shutil.copy2(src, dst)
        return
    text = src.read_text(errors="replace")
    for prefix, label in replace:
        text = text.replace(prefix, label)
    dst.write_text(text)


def _files_to_copy(results: Path) -> list[Path]:
    files = []
    for name in KEEP_NAMES:
        files += [p for p in results.rglob(name) if "reference" not in p.relative_to(results).parts]
    for top, suffixes in KEEP_TOP.items():
        files += [p for p in (results / top).rglob("*") if p.suffix in suffixes]
    files += list((results / "logs").rglob("*.log"))
    return sorted(set(files))


def provenance(results: Path, records: dict[Path, dict], profile_file: Path | None,
               note: str | None = None, run_machine: str | None = None) -> dict:
    logs = {}
    for path in sorted((results / "logs").rglob("*.log")):
        span = log_span(path)
        if span:
            logs[str(path.relative_to(results))] = {"start": span[0], "end": span[1],
                                                    "seconds": span[2]}
    starts = [v["start"] for v in logs.values()]
    ends = [v["end"] for v in logs.values()]
    runs = []
    for path, rec in records.items():
        runs.append({"file": str(path.relative_to(results)), "method": rec.get("method"),
                     "budget": rec.get("budget"), "seed": rec.get("seed"),
                     "wall_time_s": rec.get("wall_time_s"), "train_time_s": rec.get("train_time_s"),
                     "eval_time_s": rec.get("eval_time_s"), "steps_trained": rec.get("steps_trained"),
                     "best_step": rec.get("best_step"), "device": rec.get("device"),
                     "git_revision": rec.get("git_revision"), "host": rec.get("host")})
    sources = {p.parent.parent.name: read_json(p) for p in results.glob("data/*/source/provenance.json")}
    return {
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "note": note,
        "profile": sorted({str(r.get("profile")) for r in records.values()}),
        "profile_file": str(profile_file) if profile_file else None,
        "profile_text": profile_file.read_text() if profile_file else None,
        "machine": machine(),  # where the snapshot was made
        "run_machine": run_machine,  # where the runs were made, when that was another machine
        "run_hosts": sorted({str(r.get("host")) for r in records.values()}),
        # the CPUs the runs recorded (records from before 2026-12-07 carry none)
        "run_cpus": sorted({str(r["cpu"]) for r in records.values() if r.get("cpu")}),
        "run_devices": sorted({str(r.get("device")) for r in records.values()}),
        "git_revisions": sorted({str(r.get("git_revision")) for r in records.values()}),
        "packages": next(iter(records.values())).get("packages") if records else None,
        "data": {name: {"manifest_sha256": m["manifest_sha256"], "users": m["users"],
                        "items": m["items"], "split_files": m["files"],
                        "source_form": sources.get(name, {}).get("form"),
                        "source_files": [{k: f.get(k) for k in ("path", "sha256", "bytes")}
                                         for f in sources.get(name, {}).get("files", [])]}
                 for name, m in _manifests(results).items()},
        "workflow_span": {"first_log_line": min(starts) if starts else None,
                          "last_log_line": max(ends) if ends else None},
        "rule_logs": logs,
        "runs": runs,
    }


SAME_MACHINE = "the machine the snapshot was made on (below)"


def provenance_markdown(prov: dict, name: str) -> str:
    lines = [f"# Reference snapshot `{name}`", "",
             f"- profile: {', '.join(prov['profile'])}"
             + (f" (`{prov['profile_file']}`, copied in provenance.json)" if prov["profile_file"]
                else ""),
             f"- runs made on: {prov.get('run_machine') or SAME_MACHINE}; "
             f"hosts {', '.join(prov.get('run_hosts', []))}, devices "
             f"{', '.join(prov.get('run_devices', []))}"
             + (f"; CPUs the runs recorded: {', '.join(prov['run_cpus'])}"
                if prov.get("run_cpus") else ""),
             f"- snapshot made on: {prov['machine']['cpu']}, {prov['machine']['cores']} cores, "
             f"{prov['machine']['memory_gb']} GB; {prov['machine']['platform']}",
             f"- git revision(s): {', '.join(prov['git_revisions'])}",
             f"- workflow: first log line {prov['workflow_span']['first_log_line']}, last "
             f"{prov['workflow_span']['last_log_line']} (UTC)", ""]
    if prov.get("note"):
        lines += ["## Note", "", prov["note"], ""]
    for ds, d in prov["data"].items():
        lines.append(f"- data `{ds}`: {d['users']} users, {d['items']} items; split manifest "
                     f"sha256 `{d['manifest_sha256']}`; source form `{d['source_form']}`: "
                     + ", ".join(f"`{f['path']}` sha256 `{f['sha256']}`" for f in d["source_files"]))
    lines += ["", "| run | steps (best) | wall s | train s | eval s | device |",
              "|---|---|---|---|---|---|"]
    for r in prov["runs"]:
        if r["wall_time_s"] is None:  # a record without a run (a budget never reached)
            lines.append(f"| {r['method']}/{r['budget']}/seed{r['seed']} | not run | | | | |")
            continue
        lines.append(f"| {r['method']}/{r['budget']}/seed{r['seed']} | {r['steps_trained']} "
                     f"({r['best_step']}) | {r['wall_time_s']:.0f} | {r['train_time_s']:.0f} | "
                     f"{r['eval_time_s']:.0f} | {r['device']} |")
    lines += ["", "| rule log | seconds |", "|---|---|"]
    lines += [f"| {k} | {v['seconds']:.0f} |" for k, v in prov["rule_logs"].items()]
    return "\n".join(lines) + "\n"


def check_destination(results: Path, out: Path) -> None:
    """Refuse a destination whose replacement would delete something that is not a snapshot:
    the results folder itself or a folder holding it, the working folder or one above it, or
    an existing folder without a snapshot's provenance file."""
    out_r, results_r, cwd = Path(out).resolve(), Path(results).resolve(), Path.cwd().resolve()
    if out_r == results_r or out_r in results_r.parents:
        raise SnapshotError(f"destination {out} is or holds the results folder {results}: "
                            "replacing it would delete the runs")
    if out_r == cwd or out_r in cwd.parents:
        raise SnapshotError(f"destination {out} is or holds the working folder {cwd}")
    if out_r.exists() and (not out_r.is_dir() or not (out_r / "provenance.json").is_file()):
        raise SnapshotError(f"destination {out} exists and is not a snapshot (no "
                            "provenance.json): refusing to replace it")


def make_snapshot(results: Path, out: Path, profile_file: Path | None = None,
                  note: str | None = None, redact: dict[str, str] | None = None,
                  run_machine: str | None = None) -> dict:
    results, out = Path(results).resolve(), Path(out)
    manifests = _manifests(results)
    check_destination(results, out)
    metrics = sorted(p for p in results.rglob("metrics.json")
                     if "runs" in p.parts and "reference" not in p.relative_to(results).parts)
    if not metrics:
        raise SnapshotError(f"{results}: no runs/**/metrics.json to snapshot")
    records = {p: verify_run(p, results, manifests) for p in metrics}
    replace = redactions(results, redact)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        for src in _files_to_copy(results):
            dst = tmp / src.relative_to(results)
            dst.parent.mkdir(parents=True, exist_ok=True)
            _copy(src, dst, replace)
        prov = provenance(results, records, profile_file, note, run_machine)
        (tmp / "provenance.json").write_text(json.dumps(prov, indent=1, sort_keys=True) + "\n")
        (tmp / "PROVENANCE.md").write_text(provenance_markdown(prov, out.name))
        size = sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file())
        if size > MAX_BYTES:
            raise SnapshotError(f"snapshot {out} would be {size / 1e6:.1f} MB > "
                                f"{MAX_BYTES / 1e6:.0f} MB")
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return prov


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", type=Path, help="a run's results/ folder")
    p.add_argument("out", type=Path, help="the snapshot folder, e.g. results/reference/NAME")
    p.add_argument("--profile", type=Path, help="the profile file the run used (copied)")
    p.add_argument("--note", help="what a reader must know (what stopped, what was rerun)")
    p.add_argument("--machine", help="the machine the runs were made on, when it is not this one "
                                     "(e.g. a GPU machine whose results were copied here)")
    p.add_argument("--redact", action="append", default=[], metavar="PATH=LABEL",
                   help="another machine-specific path prefix to replace in copied text "
                        "(the run folder, this repository and $CIESS_DATA_MIRROR always are)")
    args = p.parse_args(argv)
    try:
        redact = dict(item.split("=", 1) for item in args.redact)
        prov = make_snapshot(args.results, args.out, args.profile, args.note, redact,
                             args.machine)
    except SnapshotError as err:
        print(f"snapshot refused: {err}", file=sys.stderr)
        return 1
    print(f"{args.out}: {len(prov['runs'])} runs, revisions {prov['git_revisions']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
