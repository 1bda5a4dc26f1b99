"""Adapter: train one batch of deep-factorization runs and write its tables."""

from _bootstrap import start, table_provenance

log = start(snakemake, serves=snakemake.params.spec["figures"])  # noqa: F821

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from implicit_reg.results import archive  # noqa: E402
from implicit_reg.arora2019 import batch_job  # noqa: E402
from implicit_reg.arora2019.observations import build_problem  # noqa: E402
from implicit_reg.core.devices import pick_device  # noqa: E402
from implicit_reg.core import checkpoint as ckpt_io  # noqa: E402
from implicit_reg.core import table_io  # noqa: E402

smk = snakemake  # noqa: F821
PROVENANCE = table_provenance(smk, "deep_factorization", "matrix_data")
spec = smk.params.spec
engine = smk.params.engine
rms = smk.params.group_rmsprop
device = pick_device(smk.params.device)
dtype = {"float32": torch.float32, "float64": torch.float64}[smk.params.dtype]

observations = dict(np.load(smk.input.observations))
ground_truth = np.load(smk.input.ground_truth)["ground_truth"] if "ground_truth" in smk.input.keys() else None
problem = build_problem(spec["task"], observations, ground_truth, device, dtype, smk.params.alignment_total,
                        engine["sampled_gradient_max_fraction"])
depths = batch_job.run_depths(spec)
log.info("batch %s: %d runs, depths %s, %s on %s, %s gradients", spec["batch"], len(spec["runs"]),
         {d: depths.count(d) for d in sorted(set(depths))}, spec["schedule"]["optimizer"], device,
         "sampled" if getattr(problem.train, "sampled", False) else "dense")
log.info("serves figures: %s", ", ".join(spec["figures"]))
checkpoint = Path(smk.params.checkpoint)
# The trainer adds learning rates, schedule and initial factors; the data files' bytes and
# the spec (seeds, init scales) are known here.
numbers_engine = {k: v for k, v in engine.items() if k != "checkpoint_seconds"}
fingerprint = ckpt_io.fingerprint({"spec": spec, "engine": numbers_engine, "group_rmsprop": rms,
                                   "alignment_total": smk.params.alignment_total,
                                   "data": ckpt_io.file_digests(smk.input[k] for k in smk.input.keys())})
batch = batch_job.train_batch(problem, spec, engine, rms, device, dtype, checkpoint, fingerprint)
runs, trajectories, result = batch.runs, batch.trajectories, batch.result
table_io.write_parquet(runs, smk.output.runs, PROVENANCE)
table_io.write_parquet(trajectories, smk.output.trajectories, PROVENANCE)
np.savez(smk.output.products, run_id=runs["run_id"].to_numpy(dtype=str), products=result.final_products)
# Written last: the record marks the batch as finished and keys each run for the archive.
archive.write_job_record(smk.output.record, archive.JobRecord(
    kind="arora2019.deep_factorization", job=spec["batch"],
    keys={r["run_id"]: r["provenance_key"] for r in spec["runs"]},
    tables={"runs": "runs.parquet", "trajectories": "trajectories.parquet"}, figures=spec["figures"],
    resumed_seconds=result.resumed_seconds, resumed_cpu_seconds=result.resumed_cpu_seconds))
log.info("statuses: %s", runs["status"].value_counts().to_dict())
log.info("batch wall time %.1f s", result.batch_wall_seconds)
# The run is complete: an old checkpoint must not be resumed by a later, changed batch.
ckpt_io.clear_checkpoint(checkpoint)
