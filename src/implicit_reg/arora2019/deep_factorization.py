"""Batched gradient descent on deep matrix factorizations (Arora et al. 2019).

The product matrix is ``W = W_N ⋯ W_1`` (depth N). A *batch* is a set of runs
that share one data set (same observations): they differ in initialization,
learning rate, seed and possibly depth, and are trained together as stacked
tensors ``[B, rows, cols]`` (one group per depth) with batched matrix products
and hand-written gradients; the observation of the product matrices runs once
for the whole batch (for sensing, two products with the measurement matrix).
Runs that stop (train loss ≤ tolerance, or divergence) are frozen on the spot
and removed from the batch at the next synchronisation point, so the slowest
run does not make the others pay.

Spec references: model §1.3, initialization §1.4, loss §1.5, optimizers §1.6,
stopping and logging §1.7, metrics §1.8.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from implicit_reg.core import checkpoint as ckpt
from implicit_reg.core import metrics
from implicit_reg.core.progress import progress_text

log = logging.getLogger(__name__)

STATUS_CONVERGED = "converged"
STATUS_MAX_ITERS = "max_iters"
STATUS_DIVERGED = "diverged"


# --------------------------------------------------------------------------
# Observation operators: the loss is (1/m) Σ (A(W) − y)², a mean with no ½.
# --------------------------------------------------------------------------


class ObservationOperator(Protocol):
    """A linear observation of the product matrix and its mean squared loss.

    ``product_gradient(r) == gradient_scale · adjoint(r)``: the engine works with
    the unscaled adjoint and folds ``gradient_scale`` (2/m) into the step size.
    """

    count: int
    gradient_scale: float
    #: The residual has the product's shape ``[B, rows, cols]`` (so may overwrite it).
    residual_like_product: bool

    def residual(self, product: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """Residual of a batch of products ``[B, rows, cols]`` (written into ``out`` if given)."""

    def residual_norm(self, residual: torch.Tensor) -> torch.Tensor:
        """‖residual‖ per run, ``[B]`` (one pass, no temporary)."""

    def loss(self, residual: torch.Tensor) -> torch.Tensor:
        """Mean squared residual per run, ``[B]``: ``residual_norm(r)² / count``."""

    def adjoint(self, residual: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """The adjoint of the observation applied to the residual (flat or matrix-shaped)."""

    def product_gradient(self, residual: torch.Tensor) -> torch.Tensor:
        """Gradient of the loss with respect to the product, ``[B, rows, cols]``."""


@dataclass
class EntryObservations:
    """Observed entries (matrix completion, MovieLens, or a test set).

    The mask is dense and multiplicative: boolean indexing is an order of
    magnitude slower on CPU (ecosystem spec §7).
    """

    mask: torch.Tensor  # [rows, cols], 1 on observed entries
    targets: torch.Tensor  # [rows, cols], 0 off the mask
    count: int
    _neg_targets: torch.Tensor = field(init=False, repr=False, compare=False)
    residual_like_product = True

    def __post_init__(self) -> None:
        self._neg_targets = -self.targets

    @property
    def gradient_scale(self) -> float:
        return 2.0 / self.count

    def residual(self, product: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        # P·M − Y in one pass; equals (P − Y)·M because Y is 0 off the mask.
        return torch.addcmul(self._neg_targets, product, self.mask, out=out)

    def residual_norm(self, residual: torch.Tensor) -> torch.Tensor:
        return torch.linalg.vector_norm(residual.flatten(-2), dim=-1)

    def loss(self, residual: torch.Tensor) -> torch.Tensor:
        return self.residual_norm(residual).square() / self.count

    def adjoint(self, residual: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        return residual

    def product_gradient(self, residual: torch.Tensor) -> torch.Tensor:
        return residual * self.gradient_scale

    def target_norm_sq(self) -> float:
        """‖Y‖² over the observed entries (normalises the reconstruction error)."""
        return float(self.targets.double().square().sum())


def _stack_runs(per_run: list[torch.Tensor]) -> torch.Tensor:
    """``[B, ...]`` from one tensor per run; a single run is a view, not a copy."""
    return per_run[0].unsqueeze(0) if len(per_run) == 1 else torch.stack(per_run)


def _sparse_times_dense(sparse: torch.Tensor, dense: torch.Tensor, out: torch.Tensor) -> None:
    """``out = sparse @ dense`` in place: ``torch.sparse.mm`` zero-fills and copies its
    result (three copies per call, about 60 % of a MovieLens step in the profile); ``addmm``
    with ``beta=0`` writes straight into ``out``."""
    torch.addmm(out, sparse, dense, beta=0.0, out=out)


class SampledEntries:
    """Few observed entries of a large matrix (MovieLens: 10,000 of 1.6 million).

    The loss reads only the observed entries, so a step never needs the product
    matrix: its observed entries are a sampled product ``W_N · (W_{N−1}⋯W_1)``
    on the observation pattern (SDDMM), and the gradient with respect to the
    product is a sparse matrix G whose products with dense factors are sparse
    kernels. The residual is ``[B, count]`` (observation order: row-major).
    The dense product is formed only when metrics are logged.
    """

    residual_like_product = False
    sampled = True

    def __init__(self, shape: tuple[int, int], rows: torch.Tensor, cols: torch.Tensor,
                 values: torch.Tensor) -> None:
        order = torch.argsort(rows * shape[1] + cols)
        self.shape = (int(shape[0]), int(shape[1]))
        self.rows, self.cols, self.targets = rows[order], cols[order], values[order]
        self.count = int(self.rows.numel())
        self.flat_index = self.rows * self.shape[1] + self.cols
        self._crow = torch._convert_indices_from_coo_to_csr(self.rows, self.shape[0])
        # Gᵀ in CSR: the same values, permuted into column-major order.
        self._to_transposed = torch.argsort(self.cols * self.shape[0] + self.rows)
        self._crow_t = torch._convert_indices_from_coo_to_csr(self.cols[self._to_transposed], self.shape[1])
        self._rows_t = self.rows[self._to_transposed]
        self._neg_targets = -self.targets

    @property
    def gradient_scale(self) -> float:
        return 2.0 / self.count

    @staticmethod
    def _sparse(crow: torch.Tensor, col: torch.Tensor, values: torch.Tensor,
                shape: tuple[int, int]) -> torch.Tensor:
        # torch calls CSR support "beta" in a warning; the sampled path uses only
        # sampled_addmm and addmm, whose results the tests check against dense.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return torch.sparse_csr_tensor(crow, col, values, shape, check_invariants=False)

    def _csr(self, values: torch.Tensor) -> torch.Tensor:
        return self._sparse(self._crow, self.cols, values, self.shape)

    def _csr_transposed(self, values: torch.Tensor) -> torch.Tensor:
        return self._sparse(self._crow_t, self._rows_t, values[self._to_transposed],
                            (self.shape[1], self.shape[0]))

    def residual(self, product: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """Residual from a batch of dense products ``[B, rows, cols]`` (used at logs)."""
        return product.reshape(product.shape[0], -1)[:, self.flat_index] - self.targets

    def sampled_residual(self, top: torch.Tensor, below: torch.Tensor) -> torch.Tensor:
        """Residual of the product ``top @ below`` on the observed entries only, ``[B, count]``."""
        negated = self._csr(self._neg_targets)
        return _stack_runs([
            torch.sparse.sampled_addmm(negated, top[b], below[b]).values() for b in range(top.shape[0])
        ])

    def times_dense(self, residual: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
        """``G_b @ dense_b`` per run, G_b the residual as a sparse matrix."""
        out = dense.new_empty((residual.shape[0], self.shape[0], dense.shape[-1]))
        for b in range(residual.shape[0]):
            _sparse_times_dense(self._csr(residual[b]), dense[b], out[b])
        return out

    def transposed_times_dense(self, residual: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
        """``G_bᵀ @ dense_b`` per run."""
        out = dense.new_empty((residual.shape[0], self.shape[1], dense.shape[-1]))
        for b in range(residual.shape[0]):
            _sparse_times_dense(self._csr_transposed(residual[b]), dense[b], out[b])
        return out

    def residual_norm(self, residual: torch.Tensor) -> torch.Tensor:
        return torch.linalg.vector_norm(residual, dim=-1)

    def loss(self, residual: torch.Tensor) -> torch.Tensor:
        return self.residual_norm(residual).square() / self.count

    def adjoint(self, residual: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """The residual scattered into dense ``[B, rows·cols]`` (metrics and depth 1)."""
        dense = residual.new_zeros((residual.shape[0], self.shape[0] * self.shape[1]))
        dense[:, self.flat_index] = residual
        return dense

    def product_gradient(self, residual: torch.Tensor) -> torch.Tensor:
        return self.adjoint(residual) * self.gradient_scale

    def target_norm_sq(self) -> float:
        return float(self.targets.double().square().sum())


#: Backends of the sensing products; ``auto`` picks ``onednn`` for float32 on a CPU when torch has it.
SENSING_BACKENDS = ("auto", "onednn", "blas")
#: Smallest A (m·n² entries) for which ``auto`` takes oneDNN (at m = 600, n = 40 it halves the products' time).
ONEDNN_MIN_ELEMENTS = 1 << 18


@functools.lru_cache(maxsize=1)
def _onednn_available() -> bool:
    """torch's oneDNN linear kernel with a prepacked weight works here and agrees with BLAS.

    The two ops are torch-internal (the CPU inductor's), so they are tried once on a
    small product instead of trusted; any failure keeps the BLAS backend.
    """
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        g = torch.Generator().manual_seed(0)
        a, x, b = torch.randn(7, 5, generator=g), torch.randn(3, 5, generator=g), torch.randn(7, generator=g)
        packed = torch.ops.mkldnn._reorder_linear_weight(a, 3)
        got = torch.ops.mkldnn._linear_pointwise(x, packed, b, "none", [], "")
        return bool(torch.allclose(got, torch.addmm(b, x, a.T), rtol=1e-5, atol=1e-5))
    except Exception:  # noqa: BLE001 - an internal op missing or changed: use BLAS
        return False


@dataclass
class LinearMeasurements:
    """Matrix sensing: y_i = ⟨X_i, W⟩ with all X_i stacked as the rows of A ``[m, rows·cols]``.

    A batch of runs shares A, so a step of the whole batch is two matrix–matrix
    products, residuals R = P Aᵀ − y (``[B, n²] × [n², m]``) and adjoints R A
    (``[B, m] × [m, n²]``), instead of 2B matrix–vector products; they are
    4·m·n² flops per run and 99 % of a step.

    Backends (``backend``, measured in ``bench/bench_sensing.py``): ``blas`` is
    ``torch.addmm``/``torch.mm`` (MKL on x86 CPUs, cuBLAS on a GPU); ``onednn``
    multiplies by A and Aᵀ prepacked once into oneDNN's blocked layout
    (``torch.ops.mkldnn._linear_pointwise``, the kernel ``torch.compile`` uses
    for frozen linear layers on a CPU): the same products in float32, summed in
    another order (results within float32 rounding), about twice MKL's rate on
    AVX-512 cores, where MKL's SGEMM runs its AVX2 code. ``auto`` takes
    ``onednn`` for float32 on a CPU when torch has it and A has at least
    :data:`ONEDNN_MIN_ELEMENTS` entries, else ``blas``.
    """

    matrix: torch.Tensor  # [m, rows*cols]
    targets: torch.Tensor  # [m]
    count: int
    backend: str = "auto"
    _neg_targets: torch.Tensor = field(init=False, repr=False, compare=False)
    _packed: tuple[torch.Tensor, torch.Tensor] | None = field(init=False, default=None, repr=False, compare=False)
    residual_like_product = False

    def __post_init__(self) -> None:
        if self.backend not in SENSING_BACKENDS:
            raise ValueError(f"unknown sensing backend {self.backend!r}; expected one of {SENSING_BACKENDS}")
        if self.backend == "auto":
            cpu32 = self.matrix.device.type == "cpu" and self.matrix.dtype == torch.float32
            # A oneDNN call costs ~30 µs more than a BLAS one: worth it only for a large A.
            large = self.matrix.numel() >= ONEDNN_MIN_ELEMENTS
            self.backend = "onednn" if cpu32 and large and _onednn_available() else "blas"
        self._neg_targets = -self.targets

    @property
    def gradient_scale(self) -> float:
        return 2.0 / self.count

    def _prepacked(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """A and Aᵀ in oneDNN's layout (packed once, at the first step's batch size;
        any batch size can use them)."""
        if self._packed is None:
            pack = torch.ops.mkldnn._reorder_linear_weight
            self._packed = (pack(self.matrix, batch), pack(self.matrix.T.contiguous(), batch))
        return self._packed

    def residual(self, product: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """R = P Aᵀ − y, ``[B, m]`` (``out`` is used by the ``blas`` backend only: use the result)."""
        flat = product.reshape(product.shape[0], -1)
        if self.backend == "onednn":
            packed = self._prepacked(flat.shape[0])[0]
            return torch.ops.mkldnn._linear_pointwise(flat, packed, self._neg_targets, "none", [], "")
        return torch.addmm(self._neg_targets, flat, self.matrix.T, out=out)

    def residual_norm(self, residual: torch.Tensor) -> torch.Tensor:
        return torch.linalg.vector_norm(residual, dim=-1)

    def loss(self, residual: torch.Tensor) -> torch.Tensor:
        return self.residual_norm(residual).square() / self.count

    def adjoint(self, residual: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """Σ_i r_i X_i = R A, ``[B, rows·cols]`` (``out`` as in :meth:`residual`)."""
        if self.backend == "onednn":
            packed = self._prepacked(residual.shape[0])[1]
            return torch.ops.mkldnn._linear_pointwise(residual, packed, None, "none", [], "")
        return torch.mm(residual, self.matrix, out=out)

    def product_gradient(self, residual: torch.Tensor) -> torch.Tensor:
        # residual is [B, m]; the result must be reshaped by the caller's shape.
        return self.adjoint(residual) * self.gradient_scale


@dataclass
class Problem:
    """Everything a batch of runs needs about its data."""

    shape: tuple[int, int]
    train: EntryObservations | SampledEntries | LinearMeasurements
    test: EntryObservations
    #: G = alignment_scale × ∇_W loss, the authors' rescaled gradient (spec §1.8).
    alignment_scale: float = 0.5

    def product_gradient(self, residual: torch.Tensor) -> torch.Tensor:
        grad = self.train.product_gradient(residual)
        return grad.reshape(grad.shape[0], *self.shape)

    def adjoint(self, residual: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """``product_gradient(residual) / train.gradient_scale``, shaped ``[B, rows, cols]``."""
        adj = self.train.adjoint(residual, out=out)
        return adj.view(adj.shape[0], *self.shape)


# --------------------------------------------------------------------------
# Initialization (spec §1.4)
# --------------------------------------------------------------------------


def factor_shapes(shape: tuple[int, int], depth: int) -> list[tuple[int, int]]:
    """Shapes of W_1 … W_N; hidden width min(rows, cols) keeps the rank unconstrained."""
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
    """Factors W_1 … W_N (float64) for one run.

    ``init_scale`` has the authors' semantics: for ``gaussian`` each entry of
    each factor is N(0, s²) with s = init_scale^{1/N}/√width, so that
    ‖W(0)‖_F ≈ √n·init_scale; ``identity`` sets every factor to
    init_scale^{1/N}·I (rectangular identity), so W(0) = init_scale·I;
    ``balanced`` draws a gaussian product M with the same expected norm as
    ``gaussian`` and splits its SVD evenly across the factors, so that
    W(0) = M and W_{j+1}ᵀW_{j+1} = W_j W_jᵀ exactly.
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
    """The product matrix W_N ⋯ W_1 (works for torch and numpy, batched or not)."""
    product = factors[0]
    for w in factors[1:]:
        product = w @ product
    return product


# --------------------------------------------------------------------------
# Forward / backward with hand-written gradients
# --------------------------------------------------------------------------


def _identity(x):
    return x


def forward(
    factors: list[torch.Tensor], out: list[torch.Tensor | None] | None = None
) -> list[torch.Tensor]:
    """Partial products [W_1, W_2W_1, …, W_N⋯W_1]; the last one is the product.

    N−1 batched matrix products, written into ``out[1:]`` when given.
    """
    partial = [factors[0]]
    for j in range(1, len(factors)):
        partial.append(torch.bmm(factors[j], partial[-1], out=None if out is None else out[j]))
    return partial


def backward(
    factors: list[torch.Tensor],
    partial: list[torch.Tensor],
    product_grad: torch.Tensor,
    out: list[torch.Tensor] | None = None,
    work: dict[int, torch.Tensor] | None = None,
) -> list[torch.Tensor]:
    """Gradients of the loss w.r.t. each factor, given ∂loss/∂W.

    ∂/∂W_j = (W_N⋯W_{j+1})ᵀ G (W_{j−1}⋯W_1)ᵀ, accumulated from the top so that
    the whole backward pass costs 2(N−1) batched matrix products. With ``out``
    (one buffer per factor) and ``work`` (buffers for the upstream products of
    factors 2 … N−1) nothing is allocated.
    """
    depth = len(factors)
    grads: list[torch.Tensor] = [product_grad] * depth
    upstream = product_grad
    for j in range(depth - 1, 0, -1):
        grads[j] = torch.bmm(upstream, partial[j - 1].transpose(1, 2),
                             out=None if out is None else out[j])
        dest = None if out is None else (out[0] if j == 1 else work[j])
        upstream = torch.bmm(factors[j].transpose(1, 2), upstream, out=dest)
    grads[0] = upstream
    return grads


def sampled_forward(factors: list[torch.Tensor], train: SampledEntries,
                    out: list[torch.Tensor | None] | None = None) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Partial products [W_1, …, W_{N−1}⋯W_1] and the residual on the observed entries.

    The top product W_N·(W_{N−1}⋯W_1) is only sampled, never formed.
    """
    if len(factors) == 1:
        return [factors[0]], train.residual(factors[0])
    partial = forward(factors[:-1], out=None if out is None else out[:-1])
    return partial, train.sampled_residual(factors[-1], partial[-1])


def sampled_backward(factors: list[torch.Tensor], partial: list[torch.Tensor],
                     train: SampledEntries, residual: torch.Tensor) -> list[torch.Tensor]:
    """Gradients (unscaled, like :func:`backward`'s) from a sparse G = residual.

    The two products with G are sparse kernels (count × width work each); the
    rest of the pass is :func:`backward`'s dense chain below the top factor.
    """
    depth = len(factors)
    if depth == 1:
        return [train.adjoint(residual).view(-1, *train.shape)]
    top = factors[-1]
    grads: list[torch.Tensor] = [residual] * depth
    grads[-1] = train.times_dense(residual, partial[-1].transpose(1, 2))
    upstream = train.transposed_times_dense(residual, top).transpose(1, 2)
    for j in range(depth - 2, 0, -1):
        grads[j] = torch.bmm(upstream, partial[j - 1].transpose(1, 2))
        upstream = torch.bmm(factors[j].transpose(1, 2), upstream)
    grads[0] = upstream.contiguous()
    return grads


class _FactorGroup:
    """Buffers of the runs of one depth: factors, gradients, partial products.

    When every factor has the same shape (square problems, depth ≥ 2) the
    factors and their gradients live in single ``[N, B, rows, cols]`` buffers,
    so the update and the gradient norms are one operation each instead of N.
    """

    def __init__(self, factors: list[torch.Tensor], start: int) -> None:
        depth = len(factors)
        shapes = [tuple(w.shape) for w in factors]
        self.depth, self.start, self.stop = depth, start, start + factors[0].shape[0]
        self.factor_buf: torch.Tensor | None = None
        self.grad_buf: torch.Tensor | None = None
        if depth >= 2 and all(s == shapes[0] for s in shapes):
            self.factor_buf = torch.stack(factors)
            self.factors = list(self.factor_buf.unbind(0))
            self.grad_buf = torch.empty_like(self.factor_buf)
            self.grads: list[torch.Tensor] = list(self.grad_buf.unbind(0))
        else:
            self.factors = [w.contiguous() for w in factors]
            self.grads = [torch.empty_like(w) for w in factors]
        like = factors[0]
        batch, cols = like.shape[0], like.shape[2]
        self.partial: list[torch.Tensor | None] = [None] + [
            like.new_empty((batch, factors[j].shape[1], cols)) for j in range(1, depth)
        ]
        self.upstream = {j: like.new_empty((batch, factors[j].shape[2], cols)) for j in range(2, depth)}

    def forward(self, product_out: torch.Tensor | None) -> list[torch.Tensor]:
        """Partial products of this group; the last one is written into ``product_out`` when given.

        A depth-1 group's product is its factor: it is copied into ``product_out``
        (n² numbers per run, against the m·n² of the shared products).
        """
        if product_out is not None and self.depth == 1:
            product_out.copy_(self.factors[0])
            return [product_out]
        return forward(self.factors, out=self.partial)

    def grad_norms(self, grads: list[torch.Tensor]) -> torch.Tensor:
        """‖∇_j‖ per factor and run, ``[N, B_group]`` (one pass over the gradients)."""
        if self.grad_buf is not None and grads[0] is self.grads[0]:
            n, b = self.grad_buf.shape[:2]
            return torch.linalg.vector_norm(self.grad_buf.view(n * b, -1), dim=1).view(n, b)
        return torch.stack([torch.linalg.vector_norm(g.flatten(1), dim=1) for g in grads])

    def update(self, grads: list[torch.Tensor], scale: torch.Tensor) -> None:
        """W_j ← W_j − scale·∇_j for every factor (scale is per run, ``[B_group]``)."""
        if self.factor_buf is not None and grads[0] is self.grads[0]:
            self.factor_buf.addcmul_(scale.view(1, -1, 1, 1), self.grad_buf, value=-1.0)
            return
        s = scale.view(-1, 1, 1)
        for w, g in zip(self.factors, grads):
            w.addcmul_(s, g, value=-1.0)


class _Workspace:
    """Preallocated buffers of the training loop for one batch, runs grouped by depth.

    The runs of a batch are ordered by depth; each depth is a :class:`_FactorGroup`
    (rows ``start:stop`` of the batch). With more than one group the groups' last
    partial products are views into one ``[B, rows, cols]`` product buffer, so
    the observation (for sensing the two products with the measurement matrix
    A, 99 % of a step) runs once on the whole batch whatever the mix of depths.
    ``st.factors`` (the groups' factors, group after group) are views into the
    groups' buffers while a workspace is live.
    """

    def __init__(self, factors: list[torch.Tensor], group_depths: list[int], lr: torch.Tensor,
                 gradient_scale: float, all_active: bool, residual_like_product: bool) -> None:
        self.groups: list[_FactorGroup] = []
        start = k = 0
        for depth in group_depths:
            group = _FactorGroup(factors[k:k + depth], start)
            self.groups.append(group)
            start, k = group.stop, k + depth
        self.factors = [w for g in self.groups for w in g.factors]
        self.product: torch.Tensor | None = None
        if len(self.groups) > 1:
            like = factors[-1]
            self.product = like.new_empty((start, like.shape[1], factors[0].shape[2]))
            for g in self.groups:
                if g.depth >= 2:
                    g.partial[-1] = self.product[g.start:g.stop]
        #: The residual may overwrite the product (same shape, and the product is not a factor).
        self.residual_in_place = residual_like_product and (self.product is not None or self.groups[0].depth >= 2)
        self.residual: torch.Tensor | None = None  # allocated by the first residual() call
        self.adjoint: torch.Tensor | None = None
        #: lr × gradient_scale: the update step of plain GD on the unscaled adjoint.
        self.lr_scaled = lr * gradient_scale
        #: Every run of the batch is active (then the step needs no mask).
        self.all_active = all_active

    @property
    def single(self) -> _FactorGroup | None:
        """The only group of a one-depth batch (the common case, and the sampled path's)."""
        return self.groups[0] if len(self.groups) == 1 else None

    def forward(self) -> list[list[torch.Tensor]]:
        """Every group's partial products; the batch's products are :meth:`products` of them."""
        out = self.product
        return [g.forward(None if out is None else out[g.start:g.stop]) for g in self.groups]

    def products(self, partials: list[list[torch.Tensor]]) -> torch.Tensor:
        """The product matrices of the whole batch, ``[B, rows, cols]`` (no copy)."""
        return partials[0][-1] if self.product is None else self.product

    def backward(self, partials: list[list[torch.Tensor]], adjoint: torch.Tensor) -> list[list[torch.Tensor]]:
        """Unscaled gradients of every group from the batch's adjoint ``[B, rows, cols]``."""
        return [
            backward(g.factors, p, adjoint[g.start:g.stop], out=g.grads, work=g.upstream)
            for g, p in zip(self.groups, partials)
        ]

    def grad_sq_norms(self, grads: list[list[torch.Tensor]], xp, arr):
        """Σ_j ‖∇_j‖² per run, ``[B]``, in the bookkeeping namespace ``xp`` (``arr`` converts to it)."""
        sq = [(arr(g.grad_norms(gg)) ** 2).sum(0) for g, gg in zip(self.groups, grads)]
        if len(sq) == 1:
            return sq[0]
        return np.concatenate(sq) if xp is np else torch.cat(sq)

    def update(self, grads: list[list[torch.Tensor]], scale: torch.Tensor) -> None:
        """One step of every run: W_j ← W_j − scale·∇_j (scale is per run, ``[B]``)."""
        for g, gg in zip(self.groups, grads):
            g.update(gg, scale if len(self.groups) == 1 else scale[g.start:g.stop])

    def adopt(self, partials: list[list[torch.Tensor]], product: torch.Tensor) -> None:
        """Use fresh, contiguous selected tensors as this iteration's partial products."""
        if self.product is not None:
            self.product = product
        for g, p in zip(self.groups, partials):
            g.partial[1:len(p)] = p[1:]
            if self.product is not None and g.depth >= 2:
                g.partial[-1] = product[g.start:g.stop]


# --------------------------------------------------------------------------
# Optimizers (spec §1.6)
# --------------------------------------------------------------------------


def group_rmsprop_step_size(
    lr: torch.Tensor,
    second_moment: torch.Tensor,
    grad_sq_norm: torch.Tensor,
    step: int,
    alpha: float,
    eps: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """GroupRMSprop: one global adaptive scalar step per run.

    v_t = α v_{t−1} + (1−α) Σ_θ ‖∇_θ L‖², v̂_t = v_t/(1−α^t),
    η_t = lr/(√v̂_t + ε). Returns (η_t, v_t); ``step`` is t ≥ 1.

    The reference form of the formula; ``BatchTrainer._step_size`` computes the
    same (on the per-run vectors in numpy on CPU, with the 2/m gradient scale
    folded in).
    """
    second_moment = alpha * second_moment + (1.0 - alpha) * grad_sq_norm
    corrected = second_moment / (1.0 - alpha**step)
    return lr / (corrected.sqrt() + eps), second_moment


@dataclass(frozen=True)
class Schedule:
    """How long and how a batch is trained, and what is logged."""

    optimizer: str = "grouprmsprop"  # or "gd"
    max_iters: int = 1_000_000
    log_every: int = 1000
    train_loss_tol: float = 1e-6
    rmsprop_alpha: float = 0.99
    rmsprop_eps: float = 1e-4
    n_singular_values: int = 10
    log_alignment: bool = False
    #: A finite loss above this counts as divergence.
    divergence_loss: float = 1e30
    #: How often stopped runs are removed from the batch (iterations).
    sync_every: int = 100
    #: Seconds between checkpoints (0 disables).
    checkpoint_seconds: float = 300.0

    def __post_init__(self) -> None:
        if self.optimizer not in ("grouprmsprop", "gd"):
            raise ValueError(f"unknown optimizer {self.optimizer!r}")
        for name in ("max_iters", "log_every", "sync_every"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")


@dataclass
class BatchResult:
    """Final metrics (one entry per run, in input order) and logged trajectories."""

    final: dict[str, np.ndarray]
    status: list[str]
    trajectories: dict[str, np.ndarray]
    batch_wall_seconds: float = 0.0
    final_products: np.ndarray | None = None


@dataclass
class _State:
    """Mutable training state; everything needed to resume lives here."""

    iteration: int
    factors: list[torch.Tensor]
    run_index: torch.Tensor  # original position of each active run
    lr: torch.Tensor
    second_moment: torch.Tensor
    active: torch.Tensor  # bool, runs not yet stopped since the last sync
    stop_iter: torch.Tensor
    elapsed: float
    history: dict[str, list[torch.Tensor]] = field(default_factory=dict)
    final: dict[str, torch.Tensor] = field(default_factory=dict)
    status: dict[int, str] = field(default_factory=dict)
    products: dict[int, torch.Tensor] = field(default_factory=dict)


FINAL_COLUMNS = (
    "final_train_loss",
    "test_mse",
    "recon_error_sq",
    "recon_error",
    "nuclear_norm",
    "effective_rank",
    "iterations",
    "wall_seconds",
)


class BatchTrainer:
    """Trains a batch of deep-factorization runs that share one problem."""

    def __init__(
        self,
        problem: Problem,
        initial: list[list[np.ndarray]],
        lrs: list[float],
        schedule: Schedule,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        checkpoint_path: str | Path | None = None,
        fingerprint: str = "",
    ) -> None:
        """``fingerprint``: what the caller knows determines the numbers beyond the
        arguments here (the data files' sha256, the spec); the checkpoint's fingerprint
        adds the learning rates, schedule, dtype, device and the initial factors' bytes
        (hence their seeds), so a checkpoint of any other batch is never resumed."""
        if len(initial) != len(lrs) or not initial:
            raise ValueError("need one initialization per learning rate, at least one")
        if any(lr <= 0 for lr in lrs):
            raise ValueError(f"learning rates must be positive, got {lrs}")
        self.problem = problem
        self.schedule = schedule
        self.device = torch.device(device)
        self.dtype = dtype
        self.n_runs = len(lrs)
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
        self.fingerprint = ckpt.fingerprint({
            "caller": fingerprint, "lrs": [float(lr) for lr in lrs],
            # How often the state is saved does not change the numbers.
            "schedule": {k: v for k, v in vars(schedule).items() if k != "checkpoint_seconds"},
            "dtype": str(dtype), "device": self.device.type,
            "initial": ckpt.array_digest(w for run in initial for w in run),
        })
        #: Depth of every run (input order); a batch may mix depths (one group per depth).
        self.run_depths = np.array([len(run) for run in initial], dtype=np.int64)
        # Runs are kept ordered by depth, so that each depth is a contiguous group of the batch;
        # run_index maps the order back to the input (stable: input order within a depth).
        order = np.argsort(self.run_depths, kind="stable")
        factors = [
            torch.as_tensor(
                np.stack([initial[i][j] for i in order[self.run_depths[order] == depth]]),
                dtype=dtype, device=self.device,
            )
            for depth in np.unique(self.run_depths)
            for j in range(depth)
        ]
        self.state = _State(
            iteration=0,
            factors=factors,
            run_index=torch.as_tensor(order, device=self.device),
            lr=torch.as_tensor(np.asarray(lrs)[order], dtype=dtype, device=self.device),
            second_moment=torch.zeros(self.n_runs, dtype=dtype, device=self.device),
            active=torch.ones(self.n_runs, dtype=torch.bool, device=self.device),
            stop_iter=torch.full((self.n_runs,), -1, device=self.device),
            elapsed=0.0,
        )
        self.test_norm_sq = problem.test.target_norm_sq()
        #: Per-run bookkeeping in numpy (CPU); False keeps every op of a step in torch, as on a GPU.
        self.host_bookkeeping = self.device.type == "cpu"
        self._xp = self._array_namespace()

    # ---------------------------------------------------------------- running
    def _workspace(self) -> _Workspace:
        """Buffers for the current batch; afterwards ``st.factors`` are views into them."""
        st = self.state
        all_active = self.host_bookkeeping and bool(st.active.all())
        train = self.problem.train
        ws = _Workspace(st.factors, self._group_depths(), st.lr, train.gradient_scale, all_active,
                        train.residual_like_product)
        if getattr(train, "sampled", False) and ws.single is None:
            raise ValueError("the sampled-gradient path trains one depth per batch")
        st.factors = ws.factors
        self._ws = ws
        return ws

    def _group_depths(self) -> list[int]:
        """Depths of the batch's groups, in batch order (the active runs are ordered by depth)."""
        return [int(d) for d in np.unique(self.run_depths[self.state.run_index.cpu().numpy()])]

    def run(self) -> BatchResult:
        """Train until every run has stopped or reached ``max_iters``."""
        self._maybe_resume()
        sched = self.schedule
        st = self.state
        train = self.problem.train
        ws = self._workspace()
        t_start = time.perf_counter() - st.elapsed
        last_ckpt = time.perf_counter()
        sampled = getattr(train, "sampled", False)
        while st.run_index.numel() > 0:
            t = st.iteration
            at_cap = t >= sched.max_iters
            boundary = t % sched.sync_every == 0 or t % sched.log_every == 0 or at_cap
            if sampled:
                group = ws.single
                partial, residual = sampled_forward(st.factors, train, out=group.partial)
                partials = [partial]
                # The product matrix exists only where metrics need it.
                product = torch.bmm(st.factors[-1], partial[-1]) if boundary and len(st.factors) > 1 else partial[-1]
            else:
                partials = ws.forward()
                product = ws.products(partials)
                # Between sync/log iterations nothing reads the product after its residual
                # (the backward pass uses the partial products below it), so the residual
                # overwrites it: one [B, rows, cols] stream less per iteration.
                if ws.residual_in_place and not boundary:
                    residual = train.residual(product, out=product)
                else:
                    residual = ws.residual = train.residual(product, out=ws.residual)
            residual_norm = train.residual_norm(residual)
            if boundary:
                loss = self._xp[2](self._check_stops(t, residual_norm))
                st.elapsed = time.perf_counter() - t_start
                if at_cap:
                    st.stop_iter = torch.where(st.active, t, st.stop_iter)
                    st.active = torch.zeros_like(st.active)
                stopped = ~st.active
                if bool(stopped.any()):
                    self._finalize(stopped, product, loss, at_cap)
                    kept = (~stopped).nonzero().squeeze(1)
                    partials = self._select_partials(partials, kept)
                    st.factors = [w.index_select(0, kept[(kept >= g.start) & (kept < g.stop)] - g.start)
                                  for g in ws.groups for w in g.factors]
                    st.factors = [w for w in st.factors if w.shape[0] > 0]
                    product = product.index_select(0, kept)
                    residual = residual.index_select(0, kept)
                    loss = loss.index_select(0, kept)
                    for name in ("run_index", "lr", "second_moment", "active", "stop_iter"):
                        setattr(st, name, getattr(st, name).index_select(0, kept))
                    if isinstance(getattr(self, "_last_step", None), torch.Tensor):
                        self._last_step = self._last_step.index_select(0, kept)
                    if st.run_index.numel() == 0:
                        break
                    # New buffers for the smaller batch; the selected tensors are fresh
                    # and contiguous, so they become this iteration's buffers.
                    ws = self._workspace()
                    partials = [[g.factors[0]] + p[1:] for g, p in zip(ws.groups, partials)]
                    if not sampled:
                        ws.adopt(partials, product)
                        product = ws.products(partials)
                    else:
                        ws.single.partial[1:len(partials[0])] = partials[0][1:]
                    ws.residual = residual
                if t % sched.log_every == 0:
                    self._log(t, product, residual, loss)
                    log.info(
                        "iteration %d: %d runs active, train loss min %.3e max %.3e, %.1f s, %s",
                        t,
                        st.run_index.numel(),
                        float(loss.min()),
                        float(loss.max()),
                        st.elapsed,
                        progress_text(t, sched.max_iters, st.elapsed),
                    )
            if sampled:
                grads = [sampled_backward(st.factors, partials[0], train, residual)]
            else:
                ws.adjoint = train.adjoint(residual, out=ws.adjoint)  # flat for sensing
                grads = ws.backward(partials, ws.adjoint.view(-1, *self.problem.shape))
            if not boundary:
                # Here, next to the step size, the [B]-vector work runs in one go.
                self._check_stops(t, residual_norm)
            ws.update(grads, self._step_size(grads, t + 1))
            st.iteration = t + 1
            # Checkpoint between iterations, so a resumed job starts at a clean iteration.
            if (
                self.checkpoint_path is not None
                and sched.checkpoint_seconds > 0
                and st.iteration % sched.sync_every == 0
                and time.perf_counter() - last_ckpt >= sched.checkpoint_seconds
            ):
                st.elapsed = time.perf_counter() - t_start
                self.save_checkpoint(self.checkpoint_path)
                last_ckpt = time.perf_counter()
        st.elapsed = time.perf_counter() - t_start
        return self._result()

    def _select_partials(self, partials: list[list[torch.Tensor]], kept: torch.Tensor) -> list[list[torch.Tensor]]:
        """The kept runs' partial products, per group (groups left without runs dropped)."""
        out = []
        for g, p in zip(self._ws.groups, partials):
            local = kept[(kept >= g.start) & (kept < g.stop)] - g.start
            if local.numel() > 0:
                out.append([x.index_select(0, local) for x in p])
        return out

    def _check_stops(self, t: int, residual_norm: torch.Tensor) -> np.ndarray | torch.Tensor:
        """Loss of iteration t from the residual norms; freeze runs that stop at t.

        Returns the loss ``[B]`` as a numpy array on CPU, a tensor elsewhere
        (see :meth:`_array_namespace`). The per-run bookkeeping ([B] vectors) runs in
        numpy on CPU, where a torch call on a tiny tensor costs 5–15 µs and a
        numpy one about 1 µs; when every run is active and none stops (the
        common case) nothing is written. On a GPU it stays in torch (the
        all-active shortcut would cost a device synchronisation).
        """
        st, sched, ws = self.state, self.schedule, self._ws
        xp, arr, tens = self._xp
        loss_x = arr(residual_norm) ** 2 / self.problem.train.count
        keep = (loss_x > sched.train_loss_tol) & (loss_x < sched.divergence_loss)  # NaN stops too
        if not (ws.all_active and keep.all()):
            st.stop_iter = tens(xp.where(arr(st.active) & ~keep, t, arr(st.stop_iter)))
            st.active = tens(arr(st.active) & keep)
            ws.all_active = False
        return loss_x

    def _array_namespace(self):
        """(xp, to_xp, to_torch) for the per-run bookkeeping: numpy views on CPU, torch elsewhere."""
        if self.host_bookkeeping:
            return np, torch.Tensor.numpy, torch.from_numpy
        return torch, _identity, _identity

    def _step_size(self, grads: list[list[torch.Tensor]], step: int) -> torch.Tensor:
        """Per-run multiplier of the *unscaled* gradients ``grads`` (the adjoint's; one list per depth group).

        The true gradients are ``c·grads`` with c = ``gradient_scale`` (2/m); c
        is folded in here (η_t·c) instead of being a pass over the residual.
        Frozen runs get 0. ``step`` is t ≥ 1.
        """
        st, sched, ws = self.state, self.schedule, self._ws
        _, arr, tens = self._xp
        c = self.problem.train.gradient_scale
        if sched.optimizer == "gd":
            self._last_step = st.lr
            scale = arr(ws.lr_scaled)
        else:
            # GroupRMSprop (§1.6a): v_t = α v_{t−1} + (1−α) Σ_θ ‖∇_θ L‖² with
            # ∇_θ L = c·grads_θ; η_t = lr / (√(v_t/(1−α^t)) + ε).
            alpha = sched.rmsprop_alpha
            sq = ws.grad_sq_norms(grads, self._xp[0], arr)
            v = arr(st.second_moment) * alpha + sq * ((1.0 - alpha) * c * c)
            eta = arr(st.lr) / ((v / (1.0 - alpha**step)) ** 0.5 + sched.rmsprop_eps)
            st.second_moment = tens(v)
            self._last_step = tens(eta)
            scale = eta * c
        if not ws.all_active:
            scale = scale * arr(st.active)
        return tens(scale)

    # ---------------------------------------------------------------- metrics
    def _evaluate(
        self, product: torch.Tensor, residual: torch.Tensor, loss: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Metrics of a batch of products, computed before their update."""
        test_res = self.problem.test.residual(product)
        test_sq = test_res.square().sum(dim=(-2, -1))
        if self.schedule.log_alignment:
            u, sv, vh = metrics.svd(product.double())
        else:
            sv = metrics.singular_values(product.double())
        out = {
            "train_loss": loss.double(),
            "test_mse": test_sq.double() / self.problem.test.count,
            "recon_error_sq": test_sq.double() / self.test_norm_sq,
            "recon_error": (test_sq.double() / self.test_norm_sq).sqrt(),
            "nuclear_norm": metrics.nuclear_norm_from_singular_values(sv),
            "effective_rank": metrics.effective_rank_from_singular_values(sv),
        }
        k = min(self.schedule.n_singular_values, sv.shape[-1])
        for i in range(k):
            out[f"sv_{i + 1}"] = sv[:, i]
        if self.schedule.log_alignment:
            grad = self.problem.product_gradient(residual).double()
            stats = metrics.alignment_statistics(
                product.double(), grad * self.problem.alignment_scale, (u, vh)
            )
            for i, name in enumerate(
                ("align_diag_mean", "align_diag_std", "align_offdiag_mean", "align_offdiag_std")
            ):
                out[name] = stats[:, i]
            # ⟨∇ℓ(W), u_r v_rᵀ⟩ for the top singular pairs: Theorem 3's rate term.
            proj = torch.einsum("bir,bij,brj->br", u[:, :, :k], grad, vh[:, :k, :])
            for i in range(k):
                out[f"grad_proj_{i + 1}"] = proj[:, i]
        return out

    def _log(
        self, t: int, product: torch.Tensor, residual: torch.Tensor, loss: torch.Tensor
    ) -> None:
        st = self.state
        values = self._evaluate(product, residual, loss)
        values["run"] = st.run_index.clone()
        values["iteration"] = torch.full_like(st.run_index, t)
        if self.schedule.optimizer == "gd":
            values["step_size"] = st.lr.double()
        elif t > 0:
            values["step_size"] = self._last_step.double()
        else:
            values["step_size"] = torch.full_like(loss, float("nan"), dtype=torch.float64)
        for name, v in values.items():
            st.history.setdefault(name, []).append(v.detach().cpu())

    def _finalize(
        self, stopped: torch.Tensor, product: torch.Tensor, loss: torch.Tensor, at_cap: bool
    ) -> None:
        """Record final metrics and the last trajectory row of stopped runs."""
        st, sched = self.state, self.schedule
        idx = stopped.nonzero().squeeze(1)
        p = product.index_select(0, idx)
        lo = loss.index_select(0, idx)
        residual = self.problem.train.residual(p)
        values = self._evaluate(p, residual, lo)
        stop_iter = st.stop_iter.index_select(0, idx)
        runs = st.run_index.index_select(0, idx)
        # The last trajectory row of a run is its stopping iteration (spec §1.7).
        row = dict(values)
        row["run"] = runs.clone()
        row["iteration"] = stop_iter.clone()
        row["step_size"] = torch.full_like(lo, float("nan"), dtype=torch.float64)
        # Stopped runs leave the batch before the log of this iteration, so this
        # row is never a duplicate.
        for name, v in row.items():
            st.history.setdefault(name, []).append(v.detach().cpu())
        for i, run in enumerate(runs.tolist()):
            lv = float(lo[i])
            if at_cap and math.isfinite(lv) and lv > sched.train_loss_tol and lv < sched.divergence_loss:
                status = STATUS_MAX_ITERS
            elif math.isfinite(lv) and lv <= sched.train_loss_tol:
                status = STATUS_CONVERGED
            else:
                status = STATUS_DIVERGED
            st.status[run] = status
            st.products[run] = p[i].detach().cpu()
            for name in ("train_loss", "test_mse", "recon_error_sq", "recon_error", "nuclear_norm", "effective_rank"):
                st.final.setdefault(name, torch.full((self.n_runs,), float("nan"), dtype=torch.float64))
                st.final[name][run] = float(values[name][i])
            st.final.setdefault("iterations", torch.full((self.n_runs,), -1.0, dtype=torch.float64))
            st.final["iterations"][run] = float(stop_iter[i])
            st.final.setdefault("wall_seconds", torch.full((self.n_runs,), float("nan"), dtype=torch.float64))
            st.final["wall_seconds"][run] = st.elapsed
            log.info("run %d stopped at iteration %d: %s, train loss %.3e", run, int(stop_iter[i]), status, lv)

    def _result(self) -> BatchResult:
        st = self.state
        final = {k: v.numpy().copy() for k, v in st.final.items()}
        final["final_train_loss"] = final.pop("train_loss")
        final["iterations"] = final["iterations"].astype(np.int64)
        traj = {k: torch.cat(v).numpy() for k, v in st.history.items()}
        order = np.lexsort((traj["iteration"], traj["run"]))
        traj = {k: v[order] for k, v in traj.items()}
        traj["run"] = traj["run"].astype(np.int64)
        traj["iteration"] = traj["iteration"].astype(np.int64)
        products = np.stack([st.products[i].numpy() for i in range(self.n_runs)])
        return BatchResult(
            final=final,
            status=[st.status[i] for i in range(self.n_runs)],
            trajectories=traj,
            batch_wall_seconds=st.elapsed,
            final_products=products,
        )

    # ------------------------------------------------------------ checkpoints
    def save_checkpoint(self, path: str | Path) -> None:
        """Write the whole state with this batch's fingerprint (atomic, see :mod:`checkpoint`)."""
        st = self.state
        payload = {
            "n_runs": self.n_runs,
            "iteration": st.iteration,
            "elapsed": st.elapsed,
            "factors": [w.detach() for w in st.factors],
            "run_index": st.run_index,
            "lr": st.lr,
            "second_moment": st.second_moment,
            "active": st.active,
            "stop_iter": st.stop_iter,
            "history": {k: torch.cat(v) for k, v in st.history.items()},
            "final": st.final,
            "status": {str(k): v for k, v in st.status.items()},
            "products": {str(k): v for k, v in st.products.items()},
            "last_step": getattr(self, "_last_step", st.lr),
            "torch_rng": torch.get_rng_state(),
        }
        ckpt.save_checkpoint(path, payload, self.fingerprint)
        log.info("checkpoint written at iteration %d", st.iteration)

    def _maybe_resume(self) -> None:
        if self.checkpoint_path is None:
            return
        # Absent, foreign (other fingerprint) or corrupt: None, with a warning naming the file.
        payload = ckpt.load_checkpoint(self.checkpoint_path, self.fingerprint)
        if payload is None:
            return
        dev = self.device
        st = self.state
        st.iteration = int(payload["iteration"])
        st.elapsed = float(payload["elapsed"])
        st.factors = [w.to(dev, self.dtype) for w in payload["factors"]]
        for name in ("run_index", "lr", "second_moment", "active", "stop_iter"):
            setattr(st, name, payload[name].to(dev))
        st.history = {k: [v] for k, v in payload["history"].items()}
        st.final = dict(payload["final"])
        st.status = {int(k): v for k, v in payload["status"].items()}
        st.products = {int(k): v for k, v in payload["products"].items()}
        self._last_step = payload["last_step"].to(dev)
        torch.set_rng_state(payload["torch_rng"])
        log.info("resumed from checkpoint %s at iteration %d", self.checkpoint_path, st.iteration)


def pick_device(requested: str = "auto") -> torch.device:
    """``cuda`` when asked for or available (``auto``), else CPU, saying so in the log.

    The scheduler restricts visible GPUs through ``CUDA_VISIBLE_DEVICES``; torch
    honours it, so device 0 is always the one this job was given.
    """
    if requested == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda:0")
    if requested == "cuda":
        log.warning("CUDA requested but not available: falling back to CPU")
    else:
        log.info(
            "no GPU visible (CUDA_VISIBLE_DEVICES=%s): running on CPU",
            os.environ.get("CUDA_VISIBLE_DEVICES", "unset"),
        )
    return torch.device("cpu")


def _train_entries(
    shape: tuple[int, int], rows: np.ndarray, cols: np.ndarray, values: np.ndarray,
    device: torch.device, dtype: torch.dtype, sampled_max_fraction: float,
) -> EntryObservations | SampledEntries:
    """Training entries, sampled (sparse) when they cover at most ``sampled_max_fraction``."""
    if len(values) <= sampled_max_fraction * shape[0] * shape[1]:
        return SampledEntries(
            shape,
            torch.as_tensor(rows, dtype=torch.int64, device=device),
            torch.as_tensor(cols, dtype=torch.int64, device=device),
            torch.as_tensor(values, dtype=dtype, device=device),
        )
    return _entries(shape, rows, cols, values, device, dtype)


def _entries(
    shape: tuple[int, int], rows: np.ndarray, cols: np.ndarray, values: np.ndarray,
    device: torch.device, dtype: torch.dtype,
) -> EntryObservations:
    # Accumulated, so that an entry drawn k times (sampling with replacement) weighs k
    # in the gradient (2/m) Σ_draws (P − y) e_ij, as a loss over the drawn list; for
    # distinct entries this is the plain 0/1 mask.
    mask = torch.zeros(shape, dtype=dtype, device=device)
    targets = torch.zeros(shape, dtype=dtype, device=device)
    r = torch.as_tensor(rows, device=device)
    c = torch.as_tensor(cols, device=device)
    values_t = torch.as_tensor(values, dtype=dtype, device=device)
    mask.index_put_((r, c), torch.ones_like(values_t), accumulate=True)
    targets.index_put_((r, c), values_t, accumulate=True)
    return EntryObservations(mask, targets, int(len(values)))


def build_problem(
    task: str,
    observations: dict[str, np.ndarray],
    ground_truth: np.ndarray | None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    alignment_total: int | None = None,
    sampled_max_fraction: float = 0.0,
) -> Problem:
    """Torch problem from the arrays of an observation file (and ground truth).

    The alignment gradient scale follows the authors' code (spec §1.8):
    completion G = P_Ω(W−Y)/m (half the gradient); sensing G = Σ r_i X_i
    (m/2 times the gradient); MovieLens divides by the full dataset size
    ``alignment_total`` instead of the number of training ratings.
    Training entries covering at most ``sampled_max_fraction`` of the matrix
    use :class:`SampledEntries` (the sparse path); 0 keeps every problem dense.
    """
    device = torch.device(device)
    if task == "movielens":
        shape = tuple(int(s) for s in observations["shape"])
        train = _train_entries(shape, observations["train_rows"], observations["train_cols"],
                               observations["train_values"], device, dtype, sampled_max_fraction)
        test = _entries(shape, observations["test_rows"], observations["test_cols"],
                        observations["test_values"], device, dtype)
        total = alignment_total or train.count
        return Problem(shape, train, test, alignment_scale=0.5 * train.count / total)
    if ground_truth is None:
        raise ValueError(f"task {task!r} needs its ground truth")
    shape = tuple(ground_truth.shape)
    test = EntryObservations(
        torch.ones(shape, dtype=dtype, device=device),
        torch.as_tensor(ground_truth, dtype=dtype, device=device),
        shape[0] * shape[1],
    )
    if task == "completion":
        idx = observations["indices"]
        train = _train_entries(shape, idx // shape[1], idx % shape[1], observations["labels"], device, dtype,
                               sampled_max_fraction)
        return Problem(shape, train, test, alignment_scale=0.5)
    if task == "sensing":
        matrix = torch.as_tensor(observations["measurements"], dtype=dtype, device=device)
        targets = torch.as_tensor(observations["labels"], dtype=dtype, device=device)
        m = int(targets.shape[0])
        return Problem(shape, LinearMeasurements(matrix, targets, m), test, alignment_scale=m / 2)
    raise ValueError(f"unknown task {task!r}")
