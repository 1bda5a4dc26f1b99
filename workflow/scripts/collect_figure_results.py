"""Adapter: assemble a figure's runs and trajectories tables."""

from _bootstrap import start, table_provenance

log = start(snakemake)  # noqa: F821

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from implicit_reg.results import archive  # noqa: E402
from implicit_reg.arora2019 import tables  # noqa: E402
from implicit_reg.core import table_io  # noqa: E402

smk = snakemake  # noqa: F821
PROVENANCE = table_provenance(smk, "deep_factorization", "min_nuclear_norm", "min_nuclear_norm_sensing", "matrix_data")
plan = smk.params.plan
# A source is a training batch's tables or an archive entry holding both; each gives
# only the runs the plan reads from it (the same run id may sit, stale, elsewhere).
batch_runs, batch_trajectories = [], []
for source in plan["sources"]:
    wanted = set(source["run_ids"])
    runs_df = archive.read_table(source["runs"], "runs")
    traj_df = archive.read_table(source["trajectories"], "trajectories")
    batch_runs.append(runs_df[runs_df["run_id"].isin(wanted)])
    batch_trajectories.append(traj_df[traj_df["run_id"].isin(wanted)])
extra = [archive.read_table(s["row"], "row") for s in plan["convex_sources"]]
if plan["ground_truth_datasets"]:
    ground_truths = {Path(p).parent.name: np.load(p)["ground_truth"] for p in smk.input.ground_truths}
    extra.append(tables.ground_truth_rows(plan["ground_truth_datasets"], ground_truths))
runs, trajectories = tables.figure_tables(
    plan["figure"],
    plan["run_ids"],
    batch_runs,
    batch_trajectories,
    extra,
)
if plan["instance_labels"]:
    runs = tables.with_instance_columns(runs, plan["instance_labels"])
    trajectories = tables.with_instance_columns(trajectories, plan["instance_labels"])
    runs = tables.with_variant_copies(runs, plan.get("convex_variants", []))
log.info("%s: %d rows (%s), %d trajectory rows", plan["figure"], len(runs), runs["status"].value_counts().to_dict(), len(trajectories))
table_io.write_parquet(runs, smk.output.runs, PROVENANCE)
table_io.write_parquet(trajectories, smk.output.trajectories, PROVENANCE)
