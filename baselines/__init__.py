"""Embedding-size methods behind one small interface, registered by name.

A method is one function, registered with ``@register("name")``::

    def make_masks(ctx: MethodContext, targets: list[int | None]) -> dict[int | None, Mask]

``targets`` are the target sparsities in percent the profile asks for (e.g. [80, 90, 95]), or
``None`` for the method's native mode (it then reports whatever sparsity it reaches). The method
returns one mask (``ciess.masks``) per target; the workflow checks each budget and saves the
masks. Methods that search once for all budgets (PEP) do so in one call. Retraining and
evaluation always go through the common ``retrain_masked`` rule. See docs/adding_a_method.md.
"""
from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ciess.labels import budget_label, method_label
from ciess.masks import D_MAX, check_budget
from ciess.models.registry import gmf_dense, model_spec
from ciess.progress import Progress
from ciess.data.read_split import SplitData


@dataclass
class MethodContext:
    split: SplitData
    model: str  # a registered base model (ciess.models.registry)
    seed: int
    params: dict = field(default_factory=dict)  # the method's own config block (`params:`)
    train: dict = field(default_factory=dict)  # the shared training settings (config `train:`)
    model_overrides: dict = field(default_factory=dict)
    full_run_dir: Path | None = None  # pretrained full model, when the method asks for it
    init_state_path: Path | None = None  # where a rewinding method saves its initial tables
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("baselines"))

    @property
    def n_tables(self) -> int:
        return model_spec(self.model).n_tables

    def train_settings(self):
        from ciess.train import TrainSettings

        return TrainSettings.from_config(self.train)

    def validation_score(self, mask, tag: str) -> tuple[float, int]:
        """Validation AVG of ``mask``'s model trained on train (early stopping on validation),
        and the step it peaked at: the shared loop; test is never evaluated."""
        import dataclasses

        from ciess.train import initial_model, resolve_device, train_model

        settings = self.train_settings()
        settings = dataclasses.replace(settings, device=resolve_device(settings.device))
        model = initial_model(self.model, self.split, self.split.train, mask, self.seed,
                              settings.device, self.model_overrides)
        outcome = train_model(model, self.split, settings, self.seed, target="valid", tag=tag)
        return float(outcome.best_valid.means["avg"]), int(outcome.best_step)

    def meta(self, method: str, target_pct: int | None, **extra) -> dict:
        return {"dataset": self.split.name, "model": self.model, "method": method,
                "target_sparsity": None if target_pct is None else target_pct / 100,
                "seed": self.seed, "d_max": D_MAX, **extra}

    def save_init_state(self, tables: dict) -> None:
        """Save the step-0 embedding tables ({name: nn.Embedding or tensor}) that retraining
        rewinds to (needs the method's `rewind: true`)."""
        from ciess.init_state import save_tables

        if self.init_state_path is None:
            raise RuntimeError("this method rewinds, but its config block lacks `rewind: true`")
        save_tables(tables, self.init_state_path)

    def rewindable_start(self, model_overrides: dict | None = None):
        """The model a rewinding method (PEP, OptEmb) searches from, seeded and built full-size,
        and its embedding tables ({name: nn.Embedding}), whose values it saves as the step-0
        tables: a function of split, model, overrides and seed, so ``python -m
        ciess.init_state`` rebuilds the file where a snapshot left it out.
        ``model_overrides``: the search's own (default: the context's)."""
        from ciess.init_state import search_start

        model, tables = search_start(
            self.model, self.split, self.seed, self.train_settings().device,
            self.model_overrides if model_overrides is None else model_overrides)
        self.save_init_state(tables)
        return model, tables


MakeMasks = Callable[[MethodContext, list], dict]
REGISTRY: dict[str, MakeMasks] = {}  # name -> make_masks
PARAMS: dict[str, dict | None] = {}  # name -> its `params:` keys and defaults (None: unchecked)
LABELS: dict[str, tuple[str, bool]] = {}  # name -> (table label, has a native mode)
DENSE_GMF: set[str] = set()  # methods that implement NeuMF's `mask_gmf: false`
DEVICE_TESTS: dict[str, tuple[list, dict]] = {}  # name -> (targets, params) on a tiny split


def builtin_modules() -> tuple[str, ...]:
    """Every module of this package: each registers one built-in method when imported."""
    import pkgutil

    return tuple(f"{__name__}.{m.name}" for m in pkgutil.iter_modules(__path__)
                 if not m.name.startswith("_"))


def builtin_methods() -> list[str]:
    """The names the built-in modules register (importing them)."""
    for mod in builtin_modules():
        importlib.import_module(mod)
    return sorted(n for n, fn in REGISTRY.items() if fn.__module__.startswith(f"{__name__}."))


def register(name: str, params: dict | None = None, label: str | None = None,
             native_mode: bool = False, dense_gmf: bool = False,
             device_test: tuple[list, dict] | None = None) -> Callable[[MakeMasks], MakeMasks]:
    """Register ``make_masks`` under ``name``. ``params``: every key its config `params:` block
    may set, with defaults; other keys are refused at DAG start (None: no check). ``label``: how
    tables and figures name it (default: the name). ``native_mode``: the method also runs
    without a target (budget ``native``); its budgeted runs are then labelled "<label>-B".
    ``dense_gmf``: it implements NeuMF's `mask_gmf: false` (GMF tables dense at the widest
    size, only the MLP tables sized; the workflow refuses that setting for other methods).
    ``device_test``: (targets, params) that run it in seconds on a tiny split, for
    tests/test_devices.py (default: budget 80 with its default params)."""
    def wrap(fn: MakeMasks) -> MakeMasks:
        if name in REGISTRY and REGISTRY[name] is not fn:
            raise ValueError(f"method '{name}' is registered twice")
        REGISTRY[name] = fn
        PARAMS[name] = params
        LABELS[name] = (label or name, native_mode)
        if dense_gmf:
            DENSE_GMF.add(name)
        DEVICE_TESTS[name] = device_test or ([80], {})
        return fn
    return wrap


def table_label(name: str, budget: str, module: str | None = None) -> str:
    """A registered method's label in tables, e.g. ES, ESAPN (native), ESAPN-B (budgeted)."""
    get_method(name, module)
    base, native_mode = LABELS[name]
    return method_label(base, budget, native_mode)


def get_method(name: str, module: str | None = None) -> MakeMasks:
    """The registered method ``name``. Imports ``module`` (a method outside this package) or, by
    convention, ``baselines.<name>``, whose import registers it."""
    for mod in (*builtin_modules(), module or f"baselines.{name}"):
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if module is not None or exc.name != mod:
                raise
    if name not in REGISTRY:
        raise KeyError(f"no embedding-size method '{name}' is registered (known: {sorted(REGISTRY)}); "
                       "give its module in the config (`module:`)")
    return REGISTRY[name]


def dense_gmf_methods(methods: dict) -> list[str]:
    """Of the config's ``methods`` blocks, those that implement NeuMF's `mask_gmf: false`."""
    for name, spec in methods.items():
        get_method(name, (spec or {}).get("module"))
    return sorted(set(methods) & DENSE_GMF)


def method_params(name: str, given: dict, module: str | None = None) -> dict:
    """The method's defaults updated with ``given``; an unknown key is an error naming it."""
    get_method(name, module)
    known = PARAMS.get(name)
    if known is None:
        return dict(given)
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise KeyError(f"config methods.{name}.params: unknown key(s) {unknown} "
                       f"(known: {sorted(known)})")
    return {**known, **given}


def run_method(name: str, ctx: MethodContext, budgets: list, module: str | None = None):
    """Run a registered method for the budgets of its config entry (target sparsities in percent,
    or "native") and check every mask against its budget with the one budget rule
    (``masks.check_budget``). Yields (budget label c80 / native, mask with ``params``/
    ``sparsity``/``method_label`` in its meta, account)."""
    targets = [None if b in (None, "native") else int(b) for b in budgets]
    masks = get_method(name, module)(ctx, targets)
    gmf = gmf_dense(ctx.model, ctx.model_overrides)
    for target in targets:
        budget = budget_label(target)
        if target not in masks:
            raise RuntimeError(f"method {name} returned no mask for budget {budget}")
        mask = masks[target]
        acct = check_budget(mask, target, ctx.n_tables, gmf, f"{name} mask for budget {budget}")
        mask.meta.update({"params": acct["params"], "sparsity": acct["sparsity"],
                          "method_label": table_label(name, budget, module)})
        yield budget, mask, acct


def choose_on_validation(ctx: MethodContext, targets: list, name: str, key: str, grid: list,
                         mask_for) -> dict:
    """Per budget, the grid value of ``key`` whose mask ``mask_for(pct, value, meta)`` trains
    to the best validation AVG (``validation_score``; one value needs no choice). The chosen
    mask's meta records the value, the grid and every value's validation AVG and best step."""
    if None in targets:
        raise ValueError(f"{name}: no native mode: give target sparsities")
    if not grid or len(set(grid)) != len(grid):
        raise ValueError(f"config methods.{name}.params.{key}s: give distinct {key}s, got {grid}")
    progress = Progress(len(targets) * len(grid) if len(grid) > 1 else 0)
    out = {}
    for pct in targets:
        scores = {}  # value -> (validation AVG, best step)
        for value in grid if len(grid) > 1 else []:
            mask = mask_for(pct, value, {})
            scores[value] = ctx.validation_score(mask, tag=f"[{name} {pct}% {key} {value}] ")
            progress.advance()
            ctx.log.info("%s %d%% %s %g: valid AVG %.5f at step %d (%d/%d candidates, %.0fs, "
                         "ETA %s)", name, pct, key, value, *scores[value], progress.done,
                         progress.total, progress.elapsed_s, progress.eta())
        best = max(scores, key=lambda v: scores[v][0]) if scores else grid[0]
        out[pct] = mask_for(pct, best, ctx.meta(name, pct, **{
            key: best, f"{key}_grid": grid,
            f"valid_avg_by_{key}": {str(v): sc[0] for v, sc in scores.items()},
            f"best_step_by_{key}": {str(v): sc[1] for v, sc in scores.items()}}))
        ctx.log.info("%s %d%%: %s %g chosen on validation; user sizes mean %.2f, max %d; item "
                     "sizes mean %.2f, max %d", name, pct, key, best, out[pct].user.mean(),
                     out[pct].user.max(), out[pct].item.mean(), out[pct].item.max())
    return out
