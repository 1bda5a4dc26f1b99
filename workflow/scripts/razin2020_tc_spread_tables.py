"""Adapter: the instance spread of a tensor figure (runs and summary, with an instance column)."""

from _bootstrap import start, table_provenance

log = start(snakemake)  # noqa: F821


from implicit_reg.results import archive  # noqa: E402
from implicit_reg.core import table_io  # noqa: E402
from implicit_reg.razin2020 import spread_tables  # noqa: E402
from implicit_reg.razin2020 import tables as rt  # noqa: E402

smk = snakemake  # noqa: F821
PROVENANCE = table_provenance(smk, "tensor_completion", "cp_rank")
# Archived jobs may predate the column convention: upgrade_columns renames their columns.
linear_paths = list(getattr(smk.input, "linear", []))
runs = spread_tables.spread_runs([rt.upgrade_columns(archive.read_table(p, "runs")) for p in smk.input.runs],
                                 list(smk.params.variants),
                                 [rt.upgrade_columns(archive.read_table(p, "row")) for p in linear_paths],
                                 list(smk.params.linear_instances))
summary = spread_tables.spread_summary(runs)
table_io.write_parquet(runs, smk.output.runs, PROVENANCE)
table_io.write_parquet(summary, smk.output.summary, PROVENANCE)
for variant, g in runs.groupby("variant", sort=True):
    log.info("%s, spread %s: %d runs over %d instances", smk.wildcards.figure, variant, len(g), g["instance"].nunique())
