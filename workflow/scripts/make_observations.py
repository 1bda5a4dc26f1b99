"""Adapter: draw the observations of one data set (completion or sensing, spec §1.2)."""

from _bootstrap import start

log = start(snakemake)  # noqa: F821

import numpy as np  # noqa: E402

from implicit_reg.arora2019 import data as matrix_data  # noqa: E402
from implicit_reg.arora2019.plan_items import observations_seed_keys  # noqa: E402
from implicit_reg.core.seeding import rng_for  # noqa: E402

dataset = snakemake.params.dataset  # noqa: F821
ground_truth = np.load(snakemake.input.ground_truth)["ground_truth"]  # noqa: F821
task, n_obs = dataset["task"], int(dataset["n_obs"])
rng = rng_for(snakemake.params.seed, *observations_seed_keys(dataset))  # noqa: F821
if task == "completion":
    arrays = matrix_data.completion_arrays(ground_truth, n_obs, rng, sampling=dataset["sampling"])
else:
    arrays = matrix_data.sensing_arrays(ground_truth, n_obs, rng)
rms = matrix_data.check_label_rms(arrays["labels"])
log.info("%s: %d observations (%s, %d distinct), label RMS %.3f", task, n_obs, dataset["sampling"],
         len(np.unique(arrays["indices"])) if task == "completion" else n_obs, rms)
np.savez(snakemake.output.observations, **arrays)  # noqa: F821
