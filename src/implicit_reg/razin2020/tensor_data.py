"""Data of the CP tensor completion of Razin & Cohen (2020), Fig. 2 (spec §2.2, §6.1).

A data set is a ground truth tensor ``T*`` and a stored permutation of its
row-major linear indices; the first ``n`` entries of the permutation are
observed. Here: loading the authors' export, drawing an own instance like
their generator, re-drawing the observation order for the instance spread,
the "linear" baseline (``T*`` on the observed entries, 0 elsewhere) and the
normalized reconstruction error ``‖W − T*‖_F / ‖T*‖_F``.

Separate from the trainer (:mod:`implicit_reg.razin2020.tensor_completion`)
and the model's loss and gradients (:mod:`implicit_reg.razin2020.cp_gradients`):
everything here is numpy only, and the workflow's dataset and linear-reference
steps use nothing else of the engine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from implicit_reg.razin2020.cp_rank import cp_reconstruct


@dataclass(frozen=True)
class TensorCompletionData:
    """Ground truth tensor and the stored permutation of its linear indices."""

    target: np.ndarray
    permutation: np.ndarray
    target_cp_rank: int


def load_tensor_data(path: str | Path) -> TensorCompletionData:
    """Load the authors' npz export (``target_tensor``, ``train_indices_order``, ``target_cp_rank``)."""
    with np.load(path) as z:
        target = np.asarray(z["target_tensor"], dtype=np.float32)
        perm = np.asarray(z["train_indices_order"], dtype=np.int64)
        rank = int(z["target_cp_rank"])
    if perm.shape != (target.size,) or not np.array_equal(np.sort(perm), np.arange(target.size)):
        raise ValueError(f"{path}: train_indices_order is not a permutation of the linear indices")
    return TensorCompletionData(target, perm, rank)


def generate_tensor_data(
    order: int, rank: int, seed: int, mode_size: int = 8
) -> TensorCompletionData:
    """An own instance drawn like the authors' generator (spec §2.2).

    ``order`` factor matrices ``mode_size × rank`` with i.i.d. N(0, 1)
    entries, the sum of the ``rank`` outer products rescaled to unit
    Frobenius norm (float32), and one uniformly random permutation of the
    linear indices. Not the published data: every figure number changes.
    """
    rng = np.random.default_rng(seed)
    factors = [rng.standard_normal((mode_size, rank)) for _ in range(order)]
    tensor = cp_reconstruct(factors)
    tensor = (tensor / np.linalg.norm(tensor)).astype(np.float32)
    return TensorCompletionData(tensor, rng.permutation(tensor.size).astype(np.int64), rank)


def with_permutation(data: TensorCompletionData, permutation: np.ndarray) -> TensorCompletionData:
    """The same ground truth observed in another order (another instance of the protocol).

    Parameters
    ----------
    data : TensorCompletionData
        The data set.
    permutation : ndarray of int
        A permutation of ``0 .. data.target.size - 1``; the first n are observed.

    Returns
    -------
    TensorCompletionData
    """
    permutation = np.asarray(permutation, dtype=np.int64)
    if permutation.shape != (data.target.size,) or not np.array_equal(np.sort(permutation), np.arange(data.target.size)):
        raise ValueError("not a permutation of the tensor's linear indices")
    return TensorCompletionData(data.target, permutation, data.target_cp_rank)


def observed_indices(data: TensorCompletionData, n_obs: int) -> np.ndarray:
    """Row-major linear indices of the ``n_obs`` observed entries: the permutation's first ``n_obs``."""
    if not 0 < n_obs <= data.permutation.size:
        raise ValueError(f"n_obs must be in 1..{data.permutation.size}")
    return data.permutation[:n_obs].copy()


def linear_baseline_tensor(target: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """The "linear" solution: ``T*`` on the observed entries and 0 elsewhere."""
    out = np.zeros(target.size, dtype=target.dtype)
    out[observed] = target.reshape(-1)[observed]
    return out.reshape(target.shape)


def linear_baseline_error(target: np.ndarray, observed: np.ndarray) -> float:
    """Exact normalized error of the linear baseline, ``√(‖T*‖² − ‖T*_Ω‖²) / ‖T*‖``.

    Equals ``√(1 − ‖T*_Ω‖²)`` for the unit-norm targets of the paper.
    """
    t = target.astype(np.float64).reshape(-1)
    total = float(t @ t)
    seen = float(t[observed] @ t[observed])
    return math.sqrt(max(total - seen, 0.0) / total)


def reconstruction_error(tensor: np.ndarray, target: np.ndarray) -> float:
    """``‖W − T*‖_F / ‖T*‖_F`` in float64."""
    diff = tensor.astype(np.float64) - target.astype(np.float64)
    return float(np.linalg.norm(diff) / np.linalg.norm(target.astype(np.float64)))
