"""Adapter: write one rank-r ground truth (spec §1.1)."""

from _bootstrap import start

log = start(snakemake)  # noqa: F821

import numpy as np  # noqa: E402

from implicit_reg.arora2019.data import low_rank_ground_truth  # noqa: E402
from implicit_reg.arora2019.plan_items import ground_truth_seed_keys  # noqa: E402
from implicit_reg.core.seeding import rng_for  # noqa: E402

dataset = snakemake.params.dataset  # noqa: F821
task, size, rank = dataset["task"], dataset["size"], dataset["rank"]
rng = rng_for(snakemake.params.seed, *ground_truth_seed_keys(dataset))  # noqa: F821
ground_truth = low_rank_ground_truth(size, size, rank, rng)
sv = np.linalg.svd(ground_truth.astype(np.float64), compute_uv=False)
log.info("ground truth %s rank %d, n=%d: top singular values %s", task, rank, size, np.round(sv[: rank + 1], 3))
np.savez(snakemake.output.ground_truth, ground_truth=ground_truth)  # noqa: F821
