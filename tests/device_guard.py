"""A CPU-only guard against device mixing: every tensor the suite's own code creates from
scratch must name its device.

On a CPU-only machine a tensor created without ``device=`` lands on the CPU like everything
else, so a method that would mix CPU and CUDA tensors on a GPU runs fine here. The guard makes
that class of bug fail on the CPU too: it watches torch's factory functions (``zeros``, ``full``,
``arange``, ``as_tensor``, ...) and records each call made *directly from the suite's modules*
(``ciess/``, ``baselines/``) without an explicit ``device``. Calls inside torch or RecBole are
not ours to fix and are ignored; a module built on the CPU and then moved with ``.to(device)``
is fine, since ``.to`` moves every parameter and buffer. It also records every ``.numpy()`` the
suite's code calls without ``.cpu()`` on the same line (a CUDA tensor has no ``.numpy()``).
"""
from __future__ import annotations

import inspect
import linecache
from pathlib import Path

import torch
from torch.overrides import TorchFunctionMode

REPO = Path(__file__).resolve().parents[1]
WATCHED = tuple(str(REPO / d) + "/" for d in ("ciess", "baselines"))
FACTORIES = {torch.zeros, torch.ones, torch.full, torch.empty, torch.arange, torch.tensor,
             torch.as_tensor, torch.rand, torch.randn, torch.randint, torch.eye, torch.linspace,
             torch.randperm, torch.zeros_like, torch.ones_like}
INHERITS = {torch.zeros_like, torch.ones_like}  # device of the input unless told otherwise


class DeviceGuard(TorchFunctionMode):
    def __init__(self, watched: tuple[str, ...] = WATCHED):
        super().__init__()
        self.watched = watched
        self.violations: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        factory = func in FACTORIES and func not in INHERITS and kwargs.get("device") is None
        if factory or func is torch.Tensor.numpy:
            caller = inspect.currentframe().f_back
            name = caller.f_code.co_filename
            if name.startswith(self.watched):
                path = Path(name)
                where = f"{path.relative_to(REPO) if path.is_relative_to(REPO) else path}:" \
                        f"{caller.f_lineno}"
                if factory:
                    self.violations.append(f"torch.{func.__name__} without device at {where}")
                elif ".cpu().numpy()" not in linecache.getline(name, caller.f_lineno):
                    self.violations.append(f".numpy() without .cpu() at {where}")
        return func(*args, **kwargs)
