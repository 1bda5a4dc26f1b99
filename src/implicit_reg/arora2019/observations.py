"""Observation operators of deep matrix factorization (Arora et al. 2019, spec §1.2, §1.5).

A run observes its product matrix ``W = W_N ⋯ W_1`` through a linear operator
``A`` and minimises the mean squared residual

.. math::

    L(W) = \\frac{1}{m} \\sum_{i=1}^{m} \\big(\\mathcal{A}(W)_i - y_i\\big)^2

(a mean with no ½, as in the authors' code, spec §1.5): for matrix completion
``A(W)_i = W_{r_i c_i}`` (observed entries, also MovieLens), for matrix sensing
``A(W)_i = ⟨X_i, W⟩``. Its gradient with respect to the product is
``∇_W L = (2/m) A*(A(W) − y)``; the engine computes the unscaled adjoint
``A*(r)`` and folds ``gradient_scale = 2/m`` into the step size.

Every operator works on a batch of runs ``[B, rows, cols]`` at once:
:class:`EntryObservations` (dense mask), :class:`SampledEntries` (few entries of a
large matrix, sparse kernels), :class:`LinearMeasurements` (sensing, two matrix
products with the stacked measurement matrix per step, BLAS or oneDNN).
:func:`build_problem` turns the arrays of an observation file into a
:class:`Problem` (training operator, test entries, alignment scale).
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch


class ObservationOperator(Protocol):
    """A linear observation ``A`` of the product matrix and its mean squared loss.

    The loss of a run is ``L(W) = (1/m) ‖A(W) − y‖²`` (spec §1.5) and its gradient
    with respect to the product ``∇_W L = (2/m) A*(A(W) − y)``:
    ``product_gradient(r) == gradient_scale · adjoint(r)``. The engine works with
    the unscaled adjoint and folds ``gradient_scale`` (2/m) into the step size.

    Attributes
    ----------
    count : int
        m, the number of observations.
    gradient_scale : float
        2/m.
    residual_like_product : bool
        The residual has the product's shape ``[B, rows, cols]`` (so may overwrite it).
    """

    count: int
    gradient_scale: float
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
    """Observed entries Ω of the product (matrix completion, MovieLens, or a test set).

    ``A(W) = P_Ω(W)``, so the loss is ``L(W) = (1/m) Σ_{(i,j)∈Ω} (W_ij − y_ij)²``
    (spec §1.5) and ``A*(r)`` is the residual itself, placed on the mask. The mask
    is dense and multiplicative: boolean indexing is an order of magnitude slower
    on CPU (ecosystem spec §7).

    Parameters
    ----------
    mask : torch.Tensor
        ``[rows, cols]``, 1 on observed entries (k on an entry drawn k times).
    targets : torch.Tensor
        ``[rows, cols]``, the observed values summed per entry, 0 off the mask.
    count : int
        m, the number of observations.
    """

    mask: torch.Tensor
    targets: torch.Tensor
    count: int
    _neg_targets: torch.Tensor = field(init=False, repr=False, compare=False)
    residual_like_product = True

    def __post_init__(self) -> None:
        self._neg_targets = -self.targets

    @property
    def gradient_scale(self) -> float:
        """2/m, the factor between ∇_W L and the adjoint."""
        return 2.0 / self.count

    def residual(self, product: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """``P ⊙ M − Y`` for products P ``[B, rows, cols]`` (into ``out`` if given)."""
        # One pass; equals (P − Y)·M because Y is 0 off the mask.
        return torch.addcmul(self._neg_targets, product, self.mask, out=out)

    def residual_norm(self, residual: torch.Tensor) -> torch.Tensor:
        """‖residual‖_F per run, ``[B]``."""
        return torch.linalg.vector_norm(residual.flatten(-2), dim=-1)

    def loss(self, residual: torch.Tensor) -> torch.Tensor:
        """``(1/m) ‖residual‖²`` per run, ``[B]``."""
        return self.residual_norm(residual).square() / self.count

    def adjoint(self, residual: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """``A*(r)``: the residual itself (already zero off the mask)."""
        return residual

    def product_gradient(self, residual: torch.Tensor) -> torch.Tensor:
        """``∇_W L = (2/m) (P − Y) ⊙ M``, ``[B, rows, cols]``."""
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

    Parameters
    ----------
    shape : (int, int)
        ``(rows, cols)`` of the product.
    rows, cols : torch.Tensor
        int64 positions of the m observations (any order; kept row-major).
    values : torch.Tensor
        The observed values y, in the order of ``rows``/``cols``.
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
        """2/m, the factor between ∇_W L and the adjoint."""
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
        """‖residual‖ per run, ``[B]``."""
        return torch.linalg.vector_norm(residual, dim=-1)

    def loss(self, residual: torch.Tensor) -> torch.Tensor:
        """``(1/m) ‖residual‖²`` per run, ``[B]``."""
        return self.residual_norm(residual).square() / self.count

    def adjoint(self, residual: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """``A*(r)``: the residual scattered into dense ``[B, rows·cols]`` (metrics and depth 1)."""
        dense = residual.new_zeros((residual.shape[0], self.shape[0] * self.shape[1]))
        dense[:, self.flat_index] = residual
        return dense

    def product_gradient(self, residual: torch.Tensor) -> torch.Tensor:
        """``∇_W L = (2/m) A*(r)``, flat ``[B, rows·cols]``."""
        return self.adjoint(residual) * self.gradient_scale

    def target_norm_sq(self) -> float:
        """‖y‖² over the observed entries."""
        return float(self.targets.double().square().sum())


#: Backends of the sensing products; ``auto`` picks ``onednn`` for float32 on a CPU when torch has it.
SENSING_BACKENDS = ("auto", "onednn", "blas")
#: Smallest A (m·n² entries) for which ``auto`` takes oneDNN (at m = 600, n = 40 it halves the products' time).
ONEDNN_MIN_ELEMENTS = 1 << 18


@functools.lru_cache(maxsize=1)
def onednn_available() -> bool:
    """Whether torch's oneDNN linear kernel with a prepacked weight works here and agrees with BLAS.

    The two ops are torch-internal (the CPU inductor's), so they are tried once on a
    small product instead of trusted; any failure keeps the BLAS backend.

    Returns
    -------
    bool
        True when :class:`LinearMeasurements` may use the ``onednn`` backend.
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
    """Matrix sensing: ``y_i = ⟨X_i, W⟩`` with all X_i stacked as the rows of A ``[m, rows·cols]``.

    The loss is ``L(W) = (1/m) Σ_i (⟨X_i, W⟩ − y_i)²`` (spec §1.5) and
    ``A*(r) = Σ_i r_i X_i``.

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

    Parameters
    ----------
    matrix : torch.Tensor
        A, ``[m, rows·cols]`` (row i is vec(X_i), row-major).
    targets : torch.Tensor
        y, ``[m]``.
    count : int
        m.
    backend : str
        One of :data:`SENSING_BACKENDS`; ``auto`` is resolved at construction.
    """

    matrix: torch.Tensor
    targets: torch.Tensor
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
            self.backend = "onednn" if cpu32 and large and onednn_available() else "blas"
        self._neg_targets = -self.targets

    @property
    def gradient_scale(self) -> float:
        """2/m, the factor between ∇_W L and the adjoint."""
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
        """‖R‖ per run, ``[B]``."""
        return torch.linalg.vector_norm(residual, dim=-1)

    def loss(self, residual: torch.Tensor) -> torch.Tensor:
        """``(1/m) ‖R‖²`` per run, ``[B]``."""
        return self.residual_norm(residual).square() / self.count

    def adjoint(self, residual: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """Σ_i r_i X_i = R A, ``[B, rows·cols]`` (``out`` as in :meth:`residual`)."""
        if self.backend == "onednn":
            packed = self._prepacked(residual.shape[0])[1]
            return torch.ops.mkldnn._linear_pointwise(residual, packed, None, "none", [], "")
        return torch.mm(residual, self.matrix, out=out)

    def product_gradient(self, residual: torch.Tensor) -> torch.Tensor:
        """``∇_W L = (2/m) R A``, flat ``[B, rows·cols]`` (the caller reshapes it)."""
        return self.adjoint(residual) * self.gradient_scale


@dataclass
class Problem:
    """Everything a batch of runs needs about its data.

    Parameters
    ----------
    shape : (int, int)
        ``(rows, cols)`` of the product matrix.
    train : EntryObservations, SampledEntries or LinearMeasurements
        The training observations (the loss that is minimised).
    test : EntryObservations
        The test entries: every entry of the ground truth (reconstruction error,
        spec §1.8) or MovieLens' held-out ratings.
    alignment_scale : float
        ``G = alignment_scale · ∇_W L``, the authors' rescaled gradient of the
        alignment statistics (spec §1.8).
    """

    shape: tuple[int, int]
    train: EntryObservations | SampledEntries | LinearMeasurements
    test: EntryObservations
    alignment_scale: float = 0.5

    def product_gradient(self, residual: torch.Tensor) -> torch.Tensor:
        """∇_W L of the training loss, ``[B, rows, cols]``."""
        grad = self.train.product_gradient(residual)
        return grad.reshape(grad.shape[0], *self.shape)

    def adjoint(self, residual: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """``product_gradient(residual) / train.gradient_scale``, shaped ``[B, rows, cols]``."""
        adj = self.train.adjoint(residual, out=out)
        return adj.view(adj.shape[0], *self.shape)


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

    Parameters
    ----------
    task : str
        ``completion``, ``sensing`` or ``movielens``.
    observations : dict of str to numpy.ndarray
        The observation file's arrays (:mod:`implicit_reg.arora2019.data`):
        ``indices``/``labels`` (completion), ``measurements``/``labels`` (sensing),
        ``shape`` and ``train_*``/``test_*`` rows, cols and values (MovieLens).
    ground_truth : numpy.ndarray or None
        W* (the test entries); None for MovieLens.
    device, dtype
        Where and in which precision the tensors live.
    alignment_total : int, optional
        MovieLens: the size of the whole data set (the authors' divisor).
    sampled_max_fraction : float
        Training entries covering at most this fraction of the matrix use
        :class:`SampledEntries` (the sparse path); 0 keeps every problem dense.

    Returns
    -------
    Problem
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
