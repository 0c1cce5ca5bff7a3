"""Checkpoint ciess_candidates: the top-l masks of one search that meet one budget."""
from ciess.jobs import start_job
from ciess.search.selective_retraining import write_candidates

sm = snakemake  # noqa: F821
log = start_job(sm)
write_candidates(sm.input.log_csv, sm.output.candidates, sm.params.target_pct, sm.wildcards.pool,
                 sm.params.episodes, sm.params.top_l, sm.params.eligibility, sm.params.budgets,
                 sm.params.allow_not_reached, log)
