"""Rule ciess_candidate_mask: the mask of one (episode, iteration) of a search, as a mask file."""
from ciess.logs import setup_rule_logging
from ciess.search.steps import write_candidate_mask

log = setup_rule_logging(snakemake.log[0])  # noqa: F821
sm = snakemake  # noqa: F821
wc = sm.wildcards
meta = dict(dataset=wc.dataset, model=wc.model, method=f"ciess-{wc.search}", seed=int(wc.seed))
write_candidate_mask(sm.input.masks, int(wc.episode), int(wc.iteration), sm.output.mask, meta, log)
