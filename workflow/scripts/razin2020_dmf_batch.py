"""Adapter: one panel of 2x2 deep matrix factorization runs (one job per depth).

params.spec: figure, depth, runs (run_id, dataset, lr, init_product_std, init,
det_sign, seed, ...), dtype, log_every, tol, patience, max_iters,
checkpoint_every, backend. params.checkpoint: engine state written every
checkpoint_every iterations and resumed from (see implicit_reg.razin2020.jobs).
params.trajectory: "markers" stores only the logged rows the markers read (the
instance spread), anything else every logged row.
"""

from _bootstrap import start, table_provenance

log = start(snakemake, serves=snakemake.params.provenance["figures"])  # noqa: F821

from pathlib import Path  # noqa: E402

from implicit_reg.results import archive  # noqa: E402
from implicit_reg.core import checkpoint as ckpt_io  # noqa: E402
from implicit_reg.core import table_io  # noqa: E402
from implicit_reg.core.progress import AttemptClock, progress_text  # noqa: E402
from implicit_reg.razin2020.jobs import job_fingerprint  # noqa: E402
from implicit_reg.razin2020 import runners  # noqa: E402
from implicit_reg.razin2020 import tables as rt  # noqa: E402
from implicit_reg.razin2020 import two_by_two as tt  # noqa: E402
from implicit_reg.razin2020 import two_by_two_problem as tp  # noqa: E402

smk = snakemake  # noqa: F821
PROVENANCE = table_provenance(smk, "two_by_two")
spec = smk.params.spec
problems = {Path(p).stem: tp.load_completion_problem(p) for p in smk.input.problems}
ckpt, key = Path(smk.params.checkpoint), job_fingerprint(spec, smk.input.problems)
resumed = ckpt_io.load_checkpoint(ckpt, key)
if resumed:
    batch = tt.restore_state(resumed["state"])
    log.info("resumed from %s at iterations %s", ckpt, batch.iteration.tolist())
else:
    batch = runners.new_dmf_batch(problems, spec)
log.info("%s depth %d: %d runs, backend %s, numba %s", spec["figure"], spec["depth"], len(spec["runs"]),
         spec["backend"], tt.HAVE_NUMBA)
clock = AttemptClock.from_checkpoint(resumed)  # the earlier attempts' time goes on


def on_checkpoint(b):
    ckpt_io.save_checkpoint(ckpt, {"state": tt.get_state(b), **clock.to_checkpoint()}, key)
    done = int(b.iteration.max())  # the running runs, which share the largest count
    log.info("checkpoint at iterations %s; %s", b.iteration.tolist(),
             progress_text(done, spec["max_iters"], clock.wall()))


runs, traj = runners.run_dmf_job(problems, spec, batch, on_checkpoint, clock.wall)
if smk.params.get("trajectory") == "markers":
    traj = rt.marker_trajectories(traj)
table_io.write_parquet(runs, smk.output.runs, PROVENANCE)
table_io.write_parquet(traj, smk.output.trajectories, PROVENANCE)
# Written last: the record marks the job as finished and keys it for the archive.
archive.write_job_record(smk.output.record, archive.job_record(
    smk.params.provenance, {"runs": "runs.parquet", "trajectories": "trajectories.parquet"},
    # The earlier attempts' time, which the benchmark file does not see.
    resumed_seconds=clock.resumed_wall, resumed_cpu_seconds=clock.resumed_cpu))
for r in runs.itertuples():
    log.info("%s: %s after %d iterations, |P11| at loss<1e-4: %.3f, c_fit %.3f", r.run_id, r.status,
             r.iterations, r.abs_unobserved_at_cut, r.c_fit)
log.info("batch wall time %.1f s", runs["wall_seconds"].iloc[0])
ckpt_io.clear_checkpoint(ckpt)
