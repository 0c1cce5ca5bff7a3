"""Rule aggregate_results: every run's metrics -> results.csv, Table 1 and Table 2 (CSV, LaTeX)."""
import pandas as pd

from ciess.io import atomic_path, write_text
from ciess.jobs import start_job
from ciess.report.reports import (beside_paper, collect, format_table, provenance_table, summarise,
                                  table1_rows, table2_rows)
from ciess.report.tables import to_longtable, wide_table

sm = snakemake  # noqa: F821 (injected by Snakemake)
log = start_job(sm)
results = collect(sm.input.metrics, sm.params.allow_mixed_settings, sm.params.main_recipe)
ok = results[results["status"] == "ok"]
hashes = ok.groupby(["dataset", "model", "method", "budget"])["settings_hash"].nunique()
for cell in hashes[hashes > 1].index:  # only with allow_mixed_settings: true (else refused)
    log.warning("%s: seeds made with different settings averaged (allow_mixed_settings)",
                "/".join(cell))
with atomic_path(sm.output.results) as tmp:
    results.to_csv(tmp, index=False)
log.info("%d metric files -> %d rows; statuses: %s", len(sm.input.metrics), len(results),
         results.drop_duplicates("file")["status"].value_counts().to_dict())
provenance = provenance_table(sm.input.metrics)
with atomic_path(sm.output.provenance) as tmp:
    provenance.to_csv(tmp, index=False)
log.info("provenance: %d runs, git revisions %s, devices %s", len(provenance),
         provenance["git_revision"].unique().tolist(), provenance["device"].unique().tolist())
paper = pd.read_csv(sm.input.paper)
default_lambda = sm.params.default_lambda
for name, rows, variants in (("table1", table1_rows(results, default_lambda), ()),
                             ("table2", table2_rows(results, default_lambda),
                              ("noise", "random_walk"))):
    merged = format_table(beside_paper(summarise(results, rows), paper, name),
                          ["dataset", "model", "budget", "metric"])
    with atomic_path(sm.output[f"{name}_csv"]) as tmp:
        merged.to_csv(tmp, index=False)
    write_text(sm.output[f"{name}_tex"], to_longtable(
        wide_table(merged, variants), f"{name.capitalize()}: this suite beside Qu et al., "
        "SIGIR'23,", name))
    log.info("%s: %d cells with our values, %d with the paper's", name, merged["mean"].notna().sum(),
             merged["paper"].notna().sum())
