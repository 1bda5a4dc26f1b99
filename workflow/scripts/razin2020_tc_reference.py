"""Adapter: CP-rank estimate of a ground truth or of a "linear" baseline tensor.

params.spec: dataset (name, order, rank, mode_size, ...), n_obs (-1: the ground
truth), rank_seed, cp_rank (tol, max_sweeps). A linear tensor identical to the
ground truth (every entry observed) reuses the ground truth's estimate.
output.row: one runs-table row (plus the tensor's content digest).
"""

from _bootstrap import start, table_provenance

log = start(snakemake)  # noqa: F821

import time  # noqa: E402
from pathlib import Path  # noqa: E402

from implicit_reg.results import archive  # noqa: E402
from implicit_reg.core import table_io  # noqa: E402
from implicit_reg.razin2020 import data_exports as dx  # noqa: E402
from implicit_reg.razin2020 import tables as rt  # noqa: E402
from implicit_reg.razin2020 import tensor_data as td  # noqa: E402
from implicit_reg.razin2020.cp_rank import estimate_cp_rank  # noqa: E402

smk = snakemake  # noqa: F821
PROVENANCE = table_provenance(smk, "cp_rank")
spec = smk.params.spec
ds, n = spec["dataset"], int(spec["n_obs"])
data = td.load_tensor_data(smk.input.data)
if n > 0:
    method = "linear"
    tensor = td.linear_baseline_tensor(data.target, td.observed_indices(data, n))
    error = td.linear_baseline_error(data.target, td.observed_indices(data, n))
else:
    method, tensor, error = "ground_truth", data.target, 0.0
digest = dx.content_digest(tensor)
t0 = time.perf_counter()
reuse = None
if method == "linear":
    truth = archive.read_table(smk.input.ground_truth, "row")
    if truth["digest"].iloc[0] == digest:
        reuse = int(truth["cp_rank"].iloc[0])
        log.info("linear tensor at n=%d equals the ground truth: rank %d reused", n, reuse)
rank = reuse if reuse is not None else estimate_cp_rank(
    tensor, int(spec["rank_seed"]), spec["cp_rank"]["tol"], spec["cp_rank"]["max_sweeps"])
seconds = time.perf_counter() - t0
row = rt.tc_rows("", {"name": ds["name"], **ds}, n, method, [{
    "run_id": f"{method}/{ds['name']}" + (f"/n{n}" if n > 0 else ""),
    "rank_seed": int(spec["rank_seed"]), "recon_error": float(error), "cp_rank": int(rank),
    "rank_seconds": seconds, "wall_seconds": 0.0,
}])
row["digest"] = digest
table_io.write_parquet(row, smk.output.row, PROVENANCE)
# Written last: the record marks the job as finished and keys it for the archive.
archive.write_job_record(smk.output.record, archive.job_record(smk.params.provenance, {"row": Path(smk.output.row).name}))
log.info("%s %s n=%d: error %.4g, estimated CP rank %d (%.1f s)", ds["name"], method, n, error, rank, seconds)
