"""The one place where RecBole 1.2.1 is made to run on today's stack.

Import this module before any ``recbole`` import (``ciess/__init__.py`` does it).
Each fix below names the breakage it handles; ``tests/test_compat.py`` has one test per item.

1. numpy 2 removed ``np.float_``, ``np.complex_`` and ``np.unicode_``; RecBole's
   ``Config.compatibility_settings`` reads them on every ``Config(...)`` (RecBole issue #2215).
2. SciPy >= 1.12 removed ``dok_matrix._update``; RecBole's LightGCN and NGCF build their
   adjacency with it (issues #2034, #2090, #2185). We restore it as a bulk dict update.
3. torch >= 2.6 defaults ``torch.load(weights_only=True)``; RecBole's Trainer pickles its whole
   ``Config`` into checkpoints and fails to reload them (issue #2212). We give RecBole's trainer
   module (only that module) a ``torch`` whose ``load`` passes ``weights_only=False``. These are
   checkpoints the same process has just written, never downloaded files.
4. ``recbole.quick_start`` imports ray at module level (an old ray that fails on numpy 2). The suite
   never imports it: it calls ``Config``/``create_dataset``/``get_trainer`` directly. ``assert_no_quick_start``
   lets tests prove that.
5. RecBole's ``setup.py`` pins conflict with today's packages; ``pyproject.toml`` installs
   ``recbole==1.2.1`` without its pins (see ``requirements/recbole-no-deps.txt``) and lists the
   real dependencies itself.
"""
from __future__ import annotations

import functools
import sys
import types

import numpy as np
import scipy.sparse as sp
import torch

_APPLIED = False


def _patch_numpy_aliases() -> None:
    """Breakage 1: restore the aliases numpy 2 removed (values are the numpy 1 meanings)."""
    for name, value in (("float_", np.float64), ("complex_", np.complex128), ("unicode_", np.str_)):
        if not hasattr(np, name):
            setattr(np, name, value)


def _dok_update(self, data) -> None:
    """Bulk-insert ``{(row, col): value}`` like the removed ``dok_matrix._update``."""
    self._dict.update(data)


def _patch_scipy_dok() -> None:
    """Breakage 2: give ``dok_matrix`` its ``_update`` back."""
    if not hasattr(sp.dok_matrix, "_update"):
        sp.dok_matrix._update = _dok_update


class _TorchWithTrustedLoad(types.ModuleType):
    """``torch`` as seen by RecBole's trainer module: everything delegated, ``load`` trusted."""

    def __init__(self) -> None:
        super().__init__("torch")
        self.load = functools.partial(torch.load, weights_only=False)

    def __getattr__(self, name):
        return getattr(torch, name)


def _patch_recbole_checkpoint_load() -> None:
    """Breakage 3: RecBole's own checkpoints hold its Config; let its trainer load them."""
    import recbole.trainer.trainer as recbole_trainer

    if not isinstance(recbole_trainer.torch, _TorchWithTrustedLoad):
        recbole_trainer.torch = _TorchWithTrustedLoad()


def assert_no_quick_start() -> None:
    """Breakage 4: the suite must never have imported ``recbole.quick_start`` (it imports ray)."""
    if "recbole.quick_start" in sys.modules:
        raise RuntimeError(
            "recbole.quick_start was imported; it imports ray, which breaks on numpy 2. "
            "Use recbole.config.Config / recbole.data.create_dataset / recbole.utils.get_trainer."
        )


def apply() -> None:
    """Apply every fix once. Safe to call repeatedly."""
    global _APPLIED
    if _APPLIED:
        return
    _patch_numpy_aliases()
    _patch_scipy_dok()
    _patch_recbole_checkpoint_load()
    _APPLIED = True


apply()
