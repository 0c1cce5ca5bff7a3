"""Rule ciess_search: one CIESS search (episodes x iterations) -> search_log.csv + masks.npz."""
import numpy as np
import torch

from ciess.io import atomic_path, load_npz
from ciess.logs import setup_rule_logging
from ciess.search.agent import TD3Settings
from ciess.search.env import SizeSearchEnv
from ciess.search.search import SearchSettings, run_search
from ciess.split_data import load_split
from ciess.train import TrainSettings, resolve_device

log = setup_rule_logging(snakemake.log[0])  # noqa: F821
sm = snakemake  # noqa: F821
wc = sm.wildcards
torch.set_num_threads(sm.threads)
p = sm.params.search
split = load_split(sm.input.manifest)
peak = load_npz(sm.input.peak, ("user_quality", "item_quality"))
train = TrainSettings.from_config({**sm.params.train, "device": resolve_device(sm.params.train["device"])})
env = SizeSearchEnv(split, wc.model, peak["user_quality"], peak["item_quality"],
                    p["budget"]["unit"], p["budget"]["value"], train, sm.params.model_overrides,
                    int(wc.seed))
settings = SearchSettings(
    episodes=p["episodes"], iterations=p["iterations"], lam=sm.params.lam,
    reward_quality=p["reward"]["quality"], reward_memory=p["reward"]["memory"],
    noise=sm.params.noise, noise_scope=p["noise_scope"], noise_position=p["noise_position"],
    random_walk=sm.params.random_walk, walk_threshold=p["walk"]["threshold"],
    walk_steps=p["walk"]["steps"], init_quality=p["init_quality"],
    noise_params=p["noise_params"], td3=TD3Settings(**p["td3"]),
)
log.info("CIESS search %s/%s seed %s: %s; %d batches per iteration", split.name, wc.model,
         wc.seed, settings, env.batches)
labels = {"dataset": split.name, "model": wc.model, "seed": int(wc.seed), "lambda": sm.params.lam,
          "noise": sm.params.noise, "random_walk": sm.params.random_walk,
          "budget_unit": p["budget"]["unit"], "budget_value": p["budget"]["value"],
          "reward_quality": p["reward"]["quality"], "reward_memory": p["reward"]["memory"]}
out = run_search(env, settings, int(wc.seed), labels)
t = out.log[["t_train_s", "t_eval_s", "t_rl_s"]].sum()
log.info("time split: train %.1fs, evaluate %.1fs, RL %.1fs (RL share %.1f%%)", t.t_train_s,
         t.t_eval_s, t.t_rl_s, 100 * t.t_rl_s / t.sum())
with atomic_path(sm.output.masks) as tmp:
    with open(tmp, "wb") as fh:
        np.savez_compressed(fh, episode=out.log["episode"].to_numpy(),
                            iteration=out.log["iteration"].to_numpy(),
                            user_sizes=out.user_sizes, item_sizes=out.item_sizes)
with atomic_path(sm.output.log_csv) as tmp:
    out.log.to_csv(tmp, index=False)
