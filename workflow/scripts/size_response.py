"""Rule size_response: validation quality and CIESS reward per uniform size and budget -> CSV."""
from ciess.io import atomic_path, load_npz
from ciess.jobs import start_job
from ciess.size_response import Budget, size_response
from ciess.data.read_split import load_split
from ciess.train import TrainSettings

sm = snakemake  # noqa: F821
log = start_job(sm, computes=True)
split = load_split(sm.input.manifest)
peak = load_npz(sm.input.peak, ("user_quality", "item_quality"))
table = size_response(split, sm.wildcards.model, TrainSettings.from_config(sm.params.train),
                      sm.params.model_overrides, peak["user_quality"], peak["item_quality"],
                      sm.params.sizes, [Budget.from_config(b) for b in sm.params.budgets],
                      sm.params.lam, sm.params.reward["quality"], sm.params.reward["memory"],
                      int(sm.wildcards.seed))
with atomic_path(sm.output.table) as tmp:
    table.to_csv(tmp, index=False)
