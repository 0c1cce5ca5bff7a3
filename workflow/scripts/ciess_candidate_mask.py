"""Rule ciess_candidate_mask: the mask of one (episode, iteration) of a search, as a mask file."""
from ciess.jobs import start_job
from ciess.labels import ciess_method
from ciess.search.selective_retraining import write_candidate_mask

sm = snakemake  # noqa: F821
log = start_job(sm)
wc = sm.wildcards
meta = dict(dataset=wc.dataset, model=wc.model, method=ciess_method(wc.search), seed=int(wc.seed))
write_candidate_mask(sm.input.masks, int(wc.episode), int(wc.iteration), sm.output.mask, meta, log)
