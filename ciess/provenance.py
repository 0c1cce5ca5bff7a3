"""What every run records about where its numbers came from."""
from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

PACKAGES = ("ciess-bench", "torch", "numpy", "scipy", "pandas", "recbole", "snakemake")


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    out = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_revision(cwd: str | Path | None = None) -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             cwd=cwd or Path(__file__).parent, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, cwd=cwd or Path(__file__).parent
                               ).stdout.strip()
        return rev + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def config_hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


# Training settings that do not change a result: where it ran and a memory knob.
PLACEMENT_TRAIN_KEYS = ("device", "eval_batch_users")


def settings_hash(record: dict) -> str:
    """The settings that shape a run's result, hashed from its record: the training settings
    (without PLACEMENT_TRAIN_KEYS), the model's hyperparameters, the final protocol and the
    method's own settings (``method_settings``; absent from records written before them). Unlike
    ``config_hash`` it leaves out what only selects or places runs (seeds, datasets, active
    methods, threads, device), so every seed of one Table 1 cell shares it."""
    train = {k: v for k, v in (record.get("train_settings") or {}).items()
             if k not in PLACEMENT_TRAIN_KEYS}
    shaping = {"train": train, "model_hparams": record.get("model_hparams"),
               "final_protocol": record.get("final_protocol")}
    if record.get("method_settings") is not None:
        shaping["method_settings"] = record["method_settings"]
    return config_hash(shaping)


def execution_host() -> dict:
    """Where the job ran: the host, and the SLURM job id when a SLURM executor placed it."""
    return {"host": socket.gethostname(), "slurm_job_id": os.environ.get("SLURM_JOB_ID")}


def cpu_model() -> str:
    """The CPU's model name (Linux ``/proc/cpuinfo``), or "unknown"."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def run_provenance(config: dict | None = None) -> dict:
    """Same seed, same thread count and same packages on a CPU => identical metrics; the
    thread count is recorded because float reductions depend on it, and the CPU model because
    another CPU may round differently."""
    import torch

    return {"packages": package_versions(), "git_revision": git_revision(),
            "threads": torch.get_num_threads(), "cpu": cpu_model(),
            "config_hash": config_hash(config) if config is not None else None,
            **execution_host()}
