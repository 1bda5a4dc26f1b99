"""Adapter: a tensor completion figure's tables (runs, trajectories, summary).

The linear and ground-truth rows are computed once per data set (and n) and
shared by every figure that uses the data set; here they get the figure name.
"""

from _bootstrap import start, table_provenance

log = start(snakemake)  # noqa: F821

import pandas as pd  # noqa: E402

from implicit_reg.results import archive  # noqa: E402
from implicit_reg.core import table_io  # noqa: E402
from implicit_reg.razin2020 import tables as rt  # noqa: E402

smk = snakemake  # noqa: F821
PROVENANCE = table_provenance(smk, "tensor_completion", "cp_rank")
figure = smk.params.spec["figure"]
# Archived jobs may predate the column convention: upgrade_columns renames their columns.
parts = [rt.upgrade_columns(archive.read_table(p, "runs")) for p in smk.input.train_runs]
parts += [rt.upgrade_columns(archive.read_table(p, "row")) for p in [*smk.input.linear, *smk.input.ground_truth]]
runs = pd.concat(parts, ignore_index=True)[rt.TC_RUN_COLUMNS]
runs["figure"] = figure
runs = rt.sort_tc(runs)
traj = pd.concat([rt.upgrade_columns(archive.read_table(p, "trajectories")) for p in smk.input.train_trajectories],
                 ignore_index=True)
summary = rt.tc_summary(runs)
table_io.write_parquet(runs, smk.output.runs, PROVENANCE)
table_io.write_parquet(traj, smk.output.trajectories, PROVENANCE)
table_io.write_parquet(summary, smk.output.summary, PROVENANCE)
log.info("%s: %d rows (%s), statuses %s", figure, len(runs), runs["method"].value_counts().to_dict(),
         runs["status"].value_counts().to_dict())
