"""Rule fetch_dataset: verify (and if needed download) one dataset's source files."""
from ciess.data.fetch import fetch_dataset, load_catalog
from ciess.logs import setup_rule_logging

log = setup_rule_logging(snakemake.log[0])  # noqa: F821 (injected by Snakemake)
sm = snakemake  # noqa: F821
provenance = fetch_dataset(load_catalog(sm.params.catalog), sm.wildcards.dataset,
                           sm.output.source_dir, mirror=sm.params.mirror)
log.info("fetched %s as form %s", sm.wildcards.dataset, provenance["form"])
