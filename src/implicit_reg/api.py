"""The engines from Python: one function per experiment kind, plain arrays in, tidy tables out.

Each function takes numpy arrays and keyword settings whose defaults are the papers'
(the schema defaults of ``config/README.md``), trains every run of its grid as one
batch and returns a :class:`Tables` of pandas DataFrames with exactly the columns of
the pipeline's tables (``results/<figure>/runs.parquet`` and ``trajectories.parquet``;
docs/architecture.md, "Result tables"):

- :func:`fit_deep_factorization`: deep matrix factorization on a completion or
  sensing problem (Arora et al. 2019);
- :func:`fit_two_by_two`: gradient descent on the 2×2 completion problem of
  Razin & Cohen (2020), Figure 1;
- :func:`complete_tensor`: CP tensor completion and the CP rank of each solution
  (Razin & Cohen 2020, Figure 2);
- :func:`low_rank_matrix`, :func:`sample_entries`, :func:`gaussian_measurements`,
  :func:`random_cp_tensor`: the papers' random instances.

The workflow's training scripts reach the engines through the same job functions
(:func:`implicit_reg.arora2019.batch_job.train_batch`,
:func:`implicit_reg.razin2020.runners.run_dmf_job`, :func:`~implicit_reg.razin2020.runners.run_tc_job`),
so a run started here gives the numbers a pipeline run with the same data, settings
and initialization seeds gives. Only the seeds differ: the pipeline derives them from
the config's ``seed`` and the figure's names, these functions from their ``seed``
argument and each run's settings (:func:`implicit_reg.core.seeding.derive_seed`).

Examples
--------
>>> from implicit_reg import api
>>> w = api.low_rank_matrix(20, rank=2, seed=0)
>>> runs, trajectories = api.fit_deep_factorization(w, api.sample_entries(20, 150, seed=1),
...                                                  depth=[2, 3], max_iters=200)
>>> len(runs)
2
"""

from __future__ import annotations

import itertools
from typing import Any, NamedTuple, Sequence

import numpy as np
import pandas as pd
import torch

from implicit_reg.arora2019 import batch_job
from implicit_reg.arora2019 import data as matrix_data
from implicit_reg.arora2019 import tables as arora_tables
from implicit_reg.arora2019.observations import build_problem
from implicit_reg.core.seeding import derive_seed, rng_for
from implicit_reg.razin2020 import runners
from implicit_reg.razin2020 import tables as razin_tables
from implicit_reg.razin2020 import tensor_data as td
from implicit_reg.razin2020 import two_by_two as tt
from implicit_reg.razin2020 import two_by_two_problem as tp

__all__ = [
    "Tables",
    "complete_tensor",
    "fit_deep_factorization",
    "fit_two_by_two",
    "gaussian_measurements",
    "low_rank_matrix",
    "random_cp_tensor",
    "sample_entries",
]

#: The default schedule of each optimizer (config ``arora2019.training``).
TRAINING_DEFAULTS = {"grouprmsprop": {"max_iters": 1_000_000, "log_every": 1000},
                     "gd": {"max_iters": 200_000, "log_every": 100}}
#: The matrix completion problem of Razin & Cohen's Figure 1: P11 unobserved (NaN).
FIGURE1_PROBLEM = np.array([[np.nan, 1.0], [1.0, 0.0]])


class Tables(NamedTuple):
    """What an experiment function returns; unpacks as ``runs, trajectories = ...``.

    Attributes
    ----------
    runs : pandas.DataFrame
        One row per run, the columns of the pipeline's ``runs.parquet``.
    trajectories : pandas.DataFrame
        One row per (run, logged iteration), the columns of ``trajectories.parquet``.
    """

    runs: pd.DataFrame
    trajectories: pd.DataFrame


def _axis(value: Any) -> list:
    return list(value) if isinstance(value, (list, tuple, np.ndarray)) else [value]


# ------------------------------------------------------------------ random instances


def low_rank_matrix(n: int, rank: int, seed: int = 0) -> np.ndarray:
    """A random rank-``rank`` ``n×n`` ground truth with entry RMS 1 (Arora et al. §1.1).

    Parameters
    ----------
    n : int
        Size of the square matrix.
    rank : int
        Its rank.
    seed : int
        Seed of the draw.

    Returns
    -------
    numpy.ndarray
        float32 ``[n, n]``, ``‖W*‖_F = n``.
    """
    return matrix_data.low_rank_ground_truth(n, n, rank, rng_for(seed, "ground_truth", n, rank))


def sample_entries(n: int, n_obs: int, seed: int = 0) -> np.ndarray:
    """``n_obs`` distinct entries of an ``n×n`` matrix drawn uniformly, as sorted flat indices.

    Parameters
    ----------
    n : int
        Size of the square matrix.
    n_obs : int
        Number of observed entries.
    seed : int
        Seed of the draw.

    Returns
    -------
    numpy.ndarray
        int64 row-major indices (row = index // n, column = index % n).
    """
    return matrix_data.completion_indices(n, n, n_obs, rng_for(seed, "entries", n, n_obs))


def gaussian_measurements(n: int, n_obs: int, seed: int = 0) -> np.ndarray:
    """``n_obs`` Gaussian measurement matrices of an ``n×n`` matrix (matrix sensing, §1.2).

    Parameters
    ----------
    n : int
        Size of the square matrix.
    n_obs : int
        Number of measurements m.
    seed : int
        Seed of the draw.

    Returns
    -------
    numpy.ndarray
        float32 ``[m, n²]``: row i is the flattened ``X_i``, entries N(0, 1/n²).
    """
    return matrix_data.sensing_matrices(n, n, n_obs, rng_for(seed, "measurements", n, n_obs))


def random_cp_tensor(order: int, rank: int, seed: int = 0, mode_size: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """A random CP-rank-``rank`` tensor of unit norm and a random order of its entries (Razin & Cohen §2.2).

    Parameters
    ----------
    order : int
        Number of modes.
    rank : int
        CP rank of the construction.
    seed : int
        Seed of the draw.
    mode_size : int
        Size of every mode (8 in the paper).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        The float32 tensor and a permutation of its linear indices: observing ``n``
        entries means observing the permutation's first ``n``.
    """
    data = td.generate_tensor_data(order, rank, seed, mode_size)
    return data.target, data.permutation


# ------------------------------------------------------------------ Arora et al. (2019)


def _numerical_rank(matrix: np.ndarray) -> int:
    """Rank of a stored matrix, singular values below its own rounding level counted as 0."""
    sv = np.linalg.svd(matrix.astype(np.float64), compute_uv=False)
    eps = np.finfo(matrix.dtype).eps if np.issubdtype(matrix.dtype, np.floating) else np.finfo(float).eps
    return int((sv > sv.max(initial=0.0) * max(matrix.shape) * eps).sum())


def fit_deep_factorization(
    ground_truth: np.ndarray,
    observed: np.ndarray | None = None,
    *,
    measurements: np.ndarray | None = None,
    depth: int | Sequence[int] = 3,
    init: str = "gaussian",
    init_scale: float | Sequence[float] = 1e-3,
    lr: float | Sequence[float] = 1e-3,
    seeds: int = 1,
    seed: int = 0,
    optimizer: str = "grouprmsprop",
    max_iters: int | None = None,
    log_every: int | None = None,
    train_loss_tol: float = 1e-6,
    n_singular_values: int = 10,
    log_alignment: bool = False,
    rmsprop_alpha: float = 0.99,
    rmsprop_eps: float = 1e-4,
    rank: int | None = None,
    figure: str = "",
    device: str = "cpu",
    dtype: str = "float32",
) -> Tables:
    """Fit deep matrix factorizations ``W = W_N ⋯ W_1`` to a completion or sensing problem.

    Every combination of the list-valued ``depth``, ``init_scale`` and ``lr`` is run
    with ``seeds`` initializations, as one sweep of the pipeline's config would be
    (``arora2019.figures.<name>.sweeps``). Completion runs are batched per depth,
    sensing runs all together, as the pipeline does.

    Parameters
    ----------
    ground_truth : numpy.ndarray
        W*, ``[n, n]``: the labels are its observed entries (or measurements) and the
        test metrics compare the product with it.
    observed : numpy.ndarray, optional
        Matrix completion: the observed entries, as flat row-major indices (e.g.
        :func:`sample_entries`) or a boolean ``[n, n]`` mask.
    measurements : numpy.ndarray, optional
        Matrix sensing instead: ``[m, n²]`` measurement matrices, one per row
        (e.g. :func:`gaussian_measurements`); labels ``y_i = ⟨X_i, W*⟩``.
    depth : int or sequence of int
        N, the number of factors (1 trains W itself).
    init : str
        ``gaussian``, ``identity`` or ``balanced``.
    init_scale : float or sequence of float
        The authors' init scale: ``‖W(0)‖_F ≈ √n · init_scale`` (gaussian).
    lr : float or sequence of float
        Learning rate.
    seeds : int
        Initializations per setting (the ``seed`` column runs 0 … seeds−1).
    seed : int
        Base seed of the initializations.
    optimizer : str
        ``grouprmsprop`` (the authors' adaptive step) or ``gd``.
    max_iters, log_every : int, optional
        Iteration cap and logging interval; default the optimizer's schedule
        (1e6 and 1000 for grouprmsprop, 2e5 and 100 for gd).
    train_loss_tol : float
        A run stops (``converged``) at a training loss at or below this.
    n_singular_values : int
        Top singular values logged per trajectory row (``sv_1`` …).
    log_alignment : bool
        Also log the singular-vector alignment and the gradient projections (Figure 3).
    rmsprop_alpha, rmsprop_eps : float
        GroupRMSprop's constants.
    rank : int, optional
        The ``rank`` column; default the numerical rank of ``ground_truth``.
    figure : str
        The ``figure`` column.
    device : str
        ``cpu``, ``cuda`` or ``auto``.
    dtype : str
        ``float32`` (the papers') or ``float64``.

    Returns
    -------
    Tables
        ``runs`` (one row per run, status ``converged``, ``max_iters`` or
        ``diverged``) and ``trajectories``, sorted as the pipeline's figure tables.
    """
    w = np.asarray(ground_truth, dtype=np.float32)
    if w.ndim != 2:
        raise ValueError(f"ground_truth must be a matrix, got shape {w.shape}")
    if (observed is None) == (measurements is None):
        raise ValueError("give either observed (matrix completion) or measurements (matrix sensing)")
    if observed is not None:
        task = "completion"
        idx = np.asarray(observed)
        idx = np.flatnonzero(idx) if idx.dtype == bool else np.sort(idx.astype(np.int64).reshape(-1))
        arrays = {"indices": idx, "labels": w.reshape(-1)[idx].astype(np.float32)}
        n_obs = len(idx)
    else:
        task = "sensing"
        a = np.asarray(measurements, dtype=np.float32)
        if a.ndim != 2 or a.shape[1] != w.size:
            raise ValueError(f"measurements must be [m, {w.size}], got {a.shape}")
        arrays = {"measurements": a,
                  "labels": (a.astype(np.float64) @ w.reshape(-1).astype(np.float64)).astype(np.float32)}
        n_obs = a.shape[0]
    if optimizer not in TRAINING_DEFAULTS:
        raise ValueError(f"unknown optimizer {optimizer!r} (grouprmsprop or gd)")
    schedule = {"optimizer": optimizer,
                "max_iters": int(max_iters or TRAINING_DEFAULTS[optimizer]["max_iters"]),
                "log_every": int(log_every or TRAINING_DEFAULTS[optimizer]["log_every"]),
                "train_loss_tol": float(train_loss_tol), "n_singular_values": int(n_singular_values),
                "log_alignment": bool(log_alignment)}
    runs = []
    for d, scale, step, s in itertools.product(_axis(depth), _axis(init_scale), _axis(lr), range(int(seeds))):
        runs.append({"run_id": f"{task}/d{int(d)}/{init}-{float(scale):g}/lr{float(step):g}/seed{s}",
                     "depth": int(d), "init": init, "init_scale": float(scale), "lr": float(step), "seed": s,
                     # as in the pipeline, the learning rate does not change the initialization
                     "init_seed": derive_seed(seed, "init", task, int(d), init, float(scale), s)})
    groups = [runs] if task == "sensing" else [[r for r in runs if r["depth"] == d]
                                               for d in sorted({r["depth"] for r in runs})]
    torch_dtype = {"float32": torch.float32, "float64": torch.float64}[dtype]
    from implicit_reg.core.devices import pick_device

    dev = pick_device(device)
    problem = build_problem(task, arrays, w, dev, torch_dtype, None,
                            batch_job.ENGINE_DEFAULTS["sampled_gradient_max_fraction"])
    spec_rank = int(rank) if rank is not None else _numerical_rank(w)
    run_tables, traj_tables = [], []
    for group in groups:
        spec = {"batch": "api", "figures": [], "task": task, "rank": spec_rank, "n_obs": n_obs,
                "shape": list(w.shape), "depth": 0 if task == "sensing" else group[0]["depth"],
                "schedule": schedule, "runs": group}
        out = batch_job.train_batch(problem, spec, batch_job.ENGINE_DEFAULTS,
                                    {"alpha": rmsprop_alpha, "eps": rmsprop_eps}, dev, torch_dtype)
        run_tables.append(out.runs)
        traj_tables.append(out.trajectories)
    return Tables(*arora_tables.figure_tables(figure, [r["run_id"] for r in runs], run_tables, traj_tables, []))


# ------------------------------------------------------------------ Razin & Cohen (2020)


def fit_two_by_two(
    observed: np.ndarray = FIGURE1_PROBLEM,
    *,
    depth: int | Sequence[int] = (2, 3, 4),
    lr: float | Sequence[float] = 3e-3,
    init_product_std: float | Sequence[float] = 1e-6,
    init: str | Sequence[str] = "gaussian",
    det_sign: int = 1,
    repetitions: int = 1,
    seed: int = 0,
    log_every: int = tt.DEFAULT_LOG_EVERY,
    tol: float = tt.DEFAULT_TOL,
    patience: int = tt.DEFAULT_PATIENCE,
    max_iters: int = tt.DEFAULT_MAX_ITERS,
    dtype: str = "float32",
    backend: str = "auto",
    figure: str = "",
    dataset: str = "problem",
) -> Tables:
    """Gradient descent on deep factorizations ``P = W_1 ⋯ W_L`` of a 2×2 completion problem.

    Every combination of the list-valued ``depth``, ``lr``, ``init_product_std`` and
    ``init`` is run ``repetitions`` times, all in one batch of the compiled 2×2 engine.

    Parameters
    ----------
    observed : numpy.ndarray
        The ``[2, 2]`` problem, NaN at the unobserved entry (default Figure 1's:
        ``[[nan, 1], [1, 0]]``). The tables' ``b12``, ``b21``, ``b22`` are its observed
        values and ``abs_unobserved*`` read P11, so P11 must be the unobserved entry.
    depth : int or sequence of int
        L, the number of layers.
    lr : float or sequence of float
        Constant learning rate.
    init_product_std : float or sequence of float
        The paper's "init X": the std of the product's entries at initialization.
    init : str or sequence of str
        ``gaussian`` or ``balanced`` (``identity``: per-layer factor, no figure uses it).
    det_sign : int
        +1 / −1: redraw the initialization until det P(0) has that sign; 0: any.
    repetitions : int
        Runs per setting (the ``rep`` column).
    seed : int
        Base seed of the initializations.
    log_every, tol, patience, max_iters : int or float
        Logging interval and stop rule (the authors' runner: 50, 1e-4, 10, 5·10⁶).
    dtype : str
        ``float32`` (the authors') or ``float64``.
    backend : str
        ``auto`` (numba when installed), ``numba`` or ``python``.
    figure, dataset : str
        The ``figure`` and ``dataset`` columns.

    Returns
    -------
    Tables
        ``runs`` (``razin2020.tables.DMF_RUN_COLUMNS``) and ``trajectories``
        (``DMF_TRAJECTORY_COLUMNS``).
    """
    grid = np.asarray(observed, dtype=np.float64)
    if grid.shape != (2, 2) or not np.isnan(grid[0, 0]) or np.isnan(grid).sum() != 1:
        raise ValueError("observed must be a 2x2 array with NaN at P11 only (the unobserved entry)")
    problem = tp.make_completion_problem({(i, j): float(grid[i, j]) for i in range(2) for j in range(2)
                                          if not np.isnan(grid[i, j])})
    runs = []
    settings = list(itertools.product(_axis(depth), _axis(lr), _axis(init_product_std), _axis(init)))
    for index, (d, step, std, scheme) in enumerate(settings):
        for rep in range(int(repetitions)):
            runs.append({"run_id": f"{figure or 'api'}/{dataset}/depth{int(d)}/run{index}/rep{rep}",
                         "dataset": dataset, "depth": int(d), "run_index": index, "rep": rep, "lr": float(step),
                         "init_product_std": float(std), "init": scheme, "det_sign": int(det_sign),
                         "seed": derive_seed(seed, "two_by_two", int(d), index, rep)})
    spec = {"figure": figure, "depth": 0, "runs": runs, "dtype": dtype, "log_every": int(log_every),
            "tol": float(tol), "patience": int(patience), "max_iters": int(max_iters), "backend": backend}
    run_table, trajectories = runners.run_dmf_job({dataset: problem}, spec)
    return Tables(*razin_tables.sort_dmf(run_table, trajectories))


def complete_tensor(
    target: np.ndarray,
    observed: np.ndarray,
    *,
    init_std: float | Sequence[float] = (1e-2, 1e-3),
    repetitions: int = 1,
    seed: int = 0,
    lr: float = 0.01,
    beta: float = 0.99,
    eps: float = 1e-6,
    check_every: int = 100,
    tol: float = 1e-6,
    patience: int = 2,
    max_iters: int = 1_000_000,
    cp_rank_tol: float = 1e-6,
    cp_rank_max_sweeps: int = 1000,
    rank: int = -1,
    figure: str = "",
    dataset: str = "tensor",
    device: str = "cpu",
) -> Tables:
    """CP tensor completion by gradient descent with the paper's adaptive step, and each solution's CP rank.

    Each run fits R = (product of all mode sizes but the largest) rank-one components
    to the observed entries of ``target`` (mean squared error), from factors with
    N(0, init_std²) entries, until the loss stays below ``tol``; then the CP rank of
    every distinct solution is estimated (CP-ALS at increasing rank until the fit's
    MSE is at most ``cp_rank_tol``).

    Parameters
    ----------
    target : numpy.ndarray
        The ground-truth tensor T* (e.g. :func:`random_cp_tensor`).
    observed : numpy.ndarray
        Row-major linear indices of the observed entries.
    init_std : float or sequence of float
        σ_init of the factors' entries; one series per value.
    repetitions : int
        Runs per init std (the ``rep`` column).
    seed : int
        Base seed of the initializations and of the CP-rank estimates.
    lr, beta, eps : float
        The adaptive step ``lr / (sqrt(v_hat) + eps)``, ``v`` the running mean (decay
        ``beta``) of the squared gradient norm.
    check_every, tol, patience, max_iters : int or float
        The stop rule: checked every ``check_every`` steps, stop after ``patience`` + 1
        checks in a row below ``tol``, at most ``max_iters`` steps.
    cp_rank_tol, cp_rank_max_sweeps : float, int
        The CP-rank estimate's MSE target and ALS sweeps per fit.
    rank : int
        The ``rank`` column (CP rank of T*; −1 unknown).
    figure, dataset : str
        The ``figure`` and ``dataset`` columns.
    device : str
        ``cpu``, ``cuda`` or ``auto``.

    Returns
    -------
    Tables
        ``runs`` (``razin2020.tables.TC_RUN_COLUMNS``, method ``tf``) and
        ``trajectories`` (``run_id, figure, dataset, n_obs, iteration, train_loss,
        recon_error``).
    """
    tensor = np.asarray(target, dtype=np.float32)
    observed = np.asarray(observed, dtype=np.int64).reshape(-1)
    n = int(observed.size)
    # the job reads the first n entries of a permutation; the rest of it is never read
    rest = np.setdiff1d(np.arange(tensor.size), observed)
    data = td.TensorCompletionData(tensor, np.concatenate([observed, rest]), int(rank))
    runs = []
    for std in _axis(init_std):
        for rep in range(int(repetitions)):
            key = ("tc", dataset, n, float(std), rep)
            runs.append({"run_id": f"{figure or 'api'}/{dataset}/n{n}/tf-{float(std):g}/rep{rep}",
                         "init_std": float(std), "rep": rep, "seed": derive_seed(seed, *key),
                         "rank_seed": derive_seed(seed, "cp_rank", *key)})
    spec = {"figure": figure, "n_obs": n, "runs": runs,
            "dataset": {"name": dataset, "order": tensor.ndim, "mode_size": int(max(tensor.shape)),
                        "rank": int(rank)},
            "tc": {"lr": lr, "beta": beta, "eps": eps, "check_every": check_every, "tol": tol,
                   "patience": patience, "max_iters": max_iters, "device": device, "checkpoint_every": None},
            "cp_rank": {"tol": cp_rank_tol, "max_sweeps": cp_rank_max_sweeps}}
    return Tables(*runners.run_tc_job(data, spec))
