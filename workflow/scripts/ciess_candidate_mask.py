"""Rule ciess_candidate_mask: candidate k of a budget as a mask file in the shared format."""
from ciess.logs import setup_rule_logging
from ciess.search.steps import write_candidate_mask

log = setup_rule_logging(snakemake.log[0])  # noqa: F821
sm = snakemake  # noqa: F821
wc = sm.wildcards
meta = dict(dataset=wc.dataset, model=wc.model, method=f"ciess-{wc.search}", pool=wc.pool,
            target_sparsity=int(wc.budget[1:]) / 100, seed=int(wc.seed))
write_candidate_mask(sm.input.candidates, sm.input.masks, int(wc.k), sm.output.mask, meta, log)
