"""Rule size_response: validation quality and CIESS reward per uniform size and budget -> CSV."""
import torch

from ciess.io import atomic_path, load_npz
from ciess.logs import setup_rule_logging
from ciess.size_response import Budget, size_response
from ciess.split_data import load_split
from ciess.train import TrainSettings, resolve_device

log = setup_rule_logging(snakemake.log[0])  # noqa: F821
sm = snakemake  # noqa: F821
torch.set_num_threads(sm.threads)
split = load_split(sm.input.manifest)
peak = load_npz(sm.input.peak, ("user_quality", "item_quality"))
train = TrainSettings.from_config({**sm.params.train,
                                   "device": resolve_device(sm.params.train["device"])})
table = size_response(split, sm.wildcards.model, train, sm.params.model_overrides,
                      peak["user_quality"], peak["item_quality"], sm.params.sizes,
                      [Budget.from_config(b) for b in sm.params.budgets], sm.params.lam,
                      sm.params.reward["quality"], sm.params.reward["memory"],
                      int(sm.wildcards.seed))
with atomic_path(sm.output.table) as tmp:
    table.to_csv(tmp, index=False)
