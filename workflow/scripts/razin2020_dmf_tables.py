"""Adapter: a 2x2 figure's tables (runs, trajectories, markers) from its per-depth batches."""

from _bootstrap import start, table_provenance

log = start(snakemake)  # noqa: F821

import pandas as pd  # noqa: E402

from implicit_reg.results import archive  # noqa: E402
from implicit_reg.core import table_io  # noqa: E402
from implicit_reg.razin2020 import tables as rt  # noqa: E402

smk = snakemake  # noqa: F821
PROVENANCE = table_provenance(smk, "two_by_two")
# Archived batches may predate the column convention: upgrade_columns renames their columns.
runs = pd.concat([rt.upgrade_columns(archive.read_table(p, "runs")) for p in smk.input.runs], ignore_index=True)
traj = pd.concat([rt.upgrade_columns(archive.read_table(p, "trajectories")) for p in smk.input.trajectories],
                 ignore_index=True)
runs, traj = rt.sort_dmf(runs, traj)
markers = rt.dmf_markers_table(runs, traj)
if smk.params.get("instances", False):
    # The instance spread: repetition r is seed r of the same protocol (0: the figure's own).
    instance = dict(zip(runs["run_id"], runs["rep"]))
    for table in (runs, traj, markers):
        table["instance"] = table["run_id"].map(instance).astype("int64")
        table["sampling"] = "without_replacement"
table_io.write_parquet(runs, smk.output.runs, PROVENANCE)
table_io.write_parquet(traj, smk.output.trajectories, PROVENANCE)
table_io.write_parquet(markers, smk.output.markers, PROVENANCE)
log.info("%d runs, %d logged rows, %d markers (%d not reached)", len(runs), len(traj), len(markers),
         int(markers["row"].lt(0).sum()))
