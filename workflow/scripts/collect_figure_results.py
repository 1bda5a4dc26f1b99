"""Adapter: assemble a figure's runs and trajectories tables."""

from _bootstrap import start, table_provenance

log = start(snakemake)  # noqa: F821

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from implicit_reg import tables  # noqa: E402

smk = snakemake  # noqa: F821
PROVENANCE = table_provenance(smk, "deep_factorization", "min_nuclear_norm", "matrix_data")
plan = smk.params.plan
extra = [pd.read_parquet(p) for p in smk.input.convex]
if plan["ground_truth_datasets"]:
    ground_truths = {Path(p).parent.name: np.load(p)["ground_truth"] for p in smk.input.ground_truths}
    extra.append(tables.ground_truth_rows(plan["ground_truth_datasets"], ground_truths))
runs, trajectories = tables.figure_tables(
    plan["figure"],
    plan["run_ids"],
    [pd.read_parquet(p) for p in smk.input.batch_runs],
    [pd.read_parquet(p) for p in smk.input.batch_trajectories],
    extra,
)
log.info("%s: %d rows (%s), %d trajectory rows", plan["figure"], len(runs), runs["status"].value_counts().to_dict(), len(trajectories))
tables.write_parquet(runs, smk.output.runs, PROVENANCE)
tables.write_parquet(trajectories, smk.output.trajectories, PROVENANCE)
