"""Minimum-nuclear-norm baseline with CVXPY and SCS (spec §1.9).

The constraints are ε-relaxed, as in the authors' code: |X_ij − y_ij| ≤ ε on
observed entries (completion), |⟨X_i, X⟩ − y_i| ≤ ε per measurement (sensing),
written as one vectorised constraint ``|A·vec(X) − y| ≤ ε`` (never one CVXPY
constraint per measurement, which canonicalises far more slowly).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import cvxpy as cp
import numpy as np
import scipy.sparse as sp

#: Statuses for which a solution is available (possibly inaccurate).
SOLVED_STATUSES = ("optimal", "optimal_inaccurate")


@dataclass(frozen=True)
class ConvexResult:
    """Solution (float32, NaN when the solver failed) and solver bookkeeping."""

    solution: np.ndarray
    status: str
    objective: float
    solver_iterations: int
    solve_seconds: float
    max_violation: float


def min_nuclear_norm_completion(
    shape: tuple[int, int],
    flat_indices: np.ndarray,
    values: np.ndarray,
    epsilon: float = 1e-3,
    solver_options: dict | None = None,
) -> ConvexResult:
    """min ‖X‖_* subject to |X_ij − y_ij| ≤ ε on the observed (row-major) entries."""
    rows, cols = shape
    selector = sp.csr_matrix(
        (np.ones(len(flat_indices)), (np.arange(len(flat_indices)), flat_indices)),
        shape=(len(flat_indices), rows * cols),
    )
    return _solve(shape, selector, np.asarray(values, dtype=np.float64), epsilon, solver_options)


def min_nuclear_norm_sensing(
    shape: tuple[int, int],
    measurements: np.ndarray,
    values: np.ndarray,
    epsilon: float = 1e-3,
    solver_options: dict | None = None,
) -> ConvexResult:
    """min ‖X‖_* subject to |A·vec(X) − y| ≤ ε, rows of A being row-major vec(X_i)."""
    return _solve(
        shape, np.asarray(measurements, dtype=np.float64), np.asarray(values, dtype=np.float64),
        epsilon, solver_options,
    )


def _solve(
    shape: tuple[int, int],
    operator,
    values: np.ndarray,
    epsilon: float,
    solver_options: dict | None,
) -> ConvexResult:
    if epsilon < 0:
        raise ValueError(f"epsilon must be non-negative, got {epsilon}")
    x = cp.Variable(shape)
    # cp.vec is column-major by default; ask for row-major to match the indices.
    residual = operator @ cp.vec(x, order="C") - values
    problem = cp.Problem(cp.Minimize(cp.normNuc(x)), [cp.abs(residual) <= epsilon])
    options = {"solver": "SCS"}
    options.update(solver_options or {})
    if options["solver"] == "SCS":
        # The authors' setting: SCS with its direct linear-system solver.
        options.setdefault("use_indirect", False)
    start = time.perf_counter()
    try:
        problem.solve(**options)
        status = str(problem.status)
    except cp.error.SolverError as err:  # recorded, never dropped
        status = f"solver_error: {err}".splitlines()[0][:200]
    seconds = time.perf_counter() - start
    stats = problem.solver_stats if status in SOLVED_STATUSES else None
    iterations = int(stats.num_iters) if stats is not None and stats.num_iters is not None else -1
    if status in SOLVED_STATUSES and x.value is not None:
        solution = np.asarray(x.value, dtype=np.float32)
        violation = float(np.max(np.abs(operator @ solution.astype(np.float64).reshape(-1) - values)) - epsilon)
        objective = float(problem.value)
    else:
        solution = np.full(shape, np.nan, dtype=np.float32)
        violation = float("nan")
        objective = float("nan")
    return ConvexResult(solution, status, objective, iterations, seconds, max(violation, 0.0) if violation == violation else violation)
