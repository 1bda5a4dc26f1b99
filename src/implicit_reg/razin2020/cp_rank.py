"""Tensor (CP) rank estimation of Razin & Cohen (2020), spec §2.2.

The estimated rank is the smallest R for which a rank-R CP decomposition
fitted by plain ALS reaches a mean squared error (over all entries) below
``tol = 1e-6``; the search is a binary search over 1 … R_max, with
R_max = product of all mode sizes except the largest, that returns R_max when
no rank fits and 0 for the zero tensor. Each fit starts from i.i.d. N(0, 1)
factors and runs at most 1000 sweeps in float64, checking the MSE after every
sweep. The procedure follows the authors' ``find_cp_rank`` / ``cp_als``
step by step (including their column rescaling by the previous norms and the
Moore–Penrose pseudo-inverse of the Hadamard product of Gram matrices), but
draws every factor from one numpy Generator seeded by the caller.

Why not tensorly: ``tensorly.decomposition.parafac`` (0.10.0) accepts initial
factors and a callback that can stop on the MSE, but it solves the normal
equations with ``solve`` instead of ``pinv`` (so it leaves the procedure
exactly where V is singular, i.e. for ranks above what the tensor needs), it
only reports the error when its deprecated ``return_errors`` machinery is on,
and its per-sweep bookkeeping is slower. ``bench/bench_tensor.py`` times both
from the same initial factors: a rank-40 sweep on an order-4 linear-baseline
tensor took 0.75 ms here versus 1.60 ms with tensorly (2.1× faster; one
thread on the shared 2-core machine, numpy 2.4.6). A whole estimate takes
~3 s for an order-4 linear-baseline tensor (rank 46 at n = 1000) and ~0.03 s
for a model-like rank-1 tensor.

Speed-ups that do not change the procedure: unfoldings are computed once per
fit; Gram matrices are updated incrementally; the least-squares step uses a
Cholesky solve when LAPACK's condition estimate shows V is well conditioned
(then ``pinv(V)`` *is* ``V⁻¹``) and the 1e-15-cutoff pseudo-inverse otherwise;
the per-sweep MSE uses ``‖X‖² − 2⟨X, X̂⟩ + ‖X̂‖²`` from quantities the last
mode's update already computed. Whenever that cheap value is not clearly
above the threshold (it is subject to cancellation), the MSE is recomputed
exactly from the reconstructed tensor, so accept/reject decisions are the
exact ones up to rounding.
"""

from __future__ import annotations

from functools import reduce
from typing import Sequence

import numpy as np
from scipy.linalg import lapack

#: Default MSE threshold of the paper's rank estimate.
DEFAULT_TOL = 1e-6
#: Default maximum number of ALS sweeps per fit.
DEFAULT_MAX_SWEEPS = 1000
#: Relative cutoff of the pseudo-inverse (numpy 1.x's default, used by the authors).
PINV_RCOND = 1e-15
#: Below this estimated reciprocal condition number, solve with the pseudo-inverse.
CHOLESKY_MIN_RCOND = 1e-10


def max_cp_rank(shape: Sequence[int]) -> int:
    """The largest rank the search tries, R_max (spec §2.2).

    Parameters
    ----------
    shape : sequence of int
        Mode sizes of the tensor.

    Returns
    -------
    int
        Product of all mode sizes except (one copy of) the largest: 64 for 8³,
        512 for 8⁴; 1 for a vector.
    """
    dims = list(shape)
    dims.remove(max(dims))
    return int(np.prod(dims)) if dims else 1


def khatri_rao(mats: Sequence[np.ndarray]) -> np.ndarray:
    """Khatri–Rao (column-wise Kronecker) product ``A_1 ⊙ A_2 ⊙ …``.

    Column r is ``A_1[:, r] ⊗ A_2[:, r] ⊗ …``, the first matrix's row index
    varying slowest. This matches a row-major unfolding whose remaining modes
    are in increasing order, as ``np.moveaxis(x, n, 0).reshape(shape[n], -1)``
    produces.

    Parameters
    ----------
    mats : sequence of numpy.ndarray
        Matrices ``[I_k, R]`` with the same number of columns R.

    Returns
    -------
    numpy.ndarray, shape ``[Π_k I_k, R]``
    """
    rank = mats[0].shape[1]
    return reduce(lambda a, b: np.einsum("ir,kr->ikr", a, b).reshape(-1, rank), mats)


def cp_reconstruct(factors: Sequence[np.ndarray]) -> np.ndarray:
    """The full tensor of a CP decomposition, ``Σ_r A_1[:, r] ⊗ … ⊗ A_N[:, r]`` (spec §2.2).

    Parameters
    ----------
    factors : sequence of numpy.ndarray
        ``A_n`` of shape ``[I_n, R]``, N ≤ 25 of them.

    Returns
    -------
    numpy.ndarray, shape ``[I_1, …, I_N]``
    """
    letters = "abcdefghijklmnopqrstuvwxy"
    spec = ",".join(f"{letters[n]}z" for n in range(len(factors)))
    return np.einsum(f"{spec}->{letters[:len(factors)]}", *factors)


def solve_normal_equations(mttkrp: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``mttkrp @ pinv(v)`` for a symmetric PSD ``v`` (the ALS least-squares step).

    When LAPACK's condition estimate says ``v`` is well conditioned
    (rcond > 1e-10) the pseudo-inverse equals the inverse and a Cholesky solve
    gives the same result to rounding, ~20× faster than an eigen-decomposition
    at rank 40. Otherwise (near-singular ``v``, typical for ranks above what
    the tensor needs) the pseudo-inverse with the authors' 1e-15 cutoff is used.

    Parameters
    ----------
    mttkrp : numpy.ndarray, shape ``[I_n, R]``
        The unfolding times the Khatri–Rao product of the other factors.
    v : numpy.ndarray, shape ``[R, R]``
        Hadamard product of the other factors' Gram matrices.

    Returns
    -------
    numpy.ndarray, shape ``[I_n, R]``
        The least-squares update of factor n.
    """
    chol, info = lapack.dpotrf(v, lower=0, clean=0)
    if info == 0:
        rcond, info = lapack.dpocon(chol, float(np.abs(v).sum(axis=0).max()))
        if info == 0 and rcond > CHOLESKY_MIN_RCOND:
            sol, info = lapack.dpotrs(chol, mttkrp.T)
            if info == 0:
                return sol.T
    return mttkrp @ np.linalg.pinv(v, rcond=PINV_RCOND, hermitian=True)


def cp_als(
    tensor: np.ndarray,
    rank: int,
    rng: np.random.Generator,
    tol: float = DEFAULT_TOL,
    max_sweeps: int = DEFAULT_MAX_SWEEPS,
) -> tuple[list[np.ndarray], float, int]:
    """Fit a rank-``rank`` CP decomposition by alternating least squares (the authors' ``cp_als``).

    Each sweep updates every factor in turn,
    ``A_n ← X_(n) (⊙_{m≠n} A_m) pinv(⊛_{m≠n} A_mᵀA_m)``, and stops after the
    first sweep whose MSE ``‖X − X̂‖²_F / numel`` is below ``tol`` (spec §2.2).

    Parameters
    ----------
    tensor : numpy.ndarray
        The tensor X (cast to float64).
    rank : int
        R.
    rng : numpy.random.Generator
        Draws the initial factors, i.i.d. N(0, 1).
    tol : float
        MSE threshold.
    max_sweeps : int
        Sweeps at most.

    Returns
    -------
    factors : list of numpy.ndarray
        They reconstruct the fitted tensor exactly (:func:`cp_reconstruct`).
    mse : float
        MSE of the fit.
    sweeps : int
        Sweeps run.

    Raises
    ------
    numpy.linalg.LinAlgError
        If a pseudo-inverse fails (e.g. on NaN).
    """
    x = np.asarray(tensor, dtype=np.float64)
    shape = x.shape
    order = x.ndim
    numel = x.size
    factors = [rng.standard_normal((dim, rank)) for dim in shape]
    unfold = [np.moveaxis(x, n, 0).reshape(shape[n], -1) for n in range(order)]
    grams = [f.T @ f for f in factors]
    norm_x2 = float(np.sum(x * x))
    thr = tol * numel
    for sweep in range(1, max_sweeps + 1):
        for n in range(order):
            others = [m for m in range(order) if m != n]
            v = reduce(np.multiply, [grams[m] for m in others])
            mttkrp = unfold[n] @ khatri_rao([factors[m] for m in others])
            update = solve_normal_equations(mttkrp, v)
            # The authors divide by the previous column norms; the fit is
            # unchanged (the next least-squares solve absorbs the scale) but
            # it keeps the arithmetic on the same path as theirs.
            coeff = np.linalg.norm(factors[n], axis=0, keepdims=True)
            factors[n] = update / coeff
            grams[n] = factors[n].T @ factors[n]
        # Reconstruction = the unscaled last-mode update with the other
        # factors as they are, so <X, X̂> and ‖X̂‖² come from mttkrp and v.
        inner = float(np.sum(update * mttkrp))
        norm_r2 = float(np.sum((update.T @ update) * v))
        fast_sq = norm_x2 - 2.0 * inner + norm_r2
        slack = 1e-11 * (norm_x2 + 2.0 * abs(inner) + abs(norm_r2))
        if fast_sq - thr > slack and sweep < max_sweeps:
            continue
        fitted = factors[:-1] + [update]
        mse = float(np.sum((x - cp_reconstruct(fitted)) ** 2)) / numel
        if mse < tol or sweep == max_sweeps:
            return fitted, mse, sweep
    raise ValueError("max_sweeps must be >= 1")


def cp_als_mse(
    tensor: np.ndarray,
    rank: int,
    rng: np.random.Generator,
    tol: float = DEFAULT_TOL,
    max_sweeps: int = DEFAULT_MAX_SWEEPS,
) -> tuple[float, int]:
    """The MSE and the number of sweeps of :func:`cp_als` (same parameters), without the factors.

    Returns
    -------
    mse : float
    sweeps : int
    """
    _, mse, sweeps = cp_als(tensor, rank, rng, tol, max_sweeps)
    return mse, sweeps


def estimate_cp_rank(
    tensor: np.ndarray,
    seed: int,
    tol: float = DEFAULT_TOL,
    max_sweeps: int = DEFAULT_MAX_SWEEPS,
) -> int:
    """Estimated CP rank (spec §2.2): the smallest R whose ALS fit has MSE below ``tol``.

    Binary search exactly as the authors' ``find_cp_rank``: lo = 0,
    hi = R_max − 1, best = R_max; fit rank mid + 1 and move ``hi`` down on
    success, ``lo`` up on failure. All fits draw from ``default_rng(seed)``.

    Parameters
    ----------
    tensor : numpy.ndarray
        The tensor (a trained model, a linear baseline or a ground truth).
    seed : int
        Seed of the one Generator all fits draw their initial factors from.
    tol : float
        MSE threshold of a fit.
    max_sweeps : int
        ALS sweeps per fit at most.

    Returns
    -------
    int
        The estimate; 0 for the zero tensor, R_max (:func:`max_cp_rank`) if no
        rank fits, −1 on a linear-algebra failure.
    """
    x = np.asarray(tensor, dtype=np.float64)
    if np.allclose(x, 0.0):
        return 0
    rng = np.random.default_rng(seed)
    r_max = max_cp_rank(x.shape)
    lo, hi, best = 0, r_max - 1, r_max
    try:
        while lo <= hi:
            mid = (lo + hi) // 2
            mse, _ = cp_als_mse(x, mid + 1, rng, tol, max_sweeps)
            if mse < tol:
                best = mid + 1
                hi = mid - 1
            else:
                lo = mid + 1
    except np.linalg.LinAlgError:
        return -1
    return best
