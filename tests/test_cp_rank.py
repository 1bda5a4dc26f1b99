"""Tests of the CP-rank estimate (Razin & Cohen spec §2.2)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from implicit_reg.razin2020 import cp_rank as cr

DATA = Path(
    os.environ.get(
        "RAZIN2020_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "razin2020_data"
    )
)


def random_cp(shape, rank, seed):
    rng = np.random.default_rng(seed)
    return cr.cp_reconstruct([rng.standard_normal((d, rank)) for d in shape])


def test_max_cp_rank():
    assert cr.max_cp_rank((8, 8, 8)) == 64
    assert cr.max_cp_rank((8, 8, 8, 8)) == 512
    assert cr.max_cp_rank((3, 5, 4)) == 12
    assert cr.max_cp_rank((7,)) == 1


def test_khatri_rao_matches_row_major_unfolding():
    rng = np.random.default_rng(0)
    facs = [rng.standard_normal((d, 3)) for d in (2, 3, 4, 5)]
    x = cr.cp_reconstruct(facs)
    for n in range(4):
        others = [facs[m] for m in range(4) if m != n]
        unfold = np.moveaxis(x, n, 0).reshape(x.shape[n], -1)
        np.testing.assert_allclose(unfold, facs[n] @ cr.khatri_rao(others).T, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("singular", [False, True])
def test_solve_normal_equations_equals_pinv(singular):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((4 if singular else 12, 6))
    v = a.T @ a  # rank 4 < 6 when singular
    m = rng.standard_normal((5, 6))
    expected = m @ np.linalg.pinv(v, rcond=cr.PINV_RCOND)
    np.testing.assert_allclose(cr.solve_normal_equations(m, v), expected, rtol=1e-8, atol=1e-10)


def test_zero_tensor_has_rank_zero():
    assert cr.estimate_cp_rank(np.zeros((4, 4, 4)), seed=0) == 0
    assert cr.estimate_cp_rank(np.full((3, 3, 3), 1e-9), seed=0) == 0


@pytest.mark.parametrize("shape", [(4, 5, 3), (4, 4, 4, 4)])
def test_rank_one(shape):
    x = random_cp(shape, 1, seed=2)
    x /= np.linalg.norm(x)
    assert cr.estimate_cp_rank(x, seed=0) == 1


def test_rank_three_sum():
    x = random_cp((5, 5, 5), 3, seed=3)
    x /= np.linalg.norm(x)
    assert cr.estimate_cp_rank(x, seed=0) == 3


def test_nothing_fits_returns_r_max():
    x = random_cp((3, 3, 3), 2, seed=4)
    # A negative tolerance can never be met: every probe fails.
    assert cr.estimate_cp_rank(x, seed=0, tol=-1.0, max_sweeps=2) == cr.max_cp_rank(x.shape)


def test_seeded_determinism_and_fit_stops_early():
    x = random_cp((6, 6, 6), 4, seed=5) * 0.05
    x += np.random.default_rng(9).standard_normal(x.shape) * 1e-3
    runs = [cr.estimate_cp_rank(x, seed=11) for _ in range(2)]
    assert runs[0] == runs[1]
    mse_a, sweeps_a = cr.cp_als_mse(x, 6, np.random.default_rng(3))
    mse_b, sweeps_b = cr.cp_als_mse(x, 6, np.random.default_rng(3))
    assert (mse_a, sweeps_a) == (mse_b, sweeps_b)
    y = random_cp((4, 4, 4), 1, seed=6)
    mse, sweeps = cr.cp_als_mse(y / np.linalg.norm(y), 1, np.random.default_rng(0))
    assert mse < 1e-6 and sweeps < 50


def test_reported_mse_is_exact():
    x = random_cp((4, 5, 6), 3, seed=7)
    factors, mse, sweeps = cr.cp_als(x, 2, np.random.default_rng(0), max_sweeps=30)
    assert sweeps == 30  # rank 2 cannot fit a generic rank-3 tensor
    assert mse == pytest.approx(np.mean((x - cr.cp_reconstruct(factors)) ** 2), rel=1e-12)
    assert mse > 1e-6


@pytest.mark.skipif(not (DATA / "tc").exists(), reason="authors' data not available")
@pytest.mark.parametrize("name, rank", [("tensor_rank_1_fro_1_order_3_dim_8", 1), ("tensor_rank_3_fro_1_order_3_dim_8", 3)])
def test_ground_truth_ranks_of_authors_tensors(name, rank):
    with np.load(DATA / "tc" / f"{name}.npz") as z:
        assert cr.estimate_cp_rank(z["target_tensor"], seed=0) == rank
