"""Adapter: train one batch of deep-factorization runs and write its tables."""

from _bootstrap import start

log = start(snakemake)  # noqa: F821

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from implicit_reg import checkpoint as ckpt_io  # noqa: E402
from implicit_reg import deep_factorization as dfm  # noqa: E402
from implicit_reg import tables  # noqa: E402

smk = snakemake  # noqa: F821
spec = smk.params.spec
engine = smk.params.engine
rms = smk.params.group_rmsprop
device = dfm.pick_device(smk.params.device)
dtype = {"float32": torch.float32, "float64": torch.float64}[smk.params.dtype]

observations = dict(np.load(smk.input.observations))
ground_truth = np.load(smk.input.ground_truth)["ground_truth"] if "ground_truth" in smk.input.keys() else None
problem = dfm.build_problem(spec["task"], observations, ground_truth, device, dtype, smk.params.alignment_total,
                            engine["sampled_gradient_max_fraction"])
shape = tuple(spec["shape"]) if ground_truth is not None else problem.shape
initial = [
    dfm.initial_factors(problem.shape, spec["depth"], r["init"], r["init_scale"], np.random.default_rng(r["init_seed"]))
    for r in spec["runs"]
]
sched = spec["schedule"]
schedule = dfm.Schedule(
    optimizer=sched["optimizer"],
    max_iters=sched["max_iters"],
    log_every=sched["log_every"],
    train_loss_tol=sched["train_loss_tol"],
    rmsprop_alpha=rms["alpha"],
    rmsprop_eps=rms["eps"],
    n_singular_values=sched["n_singular_values"],
    log_alignment=sched["log_alignment"],
    divergence_loss=engine["divergence_loss"],
    sync_every=engine["sync_every"],
    checkpoint_seconds=engine["checkpoint_seconds"],
)
log.info("batch %s: %d runs, depth %d, %s on %s, %s gradients", spec["batch"], len(spec["runs"]), spec["depth"],
         schedule.optimizer, device, "sampled" if getattr(problem.train, "sampled", False) else "dense")
checkpoint = Path(smk.params.checkpoint)
# The trainer adds learning rates, schedule and initial factors; the data files' bytes and
# the spec (seeds, init scales) are known here.
numbers_engine = {k: v for k, v in engine.items() if k != "checkpoint_seconds"}
fingerprint = ckpt_io.fingerprint({"spec": spec, "engine": numbers_engine, "group_rmsprop": rms,
                                   "alignment_total": smk.params.alignment_total,
                                   "data": ckpt_io.file_digests(smk.input[k] for k in smk.input.keys())})
trainer = dfm.BatchTrainer(problem, initial, [r["lr"] for r in spec["runs"]], schedule, device, dtype, checkpoint,
                           fingerprint)
result = trainer.run()
runs = tables.batch_runs_table(spec, result.final, result.status)
trajectories = tables.batch_trajectories_table(spec, result.trajectories, runs)
tables.write_parquet(runs, smk.output.runs)
tables.write_parquet(trajectories, smk.output.trajectories)
np.savez(smk.output.products, run_id=runs["run_id"].to_numpy(dtype=str), products=result.final_products)
log.info("statuses: %s", runs["status"].value_counts().to_dict())
log.info("batch wall time %.1f s", result.batch_wall_seconds)
# The run is complete: an old checkpoint must not be resumed by a later, changed batch.
ckpt_io.clear_checkpoint(checkpoint)
