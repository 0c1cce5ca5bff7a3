"""The one place where RecBole 1.2.1 is made to run on today's stack.

Import this module before any ``recbole`` import: the model modules (``ciess.models.graph``,
``ciess.models.neumf``), the RecBole bridge, the training loop and the CIESS agent do. Each fix
below names the breakage it handles; ``tests/test_compat.py`` has one test per item.

1. numpy 2 removed ``np.float_``, ``np.complex_`` and ``np.unicode_``; RecBole's
   ``Config.compatibility_settings`` reads them on every ``Config(...)`` (RecBole issue #2215).
2. SciPy >= 1.12 removed ``dok_matrix._update``; RecBole's LightGCN and NGCF build their
   adjacency with it (issues #2034, #2090, #2185). We restore it as a bulk dict update.
3. torch >= 2.6 defaults ``torch.load(weights_only=True)``; RecBole's Trainer pickles its whole
   ``Config`` into checkpoints and fails to reload them (issue #2212). We give RecBole's trainer
   module (only that module) a ``torch`` whose ``load`` passes ``weights_only=False``. These are
   checkpoints the same process has just written, never downloaded files. The patch is applied
   when that module is first imported (an import hook), so that jobs which never use RecBole's
   Trainer do not pay for importing it (and scikit-learn with it: ~1 s per job).
4. ``recbole.quick_start`` imports ray at module level (an old ray that fails on numpy 2). The suite
   never imports it: it calls ``Config``/``create_dataset``/``get_trainer`` directly. ``assert_no_quick_start``
   lets tests prove that.
5. (speed, not a breakage) ``recbole.model.general_recommender``'s ``__init__`` imports all
   of RecBole's ~30 general models, one of which imports scikit-learn: ~1 s in every training
   job, which needs three of them. The package is registered un-executed, so that importing
   ``recbole.model.general_recommender.lightgcn`` loads that module alone; the package's own
   ``__init__`` runs the first time anything asks the package for a name (``get_model``).
6. RecBole's ``setup.py`` pins conflict with today's packages; ``pyproject.toml`` installs
   ``recbole==1.2.1`` without its pins (see ``requirements/recbole.txt``) and lists the
   real dependencies itself.
7. (speed, not a breakage) torch's optimizers import ``torch._dynamo`` (the compiler, 1.4 s) on
   their first use, in every job that trains, although the suite never compiles: their
   ``__init__``/``zero_grad``/... and functional kernels are wrapped in ``torch._disable_dynamo``
   (imports it on the first call), and every ``step`` in ``_use_grad_for_differentiable`` (imports
   it to call ``graph_break()``, a no-op outside compilation). The wrapped functions are marked as
   already handled (the wrapper's own cache attribute), and ``step`` is replaced by the same
   grad-mode handling without the graph breaks; the optimizer's hooks and arithmetic are torch's
   own (tested: identical parameters). Skipped if ``torch._dynamo`` is already imported.
"""
from __future__ import annotations

import functools
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
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


TRAINER_MODULE = "recbole.trainer.trainer"


def _trust_trainer_loads(module) -> None:
    if not isinstance(module.torch, _TorchWithTrustedLoad):
        module.torch = _TorchWithTrustedLoad()


class _PatchTrainerOnImport(importlib.abc.MetaPathFinder):
    """Finds ``recbole.trainer.trainer`` as usual and patches it right after it executes."""

    def find_spec(self, name, path, target=None):
        if name != TRAINER_MODULE:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            _trust_trainer_loads(module)

        spec.loader.exec_module = exec_module
        return spec


def _patch_recbole_checkpoint_load() -> None:
    """Breakage 3: RecBole's own checkpoints hold its Config; let its trainer load them."""
    if TRAINER_MODULE in sys.modules:
        _trust_trainer_loads(sys.modules[TRAINER_MODULE])
    elif not any(isinstance(f, _PatchTrainerOnImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _PatchTrainerOnImport())


LAZY_PACKAGE = "recbole.model.general_recommender"


def _register_lazy_package(name: str) -> None:
    """Fix 5: put ``name`` in ``sys.modules`` without running its ``__init__`` until a name
    is looked up on it (submodules import through its ``__path__`` meanwhile)."""
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    module = importlib.util.module_from_spec(spec)
    loaded = []

    def __getattr__(attr):
        if loaded or attr.startswith("__"):
            raise AttributeError(f"module {name!r} has no attribute {attr!r}")
        loaded.append(True)
        spec.loader.exec_module(module)
        return getattr(module, attr)

    module.__getattr__ = __getattr__
    sys.modules[name] = module
    parent, _, child = name.rpartition(".")
    setattr(importlib.import_module(parent), child, module)


def assert_no_quick_start() -> None:
    """Breakage 4: the suite must never have imported ``recbole.quick_start`` (it imports ray)."""
    if "recbole.quick_start" in sys.modules:
        raise RuntimeError(
            "recbole.quick_start was imported; it imports ray, which breaks on numpy 2. "
            "Use recbole.config.Config / recbole.data.create_dataset / recbole.utils.get_trainer."
        )


_DYNAMO_DISABLE_WRAPPERS = (  # torch's wrappers that import torch._dynamo on their first call
    "_disable_dynamo.<locals>.inner",
    "_disable_dynamo_if_unsupported.<locals>.wrapper.<locals>.maybe_fallback")


def _mark_dynamo_disabled(attr) -> bool:
    """Give the function inside such a wrapper the wrapper's cache attribute, so that calling
    it runs the function (what the wrapper does outside compilation) without the import."""
    code, inner = getattr(attr, "__code__", None), getattr(attr, "__wrapped__", None)
    if code is None or inner is None or code.co_qualname not in _DYNAMO_DISABLE_WRAPPERS:
        return False
    if getattr(inner, "__dynamo_disable", None) is not None:
        return False
    inner.__dynamo_disable = inner
    return True


def _eager_step(step):
    """``_use_grad_for_differentiable`` without its ``torch._dynamo.graph_break()`` calls."""
    @functools.wraps(step)
    def eager_step(self, *args, **kwargs):
        previous = torch.is_grad_enabled()
        try:
            torch.set_grad_enabled(self.defaults["differentiable"])
            return step(self, *args, **kwargs)
        finally:
            torch.set_grad_enabled(previous)
    return eager_step


def _skip_dynamo_import_in_optimizers() -> int:
    """Item 7. Returns the number of optimizer functions changed."""
    if "torch._dynamo" in sys.modules:
        return 0
    import torch.optim

    changed = 0
    for value in list(vars(torch.optim).values()):
        if isinstance(value, types.ModuleType):  # functional kernels, e.g. torch.optim.adam.adam
            changed += sum(_mark_dynamo_disabled(f) for f in list(vars(value).values()))
        if not (isinstance(value, type) and issubclass(value, torch.optim.Optimizer)):
            continue
        for name, attr in list(vars(value).items()):
            code = getattr(attr, "__code__", None)
            if name == "step" and code is not None and \
                    code.co_qualname == "_use_grad_for_differentiable.<locals>._use_grad":
                setattr(value, name, _eager_step(attr.__wrapped__))
                changed += 1
            else:
                changed += _mark_dynamo_disabled(attr)
    return changed


def apply() -> None:
    """Apply every fix once. Safe to call repeatedly."""
    global _APPLIED
    if _APPLIED:
        return
    _patch_numpy_aliases()
    _patch_scipy_dok()
    _patch_recbole_checkpoint_load()
    _register_lazy_package(LAZY_PACKAGE)
    _skip_dynamo_import_in_optimizers()
    _APPLIED = True


apply()
