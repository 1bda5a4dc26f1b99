"""Numpy versions of the matrix metrics (for one matrix; references for the tests)."""

from __future__ import annotations

import numpy as np

from implicit_reg.core.metrics import EFFECTIVE_RANK_LOG_GUARD


def effective_rank(singular_values: np.ndarray) -> float:
    """Effective rank of Roy & Vetterli (2007) with the authors' 1e-10 guard (spec §1.8).

    .. math::

        \\mathrm{erank} = \\exp\\Big(-\\sum_i p_i \\ln(p_i + 10^{-10})\\Big), \\qquad
        p_i = \\frac{\\sigma_i}{\\sum_j \\sigma_j}.

    Parameters
    ----------
    singular_values : numpy.ndarray
        σ of one matrix (all of them).

    Returns
    -------
    float
    """
    sv = np.asarray(singular_values, dtype=np.float64)
    p = sv / sv.sum()
    return float(np.exp(-np.sum(p * np.log(p + EFFECTIVE_RANK_LOG_GUARD))))


def nuclear_norm(matrix: np.ndarray) -> float:
    """Nuclear norm ``‖W‖_* = Σ_i σ_i`` (spec §1.8).

    Parameters
    ----------
    matrix : numpy.ndarray
        One matrix.

    Returns
    -------
    float
    """
    return float(np.linalg.svd(np.asarray(matrix, dtype=np.float64), compute_uv=False).sum())
