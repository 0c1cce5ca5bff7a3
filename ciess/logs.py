"""Logging for workflow scripts: every rule writes its own log file, and holds a job lock.

The lock (``.<log name>.lock`` beside the log, an OS file lock that dies with its process; the
file is removed on a normal exit) makes
a second copy of the same job refuse to start while the first still runs: after ``kill -9`` of
Snakemake its running jobs live on as orphans, and a rerun must not start a second writer of the
same outputs.
"""
from __future__ import annotations

import atexit
import datetime as dt
import fcntl
import logging
import os
import re
import socket
import sys
from pathlib import Path

TIMESTAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)")

_held = []  # lock files of this process, kept open (and locked) until it exits


class JobAlreadyRunning(RuntimeError):
    """Another live process runs this job (the message says which and how to end it)."""


def hold_job_lock(log_path: str | os.PathLike) -> None:
    lock = Path(log_path).with_name(f".{Path(log_path).name}.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    fh = open(lock, "a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.seek(0)
        owner = fh.read().strip() or "unknown"
        fh.close()
        raise JobAlreadyRunning(
            f"{log_path}: this job is still running in another process ({owner}), probably an "
            f"orphan of a killed Snakemake; end it first (kill <pid>) or wait for it, then rerun"
        ) from None
    fh.seek(0)
    fh.truncate()
    fh.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
    fh.flush()
    _held.append(fh)
    atexit.register(lock.unlink, missing_ok=True)  # a clean exit leaves no stray file


def setup_rule_logging(log_path: str | None, level: int = logging.INFO) -> logging.Logger:
    """Send logging (and stray stderr, e.g. tracebacks and tqdm) to the rule's log file."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stdout)]
    if log_path:
        hold_job_lock(log_path)
        stream = open(log_path, "a", buffering=1)
        sys.stderr = stream
        handlers = [logging.StreamHandler(stream)]
    logging.basicConfig(level=level, handlers=handlers, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return logging.getLogger("ciess")


def log_span(path: str | os.PathLike) -> tuple[str, str, float] | None:
    """First and last timestamp of a rule log, and the seconds between them (None: no stamps)."""
    stamps = [m.group(1) for line in Path(path).read_text(errors="replace").splitlines()
              if (m := TIMESTAMP.match(line))]
    if not stamps:
        return None
    t0, t1 = (dt.datetime.strptime(s, "%Y-%m-%d %H:%M:%S") for s in (stamps[0], stamps[-1]))
    return stamps[0], stamps[-1], (t1 - t0).total_seconds()


def running_jobs(logs_dir: str | os.PathLike = "results/logs") -> list[tuple[Path, int]]:
    """The jobs of this clone that still hold their lock: (lock file, pid), from the lock
    files under ``logs_dir`` (a lock nobody holds is stale and left alone)."""
    found = []
    for lock in sorted(Path(logs_dir).rglob(".*.lock")):
        with open(lock, "a+") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # held: the job runs
                fh.seek(0)
                m = re.match(r"pid (\d+) on (\S+)", fh.read())
                if m and m.group(2) == socket.gethostname():
                    found.append((lock, int(m.group(1))))
                continue
            fcntl.flock(fh, fcntl.LOCK_UN)
    return found


def latest_progress(log_path: str | os.PathLike) -> str | None:
    """A running job's last progress line (its step, totals and ETA; else its last stamped line),
    for ``main``'s listing: where each long job stands without opening its log."""
    path = Path(log_path)
    if not path.exists():
        return None
    stamped = [line for line in path.read_text(errors="replace").splitlines()
               if TIMESTAMP.match(line)]
    progress = [line for line in stamped if "ETA" in line]
    return (progress or stamped or [None])[-1]


def main(argv=None) -> int:
    """``python -m ciess.logs [--kill] [LOGS_DIR]``: list (or end) this clone's running jobs,
    e.g. the orphans of a killed Snakemake, by the pids in their job locks, each with its last
    progress line; other clones' jobs on the same host are never touched."""
    import argparse
    import signal

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("logs_dir", nargs="?", default="results/logs")
    p.add_argument("--kill", action="store_true", help="send SIGTERM to each listed job")
    args = p.parse_args(argv)
    jobs = running_jobs(args.logs_dir)
    for lock, pid in jobs:
        log_path = lock.with_name(lock.name[1:-len('.lock')])
        print(f"pid {pid}: {log_path}")
        if (line := latest_progress(log_path)) is not None:
            print(f"    {line}")
        if args.kill:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    if not jobs:
        print(f"no running job holds a lock under {args.logs_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
