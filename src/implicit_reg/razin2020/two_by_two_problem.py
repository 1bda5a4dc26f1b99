"""The 2×2 completion problems of Razin & Cohen (2020) and the initializations of their runs.

Spec: ``shared/spec/razin2020.md`` §2.1 (model and initialization), §3 (Figure 1)
and §6.2 (perturbed problems). A problem observes some entries of a ``d×d``
matrix (``d = 2`` in the paper); a run factorizes it as the product
``P = W_1 W_2 ⋯ W_L`` of ``L = depth`` square layers, whose initial values
:func:`init_layers` draws. The engine that trains them is
:mod:`implicit_reg.razin2020.two_by_two`.

Two initialization scales exist in this project and they have two names: here
``init_product_std`` is the paper's "init X", the standard deviation of the
entries of the *product* ``P`` at initialization (spec §2.1, §9 item 1); Arora
et al.'s ``init_scale`` is their code's flag (‖W(0)‖_F ≈ √n·init_scale, spec
``arora2019.md`` §1.4), a different quantity.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Initializations of a run (spec §2.1): unbalanced i.i.d. Gaussian layers, the
#: paper's balanced "(b)" layers, or ``W_j = α·I``.
INIT_KINDS = ("gaussian", "balanced", "identity")


@dataclass(frozen=True)
class CompletionProblem:
    """A matrix completion problem: observed positions (0-based) and values.

    Attributes
    ----------
    rows, cols : numpy.ndarray of int64
        Positions ``(i, j) ∈ Ω`` of the observed entries, 0-based.
    values : numpy.ndarray of float64
        Observed values ``b_ij``, in the order of ``rows`` and ``cols``.
    shape : tuple of int
        ``(d, d)``.
    target_matrix : numpy.ndarray or None
        The authors' stored target (0 at unobserved entries), when loaded from their export.
    """

    rows: np.ndarray
    cols: np.ndarray
    values: np.ndarray
    shape: tuple[int, int]
    target_matrix: np.ndarray | None = None

    @property
    def dim(self) -> int:
        """Side of the (square) matrix."""
        return self.shape[0]

    def mask(self) -> np.ndarray:
        """``d×d`` float64 array, 1 at observed entries and 0 elsewhere."""
        m = np.zeros(self.shape)
        m[self.rows, self.cols] = 1.0
        return m

    def observed_matrix(self) -> np.ndarray:
        """``d×d`` float64 array with the observed values in place, 0 elsewhere."""
        b = np.zeros(self.shape)
        b[self.rows, self.cols] = self.values
        return b

    def unobserved(self) -> list[tuple[int, int]]:
        """Unobserved positions (0-based), row-major; ``[(0, 0)]`` in Figure 1."""
        m = self.mask()
        return [(i, j) for i in range(self.shape[0]) for j in range(self.shape[1]) if m[i, j] == 0]


def make_completion_problem(
    observed: Mapping[tuple[int, int], float], dim: int = 2
) -> CompletionProblem:
    """Build a problem from its observed entries.

    Parameters
    ----------
    observed : mapping
        ``{(row, col): b_ij}`` with 0-based positions, e.g. Figure 1's
        ``{(0, 1): 1, (1, 0): 1, (1, 1): 0}`` (spec §3).
    dim : int
        Side ``d`` of the square matrix.

    Returns
    -------
    CompletionProblem
        Entries sorted row-major.
    """
    pos = sorted(observed)
    rows = np.array([p[0] for p in pos], dtype=np.int64)
    cols = np.array([p[1] for p in pos], dtype=np.int64)
    vals = np.array([observed[p] for p in pos], dtype=np.float64)
    if rows.size and (rows.max() >= dim or cols.max() >= dim or min(rows.min(), cols.min()) < 0):
        raise ValueError("observed position outside the matrix")
    return CompletionProblem(rows, cols, vals, (dim, dim))


def load_completion_problem(path: str | Path) -> CompletionProblem:
    """Load the authors' JSON export (keys ``A``, ``y``, ``target_matrix``; spec §2.1).

    Each sensing matrix ``A_k`` must be one-hot (a completion problem); its
    single 1 gives the observed position and ``y_k`` the value. Values keep the
    float32-rounded numbers of the export (e.g. 0.009999999776 for ε = 0.01).

    Parameters
    ----------
    path : str or Path
        A ``.json`` export of the authors' ``.pt`` problem.

    Returns
    -------
    CompletionProblem

    Raises
    ------
    ValueError
        If a sensing matrix is not one-hot or an entry is observed twice.
    """
    with open(path, encoding="utf-8") as fh:
        raw = json.load(fh)
    a = np.asarray(raw["A"], dtype=np.float64)
    y = np.asarray(raw["y"], dtype=np.float64)
    if a.ndim != 3 or a.shape[1] != a.shape[2] or a.shape[0] != y.shape[0]:
        raise ValueError(f"{path}: expected A of shape [k, d, d] and y of shape [k]")
    rows, cols = [], []
    for k, ak in enumerate(a):
        nz = np.argwhere(ak != 0)
        if len(nz) != 1 or ak[tuple(nz[0])] != 1.0:
            raise ValueError(f"{path}: sensing matrix {k} is not one-hot; not a completion problem")
        rows.append(int(nz[0][0]))
        cols.append(int(nz[0][1]))
    if len(set(zip(rows, cols))) != len(rows):
        raise ValueError(f"{path}: an entry is observed twice")
    target = np.asarray(raw["target_matrix"], dtype=np.float64) if "target_matrix" in raw else None
    return CompletionProblem(
        np.array(rows, dtype=np.int64),
        np.array(cols, dtype=np.int64),
        y,
        (a.shape[1], a.shape[2]),
        target,
    )


@dataclass(frozen=True)
class DMFRunConfig:
    """One run of a 2×2 figure (spec §2.1, §3).

    Attributes
    ----------
    depth : int
        Number of layers ``L``.
    lr : float
        Constant learning rate η of gradient descent.
    init_product_std : float
        The paper's "init X": the standard deviation of the entries of the
        *product* ``P`` at initialization, for ``gaussian`` and ``balanced``
        (spec §2.1). For ``identity`` (used by no figure) it is the per-layer
        factor α of ``W_j = α·I``.
    init : str
        One of :data:`INIT_KINDS`.
    det_sign : int
        +1 / −1: redraw until ``det(P)`` has that sign; 0: no condition.
    seed : int
        Seed of ``numpy.random.default_rng`` for the draw.
    """

    depth: int
    lr: float
    init_product_std: float
    init: str = "gaussian"
    det_sign: int = 1
    seed: int = 0


def per_layer_std(init_product_std: float, depth: int, dim: int = 2) -> float:
    """Per-layer std ``s`` that gives product entries of std ``init_product_std``.

    For i.i.d. N(0, s²) ``d×d`` factors, ``Var(P_ij) = d^{L−1} s^{2L}``, hence
    ``s = (X / d^{(L−1)/2})^{1/L}`` (spec §2.1; 7.94e-3 for depth 3, X = 1e-6).

    Parameters
    ----------
    init_product_std : float
        X, the std of the product's entries.
    depth : int
        ``L``.
    dim : int
        ``d``.

    Returns
    -------
    float
        ``s``.
    """
    return (init_product_std / dim ** ((depth - 1) / 2)) ** (1.0 / depth)


def product_matrix(layers: np.ndarray) -> np.ndarray:
    """The product matrix ``P = W_1 W_2 ⋯ W_L`` (the authors' order; spec §2.1).

    Parameters
    ----------
    layers : numpy.ndarray, shape ``[..., L, d, d]``

    Returns
    -------
    numpy.ndarray, shape ``[..., d, d]``
        Left-to-right numpy matmuls.
    """
    p = layers[..., 0, :, :]
    for j in range(1, layers.shape[-3]):
        p = p @ layers[..., j, :, :]
    return p


def _det_sign_ok(layers: np.ndarray, det_sign: int) -> bool:
    if det_sign == 0:
        return True
    det = np.linalg.det(product_matrix(layers.astype(np.float64)))
    return bool(det > 0) if det_sign > 0 else bool(det < 0)


def init_gaussian(
    depth: int,
    init_product_std: float,
    rng: np.random.Generator,
    dim: int = 2,
    det_sign: int = 1,
    dtype: type = np.float32,
    max_draws: int = 10_000,
) -> np.ndarray:
    """Unbalanced i.i.d. Gaussian layers with product entries of std ``init_product_std``.

    ``W_j`` has i.i.d. N(0, s²) entries with ``s`` from :func:`per_layer_std`
    (spec §2.1). All layers are redrawn together until ``det(P)`` has the
    requested sign, as the authors' ``enforce_pos_det`` does (checked on the
    ``dtype`` layers).

    Parameters
    ----------
    depth : int
        ``L``.
    init_product_std : float
        X, the std of the product's entries.
    rng : numpy.random.Generator
    dim : int
        ``d``.
    det_sign : int
        +1 / −1 / 0 (no condition).
    dtype : type
        dtype of the returned layers.
    max_draws : int
        Draws before giving up.

    Returns
    -------
    numpy.ndarray, shape ``[L, d, d]``
    """
    s = per_layer_std(init_product_std, depth, dim)
    for _ in range(max_draws):
        layers = (rng.standard_normal((depth, dim, dim)) * s).astype(dtype)
        if _det_sign_ok(layers, det_sign):
            return layers
    raise RuntimeError(f"no draw with det sign {det_sign} in {max_draws} tries")


def init_balanced(
    depth: int,
    init_product_std: float,
    rng: np.random.Generator,
    dim: int = 2,
    det_sign: int = 1,
    dtype: type = np.float32,
    max_draws: int = 10_000,
) -> np.ndarray:
    """Balanced "(b)" layers: ``P = M`` with ``M`` i.i.d. N(0, X²), split by SVD.

    ``M = U diag(σ) Vᵀ``; ``W_1 = U diag(σ^{1/L})``, middle layers
    ``diag(σ^{1/L})``, ``W_L = diag(σ^{1/L}) Vᵀ``, so ``W_jᵀW_j = W_{j+1}W_{j+1}ᵀ``.
    Unlike the authors' code, ``M`` is redrawn until ``det(M)`` has the
    requested sign: all plotted "(b)" runs behave like det > 0 runs (spec §2.1).

    Parameters
    ----------
    depth : int
        ``L``.
    init_product_std : float
        X, the std of the entries of ``M = P``.
    rng : numpy.random.Generator
    dim : int
        ``d``.
    det_sign : int
        +1 / −1 / 0 (no condition).
    dtype : type
        dtype of the returned layers.
    max_draws : int
        Draws before giving up.

    Returns
    -------
    numpy.ndarray, shape ``[L, d, d]``
    """
    for _ in range(max_draws):
        m = rng.standard_normal((dim, dim)) * init_product_std
        if depth == 1:
            layers = m[None].astype(dtype)
        else:
            u, sigma, vt = np.linalg.svd(m)
            root = sigma ** (1.0 / depth)
            layers = np.empty((depth, dim, dim))
            layers[0] = u * root[None, :]
            for j in range(1, depth - 1):
                layers[j] = np.diag(root)
            layers[depth - 1] = root[:, None] * vt
            layers = layers.astype(dtype)
        if _det_sign_ok(layers, det_sign):
            return layers
    raise RuntimeError(f"no draw with det sign {det_sign} in {max_draws} tries")


def init_identity(
    depth: int, alpha: float, dim: int = 2, det_sign: int = 0, dtype: type = np.float32
) -> np.ndarray:
    """``W_j = α·I`` for every layer, so ``P = α^L·I``; deterministic.

    Parameters
    ----------
    depth : int
        ``L``.
    alpha : float
        α, the per-layer factor.
    dim : int
        ``d``.
    det_sign : int
        Must be satisfiable by ``det(α^L·I)``, else ``ValueError``.
    dtype : type
        dtype of the returned layers.

    Returns
    -------
    numpy.ndarray, shape ``[L, d, d]``
    """
    layers = np.broadcast_to(np.eye(dim) * alpha, (depth, dim, dim)).astype(dtype)
    if not _det_sign_ok(layers, det_sign):
        raise ValueError(f"identity init cannot have det sign {det_sign}")
    return layers


def init_layers(config: DMFRunConfig, dim: int = 2, dtype: type = np.float32) -> np.ndarray:
    """The initial layers of one run, drawn from ``numpy.random.default_rng(config.seed)``.

    Parameters
    ----------
    config : DMFRunConfig
    dim : int
        ``d``.
    dtype : type
        dtype of the layers (the engine's, float32 in the paper).

    Returns
    -------
    numpy.ndarray, shape ``[depth, d, d]``
    """
    if config.depth < 1:
        raise ValueError("depth must be >= 1")
    if config.init == "gaussian":
        return init_gaussian(
            config.depth, config.init_product_std, np.random.default_rng(config.seed), dim, config.det_sign, dtype
        )
    if config.init == "balanced":
        return init_balanced(
            config.depth, config.init_product_std, np.random.default_rng(config.seed), dim, config.det_sign, dtype
        )
    if config.init == "identity":
        return init_identity(config.depth, config.init_product_std, dim, config.det_sign, dtype)
    raise ValueError(f"unknown init {config.init!r}; expected one of {INIT_KINDS}")
