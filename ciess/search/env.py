"""The CIESS environment: one iteration = a fresh masked recommender, trained for a fixed
budget through the suite's shared path, evaluated on validation (docs/ciess.md §4-7)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ciess.masks import D_MAX, account, sizes_mask
from ciess.models import build_model, gmf_dense
from ciess.models.registry import model_spec
from ciess.data.read_split import SplitData
from ciess.train import TrainSettings, seed_everything, train_model

REWARD_QUALITY = ("ratio", "raw")
REWARD_MEMORY = ("size_squared", "size_minus_one_squared")  # (d/128)^2 (paper) | ((d-1)/128)^2 (code)


def encode_popularity(freq: np.ndarray) -> np.ndarray:
    lo, hi = freq.min(), freq.max()
    return np.zeros(len(freq)) if hi == lo else 2.0 * (freq - lo) / (hi - lo) - 1.0


def encode_size(sizes: np.ndarray) -> np.ndarray:
    return 2.0 * (sizes - 1.0) / (D_MAX - 1) - 1.0


def quality_ratio(evals: np.ndarray, peak: np.ndarray) -> np.ndarray:
    """q_n = min(eval_n / max(peak_n, 1e-5), 1) (Eq. 7)."""
    return np.minimum(evals / np.maximum(peak, 1e-5), 1.0)


def reward(evals: np.ndarray, q: np.ndarray, sizes: np.ndarray, lam: float, quality: str,
           memory: str) -> np.ndarray:
    """Paper (Eq. 10): q - lam (d / d_max)^2. Code: eval - lam ((d - 1) / 128)^2."""
    if quality not in REWARD_QUALITY or memory not in REWARD_MEMORY:
        raise ValueError(f"reward.quality in {REWARD_QUALITY}, reward.memory in {REWARD_MEMORY}")
    gain = q if quality == "ratio" else evals
    cost = (sizes / D_MAX) ** 2 if memory == "size_squared" else ((sizes - 1.0) / D_MAX) ** 2
    return gain - lam * cost


def carve_holdout(train: sp.csr_matrix, fraction: float, seed: int
                  ) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Per user, round(fraction · n_u) of the training interactions, at random (at least one,
    and none for a user with fewer than 2, who keeps all), move to a hold-out (docs/ciess.md
    §18). Returns (the rest of train, the hold-out)."""
    if not 0.0 < fraction < 0.5:
        raise ValueError(f"ciess.search_holdout must lie in (0, 0.5), got {fraction}")
    train = train.tocsr()
    rng = np.random.default_rng(seed)
    rows, cols = [], []
    for u in range(train.shape[0]):
        items = train.indices[train.indptr[u]:train.indptr[u + 1]]
        if len(items) < 2:
            continue
        k = max(1, int(round(fraction * len(items))))
        rows += [u] * k
        cols += list(rng.choice(items, k, replace=False))
    holdout = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=train.shape)
    rest = (train - holdout.astype(train.dtype)).tocsr()
    rest.eliminate_zeros()
    return rest, holdout


@dataclass
class StepResult:
    user_eval: np.ndarray
    item_eval: np.ndarray
    means: dict
    account: dict
    t_train: float
    t_eval: float


class SizeSearchEnv:
    """``holdout`` = 0 (paper): iterations are scored on the validation split against the Full
    run's per-entity validation quality (``peak_user``/``peak_item``). ``holdout`` > 0 (suite,
    docs/ciess.md §18): that fraction of each user's training interactions is carved out once,
    iterations train on the rest and are scored on the carve-out, and the peak is a dense
    (size 128) model's carve-out quality at the same per-iteration budget, so the search never
    reads validation (pass ``peak_user = peak_item = None``)."""

    def __init__(self, split: SplitData, model_name: str, peak_user: np.ndarray | None,
                 peak_item: np.ndarray | None, budget_unit: str, budget_value: float,
                 train: TrainSettings, model_overrides: dict, seed: int, holdout: float = 0.0):
        if budget_unit not in ("epochs", "batches"):
            raise ValueError(f"budget.unit must be 'epochs' or 'batches', got {budget_unit!r}")
        self.holdout = float(holdout)
        if self.holdout:
            if peak_user is not None or peak_item is not None:
                raise ValueError("a hold-out search computes its own peak: pass None")
            rest, carved = carve_holdout(split.train, self.holdout, seed)
            split = SplitData(f"{split.name}/search-holdout", split.n_users, split.n_items,
                              rest, carved, split.test, split.manifest_sha256)
        elif peak_user is None or peak_item is None:
            raise ValueError("a search scored on validation needs the Full run's peak quality")
        self.split, self.model_name, self.seed = split, model_name, seed
        self.peak_user, self.peak_item = peak_user, peak_item
        per_epoch = split.batches_per_epoch(train.batch_size)
        self.batches = int(round(budget_value * per_epoch)) if budget_unit == "epochs" \
            else int(budget_value)
        if self.batches < 1:
            raise ValueError("the per-iteration budget must be at least one batch")
        self.train = TrainSettings(**{**train.__dict__, "eval_every": self.batches,
                                      "max_batches": self.batches})
        self.overrides = model_overrides
        self.pop_user = encode_popularity(np.asarray(split.train.sum(axis=1)).ravel())
        self.pop_item = encode_popularity(np.asarray(split.train.sum(axis=0)).ravel())
        self.gmf_dense = gmf_dense(model_name, model_overrides)
        self.n_tables = model_spec(model_name).n_tables
        if self.holdout:
            dense = self.step(np.full(split.n_users, D_MAX), np.full(split.n_items, D_MAX), 0, 0)
            self.peak_user, self.peak_item = dense.user_eval, dense.item_eval

    def sparsity(self, user_sizes: np.ndarray, item_sizes: np.ndarray) -> float:
        """Sparsity of a size allocation under the one account (docs/protocol.md §5)."""
        return account(sizes_mask(user_sizes, item_sizes), self.n_tables, self.gmf_dense)["sparsity"]

    def state(self, sizes: np.ndarray, q: np.ndarray, which: str) -> np.ndarray:
        pop = self.pop_user if which == "user" else self.pop_item
        return np.stack([pop, encode_size(sizes), 2.0 * q - 1.0], axis=1).astype(np.float32)

    def step(self, user_sizes: np.ndarray, item_sizes: np.ndarray, episode: int,
             iteration: int) -> StepResult:
        """Train a fresh model with these sizes and evaluate it on validation."""
        run_seed = (self.seed * 1_000_003 + episode * 1_009 + iteration) % (2**31)
        seed_everything(run_seed)
        mask = sizes_mask(user_sizes, item_sizes)
        model = build_model(self.model_name, self.split.n_users, self.split.n_items,
                            self.split.train, self.overrides, self.train.device, mask,
                            narrow=True)
        outcome = train_model(model, self.split, self.train, run_seed, fixed_steps=self.batches,
                              tag=f"[e{episode} i{iteration}] ")
        res = outcome.best_valid
        return StepResult(res.user_quality, res.item_quality, res.means,
                          account(mask, model.n_tables, self.gmf_dense),
                          outcome.seconds_train, outcome.seconds_eval)
