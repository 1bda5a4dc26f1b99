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


def test_sensing_slack_form_reaches_the_optimum_of_the_abs_form() -> None:
    """The slack form (A vec X - y = r, |r| <= eps) solves the same program as |A vec X - y| <= eps."""
    n = 7
    gt = matrix_data.low_rank_ground_truth(n, n, 2, rng_for(5, "gt"))
    obs = matrix_data.sensing_arrays(gt, 30, rng_for(5, "obs"))  # below recovery: the optimum is not the truth
    a, y = obs["measurements"].astype(np.float64), obs["labels"].astype(np.float64)
    slack = convex._solve((n, n), a, y, 1e-3, TIGHT, slack=True)
    direct = convex._solve((n, n), a, y, 1e-3, TIGHT, slack=False)
    assert slack.status == direct.status == "optimal"
    assert slack.objective == pytest.approx(direct.objective, rel=1e-5)
    assert slack.objective < np.linalg.svd(gt.astype(np.float64), compute_uv=False).sum()
    assert slack.max_violation < 5e-5 and direct.max_violation < 5e-5
    # The public sensing entry point is the slack form.
    public = convex.min_nuclear_norm_sensing((n, n), obs["measurements"], obs["labels"], 1e-3, TIGHT)
    assert public.objective == slack.objective


def test_sensing_with_mkl_pardiso_reaches_the_qdldl_optimum() -> None:
    """The sensing solves' MKL Pardiso factorization (config sensing_solver_options) changes rounding only."""
    n = 7
    gt = matrix_data.low_rank_ground_truth(n, n, 2, rng_for(6, "gt"))
    obs = matrix_data.sensing_arrays(gt, 30, rng_for(6, "obs"))
    qdldl = convex.min_nuclear_norm_sensing((n, n), obs["measurements"], obs["labels"], 1e-3, TIGHT)
    mkl = convex.min_nuclear_norm_sensing((n, n), obs["measurements"], obs["labels"], 1e-3,
                                          {**TIGHT, "linear_solver": "mkl"})
    assert qdldl.status == mkl.status == "optimal"
    assert mkl.objective == pytest.approx(qdldl.objective, rel=1e-5)
    assert np.max(np.abs(mkl.solution - qdldl.solution)) < 1e-3


def test_task_settings_apply_sensing_options_to_sensing_only() -> None:
    cfg = {"epsilon": 1e-3, "solver_options": {"eps_abs": 1e-6, "max_iters": 10},
           "sensing_solver_options": {"linear_solver": "mkl", "max_iters": 20}}
    assert convex.task_settings("completion", cfg) == {"epsilon": 1e-3,
                                                       "solver_options": {"eps_abs": 1e-6, "max_iters": 10}}
    assert convex.task_settings("sensing", cfg) == {
        "epsilon": 1e-3, "solver_options": {"eps_abs": 1e-6, "max_iters": 20, "linear_solver": "mkl"}}
    # A config without sensing options (older configs) solves sensing like completion.
    assert convex.task_settings("sensing", {"epsilon": 0.0, "solver_options": {}})["solver_options"] == {}


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
    """17 GB for the paper's largest sensing solve, less for smaller ones, a flat figure for completion."""
    assert convex.memory_mb("sensing", 5000, (100, 100)) == 17000
    assert convex.memory_mb("sensing", 1000, (100, 100)) == 5000
    assert convex.memory_mb("completion", 5000, (100, 100)) == convex.COMPLETION_MB
