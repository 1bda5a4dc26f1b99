"""Adapter: CP tensor completion runs of one (figure, data set, n), trained as one batch.

params.spec: figure, dataset, n_obs, runs (run_id, init_std, rep, seed,
rank_seed), tc (optimizer and stop settings, device, checkpoint_every),
cp_rank. params.checkpoint: batch state every checkpoint_every iterations,
resumed from (implicit_reg.razin2020.jobs). After training the CP rank of every
distinct model tensor is estimated once.
"""

from _bootstrap import start, table_provenance

log = start(snakemake, serves=snakemake.params.provenance["figures"])  # noqa: F821

from pathlib import Path  # noqa: E402

from implicit_reg.results import archive  # noqa: E402
from implicit_reg.core import checkpoint as ckpt_io  # noqa: E402
from implicit_reg.core import table_io  # noqa: E402
from implicit_reg.core.progress import AttemptClock, progress_text  # noqa: E402
from implicit_reg.razin2020 import jobs  # noqa: E402
from implicit_reg.razin2020 import runners  # noqa: E402
from implicit_reg.razin2020 import tensor_completion as tc  # noqa: E402
from implicit_reg.razin2020 import tensor_data as td  # noqa: E402

smk = snakemake  # noqa: F821
PROVENANCE = table_provenance(smk, "tensor_completion", "cp_rank")
spec = smk.params.spec
s, n = spec["tc"], int(spec["n_obs"])
data = jobs.instance_data(td.load_tensor_data(smk.input.data), spec)
if spec.get("permutation_seed") is not None:
    log.info("instance %d: observed entries from a seeded permutation", spec["instance"])
ckpt, key = Path(smk.params.checkpoint), jobs.job_fingerprint(spec, [smk.input.data])
resumed = ckpt_io.load_checkpoint(ckpt, key)
if resumed:
    batch = tc.CPCompletionBatch.from_state(resumed["state"], device=s["device"])
    log.info("resumed from %s at iterations %s", ckpt, batch.iteration.tolist())
else:
    batch = runners.new_tc_batch(data, spec)
log.info("%s n=%d: %d runs, R=%d components", spec["dataset"]["name"], n, len(spec["runs"]), batch.num_components)
clock = AttemptClock.from_checkpoint(resumed)  # the earlier attempts' time goes on


def on_checkpoint(b):
    ckpt_io.save_checkpoint(ckpt, {"state": b.get_state(), **clock.to_checkpoint()}, key)
    done = int(b.iteration.max())  # the running runs, which share the largest count
    log.info("checkpoint at iterations %s; %s", b.iteration.tolist(),
             progress_text(done, s["max_iters"], clock.wall()))


table, traj = runners.run_tc_job(data, spec, batch, on_checkpoint, clock.wall)
table_io.write_parquet(table, smk.output.runs, PROVENANCE)
table_io.write_parquet(traj, smk.output.trajectories, PROVENANCE)
# Written last: the record marks the job as finished and keys it for the archive.
archive.write_job_record(smk.output.record, archive.job_record(
    smk.params.provenance, {"runs": "runs.parquet", "trajectories": "trajectories.parquet"},
    # The earlier attempts' time, which the benchmark file does not see.
    resumed_seconds=clock.resumed_wall, resumed_cpu_seconds=clock.resumed_cpu))
for r in table.itertuples():
    log.info("%s: %s, %d iterations, error %.3g, rank %d (%.1f s)", r.run_id, r.status, r.iterations,
             r.recon_error, r.cp_rank, r.rank_seconds)
log.info("training wall time %.1f s; %d distinct CP-rank estimates", table["wall_seconds"].iloc[0],
         int((table["rank_seconds"] > 0).sum()))
ckpt_io.clear_checkpoint(ckpt)
