"""Rule ciess_search: one CIESS search (episodes x iterations) -> search_log.csv + masks.npz."""
from pathlib import Path

from ciess.io import load_npz
from ciess.jobs import start_job
from ciess.labels import DEFAULT_RECIPE, Search
from ciess.search.env import SizeSearchEnv
from ciess.search.search import SearchSettings, run_search, write_search
from ciess.data.read_split import load_split
from ciess.train import TrainSettings

sm = snakemake  # noqa: F821
log = start_job(sm, computes=True)
wc, ciess = sm.wildcards, sm.params.ciess
split = load_split(sm.input.manifest)
holdout = ciess["search_holdout"]  # > 0: scored on a carve-out of train, own peak (§18)
peak = {"user_quality": None, "item_quality": None} if holdout else \
    load_npz(sm.input.peak, ("user_quality", "item_quality"))
env = SizeSearchEnv(split, wc.model, peak["user_quality"], peak["item_quality"],
                    ciess["budget"]["unit"], ciess["budget"]["value"],
                    TrainSettings.from_config(sm.params.train), sm.params.model_overrides,
                    int(wc.seed), holdout)
search = Search(**sm.params.search)
settings = SearchSettings.from_config(ciess, search)
log.info("CIESS search %s/%s seed %s: %s; %d batches per iteration", split.name, wc.model,
         wc.seed, settings, env.batches)
labels = {"dataset": split.name, "model": wc.model, "seed": int(wc.seed), "lambda": search.lam,
          "recipe": search.recipe or DEFAULT_RECIPE, "noise": search.noise,
          "random_walk": search.random_walk, "hold_budget": ciess["hold_budget"],
          "search_holdout": holdout,
          "budget_unit": ciess["budget"]["unit"], "budget_value": ciess["budget"]["value"],
          "reward_quality": ciess["reward"]["quality"], "reward_memory": ciess["reward"]["memory"]}
# resume.pt: the search's state after each episode (and this job's log so far: Snakemake deletes
# the log before it reruns a job); a stopped search resumes from it, its log restored
checkpoint = Path(sm.output.log_csv).with_name("resume.pt")
write_search(run_search(env, settings, int(wc.seed), labels, checkpoint, Path(sm.log[0])),
             sm.output.log_csv, sm.output.masks, log)
checkpoint.unlink(missing_ok=True)
