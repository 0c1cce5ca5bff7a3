"""Run stock RecBole on the suite's materialised split: the benchmarks' stock-versus-masked
comparisons and the tests' cross-check of our evaluation against RecBole's (not a library module:
no rule uses it).

RecBole reads the split files through ``benchmark_filename`` and re-maps their tokens to its own
ids (0 is padding). ``SuiteModelForRecBole`` lets RecBole's Trainer evaluate a suite model by
translating ids both ways.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from ciess import compat  # noqa: F401  (must precede every recbole import)
from recbole.config import Config
from recbole.data import create_dataset, data_preparation

def recbole_config(split_dir: str | Path, dataset: str, model, overrides: dict | None = None,
                   workdir: str | Path | None = None) -> Config:
    split_dir = Path(split_dir).resolve()
    workdir = Path(workdir or ".").resolve()
    # RecBole reads data_path/<name>/<name>.<part>.inter. The name gets a prefix because RecBole
    # silently swaps data_path for its bundled example when the dataset is called "ml-100k".
    name = f"suite_{dataset}"
    folder = workdir / "recbole_data" / name
    folder.mkdir(parents=True, exist_ok=True)
    for part in ("train", "valid", "test"):
        link = folder / f"{name}.{part}.inter"
        if not link.exists():
            link.symlink_to(split_dir / f"{dataset}.{part}.inter")
    params = {
        "data_path": str(folder.parent), "benchmark_filename": ["train", "valid", "test"],
        "load_col": {"inter": ["user_id", "item_id"]}, "device": "cpu", "use_gpu": False,
        "show_progress": False, "save_dataset": False, "save_dataloaders": False,
        "metrics": ["Recall", "NDCG"], "topk": [5, 10, 20], "valid_metric": "NDCG@20",
        "eval_args": {"split": None, "order": "RO", "group_by": "user", "mode": "full"},
        "train_neg_sample_args": {"distribution": "uniform", "sample_num": 1},
        "state": "ERROR", "log_wandb": False, "reproducibility": True, "seed": 0,
        "checkpoint_dir": str(workdir / "recbole_saved"),
    }
    params.update(overrides or {})
    return Config(model=model, dataset=name, config_dict=params)


def recbole_data(cfg: Config):
    dataset = create_dataset(cfg)
    train, valid, test = data_preparation(cfg, dataset)
    return dataset, train, valid, test


class SuiteModelForRecBole(nn.Module):
    """A suite model seen through RecBole ids: ``full_sort_predict`` in RecBole's item order."""

    def __init__(self, suite_model: nn.Module, dataset):
        super().__init__()
        self.suite = suite_model
        self.USER_ID, self.ITEM_ID = dataset.uid_field, dataset.iid_field
        user_tokens = dataset.field2id_token[self.USER_ID]
        item_tokens = dataset.field2id_token[self.ITEM_ID]
        # RecBole id -> suite id (padding id 0 -> -1)
        self.register_buffer("user_map", torch.tensor([-1] + [int(t) for t in user_tokens[1:]]))
        self.register_buffer("item_map", torch.tensor([-1] + [int(t) for t in item_tokens[1:]]))

    def full_sort_predict(self, interaction):
        users = self.user_map[interaction[self.USER_ID]]
        scores = self.suite.score_users(users)
        out = torch.full((len(users), len(self.item_map)), -torch.inf)
        out[:, 1:] = scores[:, self.item_map[1:]]
        return out.view(-1)

    def calculate_loss(self, interaction):  # RecBole's Trainer wants it; never called here
        raise NotImplementedError("SuiteModelForRecBole is for evaluation only")
