"""The minimum-nuclear-norm baseline is optimal and feasible on small instances."""

from __future__ import annotations

import numpy as np
import pytest

from implicit_reg.arora2019 import convex
from implicit_reg.arora2019 import data as matrix_data
from implicit_reg.core.seeding import rng_for

TIGHT = {"eps_abs": 1e-6, "eps_rel": 1e-6, "max_iters": 50000}


def test_completion_recovers_above_threshold_and_is_feasible() -> None:
    n = 15
    gt = matrix_data.low_rank_ground_truth(n, n, 2, rng_for(2, "gt"))
    obs = matrix_data.completion_arrays(gt, 150, rng_for(2, "obs"))
    res = convex.min_nuclear_norm_completion((n, n), obs["indices"], obs["labels"], 1e-3, TIGHT)
    assert res.status == "optimal"
    assert res.max_violation < 5e-5  # within the solver tolerance, 5% of epsilon
    assert np.mean((res.solution - gt) ** 2) < 1e-4
    # Optimality: no feasible matrix (here the ground truth) has a smaller nuclear norm.
    assert res.objective <= np.linalg.svd(gt.astype(np.float64), compute_uv=False).sum() + 1e-4


def test_completion_matches_clarabel_below_threshold() -> None:
    """Below the recovery threshold the optimum is not the ground truth: compare with Clarabel."""
    n = 12
    gt = matrix_data.low_rank_ground_truth(n, n, 3, rng_for(2, "gt"))
    obs = matrix_data.completion_arrays(gt, 60, rng_for(2, "obs"))
    scs = convex.min_nuclear_norm_completion((n, n), obs["indices"], obs["labels"], 1e-3, TIGHT)
    clarabel = convex.min_nuclear_norm_completion((n, n), obs["indices"], obs["labels"], 1e-3, {"solver": "CLARABEL"})
    assert scs.status == clarabel.status == "optimal"
    assert scs.objective == pytest.approx(clarabel.objective, rel=1e-4)


def test_sensing_is_feasible() -> None:
    n = 8
    gt = matrix_data.low_rank_ground_truth(n, n, 1, rng_for(3, "gt"))
    obs = matrix_data.sensing_arrays(gt, 50, rng_for(3, "obs"))
    res = convex.min_nuclear_norm_sensing((n, n), obs["measurements"], obs["labels"], 1e-3, TIGHT)
    assert res.status == "optimal"
    resid = obs["measurements"].astype(np.float64) @ res.solution.astype(np.float64).reshape(-1) - obs["labels"]
    assert np.max(np.abs(resid)) < 1e-3 + 1e-4


def test_solver_failure_is_a_status() -> None:
    n = 6
    gt = matrix_data.low_rank_ground_truth(n, n, 1, rng_for(4, "gt"))
    obs = matrix_data.completion_arrays(gt, 20, rng_for(4, "obs"))
    res = convex.min_nuclear_norm_completion((n, n), obs["indices"], obs["labels"], 1e-3, {"solver": "OSQP"})
    assert res.status.startswith("solver_error")
    assert np.isnan(res.solution).all()
    capped = convex.min_nuclear_norm_completion((n, n), obs["indices"], obs["labels"], 1e-3, {"max_iters": 2})
    assert capped.status not in ("optimal",)


def test_memory_grows_with_the_sensing_operator() -> None:
    """15 GB for the paper's largest sensing solve, less for smaller ones, a flat figure for completion."""
    assert convex.memory_mb("sensing", 5000, (100, 100)) == 15000
    assert convex.memory_mb("sensing", 1000, (100, 100)) == 4600
    assert convex.memory_mb("completion", 5000, (100, 100)) == convex.COMPLETION_MB
