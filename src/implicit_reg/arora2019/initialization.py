"""Initialization of deep matrix factorizations (Arora et al. 2019, spec §1.3–1.4).

A run of depth N has factors ``W_1 … W_N`` whose product is the end-to-end matrix
``W = W_N ⋯ W_1`` (spec §1.3); every hidden width is ``min(rows, cols)``, so the
factorization does not constrain the rank.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def factor_shapes(shape: tuple[int, int], depth: int) -> list[tuple[int, int]]:
    """Shapes of the factors W_1 … W_N of a ``rows × cols`` product (spec §1.3).

    Every hidden width is ``min(rows, cols)``, so the product's rank is not
    constrained ("full-dimensional" factorization): W_1 is ``width × cols``, the
    inner factors ``width × width``, W_N ``rows × width``.

    Parameters
    ----------
    shape : (int, int)
        ``(rows, cols)`` of the end-to-end matrix W.
    depth : int
        N ≥ 1; depth 1 optimizes W directly.

    Returns
    -------
    list of (int, int)
        N shapes, W_1 first.
    """
    rows, cols = shape
    if depth < 1:
        raise ValueError(f"depth must be ≥ 1, got {depth}")
    if depth == 1:
        return [(rows, cols)]
    width = min(rows, cols)
    return [(width, cols)] + [(width, width)] * (depth - 2) + [(rows, width)]


def initial_factors(
    shape: tuple[int, int],
    depth: int,
    scheme: str,
    init_scale: float,
    rng: np.random.Generator,
) -> list[np.ndarray]:
    """Initial factors W_1 … W_N (float64) of one run (spec §1.4).

    ``init_scale`` has the authors' semantics (not the per-factor std):

    - ``gaussian``: each entry of each factor is N(0, s²) with
      ``s = init_scale^{1/N} / √width``, so that ``‖W(0)‖_F ≈ √n · init_scale``;
    - ``identity``: every factor is ``init_scale^{1/N} · I`` (rectangular identity),
      so ``W(0) = init_scale · I`` and the factors are exactly balanced;
    - ``balanced``: a gaussian product M with the same expected norm as
      ``gaussian``, its SVD ``M = U Σ Vᵀ`` split evenly as ``W_1 = Σ^{1/N} Vᵀ``,
      ``W_j = Σ^{1/N}``, ``W_N = U Σ^{1/N}``, so that ``W(0) = M`` and
      ``W_{j+1}ᵀ W_{j+1} = W_j W_jᵀ`` exactly.

    Parameters
    ----------
    shape : (int, int)
        ``(rows, cols)`` of the end-to-end matrix.
    depth : int
        N ≥ 1.
    scheme : str
        ``gaussian``, ``identity`` or ``balanced``.
    init_scale : float
        Positive scale (1e-3 by default in the paper's runs).
    rng : numpy.random.Generator
        The run's initialization stream (unused by ``identity``).

    Returns
    -------
    list of numpy.ndarray
        N float64 arrays with the shapes of :func:`factor_shapes`.
    """
    if init_scale <= 0:
        raise ValueError(f"init_scale must be positive, got {init_scale}")
    shapes = factor_shapes(shape, depth)
    width = min(shape)
    per_factor = init_scale ** (1.0 / depth)
    if scheme == "gaussian":
        std = per_factor / math.sqrt(width)
        return [rng.standard_normal(s) * std for s in shapes]
    if scheme == "identity":
        return [np.eye(*s) * per_factor for s in shapes]
    if scheme == "balanced":
        product = rng.standard_normal(shape) * (init_scale / math.sqrt(width))
        if depth == 1:
            return [product]
        u, sv, vt = np.linalg.svd(product, full_matrices=False)
        root = np.diag(sv ** (1.0 / depth))
        return [root @ vt] + [root.copy() for _ in range(depth - 2)] + [u @ root]
    raise ValueError(f"unknown initialization scheme {scheme!r}")


def end_to_end(factors: list[torch.Tensor] | list[np.ndarray]):
    """The end-to-end matrix ``W = W_N ⋯ W_1`` (spec §1.3).

    Parameters
    ----------
    factors : list of torch.Tensor or numpy.ndarray
        W_1 … W_N, each ``[rows_j, cols_j]`` or batched ``[B, rows_j, cols_j]``.

    Returns
    -------
    torch.Tensor or numpy.ndarray
        ``[rows, cols]`` (or ``[B, rows, cols]``), of the factors' type.
    """
    product = factors[0]
    for w in factors[1:]:
        product = w @ product
    return product
