"""Minimum-nuclear-norm baseline with CVXPY and SCS (spec §1.9).

The constraints are ε-relaxed, as in the authors' code: |X_ij − y_ij| ≤ ε on
observed entries (completion), |⟨X_i, X⟩ − y_i| ≤ ε per measurement (sensing),
written as vectorised constraints (never one CVXPY constraint per measurement,
which canonicalises far more slowly):

* completion: ``|S·vec(X) − y| ≤ ε`` with S the sparse selector of Ω;
* sensing: the slack form ``A·vec(X) − y = r, −ε ≤ r ≤ ε``. Written as
  ``|A·vec(X) − y| ≤ ε``, ``|·|`` splits into two inequalities, each with its own copy
  of the dense A in SCS's linear system: the paper's m = 5000 solve then held 13-14 GB.
  Through the slack A enters once: at m = 1000, 170 s and 1.7 GB against 500 s and
  3.1 GB for 200 SCS iterations (measured 2026-12-02). The optimum is the same; the
  solution SCS stops at moves by solver-tolerance amounts, so sensing solves have their
  own numerics version (``min_nuclear_norm_sensing``).

Sensing solves also take ``sensing_solver_options`` (config ``convex``) on top of the
shared ones: SCS's MKL Pardiso factorization (``linear_solver: mkl``). QDLDL, which
has no dense kernels, had not finished factorizing the m = 4000 system after 25 min;
Pardiso factorizes it in 95 s and then runs 0.1 s per SCS iteration, at 13 GB
(measured 2026-12-02 beside two trainings; 7.4 GB at m = 2000).
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
    """Solution (float32, NaN when the solver failed) and solver bookkeeping.

    Parameters
    ----------
    solution : numpy.ndarray
        X, ``[rows, cols]`` float32 (cast as in the authors' code), NaN without a solution.
    status : str
        CVXPY's status, or ``solver_error: …``.
    objective : float
        ‖X‖_* as the solver reports it (NaN without a solution).
    solver_iterations : int
        The solver's iterations (-1 when unknown).
    solve_seconds : float
        Wall time of the solve, canonicalisation included.
    max_violation : float
        ``max(max_i |A(X)_i − y_i| − ε, 0)`` of the float32 solution.
    """

    solution: np.ndarray
    status: str
    objective: float
    solver_iterations: int
    solve_seconds: float
    max_violation: float


def task_settings(task: str, convex_config: dict) -> dict:
    """The settings that determine a solve of ``task``: ε and the SCS options it passes.

    Parameters
    ----------
    task : str
        ``completion`` or ``sensing``.
    convex_config : dict
        The config's ``convex`` section: ``epsilon``, ``solver_options`` and
        ``sensing_solver_options`` (sensing only, applied over ``solver_options``).

    Returns
    -------
    dict
        ``{"epsilon": float, "solver_options": dict}`` (for completion exactly the two
        shared settings, so its provenance key does not depend on the sensing options).
    """
    options = dict(convex_config.get("solver_options") or {})
    if task == "sensing":
        options.update(convex_config.get("sensing_solver_options") or {})
    return {"epsilon": float(convex_config["epsilon"]), "solver_options": options}


def numerics_engine(task: str) -> str:
    """The numerics engine (core/numerics.py) of a solve of ``task``: the two programs differ."""
    return "min_nuclear_norm_sensing" if task == "sensing" else "min_nuclear_norm"


def solve_observations(
    task: str,
    shape: tuple[int, int],
    observations,
    epsilon: float,
    solver_options: dict | None = None,
) -> ConvexResult:
    """The minimum-nuclear-norm solve of one observation file (``task`` picks the program).

    Parameters
    ----------
    task : str
        ``completion`` (reads ``indices``, ``labels``) or ``sensing`` (reads
        ``measurements``, ``labels``).
    shape : (int, int)
        ``(rows, cols)`` of X.
    observations : mapping
        The observation arrays (an ``.npz`` file or a dict).
    epsilon : float
        ε ≥ 0.
    solver_options : dict, optional
        Keyword arguments of ``cvxpy.Problem.solve`` (see :func:`task_settings`).

    Returns
    -------
    ConvexResult
    """
    if task == "completion":
        return min_nuclear_norm_completion(shape, observations["indices"], observations["labels"], epsilon,
                                           solver_options)
    return min_nuclear_norm_sensing(shape, observations["measurements"], observations["labels"], epsilon,
                                    solver_options)


def min_nuclear_norm_completion(
    shape: tuple[int, int],
    flat_indices: np.ndarray,
    values: np.ndarray,
    epsilon: float = 1e-3,
    solver_options: dict | None = None,
) -> ConvexResult:
    """Minimum nuclear norm matrix completion with ε-relaxed constraints (spec §1.9).

    .. math::

        \\min_X \\|X\\|_* \\quad \\text{s.t.} \\quad |X_{ij} - y_{ij}| \\le \\varepsilon
        \\quad \\forall (i, j) \\in \\Omega.

    Parameters
    ----------
    shape : (int, int)
        ``(rows, cols)`` of X.
    flat_indices : numpy.ndarray
        Observed entries Ω as row-major flat indices.
    values : numpy.ndarray
        y at those entries.
    epsilon : float
        ε ≥ 0 (1e-3 in the authors' code).
    solver_options : dict, optional
        Keyword arguments of ``cvxpy.Problem.solve`` (default: SCS, direct solver).

    Returns
    -------
    ConvexResult
    """
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
    """Minimum nuclear norm matrix sensing with ε-relaxed constraints (spec §1.9).

    .. math::

        \\min_X \\|X\\|_* \\quad \\text{s.t.} \\quad |\\langle X_i, X \\rangle - y_i| \\le \\varepsilon,
        \\quad i = 1, \\dots, m,

    in the slack form ``A·vec(X) − y = r``, ``−ε ≤ r ≤ ε`` (the dense A enters SCS once).

    Parameters
    ----------
    shape : (int, int)
        ``(rows, cols)`` of X.
    measurements : numpy.ndarray
        A, ``[m, rows·cols]``, row i being the row-major vec(X_i).
    values : numpy.ndarray
        y, ``[m]``.
    epsilon : float
        ε ≥ 0 (1e-3 in the authors' code).
    solver_options : dict, optional
        Keyword arguments of ``cvxpy.Problem.solve`` (default: SCS, direct solver).

    Returns
    -------
    ConvexResult
    """
    return _solve(
        shape, np.asarray(measurements, dtype=np.float64), np.asarray(values, dtype=np.float64),
        epsilon, solver_options, slack=True,
    )


def _constraints(x: cp.Variable, operator, values: np.ndarray, epsilon: float, slack: bool) -> list:
    """``|operator·vec(X) − y| ≤ ε``, directly or through a slack variable r (see the module docstring)."""
    # cp.vec is column-major by default; ask for row-major to match the indices.
    residual = operator @ cp.vec(x, order="C") - values
    if not slack:
        return [cp.abs(residual) <= epsilon]
    r = cp.Variable(len(values))
    return [residual == r, r <= epsilon, r >= -epsilon]


def _solve(
    shape: tuple[int, int],
    operator,
    values: np.ndarray,
    epsilon: float,
    solver_options: dict | None,
    slack: bool = False,
) -> ConvexResult:
    if epsilon < 0:
        raise ValueError(f"epsilon must be non-negative, got {epsilon}")
    x = cp.Variable(shape)
    problem = cp.Problem(cp.Minimize(cp.normNuc(x)), _constraints(x, operator, values, epsilon, slack))
    options = {"solver": "SCS"}
    options.update(solver_options or {})
    if options["solver"] == "SCS" and "linear_solver" not in options:
        # The authors' setting: SCS with its direct linear-system solver (QDLDL).
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


#: Memory of a sensing solve per entry of its operator A (m·n² numbers), in MB, and its base:
#: CVXPY's compiled problem and SCS's MKL Pardiso factor, measured at n = 100 in the slack
#: form: 2.2 GB at m = 1000, 7.4 GB at m = 2000, 13.2 GB at m = 4000 (2.9e-4 MB per entry
#: between the last two); the base also covers the two snakemake processes of a cluster
#: job (~150 MB each).
SENSING_MB_PER_OPERATOR_ENTRY = 3.0e-4
SENSING_BASE_MB = 2000
#: A completion solve (sparse selector) stays far below this at n = 100.
COMPLETION_MB = 2000


def memory_mb(task: str, n_obs: int, shape: tuple[int, int]) -> int:
    r"""Memory (MB) a scheduler should reserve for one solve.

    .. math::

        \text{mem}_\text{sensing} = b + c \cdot m \cdot \text{rows} \cdot \text{cols}

    with b = :data:`SENSING_BASE_MB`, c = :data:`SENSING_MB_PER_OPERATOR_ENTRY` (17 GB at
    the paper's m = 5000, n = 100); completion takes :data:`COMPLETION_MB`.

    Parameters
    ----------
    task : str
        ``completion`` or ``sensing``.
    n_obs : int
        m, the number of observations.
    shape : (int, int)
        ``(rows, cols)`` of X.

    Returns
    -------
    int
        Megabytes.
    """
    if task == "sensing":
        return round(SENSING_BASE_MB + SENSING_MB_PER_OPERATOR_ENTRY * n_obs * shape[0] * shape[1])
    return COMPLETION_MB


#: Wall-time limit of one solve for a scheduler, by task (minutes). With MKL Pardiso the
#: m = 1000 sensing solve took 32 s and the m = 4000 factorization 95 s (2026-12-02);
#: 2 h leaves room for a loaded node and SCS's iteration cap.
RUNTIME_MINUTES = {"completion": 120, "sensing": 120}
