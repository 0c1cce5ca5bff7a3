"""The cost of one CIESS search iteration on real data, at 1 and 2 threads, in one run.

    python benchmarks/search_iteration.py results/data/ml-1m/split/manifest.json \\
        results/reference/ml-1m-lightgcn/search/ml-1m/lightgcn/ciess-g-rw-lam0.4/seed0/masks.npz

Replays executed masks of a finished search (its first and its 145th iteration by default)
through the search's own environment (a fresh model, the per-iteration budget of 5 epochs,
validation scoring; the reference profile's `train:`), and prints train and evaluation seconds
per iteration and the 1-to-2-thread ratio. 97% of a search is this training (README, Speed).
``--epochs 5 2`` replays them at each per-iteration budget (the `held_short` recipe trains 2,
docs/ciess.md §18.6) and prints the ratio; the last line times the negative sampling of one
5-epoch iteration with the training-pair bitmap and with the binary search it replaced
(ciess/sampler.py; the same triples).
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from ciess.data.read_split import load_split
from pathlib import Path

from ciess.heldout_symmetry import train_settings
from ciess.search.env import SizeSearchEnv


def sampling_ratio(split, batches: int = 255, batch: int = 10_000) -> str:
    """Negative sampling of one 5-epoch ML-1M iteration, bitmap against binary search."""
    import ciess.sampler

    seconds = {}
    for name, cells in (("bitmap", ciess.sampler.BITMAP_MAX_CELLS), ("binary search", 0)):
        saved, ciess.sampler.BITMAP_MAX_CELLS = ciess.sampler.BITMAP_MAX_CELLS, cells
        try:
            sampler = ciess.sampler.TripleSampler(split.train, batch, "user_uniform", 0)
        finally:
            ciess.sampler.BITMAP_MAX_CELLS = saved
        t0 = time.perf_counter()
        for _ in range(batches):
            sampler.sample()
        seconds[name] = time.perf_counter() - t0
    return (f"sampling {batches} batches of {batch:,}: bitmap {seconds['bitmap']:.2f} s, binary "
            f"search {seconds['binary search']:.2f} s: {seconds['binary search'] / seconds['bitmap']:.1f}x")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("manifest")
    p.add_argument("masks", help="a search's masks.npz")
    p.add_argument("--rows", type=int, nargs="+", default=[0, 144])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--epochs", type=float, nargs="+", default=[5],
                   help="per-iteration training budgets to replay (epochs)")
    p.add_argument("--profile", type=Path, default=Path("config/reference.yaml"),
                   help="the profile whose train: block the search's iterations use")
    args = p.parse_args(argv)
    split = load_split(args.manifest)
    with np.load(args.masks) as m:
        masks = [(int(m["episode"][r]), int(m["iteration"][r]), m["user_sizes"][r],
                  m["item_sizes"][r]) for r in args.rows]
    mean = {}
    for epochs in args.epochs:
        env = SizeSearchEnv(split, "lightgcn", np.ones(split.n_users), np.ones(split.n_items),
                            "epochs", epochs, train_settings(args.profile), {}, 0)
        for threads in args.threads:
            torch.set_num_threads(threads)
            times = []
            for episode, iteration, users, items in masks:
                t0 = time.perf_counter()
                step = env.step(users, items, episode, iteration)
                times.append(step.t_train)
                print(f"{epochs:g} epochs, threads {threads}, e{episode}i{iteration} (widest "
                      f"{max(users.max(), items.max())}): train {step.t_train:.1f} s, evaluate "
                      f"{step.t_eval:.2f} s, wall {time.perf_counter() - t0:.1f} s", flush=True)
            mean[epochs, threads] = float(np.mean(times))
    for epochs in args.epochs:
        if len(args.threads) > 1:
            a, b = min(args.threads), max(args.threads)
            print(f"{epochs:g} epochs: train per iteration {mean[epochs, a]:.1f} s at {a} "
                  f"thread(s), {mean[epochs, b]:.1f} s at {b}: {mean[epochs, a] / mean[epochs, b]:.2f}x; "
                  f"200 iterations at {b}: {200 * mean[epochs, b] / 60:.0f} min")
    if len(args.epochs) > 1:
        hi, lo = max(args.epochs), min(args.epochs)
        for threads in args.threads:
            print(f"threads {threads}: {lo:g} epochs train in {mean[lo, threads] / mean[hi, threads]:.2f}"
                  f" of {hi:g} epochs' time")
    print(sampling_ratio(split))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
