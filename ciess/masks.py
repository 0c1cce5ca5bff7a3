"""One mask format and one parameter account, used by every method, rule and report.

A mask keeps, per entity, either a *prefix* of its embedding row (``sizes``: CIESS, ES, MR,
ESAPN, OptEmb) or an arbitrary set of entries (``elements``: PEP). File format (``.npz``):

=================  ==========================================================================
field              meaning
=================  ==========================================================================
``kind``           ``"sizes"`` or ``"elements"``
``user_sizes``     (sizes) uint8 vector, one size in [0, d_max] per user
``item_sizes``     (sizes) uint8 vector, one size in [0, d_max] per item
``user_mask``      (elements) bool, users x d_max (one mask for all of the model's tables) or
                   tables x users x d_max (one per table, e.g. PEP on NeuMF's GMF and MLP)
``item_mask``      (elements) bool, items x d_max or tables x items x d_max
``meta``           JSON string: dataset, model, d_max, target_sparsity (or null for native
                   modes), method, seed, and anything the method wants to record
=================  ==========================================================================

Parameter account (docs/protocol.md §5): params = non-zeros of the masked user + item tables, summed
over the model's tables (NeuMF has a GMF and an MLP pair: n_tables = 2); sparsity =
1 - params / (d_max * (U + I) * n_tables). A mask meets budget c% iff
100 * params <= (100 - c) * d_max * (U + I) * n_tables (integers, no rounding).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ciess.io import atomic_path, load_npz

D_MAX = 128
KINDS = ("sizes", "elements")


class MaskFileError(ValueError):
    """A mask file is malformed; the message names the file and the field."""


@dataclass
class Mask:
    kind: str
    user: np.ndarray  # sizes: (U,) uint8; elements: (U, d_max) bool
    item: np.ndarray
    meta: dict = field(default_factory=dict)

    @property
    def d_max(self) -> int:
        return int(self.meta.get("d_max", D_MAX))

    @property
    def per_table(self) -> bool:
        """True when an elements mask holds one matrix per table (tables x entities x d_max)."""
        return self.kind == "elements" and self.user.ndim == 3

    @property
    def n_users(self) -> int:
        return self.user.shape[-2] if self.per_table else len(self.user)

    @property
    def n_items(self) -> int:
        return self.item.shape[-2] if self.per_table else len(self.item)

    def dense(self, which: str, table: int = 0) -> np.ndarray:
        """The 0/1 matrix (entities x d_max) of ``which`` in {"user", "item"} for ``table``."""
        arr = self.user if which == "user" else self.item
        if self.kind == "sizes":
            return np.arange(self.d_max)[None, :] < arr.astype(np.int64)[:, None]
        return (arr[table] if self.per_table else arr).astype(bool)

    def row_nnz(self, which: str) -> np.ndarray:
        """Kept entries per entity, summed over the tables a per-table mask holds."""
        arr = self.user if which == "user" else self.item
        if self.kind == "sizes":
            return arr.astype(np.int64)
        return (arr.sum(axis=(0, 2)) if self.per_table else arr.sum(axis=1)).astype(np.int64)


def checked_sizes(sizes, which: str, d_max: int = D_MAX) -> np.ndarray:
    """Sizes as uint8 after checking them *before* the cast (a cast would wrap 300 to 44 and
    NaN to 0): finite integers in [0, d_max], not all zero."""
    arr = np.asarray(sizes)
    if arr.ndim != 1:
        raise MaskFileError(f"{which} sizes must be a vector, got shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise MaskFileError(f"{which} sizes must be numbers, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating):
        bad = ~np.isfinite(arr) | (arr != np.round(arr))
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise MaskFileError(f"{which} sizes must be integers; {which} {k} has {arr[k]}")
    if len(arr) and (arr.min() < 0 or arr.max() > d_max):
        k = int(np.argmax((arr < 0) | (arr > d_max)))
        raise MaskFileError(f"{which} sizes must lie in [0, {d_max}]; {which} {k} has {arr[k]}")
    if len(arr) and not arr.any():
        raise MaskFileError(f"every {which} size is 0: the model could only rank by tie-breaking")
    return arr.astype(np.uint8)


def sizes_mask(user_sizes, item_sizes, **meta) -> Mask:
    meta.setdefault("d_max", D_MAX)
    d_max = int(meta["d_max"])
    return Mask("sizes", checked_sizes(user_sizes, "user", d_max),
                checked_sizes(item_sizes, "item", d_max), meta)


def elements_mask(user_mask, item_mask, **meta) -> Mask:
    meta.setdefault("d_max", D_MAX)
    return Mask("elements", np.asarray(user_mask, bool), np.asarray(item_mask, bool), meta)


# ---------------------------------------------------------------------------- accounting

def count_params(mask: Mask, n_tables: int = 1, gmf_dense_at_max: bool = False) -> int:
    """Non-zeros of the masked tables.

    ``gmf_dense_at_max`` is NeuMF's code option (docs/ciess.md §3): the MLP tables follow the mask and
    the GMF tables are dense at width max(size) for every entity.
    """
    per_table = int(mask.row_nnz("user").sum() + mask.row_nnz("item").sum())
    if mask.per_table:
        if mask.user.shape[0] != n_tables:
            raise ValueError(f"mask has {mask.user.shape[0]} tables, the model counts {n_tables}")
        return per_table
    if gmf_dense_at_max:
        if n_tables != 2 or mask.kind != "sizes":
            raise ValueError("gmf_dense_at_max applies to NeuMF (n_tables=2) with a sizes mask")
        widest = int(max(mask.user.max(initial=0), mask.item.max(initial=0)))
        return per_table + (mask.n_users + mask.n_items) * widest
    return per_table * n_tables


def capacity(n_users: int, n_items: int, n_tables: int = 1, d_max: int = D_MAX) -> int:
    return d_max * (n_users + n_items) * n_tables


def sparsity(params: int, n_users: int, n_items: int, n_tables: int = 1, d_max: int = D_MAX) -> float:
    return 1.0 - params / capacity(n_users, n_items, n_tables, d_max)


def budget_params(target_pct: int, n_users: int, n_items: int, n_tables: int = 1,
                  d_max: int = D_MAX) -> int:
    """The largest parameter count that meets ``target_pct`` (e.g. 90 for 90% sparsity)."""
    return (100 - int(target_pct)) * capacity(n_users, n_items, n_tables, d_max) // 100


def within_budget(params, capacity_, target_pct: int):
    """The one budget rule, in integers: 100 params <= (100 - c) capacity (scalars or arrays)."""
    return 100 * params <= (100 - int(target_pct)) * capacity_


def meets_budget(params: int, target_pct: int, n_users: int, n_items: int, n_tables: int = 1,
                 d_max: int = D_MAX) -> bool:
    return within_budget(params, capacity(n_users, n_items, n_tables, d_max), target_pct)


def check_budget(mask: Mask, target_pct: int | None, n_tables: int, gmf_dense_at_max: bool,
                 where: str) -> dict:
    """The mask's account, after checking it meets ``target_pct`` % sparsity (None: no target)."""
    acct = account(mask, n_tables, gmf_dense_at_max)
    if target_pct is not None and not meets_budget(acct["params"], target_pct, mask.n_users,
                                                   mask.n_items, n_tables, mask.d_max):
        raise MaskFileError(f"{where}: sparsity {acct['sparsity']:.4f} ({acct['params']} "
                            f"parameters) does not meet the budget of {target_pct}% sparsity")
    return acct


def account(mask: Mask, n_tables: int = 1, gmf_dense_at_max: bool = False) -> dict:
    params = count_params(mask, n_tables, gmf_dense_at_max)
    sp_ = sparsity(params, mask.n_users, mask.n_items, n_tables, mask.d_max)
    return {"params": params, "sparsity": sp_, "density": 1.0 - sp_,
            "capacity": capacity(mask.n_users, mask.n_items, n_tables, mask.d_max)}


# ---------------------------------------------------------------------------- file format

def save_mask(path: str | Path, mask: Mask, n_users: int | None = None,
              n_items: int | None = None) -> None:
    """Validate (against the split's counts when given) and write atomically."""
    validate_mask(mask, str(path), n_users, n_items)
    arrays = ({"user_sizes": mask.user.astype(np.uint8), "item_sizes": mask.item.astype(np.uint8)}
              if mask.kind == "sizes" else
              {"user_mask": mask.user.astype(bool), "item_mask": mask.item.astype(bool)})
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, kind=np.array(mask.kind), meta=np.array(json.dumps(mask.meta)),
                                **arrays)


def validate_mask(mask: Mask, where: str, n_users: int | None = None,
                  n_items: int | None = None) -> None:
    def fail(fld, why):
        raise MaskFileError(f"{where}: field '{fld}': {why}")

    if mask.kind not in KINDS:
        fail("kind", f"must be one of {KINDS}, got {mask.kind!r}")
    d_max = mask.d_max
    for which, arr, expected_n in (("user", mask.user, n_users), ("item", mask.item, n_items)):
        fld = f"{which}_sizes" if mask.kind == "sizes" else f"{which}_mask"
        if mask.kind == "sizes":
            if arr.ndim != 1:
                fail(fld, f"must be a vector, got shape {arr.shape}")
            if not np.issubdtype(arr.dtype, np.integer):
                fail(fld, f"must be integers, got dtype {arr.dtype}")
            if len(arr) and (arr.min() < 0 or arr.max() > d_max):
                fail(fld, f"sizes must lie in [0, {d_max}], got [{arr.min()}, {arr.max()}]")
            if len(arr) and not arr.any():
                fail(fld, "every size is 0: the model could only rank by tie-breaking")
        else:
            if arr.ndim not in (2, 3) or arr.shape[-1] != d_max:
                fail(fld, f"must have shape (n, {d_max}) or (tables, n, {d_max}), got {arr.shape}")
            if arr.dtype != bool:
                fail(fld, f"must be bool, got dtype {arr.dtype}")
        rows = arr.shape[-2] if (mask.kind == "elements" and arr.ndim == 3) else len(arr)
        if expected_n is not None and rows != expected_n:
            fail(fld, f"has {rows} rows but the split has {expected_n} {which}s")


def load_mask(path: str | Path, n_users: int | None = None, n_items: int | None = None) -> Mask:
    """Load and validate a mask file; errors name the file and the field."""
    path = Path(path)
    try:
        data = load_npz(path)
    except ValueError as exc:
        raise MaskFileError(str(exc)) from exc
    if "kind" not in data:
        raise MaskFileError(f"{path}: field 'kind' is missing")
    kind = str(data["kind"])
    names = ("user_sizes", "item_sizes") if kind == "sizes" else ("user_mask", "item_mask")
    if kind not in KINDS:
        raise MaskFileError(f"{path}: field 'kind': must be one of {KINDS}, got {kind!r}")
    for name in (*names, "meta"):
        if name not in data:
            raise MaskFileError(f"{path}: field '{name}' is missing")
    try:
        meta = json.loads(str(data["meta"]))
    except json.JSONDecodeError as exc:
        raise MaskFileError(f"{path}: field 'meta': not valid JSON ({exc})") from exc
    mask = Mask(kind, data[names[0]], data[names[1]], meta)
    validate_mask(mask, str(path), n_users, n_items)
    return mask


def proportional_sizes(weight: np.ndarray, budget: int, d_max: int = D_MAX,
                       who: str = "sizes") -> np.ndarray:
    """Integer sizes in [1, d_max] proportional to ``weight`` (> 0) with sum(sizes) <= budget,
    as close to it as the size range allows: the largest factor λ whose floored sizes
    clip(floor(λ·w), 1, d_max) fit, then one more dimension each for the entities with the
    largest rounding remainders. The budget counts one table (callers divide by n_tables).
    MDE's popularity-power sizes and the budget-held CIESS search (docs/ciess.md §18) use it."""
    weight = np.asarray(weight, dtype=np.float64)
    n = len(weight)
    if n == 0 or not np.all(weight > 0):
        raise ValueError(f"{who}: weights must be positive, one per entity")
    if budget < n:
        raise ValueError(f"{who}: budget {budget} leaves less than one dimension per entity ({n})")
    if budget >= n * d_max:
        return np.full(n, d_max, dtype=np.int64)

    def floored(lam: float) -> np.ndarray:
        return np.clip(np.floor(lam * weight), 1, d_max).astype(np.int64)

    lo, hi = 0.0, d_max / weight.min()  # floored(lo).sum() <= budget, floored(hi) is all d_max
    for _ in range(200):
        mid = (lo + hi) / 2
        if floored(mid).sum() <= budget:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-12 * hi:
            break
    sizes = floored(lo)
    slack = int(budget - sizes.sum())
    if slack > 0:  # the largest rounding remainders among entities that can still grow
        remainder = np.where(sizes < d_max, lo * weight - sizes, -np.inf)
        order = np.argsort(-remainder, kind="stable")[:slack]
        sizes[order[np.isfinite(remainder[order])]] += 1
    return sizes


def repair_to_budget(sizes: np.ndarray, budget: int, rng: np.random.Generator,
                     per_size: int = 1) -> np.ndarray:
    """Decrement random distinct entities with size > 1 until sum(sizes) * per_size <= budget
    (MR's repair; OptEmb-B repairs its infeasible candidates the same way)."""
    sizes = sizes.copy()
    while sizes.sum() * per_size > budget:
        excess = -(-(sizes.sum() * per_size - budget) // per_size)
        shrinkable = np.flatnonzero(sizes > 1)
        if len(shrinkable) == 0:
            raise ValueError("budget below one dimension per entity")
        pick = rng.choice(shrinkable, min(excess, len(shrinkable)), replace=False)
        sizes[pick] -= 1
    return sizes
