"""Adapter: draw the observations of one data set (completion or sensing, spec §1.2)."""

from _bootstrap import start

log = start(snakemake)  # noqa: F821

import numpy as np  # noqa: E402

from implicit_reg import matrix_data  # noqa: E402
from implicit_reg.plan import parse_ground_truth_name  # noqa: E402
from implicit_reg.seeding import rng_for  # noqa: E402

wc = snakemake.wildcards  # noqa: F821
ground_truth = np.load(snakemake.input.ground_truth)["ground_truth"]  # noqa: F821
task, size, rank = parse_ground_truth_name(wc.ground_truth, snakemake.params.default_size)  # noqa: F821
n_obs = int(wc.n_obs)
rng = rng_for(snakemake.params.seed, "observations", task, rank, size, n_obs)  # noqa: F821
make = {"completion": matrix_data.completion_arrays, "sensing": matrix_data.sensing_arrays}[task]
arrays = make(ground_truth, n_obs, rng)
rms = matrix_data.check_label_rms(arrays["labels"])
log.info("%s: %d observations, label RMS %.3f", task, n_obs, rms)
np.savez(snakemake.output.observations, **arrays)  # noqa: F821
