"""Rule preprocess_dataset: source files -> one interaction table + stats JSON."""
from pathlib import Path

from ciess.data.fetch import load_catalog, verify_or_refetch
from ciess.data.preprocess import PARSERS, check_published, drop_official_code_first_line, preprocess
from ciess.io import atomic_path, write_json
from ciess.jobs import start_job

sm = snakemake  # noqa: F821 (injected by Snakemake)
log = start_job(sm)
dataset = sm.wildcards.dataset
catalog = load_catalog(sm.params.catalog)
provenance = verify_or_refetch(catalog, dataset, sm.params.source_dir, sm.params.mirror)
raw = PARSERS[catalog[dataset]["parser"]](
    Path(sm.params.source_dir), provenance["form"], [f["path"] for f in provenance["files"]])
# only datasets whose catalog entry names the line an official code loses (ML-1M)
drop_first = sm.params.drop_official_code_first_line and \
    "official_code_first_line" in catalog[dataset]
if drop_first:
    raw = drop_official_code_first_line(raw, dataset, catalog[dataset], provenance["form"])
    log.info("%s: dropped the first rating, as the official code's header=0 read does", dataset)
table, stats = preprocess(raw, drop_duplicates=sm.params.drop_duplicates)
stats.update({"dataset": dataset, "source_form": provenance["form"], "source_note": provenance["note"],
              "published": catalog[dataset].get("published", {})})
check_published(stats, stats["published"], dataset, drop_first)
log.info("%s: %d users, %d items, %d interactions (published: %s); duplicates dropped: %d",
         dataset, stats["users"], stats["items"], stats["interactions"], stats["published"],
         stats["duplicates_dropped"])
with atomic_path(sm.output.table) as tmp:
    table.to_csv(tmp, sep="\t", index=False)
write_json(sm.output.stats, stats)
