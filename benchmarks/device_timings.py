"""Times the paper profile's unit costs on one device, as JSON: a LightGCN training epoch
(batch 10,000), one full-ranking evaluation of every user, and one CIESS iteration (a fresh
model trained for the paper's 5 epochs, evaluated, and the TD3 agents updated).

    python benchmarks/device_timings.py --manifest results/data/ml-1m/split/manifest.json \
        --device cuda --out timings.json

On the CPU, ``--threads 1 --model ngcf`` gives one core's unit costs of another base model
(docs/reference_profile.md prices the runs a CPU cannot afford with them). Used by
benchmarks/gpu_reference.sh; runs anywhere (``--device cpu``).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ciess.evaluate import evaluate  # noqa: E402
from ciess.models import build_model  # noqa: E402
from ciess.sampler import TripleSampler  # noqa: E402
from ciess.search.agent import TD3Settings  # noqa: E402
from ciess.search.env import SizeSearchEnv  # noqa: E402
from ciess.search.search import SearchSettings, run_search  # noqa: E402
from ciess.data.read_split import load_split  # noqa: E402
from ciess.train import TrainSettings, resolve_device, seed_everything, train_step  # noqa: E402


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def timed(fn, device: str) -> float:
    _sync(device)
    t0 = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t0


def measure(manifest: Path, device: str, model_name: str, search_epochs: float) -> dict:
    split = load_split(manifest)
    seed_everything(0)
    model = build_model(model_name, split.n_users, split.n_items, split.train, device=device)
    sampler = TripleSampler(split.train, 10_000, "user_uniform", 0)
    opt = torch.optim.Adam(model.parameters(), lr=0.03)
    per_epoch = split.batches_per_epoch(10_000)

    def epoch():
        for _ in range(per_epoch):
            train_step(model, opt, sampler, device)

    model.train()
    warm = timed(epoch, device)  # first epoch: allocator, kernels, caches
    epoch_s = timed(epoch, device)
    evaluate(model, split.train, split.valid, device=device)
    eval_s = timed(lambda: evaluate(model, split.train, split.valid, device=device), device)
    train = TrainSettings(device=device)
    env = SizeSearchEnv(split, model_name, np.ones(split.n_users), np.ones(split.n_items),
                        "epochs", search_epochs, train, {}, 0)
    settings = SearchSettings(episodes=1, iterations=1, td3=TD3Settings())
    iteration_s = timed(lambda: run_search(env, settings, 0, {}), device)
    out = {"device": device, "model": model_name, "dataset": split.name,
           "batches_per_epoch": per_epoch, "first_epoch_s": warm, "epoch_s": epoch_s,
           "eval_s": eval_s, "eval_per_epoch": eval_s / epoch_s,
           "ciess_iteration_s": iteration_s, "ciess_iteration_epochs": search_epochs,
           "torch": torch.__version__}
    if device == "cuda":
        out["gpu"] = torch.cuda.get_device_name(0)
        out["peak_gpu_mem_mb"] = torch.cuda.max_memory_allocated() / 2 ** 20
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--manifest", type=Path, required=True)
    p.add_argument("--device", default="auto")
    p.add_argument("--model", default="lightgcn")
    p.add_argument("--search-epochs", type=float, default=5.0, help="CIESS per-iteration budget")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for torch (default: torch's own choice)")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    result = measure(args.manifest, device, args.model, args.search_epochs)
    result["threads"] = torch.get_num_threads()
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
