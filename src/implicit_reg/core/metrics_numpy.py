"""Numpy versions of the matrix metrics (for one matrix; references for the tests)."""

from __future__ import annotations

import numpy as np

from implicit_reg.core.metrics import EFFECTIVE_RANK_LOG_GUARD


def effective_rank(singular_values: np.ndarray) -> float:
    """Roy & Vetterli effective rank with the authors' 1e-10 guard."""
    sv = np.asarray(singular_values, dtype=np.float64)
    p = sv / sv.sum()
    return float(np.exp(-np.sum(p * np.log(p + EFFECTIVE_RANK_LOG_GUARD))))


def nuclear_norm(matrix: np.ndarray) -> float:
    """Sum of singular values."""
    return float(np.linalg.svd(np.asarray(matrix, dtype=np.float64), compute_uv=False).sum())
