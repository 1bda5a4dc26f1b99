"""Adapter: a 2x2 figure's tables (runs, trajectories, markers) from its per-depth batches."""

from _bootstrap import start, table_provenance

log = start(snakemake)  # noqa: F821

import pandas as pd  # noqa: E402

from implicit_reg import archive  # noqa: E402
from implicit_reg import razin_tables as rt  # noqa: E402
from implicit_reg import tables  # noqa: E402

smk = snakemake  # noqa: F821
PROVENANCE = table_provenance(smk, "two_by_two")
runs = pd.concat([archive.read_table(p, "runs") for p in smk.input.runs], ignore_index=True)
traj = pd.concat([archive.read_table(p, "trajectories") for p in smk.input.trajectories], ignore_index=True)
runs, traj = rt.sort_dmf(runs, traj)
markers = rt.dmf_markers_table(runs, traj)
tables.write_parquet(runs, smk.output.runs, PROVENANCE)
tables.write_parquet(traj, smk.output.trajectories, PROVENANCE)
tables.write_parquet(markers, smk.output.markers, PROVENANCE)
log.info("%d runs, %d logged rows, %d markers (%d not reached)", len(runs), len(traj), len(markers),
         int(markers["row"].lt(0).sum()))
