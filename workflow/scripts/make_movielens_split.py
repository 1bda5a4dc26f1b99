"""Adapter: split MovieLens ratings into training and test entries (spec §1.2)."""

from _bootstrap import start

log = start(snakemake)  # noqa: F821

import numpy as np  # noqa: E402

from implicit_reg.arora2019 import data as matrix_data  # noqa: E402
from implicit_reg.core.data_files import verify_sha256  # noqa: E402
from implicit_reg.core.seeding import rng_for  # noqa: E402

cfg = snakemake.params.movielens  # noqa: F821
path = snakemake.input.ratings  # noqa: F821
# u.data in the authors' order, local or converted from their file, is the one file_sha256
# names (the runs' provenance keys carry it); GroupLens' order was checked as an archive.
if cfg.get("path") or cfg.get("source", "authors") == "authors":
    verify_sha256(path, cfg.get("file_sha256"), "data.movielens.file_sha256")
ratings = matrix_data.read_movielens(path)
matrix_data.check_movielens_shape(ratings, tuple(cfg["shape"]))
n_train = int(snakemake.wildcards.n_obs)  # noqa: F821
rng = rng_for(snakemake.params.seed, "movielens_split", n_train)  # noqa: F821
arrays = matrix_data.movielens_arrays(ratings, n_train, cfg["split"], rng)
counts = np.bincount(ratings.values.astype(int), minlength=6)[1:]
log.info("%d ratings (counts of 1..5: %s), %d train / %d test, split %s",
         len(ratings.values), counts.tolist(), len(arrays["train_values"]), len(arrays["test_values"]), cfg["split"])
np.savez(snakemake.output.observations, **arrays)  # noqa: F821
