"""Find, download and verify a dataset's source files, then copy them into the run's folder.

Sources are tried in the catalog's order (official archive, official extracted file, documented
stand-in). Every file is checked against every checksum the catalog lists, whether it was
downloaded or read from a local mirror. On any failure nothing is left in the output folder.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml

from ciess.io import atomic_path, file_digests, write_json

log = logging.getLogger(__name__)

MIRROR_ENV = "CIESS_DATA_MIRROR"
CHECKSUM_KEYS = ("sha256", "md5", "git_blob")


class DataSourceError(RuntimeError):
    """A dataset file is missing, unreachable, or fails its checksum."""


class ChecksumMismatch(DataSourceError):
    pass


@dataclass(frozen=True)
class SourceFile:
    relpath: str
    checksums: dict[str, str]
    url: str | None


@dataclass(frozen=True)
class Source:
    form: str
    root: str
    files: tuple[SourceFile, ...]
    note: str = ""


def load_catalog(paths: str | os.PathLike | list) -> dict:
    """The dataset catalog: one YAML file, or several merged in order (your own datasets beside
    the shipped ones). A name defined twice, or an entry without `parser`/`sources`, is an error
    naming the file."""
    catalog: dict = {}
    where: dict = {}
    for path in [paths] if isinstance(paths, (str, os.PathLike)) else paths:
        with open(path) as fh:
            entries = yaml.safe_load(fh) or {}
        if not isinstance(entries, dict):
            raise ValueError(f"{path}: a dataset catalog maps dataset names to entries")
        for name, entry in entries.items():
            if name in catalog:
                raise ValueError(f"{path}: dataset '{name}' is already defined in {where[name]}")
            missing = [k for k in ("parser", "sources") if not isinstance(entry, dict) or k not in entry]
            if missing:
                raise ValueError(f"{path}: dataset '{name}' lacks {missing}")
            catalog[name], where[name] = entry, path
    return catalog


def dataset_sources(catalog: dict, dataset: str) -> list[Source]:
    if dataset not in catalog:
        raise KeyError(f"dataset '{dataset}' is not in the catalog (known: {sorted(catalog)})")
    sources = []
    for i, src in enumerate(catalog[dataset]["sources"]):
        files = []
        for relpath, spec in src["files"].items():
            sums = {k: str(v).lower() for k, v in spec.items() if k in CHECKSUM_KEYS}
            if not sums:
                raise KeyError(
                    f"catalog: {dataset}.sources[{i}].files['{relpath}'] has no checksum "
                    f"(one of {CHECKSUM_KEYS})"
                )
            files.append(SourceFile(relpath, sums, spec.get("url")))
        sources.append(Source(src["form"], src["root"], tuple(files), src.get("note", "")))
    return sources


def resolve_mirror(configured: str | None) -> Path | None:
    """The mirror folder: the config key if set, else the environment variable, else none."""
    value = configured or os.environ.get(MIRROR_ENV)
    return Path(value).expanduser() if value else None


def recbole_example_root() -> Path:
    import recbole

    return Path(recbole.__file__).parent / "dataset_example"


def verify_file(path: Path, expected: dict[str, str], label: str) -> dict[str, str]:
    """Check every expected checksum; raise naming the file and both values on mismatch."""
    if not path.is_file():
        raise DataSourceError(f"{label}: file not found at {path}")
    algorithms = tuple(sorted(set(expected) | {"sha256"}))
    actual = file_digests(path, algorithms)
    for algo, want in expected.items():
        if actual[algo] != want:
            raise ChecksumMismatch(
                f"checksum mismatch for {label} ({path}, {path.stat().st_size} bytes): "
                f"{algo} expected {want}, got {actual[algo]}. The file is corrupted, truncated "
                f"or a different version; replace it."
            )
    return actual


def download(url: str, dest: Path, timeout: float = 120.0) -> None:
    """Download ``url`` to ``dest`` atomically (``file://`` URLs work too, which tests use)."""
    log.info("downloading %s", url)
    with atomic_path(dest) as tmp:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp, open(tmp, "wb") as out:
                shutil.copyfileobj(resp, out)
        except OSError as exc:  # URLError is an OSError
            raise DataSourceError(f"could not download {url}: {exc}") from exc


def _source_root(source: Source, mirror: Path | None) -> Path | None:
    if source.root == "recbole_package":
        return recbole_example_root()
    if source.root == "mirror":
        return mirror
    raise KeyError(f"unknown source root '{source.root}' (expected mirror or recbole_package)")


def _missing_message(dataset: str, sources: list[Source], mirror: Path | None) -> str:
    lines = [f"no usable source for dataset '{dataset}'."]
    if mirror is None:
        lines.append(
            f"No mirror is set (config data.mirror or ${MIRROR_ENV}) and no source can be "
            "downloaded."
        )
    for s in sources:
        root = _source_root(s, mirror)
        for f in s.files:
            where = root / f.relpath if root else f"<mirror>/{f.relpath}"
            have = "present" if root and (root / f.relpath).is_file() else "MISSING"
            url = f"; download: {f.url}" if f.url else ""
            lines.append(f"  form {s.form}: {where} [{have}]{url}")
    lines.append("Put the missing files at the paths above (or set the mirror), then rerun.")
    return "\n".join(lines)


def fetch_dataset(catalog: dict, dataset: str, out_dir: str | os.PathLike,
                  mirror: str | None = None) -> dict:
    """Verify one source of ``dataset`` and copy it into ``out_dir`` with ``provenance.json``.

    ``out_dir`` appears only when everything has been verified (built in a temporary folder).
    """
    out_dir = Path(out_dir)
    sources = dataset_sources(catalog, dataset)
    mirror_path = resolve_mirror(mirror)
    chosen, origin = None, None
    for src in sources:
        root = _source_root(src, mirror_path)
        if root is not None and all((root / f.relpath).is_file() for f in src.files):
            chosen, origin = src, {f.relpath: str(root / f.relpath) for f in src.files}
            break
    if chosen is None and mirror_path is None:
        for src in sources:
            if all(f.url for f in src.files):
                chosen, origin = src, {f.relpath: f.url for f in src.files}
                break
    if chosen is None:
        raise DataSourceError(_missing_message(dataset, sources, mirror_path))

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        record = []
        for f in chosen.files:
            dest = staging / f.relpath
            dest.parent.mkdir(parents=True, exist_ok=True)
            where = origin[f.relpath]
            if "://" in where:
                download(where, dest)
                named = f"{dataset}:{f.relpath} downloaded from {where}"
            else:
                shutil.copyfile(where, dest)
                named = f"{dataset}:{f.relpath} (mirror file {where})"
            digests = verify_file(dest, f.checksums, named)
            record.append({"path": f.relpath, "origin": where, "verified": sorted(f.checksums),
                           "sha256": digests["sha256"], "bytes": dest.stat().st_size})
        provenance = {"dataset": dataset, "form": chosen.form, "root": chosen.root,
                      "note": chosen.note, "files": record}
        write_json(staging / "provenance.json", provenance)
        umask = os.umask(0)
        os.umask(umask)
        staging.chmod(0o777 & ~umask)  # a folder like any other, not mkdtemp's private 0700
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(staging, out_dir)
        log.info("%s: verified form '%s' from %s", dataset, chosen.form, chosen.root)
        return provenance
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def verify_fetched(catalog: dict, dataset: str, source_dir: str | os.PathLike) -> dict:
    """Re-verify a fetched folder against the catalog (checksums are checked on every read)."""
    source_dir = Path(source_dir)
    from ciess.io import read_json

    provenance = read_json(source_dir / "provenance.json")
    by_form = {s.form: s for s in dataset_sources(catalog, dataset)}
    if provenance["form"] not in by_form:
        raise DataSourceError(f"{source_dir}/provenance.json: unknown form '{provenance['form']}'")
    for f in by_form[provenance["form"]].files:
        verify_file(source_dir / f.relpath, f.checksums, f"{dataset}:{f.relpath}")
    return provenance


def verify_or_refetch(catalog: dict, dataset: str, source_dir: str | os.PathLike,
                      mirror: str | None = None) -> dict:
    """``verify_fetched``; a fetched copy that no longer verifies (a file truncated, changed or
    gone since it was fetched) is fetched again, once, from the mirror or the catalog's URLs,
    and verified again. A source that is itself wrong still fails, naming the file."""
    try:
        return verify_fetched(catalog, dataset, source_dir)
    except (ChecksumMismatch, DataSourceError) as err:
        log.warning("%s: the fetched copy in %s no longer verifies (%s); fetching it again",
                    dataset, source_dir, err)
    fetch_dataset(catalog, dataset, source_dir, mirror)
    return verify_fetched(catalog, dataset, source_dir)



def repair_fetched_sources(catalog: dict, datasets: list[str], data_root: str | os.PathLike,
                           mirror: str | None = None) -> list[str]:
    """At DAG start: fetch again every cached source file that is missing or whose size differs
    from the one recorded when it was fetched (a truncated copy), so that a run never goes on with
    a cache it would refuse later. Only sizes are compared (one ``stat`` per file per start; a
    change of equal size is caught by the checksums read on every use). When the fetched-again
    files have the checksums recorded before, the folder gets its old timestamps back, so nothing
    downstream, built from those very bytes, reruns; otherwise the new copy is newer and
    Snakemake reruns what depends on it. Returns one message per repaired dataset; a copy that
    cannot be fetched again raises ``DataSourceError`` naming the file and the way out."""
    from ciess.io import read_json

    messages = []
    for dataset in datasets:
        source_dir = Path(data_root) / dataset / "source"
        provenance_file = source_dir / "provenance.json"
        if not provenance_file.is_file():
            continue  # never fetched (or removed): the DAG fetches it
        recorded = read_json(provenance_file)
        changed = [f for f in recorded["files"] if not (source_dir / f["path"]).is_file()
                   or (source_dir / f["path"]).stat().st_size != f["bytes"]]
        if not changed:
            continue
        what = ", ".join(
            f"{source_dir / f['path']} ({(source_dir / f['path']).stat().st_size} bytes, "
            f"{f['bytes']} when fetched)" if (source_dir / f["path"]).is_file()
            else f"{source_dir / f['path']} (gone)" for f in changed)
        fetched_at = provenance_file.stat().st_mtime
        old_times = {p.relative_to(source_dir): p.stat().st_mtime
                     for p in [source_dir, *source_dir.rglob("*")]}
        try:
            fetched = fetch_dataset(catalog, dataset, source_dir, mirror)
        except DataSourceError as err:
            raise DataSourceError(
                f"{dataset}: the cached source changed since it was fetched: {what}; fetching it "
                f"again failed: {str(err).rstrip('.')}. Put the original file back, or set the mirror "
                f"(${MIRROR_ENV}) or network access and start again.") from err
        same = [f["sha256"] for f in fetched["files"]] == [f["sha256"] for f in recorded["files"]]
        if same:
            (source_dir / ".snakemake_timestamp").touch()
            for path in sorted(source_dir.rglob("*"), reverse=True) + [source_dir]:
                rel = path.relative_to(source_dir)
                mtime = old_times.get(rel, fetched_at)
                if rel in {Path(f["path"]) for f in changed}:
                    mtime = fetched_at  # its own mtime is the truncation's, not the fetch's
                os.utime(path, (mtime, mtime))
        messages.append(
            f"{dataset}: {what} changed since it was fetched: fetched again from "
            f"{fetched['root']} and verified; "
            + ("the same bytes as before, so nothing built from them reruns" if same else
               "other bytes than before (the catalog changed?), so what depends on them reruns"))
    return messages
