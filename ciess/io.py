"""Atomic file writing and checksums, shared by every rule.

Every output is written to a temporary file in the destination folder and renamed into place,
so a killed or failed step never leaves a half-written file that Snakemake would accept. The
temporary file's name carries host and pid; the next writer of the same path removes those of
dead writers on its host.
"""
from __future__ import annotations

import contextlib
import glob
import hashlib
import errno
import json
import os
import re
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Iterator

CHUNK = 1 << 20


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def _umask() -> int:
    current = os.umask(0o022)
    os.umask(current)
    return current


def _host() -> str:
    return socket.gethostname().replace(".", "-")


def _remove_stale_parts(path: Path) -> None:
    """Remove temporary files of ``path`` left by killed writers on this host (their name holds
    host and pid; a live writer's file, or another host's, is left alone)."""
    host = _host()
    for part in path.parent.glob(f".{glob.escape(path.name)}.*.part"):
        fields = part.name[len(path.name) + 2:].split(".")
        if len(fields) >= 3 and fields[0] == host and fields[1].isdigit() \
                and not _pid_alive(int(fields[1])):
            part.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_parts(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{_host()}.{os.getpid()}.",
                               suffix=".part", dir=path.parent)
    os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the user's usual mode
    os.close(fd)
    tmp = Path(tmp)
    try:
        try:
            yield tmp
        except (OSError, RuntimeError) as exc:
            # a full disk shows as ENOSPC, or from torch.save as "unexpected pos ..." / "file
            # write failed": say which file and how much room is left
            full = isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
            if full or (isinstance(exc, RuntimeError)
                        and re.search(r"unexpected pos|write failed", str(exc))):
                free = shutil.disk_usage(path.parent).free
                raise OSError(getattr(exc, "errno", None) or errno.EIO,
                              f"{path}: writing failed ({exc}); {free / 1e6:.1f} MB free on its "
                              "disk (full?); nothing was written") from exc
            raise
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: str | os.PathLike):
    """Parse a JSON file; a malformed or truncated one raises ValueError naming the file."""
    with open(path, "rb") as fh:
        raw = fh.read()
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None


def file_digests(path: str | os.PathLike, algorithms=("sha256",)) -> dict[str, str]:
    """Digests of a file. ``git_blob`` is git's blob id: sha1 of ``b"blob <size>\\0" + content``."""
    path = Path(path)
    hashers = {}
    for name in algorithms:
        if name == "git_blob":
            h = hashlib.sha1()
            h.update(f"blob {path.stat().st_size}\0".encode())
            hashers[name] = h
        else:
            hashers[name] = hashlib.new(name)
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            for h in hashers.values():
                h.update(chunk)
    return {name: h.hexdigest() for name, h in hashers.items()}


def sha256_file(path: str | os.PathLike) -> str:
    return file_digests(path)["sha256"]


def load_npz(path: str | os.PathLike, fields: tuple[str, ...] | None = None) -> dict:
    """The named arrays (``None``: all) of an .npz file; an unreadable, corrupt or incomplete
    file raises ValueError naming the file (and the missing field)."""
    import zipfile
    import zlib

    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as data:
            fields = tuple(data.files) if fields is None else fields
            missing = [f for f in fields if f not in data.files]
            if missing:
                raise ValueError(f"{path}: field(s) {missing} missing (has {data.files})")
            return {f: data[f] for f in fields}
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise ValueError(f"{path}: not a readable .npz file ({type(exc).__name__}: {exc})") \
            from exc
    except ValueError as exc:
        if str(exc).startswith(str(path)):
            raise
        raise ValueError(f"{path}: not a readable .npz file ({exc})") from exc
