"""Adapter: the instance spread of a tensor figure (runs and summary, with an instance column)."""

from _bootstrap import start, table_provenance

log = start(snakemake)  # noqa: F821

import pandas as pd  # noqa: E402

from implicit_reg import archive  # noqa: E402
from implicit_reg import razin_tables as rt  # noqa: E402
from implicit_reg import tables  # noqa: E402

smk = snakemake  # noqa: F821
PROVENANCE = table_provenance(smk, "tensor_completion", "cp_rank")
runs = rt.spread_runs([archive.read_table(p, "runs") for p in smk.input.runs])
summary = rt.spread_summary(runs)
tables.write_parquet(runs, smk.output.runs, PROVENANCE)
tables.write_parquet(summary, smk.output.summary, PROVENANCE)
log.info("%s: %d runs over %d instances", smk.wildcards.figure, len(runs), runs["instance"].nunique())
