"""Adapter: minimum-nuclear-norm solution of one data set (spec §1.9)."""

from _bootstrap import c_stdout_to_log, start, table_provenance

log = start(snakemake, serves=snakemake.params.job["figures"])  # noqa: F821

import numpy as np  # noqa: E402

from implicit_reg.results import archive  # noqa: E402
from implicit_reg.arora2019 import convex, tables  # noqa: E402
from implicit_reg.core import table_io  # noqa: E402

smk = snakemake  # noqa: F821
job = smk.params.job
dataset = job["dataset"]
name, task, rank, n_obs = dataset["name"], dataset["task"], dataset["rank"], int(dataset["n_obs"])
PROVENANCE = table_provenance(smk, convex.numerics_engine(task), "matrix_data")
settings = convex.task_settings(task, smk.params.convex)
ground_truth = np.load(smk.input.ground_truth)["ground_truth"]
obs = np.load(smk.input.observations)
# SCS reports its iterations, residuals and time every 250 iterations on C stdout: into
# the log, the progress of solves that run for hours (verbosity changes no number).
options = {"verbose": True, **settings["solver_options"]}
with c_stdout_to_log():
    result = convex.solve_observations(task, ground_truth.shape, obs, settings["epsilon"], options)
log.info("%s: status %s after %d SCS iterations, %.1f s, objective %.4f, max violation beyond epsilon %.2e",
         name, result.status, result.solver_iterations, result.solve_seconds, result.objective, result.max_violation)
row = tables.convex_row(dataset, result, ground_truth, settings["epsilon"])
table_io.write_parquet(row, smk.output.row, PROVENANCE)
np.savez(smk.output.solution, solution=result.solution, status=np.asarray(result.status))
# Written last: the record marks the solve as finished and keys it for the archive.
archive.write_job_record(smk.output.record, archive.JobRecord(
    kind="arora2019.min_nuclear_norm", job=job["name"], keys={name: job["key"]},
    tables={"row": "row.parquet"}, figures=job["figures"]))
