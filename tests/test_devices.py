"""Every method, a CIESS search and the common retraining on every device torch offers.

On the CPU each case also runs under ``DeviceGuard`` (tests/device_guard.py), which fails on
the class of bug that only shows on a GPU: a tensor the suite creates without naming its device,
or a ``.numpy()`` without ``.cpu()``. On CUDA (where present) the cases run for real; without
CUDA they are skipped with a visible reason.
"""
from __future__ import annotations

import importlib.util
import logging

import numpy as np
import pytest
import torch

from baselines import DEVICE_TESTS, MethodContext, builtin_methods, get_method
from ciess.masks import sizes_mask
from ciess.search.agent import TD3Settings
from ciess.search.env import SizeSearchEnv
from ciess.search.search import SearchSettings, run_search
from ciess.train import TrainSettings, run_masked_training
from device_guard import DeviceGuard
from helpers import random_split

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device here: the CUDA cases run on a GPU "
                                          "machine (benchmarks/gpu_reference.sh)"))]
TRAIN = {"batch_size": 256, "sampler": "user_uniform", "eval_every": 5, "patience": 2,
         "max_batches": 10, "eval_batch_users": 64}
# every registered built-in method, with the tiny settings it declares in register()
METHODS = {name: DEVICE_TESTS[name] for name in builtin_methods()}


def _guarded(device):
    """The guard on the CPU (where mixing cannot show), nothing on CUDA (where it would crash)."""
    return DeviceGuard() if device == "cpu" else _NoGuard()


class _NoGuard:
    violations: list = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_guard_flags_a_deviceless_tensor_and_a_numpy_without_cpu(tmp_path):
    src = tmp_path / "module_under_guard.py"
    src.write_text("import torch\n"
                   "def bad():\n    return torch.zeros(3), torch.zeros(2, device='cpu').numpy()\n"
                   "def good():\n    return torch.zeros(2, device='cpu').cpu().numpy()\n")
    spec = importlib.util.spec_from_file_location("module_under_guard", src)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    with DeviceGuard(watched=(str(tmp_path) + "/",)) as guard:
        mod.good()
    assert guard.violations == []
    with DeviceGuard(watched=(str(tmp_path) + "/",)) as guard:
        mod.bad()
    assert guard.violations == [f"torch.zeros without device at {src}:3",
                                f".numpy() without .cpu() at {src}:3"]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("model", ["lightgcn", "neumf"])
@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_makes_its_masks_on_the_device(method, model, device, tmp_path):
    targets, params = METHODS[method]
    ctx = MethodContext(split=random_split(), model=model, seed=0, params=params,
                        train={**TRAIN, "device": device}, log=logging.getLogger("test"))
    ctx.init_state_path = tmp_path / "init.pt"
    with _guarded(device) as guard:
        masks = get_method(method)(ctx, targets)
    assert set(masks) == set(targets)
    assert guard.violations == []


@pytest.mark.parametrize("device", DEVICES)
def test_a_ciess_search_runs_on_the_device(device):
    split = random_split()
    env = SizeSearchEnv(split, "ngcf", np.full(split.n_users, 0.5), np.full(split.n_items, 0.5),
                        "batches", 2, TrainSettings(**TRAIN, device=device), {}, 0)
    settings = SearchSettings(episodes=1, iterations=2, td3=TD3Settings(hidden=16, batch_size=32))
    with _guarded(device) as guard:
        out = run_search(env, settings, 0, {})
    assert len(out.log) == 2 and guard.violations == []


@pytest.mark.parametrize("device", DEVICES)
def test_a_budget_held_search_executes_masks_at_its_budgets(device):
    split = random_split()
    env = SizeSearchEnv(split, "lightgcn", np.full(split.n_users, 0.5),
                        np.full(split.n_items, 0.5), "batches", 1,
                        TrainSettings(**TRAIN, device=device), {}, 0)
    settings = SearchSettings(episodes=3, iterations=1, held_budgets=(80, 90, 95),
                              td3=TD3Settings(hidden=16, batch_size=32))
    with _guarded(device) as guard:
        out = run_search(env, settings, 0, {})
    assert out.log["held_budget"].tolist() == [80, 90, 95] and guard.violations == []
    for target, sp in zip((80, 90, 95), out.log["sparsity"]):
        assert target / 100 <= sp < target / 100 + 0.01


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("model", ["lightgcn", "ngcf", "neumf"])
def test_retraining_runs_on_the_device(model, device):
    split = random_split()
    mask = sizes_mask(np.full(split.n_users, 8), np.full(split.n_items, 4))
    with _guarded(device) as guard:
        rec = run_masked_training(split, model, mask, 0, TrainSettings(**TRAIN, device=device),
                                  "merge_fixed")["record"]
    assert rec["device"] == device and 0 <= rec["test"]["recall@20"] <= 1
    assert guard.violations == []
