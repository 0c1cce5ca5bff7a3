"""Rule ciess_select: the retrained candidate best on validation is the reported result."""
from ciess.jobs import start_job
from ciess.search.selective_retraining import write_selection

sm = snakemake  # noqa: F821
log = start_job(sm)
wc = sm.wildcards
labels = dict(dataset=wc.dataset, model=wc.model, budget=wc.budget, seed=int(wc.seed),
              **sm.params.description)
write_selection(sm.input.candidates, sm.input.metrics, sm.output.metrics, sm.output.selection,
                sm.params.method, labels, log)
