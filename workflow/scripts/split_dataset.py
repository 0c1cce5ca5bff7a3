"""Rule split_dataset: per-user 50/25/25 split, written once with a sha256 manifest."""
from pathlib import Path

import pandas as pd

from ciess.data.fetch import load_catalog
from ciess.data.split import split_per_user, write_split
from ciess.io import read_json
from ciess.jobs import start_job

sm = snakemake  # noqa: F821 (injected by Snakemake)
log = start_job(sm)
table = pd.read_csv(sm.input.table, sep="\t")
stats = read_json(sm.input.stats)
allow_empty = load_catalog(sm.params.catalog)[sm.wildcards.dataset].get("allow_empty_split_parts", False)
parts, summary = split_per_user(table, ratios=sm.params.ratios, seed=sm.params.seed,
                                allow_empty_parts=allow_empty)
if summary["users_with_empty_part"]:
    log.warning("%d users have an empty train/valid/test part (allowed for this dataset)",
                summary["users_with_empty_part"])
manifest = write_split(parts, Path(sm.output.manifest).parent, sm.wildcards.dataset, stats,
                       sm.params.seed, sm.params.ratios, summary)
log.info("split %s: %s (manifest %s)", sm.wildcards.dataset,
         {k: v["rows"] for k, v in manifest["files"].items()}, manifest["manifest_sha256"])
