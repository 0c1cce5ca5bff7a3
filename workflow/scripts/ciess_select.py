"""Rule ciess_select: the retrained candidate best on validation is the reported result."""
from ciess.logs import setup_rule_logging
from ciess.search.steps import write_selection

log = setup_rule_logging(snakemake.log[0])  # noqa: F821
sm = snakemake  # noqa: F821
wc = sm.wildcards
labels = dict(dataset=wc.dataset, model=wc.model, budget=wc.budget, seed=int(wc.seed))
write_selection(sm.input.candidates, sm.input.metrics, sm.output.metrics, sm.output.selection,
                sm.params.method, labels, log)
