"""Checkpoint ciess_candidates: the top-l masks of one search that meet one budget."""
from ciess.logs import setup_rule_logging
from ciess.search.steps import write_candidates

log = setup_rule_logging(snakemake.log[0])  # noqa: F821
sm = snakemake  # noqa: F821
write_candidates(sm.input.log_csv, sm.output.candidates, int(sm.wildcards.budget[1:]),
                 sm.wildcards.pool, sm.params.l, sm.params.eligibility, sm.params.budgets,
                 sm.params.allow_not_reached, log)
