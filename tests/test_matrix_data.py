"""Ground truths, observations and MovieLens parsing (spec §1.1, §1.2)."""

from __future__ import annotations

import numpy as np
import pytest

from implicit_reg.arora2019 import data as matrix_data
from implicit_reg.core.seeding import derive_seed, rng_for


def test_ground_truth_has_rank_and_norm() -> None:
    gt = matrix_data.low_rank_ground_truth(100, 100, 5, rng_for(1, "gt"))
    assert gt.dtype == np.float32
    sv = np.linalg.svd(gt.astype(np.float64), compute_uv=False)
    assert np.linalg.norm(gt.astype(np.float64)) == pytest.approx(100, rel=1e-5)
    assert sv[4] > 10 and sv[5] < 1e-3
    assert matrix_data.check_label_rms(gt) == pytest.approx(1.0, rel=1e-5)


def test_seeded_data_is_identical_across_reruns() -> None:
    a = matrix_data.completion_arrays(matrix_data.low_rank_ground_truth(30, 30, 2, rng_for(5, "gt")), 200, rng_for(5, "obs"))
    b = matrix_data.completion_arrays(matrix_data.low_rank_ground_truth(30, 30, 2, rng_for(5, "gt")), 200, rng_for(5, "obs"))
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    c = matrix_data.completion_arrays(matrix_data.low_rank_ground_truth(30, 30, 2, rng_for(6, "gt")), 200, rng_for(6, "obs"))
    assert not np.array_equal(a["labels"], c["labels"])
    assert derive_seed(1, "x", 1e-3) == derive_seed(1, "x", 0.001)
    assert derive_seed(1, "x", 2) != derive_seed(2, "x", 2)


def test_completion_indices_are_distinct_and_labels_match() -> None:
    gt = matrix_data.low_rank_ground_truth(20, 20, 2, rng_for(2, "gt"))
    obs = matrix_data.completion_arrays(gt, 150, rng_for(2, "obs"))
    assert len(np.unique(obs["indices"])) == 150
    np.testing.assert_array_equal(obs["labels"], gt.reshape(-1)[obs["indices"]])
    with pytest.raises(ValueError, match="n_obs"):
        matrix_data.completion_indices(20, 20, 401, rng_for(2, "obs"))


def test_sensing_labels_are_inner_products() -> None:
    gt = matrix_data.low_rank_ground_truth(10, 10, 2, rng_for(3, "gt"))
    obs = matrix_data.sensing_arrays(gt, 300, rng_for(3, "obs"))
    x0 = obs["measurements"][0].reshape(10, 10)
    assert obs["labels"][0] == pytest.approx(float(np.sum(x0.astype(np.float64) * gt)), rel=1e-5)
    assert np.std(obs["measurements"]) == pytest.approx(1 / 10, rel=0.05)
    assert 0.8 < matrix_data.check_label_rms(obs["labels"]) < 1.2


def test_movielens_reading_and_splits(tmp_path) -> None:
    path = tmp_path / "u.data"
    path.write_text("1\t3\t5\t0\n2\t1\t4\t0\n1\t2\t1\t0\n3\t3\t2\t0\n")
    ratings = matrix_data.read_movielens(path)
    assert ratings.shape == (3, 3)  # items x users
    np.testing.assert_array_equal(ratings.rows, [2, 0, 1, 2])
    np.testing.assert_array_equal(ratings.cols, [0, 1, 0, 2])
    train, test = matrix_data.split_ratings(ratings, 2, "first_rows")
    np.testing.assert_array_equal(train, [0, 1])
    np.testing.assert_array_equal(test, [2, 3])
    train_p, _ = matrix_data.split_ratings(ratings, 2, "seeded_permutation", np.random.default_rng(0))
    assert len(train_p) == 2
    with pytest.raises(ValueError, match="shape"):
        matrix_data.check_movielens_shape(ratings, (1682, 943))
