"""Adapter: CP tensor completion runs of one (figure, data set, n), trained as one batch.

params.spec: figure, dataset, n_obs, runs (run_id, init_std, rep, seed,
rank_seed), tc (optimizer and stop settings, device, checkpoint_every),
cp_rank. params.checkpoint: batch state every checkpoint_every iterations,
resumed from (razin2020_common). After training the CP rank of every
distinct model tensor is estimated once.
"""

from _bootstrap import start, table_provenance

log = start(snakemake)  # noqa: F821

import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from razin2020_common import job_fingerprint  # noqa: E402

from implicit_reg import archive  # noqa: E402
from implicit_reg.core import checkpoint as ckpt_io  # noqa: E402
from implicit_reg.core import table_io  # noqa: E402
from implicit_reg.core.progress import progress_text  # noqa: E402
from implicit_reg.razin2020 import data_exports as dx  # noqa: E402
from implicit_reg.razin2020 import tables as rt  # noqa: E402
from implicit_reg.razin2020 import tensor_completion as tc  # noqa: E402
from implicit_reg.razin2020 import tensor_data as td  # noqa: E402
from implicit_reg.razin2020.cp_rank import estimate_cp_rank  # noqa: E402

smk = snakemake  # noqa: F821
PROVENANCE = table_provenance(smk, "tensor_completion", "cp_rank")
spec = smk.params.spec
s, runs, n = spec["tc"], spec["runs"], int(spec["n_obs"])
data = td.load_tensor_data(smk.input.data)
if spec.get("permutation_seed") is not None:
    # Another instance of the protocol: the first n entries of its own seeded permutation.
    data = td.with_permutation(data, np.random.default_rng(spec["permutation_seed"]).permutation(data.permutation.size))
    log.info("instance %d: observed entries from a seeded permutation", spec["instance"])
observed = td.observed_indices(data, n)
ckpt, key = Path(smk.params.checkpoint), job_fingerprint(spec, [smk.input.data])
resumed = ckpt_io.load_checkpoint(ckpt, key)
if resumed:
    batch = tc.CPCompletionBatch.from_state(resumed["state"], device=s["device"])
    elapsed = float(resumed["wall_seconds"])
    log.info("resumed from %s at iterations %s", ckpt, batch.iteration.tolist())
else:
    batch = tc.CPCompletionBatch(
        data.target, observed, [r["init_std"] for r in runs], [r["seed"] for r in runs],
        lr=s["lr"], beta=s["beta"], eps=s["eps"], check_every=s["check_every"], tol=s["tol"],
        patience=s["patience"], max_iters=s["max_iters"], device=s["device"])
    elapsed = 0.0
log.info("%s n=%d: %d runs, R=%d components", spec["dataset"]["name"], n, len(runs), batch.num_components)
t0 = time.perf_counter()


def on_checkpoint(b):
    ckpt_io.save_checkpoint(ckpt, {"state": b.get_state(), "wall_seconds": elapsed + time.perf_counter() - t0},
                            key)
    done = int(b.iteration.max())  # the running runs, which share the largest count
    log.info("checkpoint at iterations %s; %s", b.iteration.tolist(),
             progress_text(done, s["max_iters"], elapsed + time.perf_counter() - t0))


batch.run(s["checkpoint_every"], on_checkpoint)
wall = elapsed + time.perf_counter() - t0
results, tensors = batch.results(), batch.model_tensors()
first, rep_of = dx.unique_by_content(list(tensors))
ranks, rank_seconds = {}, {}
for i in first:
    t1 = time.perf_counter()
    ranks[i] = estimate_cp_rank(tensors[i], runs[i]["rank_seed"], spec["cp_rank"]["tol"],
                                spec["cp_rank"]["max_sweeps"])
    rank_seconds[i] = time.perf_counter() - t1
rows = [{
    "run_id": r["run_id"], "init_std": r["init_std"], "rep": r["rep"], "seed": r["seed"],
    "rank_seed": r["rank_seed"] if rep_of[i] == i else runs[rep_of[i]]["rank_seed"], "lr": s["lr"],
    "num_components": batch.num_components, "status": res.status, "iterations": res.final_iteration,
    "final_train_loss": res.final_train_loss, "recon_error": res.reconstruction_error,
    "cp_rank": ranks[rep_of[i]], "wall_seconds": wall, "rank_seconds": rank_seconds.get(i, 0.0),
} for i, (r, res) in enumerate(zip(runs, results))]
table = rt.tc_rows(spec["figure"], spec["dataset"], n, "tf", rows)
traj = rt.tc_trajectories(spec["figure"], spec["dataset"]["name"], n, [r["run_id"] for r in runs],
                          [res.history for res in results])
table_io.write_parquet(table, smk.output.runs, PROVENANCE)
table_io.write_parquet(traj, smk.output.trajectories, PROVENANCE)
# Written last: the record marks the job as finished and keys it for the archive.
archive.write_job_record(smk.output.record, archive.job_record(smk.params.provenance, {"runs": "runs.parquet", "trajectories": "trajectories.parquet"}))
for r in table.itertuples():
    log.info("%s: %s, %d iterations, error %.3g, rank %d (%.1f s)", r.run_id, r.status, r.iterations,
             r.recon_error, r.cp_rank, r.rank_seconds)
log.info("training wall time %.1f s; %d distinct model tensors", wall, len(first))
ckpt_io.clear_checkpoint(ckpt)
