"""Numpy versions of the matrix metrics, batched over leading axes.

The effective rank is written once here for every numpy caller: Razin & Cohen's
2×2 tables and engine (:mod:`implicit_reg.razin2020`) and the tests' reference for
the torch engine of Arora et al. (:mod:`implicit_reg.core.metrics`, which stays in
torch because it runs on the training device, inside the batched engine).
"""

from __future__ import annotations

import math

import numpy as np

from implicit_reg.core.metrics import EFFECTIVE_RANK_LOG_GUARD


def singular_values(matrices: np.ndarray) -> np.ndarray:
    """Singular values (descending) of matrices ``[..., rows, cols]``, in float64.

    Parameters
    ----------
    matrices : array_like, shape ``[..., rows, cols]``
        One matrix or a batch of them (e.g. 2×2 product matrices ``P``).

    Returns
    -------
    numpy.ndarray, shape ``[..., min(rows, cols)]``
        ``σ_1 ≥ σ_2 ≥ …`` of each matrix (LAPACK ``gesdd`` via :func:`numpy.linalg.svd`).
    """
    return np.linalg.svd(np.asarray(matrices, dtype=np.float64), compute_uv=False)


def effective_rank(
    singular_values: np.ndarray, log_guard: float | None = EFFECTIVE_RANK_LOG_GUARD
) -> np.ndarray | float:
    """Effective rank of Roy & Vetterli (2007): ``exp(H(p))``, ``p_i = σ_i / Σ_k σ_k``.

    ``erank = exp(−Σ_i p_i log p_i)``, from 1 (rank one) to the number of equal
    nonzero singular values. Two conventions are in use, and they differ by about
    ``1e-10`` relative:

    * ``log_guard`` a number (default ``1e-10``): Arora et al.'s code,
      ``−Σ_i p_i log(p_i + guard)`` over all singular values (spec
      ``arora2019.md`` §1.8; the torch engine's
      :func:`implicit_reg.core.metrics.effective_rank_from_singular_values`).
    * ``log_guard=None``: the exact entropy over the nonzero singular values, as
      Razin & Cohen define it (spec ``razin2020.md`` §2.1, "Effective rank").

    Parameters
    ----------
    singular_values : array_like, shape ``[..., k]``
        Nonnegative singular values of one matrix or of a batch (last axis).
    log_guard : float or None
        Guard added inside the logarithm, or ``None`` for the exact entropy over
        the nonzero values.

    Returns
    -------
    float or numpy.ndarray
        A float for one matrix (1-d input), else an array of shape ``[...]``. NaN
        for a matrix with a non-finite singular value or with ``Σσ = 0`` (the
        zero matrix has no effective rank).
    """
    sv = np.asarray(singular_values, dtype=np.float64)
    total = sv.sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = sv / total
        if log_guard is None:
            # Zero singular values contribute 0 (the limit of p log p); summing the
            # zeros in place keeps the order of the nonzero terms, so the result is
            # the same float as a sum over the nonzero values alone.
            terms = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
        else:
            terms = p * np.log(p + log_guard)
        erank = np.exp(-np.sum(terms, axis=-1))
    defined = np.all(np.isfinite(sv), axis=-1) & (total[..., 0] > 0)
    erank = np.where(defined, erank, np.nan)
    return float(erank) if erank.ndim == 0 else erank


def nuclear_norm(matrix: np.ndarray) -> float:
    """Nuclear norm ``‖W‖_* = Σ_i σ_i`` of one matrix (float64).

    Parameters
    ----------
    matrix : array_like, shape ``[rows, cols]``

    Returns
    -------
    float
        The sum of the singular values.
    """
    return float(singular_values(matrix).sum())


def half_rise_step(steps: np.ndarray, values: np.ndarray) -> float:
    """First logged step at which a rising curve reaches half of its last value.

    For a sigmoidal jump of a singular value sigma(t) from about 0 to its plateau
    sigma(T), ``min {t : sigma(t) >= sigma(T) / 2}`` is the jump's midpoint.

    Parameters
    ----------
    steps
        Logged steps, increasing.
    values
        The curve at those steps.

    Returns
    -------
    float
        The step, or NaN for an empty curve.
    """
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 0:
        return math.nan
    reached = np.flatnonzero(values >= values[-1] / 2.0)
    return float(np.asarray(steps)[reached[0]])
