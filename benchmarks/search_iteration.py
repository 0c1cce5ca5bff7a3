"""The cost of one CIESS search iteration on real data, at 1 and 2 threads, in one run.

    python benchmarks/search_iteration.py results/data/ml-1m/split/manifest.json \\
        results/reference/ml-1m-lightgcn/search/ml-1m/lightgcn/ciess-g-rw-lam0.4/seed0/masks.npz

Replays executed masks of a finished search (its first and its 145th iteration by default)
through the search's own environment (a fresh model, the per-iteration budget of 5 epochs,
validation scoring; the reference profile's `train:`), and prints train and evaluation seconds
per iteration and the 1-to-2-thread ratio. 97% of a search is this training (README, Speed).
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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("manifest")
    p.add_argument("masks", help="a search's masks.npz")
    p.add_argument("--rows", type=int, nargs="+", default=[0, 144])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--profile", type=Path, default=Path("config/reference.yaml"),
                   help="the profile whose train: block the search's iterations use")
    args = p.parse_args(argv)
    split = load_split(args.manifest)
    with np.load(args.masks) as m:
        masks = [(int(m["episode"][r]), int(m["iteration"][r]), m["user_sizes"][r],
                  m["item_sizes"][r]) for r in args.rows]
    env = SizeSearchEnv(split, "lightgcn", np.ones(split.n_users), np.ones(split.n_items),
                        "epochs", 5, train_settings(args.profile),
                        {}, 0)
    mean = {}
    for threads in args.threads:
        torch.set_num_threads(threads)
        times = []
        for episode, iteration, users, items in masks:
            t0 = time.perf_counter()
            step = env.step(users, items, episode, iteration)
            times.append(step.t_train)
            print(f"threads {threads}, e{episode}i{iteration} (widest {max(users.max(), items.max())}):"
                  f" train {step.t_train:.1f} s, evaluate {step.t_eval:.2f} s, wall "
                  f"{time.perf_counter() - t0:.1f} s", flush=True)
        mean[threads] = float(np.mean(times))
    if len(mean) > 1:
        a, b = min(mean), max(mean)
        print(f"train per iteration: {mean[a]:.1f} s at {a} thread(s), {mean[b]:.1f} s at {b}: "
              f"{mean[a] / mean[b]:.2f}x; 200 iterations at {b}: {200 * mean[b] / 60:.0f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
