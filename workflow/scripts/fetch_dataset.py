"""Rule fetch_dataset: verify (and if needed download) one dataset's source files."""
from ciess.data.fetch import fetch_dataset, load_catalog
from ciess.jobs import start_job

sm = snakemake  # noqa: F821 (injected by Snakemake)
log = start_job(sm)
provenance = fetch_dataset(load_catalog(sm.params.catalog), sm.wildcards.dataset,
                           sm.output.source_dir, mirror=sm.params.mirror)
log.info("fetched %s as form %s", sm.wildcards.dataset, provenance["form"])
