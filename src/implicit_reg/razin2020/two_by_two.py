"""Deep matrix factorization of the 2×2 completion problem (Razin & Cohen 2020, Fig. 1).

Spec: ``shared/spec/razin2020.md`` §2.1 (model, init, loss, logging, stopping),
§3 (Figure 1) and §6.2 (perturbed problems).

The product matrix is ``P = W_1 W_2 ⋯ W_L`` (the authors' multiplication
order) of ``L = depth`` square ``d×d`` layers (``d = 2`` here, the code works
for any small ``d``). The loss is ``½ Σ_{(i,j)∈Ω} (P_ij − b_ij)²`` and the
optimizer is plain full-batch gradient descent with a constant learning rate,
in float32 by default.

Performance
-----------
Figure 1 needs up to 5·10⁶ GD steps per run on 2×2 matrices, where a PyTorch
eager step costs ~0.2 ms of pure overhead. The engine therefore keeps Python
out of the inner loop: one numba-compiled kernel advances a whole batch
``[runs, max_depth, d, d]`` for many iterations per call, including the
logging every ``log_every`` steps and the stop rule, so each run can have its
own depth, learning rate and problem and stops independently. Without numba
the very same kernel runs as plain Python (``backend="python"``), which is
only good for tests. ``bench/bench_two_by_two.py`` measures the speed-up over a
plain eager PyTorch loop: on the shared 2-core machine (one thread, other
jobs running) the kernel took 0.3–0.9 µs per run-iteration versus 0.6–1 ms
for the eager loop (~900× in the same process), and the real 12-run Figure 1
configuration (up to 5·10⁶ iterations per run) finished in 16–19 s of wall
time.

The kernel multiplies matrices with an explicit left-to-right accumulation
(no BLAS, no fused multiply-add), and :func:`reference_step` does exactly the
same arithmetic with numpy array operations; the tests check that both agree
step by step.

Logging alignment (spec §9.4): at an iteration ``t`` that is a multiple of
``log_every`` (``t`` counts completed updates, starting at 1) the logged loss
is the one computed *before* that update and the logged product matrix is the
one *after* it. The last history row of a run is its stopping iteration.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

try:  # numba is pinned in requirements.txt; the pure-Python path is a fallback.
    import numba

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised only without numba
    numba = None
    HAVE_NUMBA = False

#: Status codes stored in the engine state; names as in the runs table.
RUNNING, CONVERGED, MAX_ITERS, DIVERGED = 0, 1, 2, 3
STATUS_NAMES = ("running", "converged", "max_iters", "diverged")

#: Loss values at which Figure 1 puts its four gray markers (first crossing).
MARKER_LOSSES = (1.3e-1, 1.3e-2, 1.3e-3, 1.3e-4)
#: Figure 1 cuts every curve right after its first logged loss below this.
CURVE_CUT_LOSS = 1e-4

#: Defaults of the authors' runner (spec §2.1).
DEFAULT_LOG_EVERY = 50
DEFAULT_TOL = 1e-4
DEFAULT_PATIENCE = 10
DEFAULT_MAX_ITERS = 5_000_000

INIT_KINDS = ("gaussian", "balanced", "identity")


# --------------------------------------------------------------------------
# Problem
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class CompletionProblem:
    """A matrix completion problem: observed positions (0-based) and values."""

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
    """Build a problem from ``{(row, col): value}`` (0-based positions)."""
    pos = sorted(observed)
    rows = np.array([p[0] for p in pos], dtype=np.int64)
    cols = np.array([p[1] for p in pos], dtype=np.int64)
    vals = np.array([observed[p] for p in pos], dtype=np.float64)
    if rows.size and (rows.max() >= dim or cols.max() >= dim or min(rows.min(), cols.min()) < 0):
        raise ValueError("observed position outside the matrix")
    return CompletionProblem(rows, cols, vals, (dim, dim))


def load_completion_problem(path: str | Path) -> CompletionProblem:
    """Load the authors' JSON export (keys ``A``, ``y``, ``target_matrix``).

    Each sensing matrix ``A_k`` must be one-hot (a completion problem); its
    single 1 gives the observed position and ``y_k`` the value. Values keep the
    float32-rounded numbers of the export (e.g. 0.009999999776 for ε = 0.01).
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


# --------------------------------------------------------------------------
# Initialization
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class DMFRunConfig:
    """One Figure 1 run.

    ``init_scale`` is the paper's "init X": the std of the entries of the
    *product matrix* for ``gaussian`` and ``balanced``, and the per-layer
    factor α of ``W_j = α·I`` for ``identity``. ``det_sign`` = +1 / −1 redraws
    until ``det(P)`` has that sign, 0 imposes nothing.
    """

    depth: int
    lr: float
    init_scale: float
    init: str = "gaussian"
    det_sign: int = 1
    seed: int = 0


def per_layer_std(init_scale: float, depth: int, dim: int = 2) -> float:
    """Per-layer std ``s`` giving product entries of std ``init_scale``.

    For i.i.d. N(0, s²) ``d×d`` factors, ``Var(P_ij) = d^{L−1} s^{2L}``, hence
    ``s = (X / d^{(L−1)/2})^{1/L}`` (spec §2.1; 7.94e-3 for depth 3, X = 1e-6).
    """
    return (init_scale / dim ** ((depth - 1) / 2)) ** (1.0 / depth)


def product_matrix(layers: np.ndarray) -> np.ndarray:
    """``W_1 W_2 ⋯ W_L`` for layers ``[..., L, d, d]`` (numpy matmul)."""
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
    init_scale: float,
    rng: np.random.Generator,
    dim: int = 2,
    det_sign: int = 1,
    dtype: type = np.float32,
    max_draws: int = 10_000,
) -> np.ndarray:
    """Unbalanced i.i.d. Gaussian layers ``[L, d, d]`` with product std ``init_scale``.

    All layers are redrawn together until ``det(P)`` has the requested sign, as
    the authors' ``enforce_pos_det`` does (checked on the ``dtype`` layers).
    """
    s = per_layer_std(init_scale, depth, dim)
    for _ in range(max_draws):
        layers = (rng.standard_normal((depth, dim, dim)) * s).astype(dtype)
        if _det_sign_ok(layers, det_sign):
            return layers
    raise RuntimeError(f"no draw with det sign {det_sign} in {max_draws} tries")


def init_balanced(
    depth: int,
    init_scale: float,
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
    """
    for _ in range(max_draws):
        m = rng.standard_normal((dim, dim)) * init_scale
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
    depth: int, init_scale: float, dim: int = 2, det_sign: int = 0, dtype: type = np.float32
) -> np.ndarray:
    """``W_j = α·I`` for every layer (α = ``init_scale``); deterministic."""
    layers = np.broadcast_to(np.eye(dim) * init_scale, (depth, dim, dim)).astype(dtype)
    if not _det_sign_ok(layers, det_sign):
        raise ValueError(f"identity init cannot have det sign {det_sign}")
    return layers


def init_layers(config: DMFRunConfig, dim: int = 2, dtype: type = np.float32) -> np.ndarray:
    """Layers ``[depth, d, d]`` of one run, drawn from ``default_rng(config.seed)``."""
    if config.depth < 1:
        raise ValueError("depth must be >= 1")
    if config.init == "gaussian":
        return init_gaussian(
            config.depth, config.init_scale, np.random.default_rng(config.seed), dim, config.det_sign, dtype
        )
    if config.init == "balanced":
        return init_balanced(
            config.depth, config.init_scale, np.random.default_rng(config.seed), dim, config.det_sign, dtype
        )
    if config.init == "identity":
        return init_identity(config.depth, config.init_scale, dim, config.det_sign, dtype)
    raise ValueError(f"unknown init {config.init!r}; expected one of {INIT_KINDS}")


# --------------------------------------------------------------------------
# Loss, gradients and the reference step
# --------------------------------------------------------------------------


def loss_and_gradients(
    layers: np.ndarray, mask: np.ndarray, target: np.ndarray
) -> tuple[float, np.ndarray]:
    """½ Σ_Ω (P − b)² and its gradient w.r.t. each layer (float64-friendly).

    With ``G = mask ⊙ (P − b)``:
    ``∂ℓ/∂W_j = (W_1⋯W_{j−1})ᵀ G (W_{j+1}⋯W_L)ᵀ``.
    """
    depth = layers.shape[0]
    eye = np.eye(layers.shape[-1], dtype=layers.dtype)
    left = [eye]
    for j in range(depth):
        left.append(left[-1] @ layers[j])
    right = [eye] * depth
    for j in range(depth - 2, -1, -1):
        right[j] = layers[j + 1] @ right[j + 1]
    g = mask * (left[depth] - target)
    grads = np.stack([left[j].T @ g @ right[j].T for j in range(depth)])
    return 0.5 * float(np.sum(g * g)), grads


def _mm_ref(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` accumulated k = 0, 1, … with separate multiply and add.

    Mirrors the compiled kernel's arithmetic exactly (no BLAS, no FMA).
    """
    out = a[:, 0:1] * b[0:1, :]
    for k in range(1, a.shape[1]):
        out = out + a[:, k : k + 1] * b[k : k + 1, :]
    return out


def reference_step(
    layers: np.ndarray, lr: float, mask: np.ndarray, target: np.ndarray
) -> tuple[np.ndarray, float]:
    """One GD step of one run in numpy, in the dtype of ``layers``.

    Returns the updated layers ``[L, d, d]`` and the pre-update loss. This is
    the specification the fast kernel is tested against, operation by
    operation (same products, same accumulation order, same dtype).
    """
    dt = layers.dtype
    depth, dim = layers.shape[0], layers.shape[-1]
    mask = mask.astype(dt)
    target = target.astype(dt)
    eta = dt.type(lr)
    eye = np.eye(dim, dtype=dt)
    left = [eye]
    for j in range(depth):
        left.append(_mm_ref(left[j], layers[j]))
    right = [eye] * depth
    for j in range(depth - 2, -1, -1):
        right[j] = _mm_ref(layers[j + 1], right[j + 1])
    resid = mask * (left[depth] - target)
    flat = resid.ravel()
    acc = flat[0] * flat[0]
    for v in flat[1:]:
        acc = dt.type(acc + v * v)
    loss = dt.type(0.5) * acc
    new = np.empty_like(layers)
    for j in range(depth):
        grad = _mm_ref(_mm_ref(left[j].T, resid), right[j].T)
        new[j] = layers[j] - eta * grad
    return new, float(loss)


# --------------------------------------------------------------------------
# Batched engine
# --------------------------------------------------------------------------


@dataclass
class DMFBatch:
    """State of a batch of independent GD runs (all numpy arrays).

    ``layers[b, :depth[b]]`` are run ``b``'s parameters (unused slots hold the
    identity). ``history[b, :history_len[b]]`` are its logged rows
    ``(iteration, loss, P_11, P_12, …, P_dd)`` in float64.
    """

    layers: np.ndarray
    depth: np.ndarray
    lr: np.ndarray
    mask: np.ndarray
    target: np.ndarray
    iteration: np.ndarray
    below_tol: np.ndarray
    status: np.ndarray
    history: np.ndarray
    history_len: np.ndarray
    log_every: int = DEFAULT_LOG_EVERY
    tol: float = DEFAULT_TOL
    patience: int = DEFAULT_PATIENCE
    max_iters: int = DEFAULT_MAX_ITERS

    @property
    def n_runs(self) -> int:
        return self.layers.shape[0]

    @property
    def dim(self) -> int:
        return self.layers.shape[-1]

    def running(self) -> np.ndarray:
        """Boolean mask of the runs that have not stopped."""
        return self.status == RUNNING


def init_batch(
    problems: CompletionProblem | Sequence[CompletionProblem],
    configs: Sequence[DMFRunConfig],
    dtype: type = np.float32,
    log_every: int = DEFAULT_LOG_EVERY,
    tol: float = DEFAULT_TOL,
    patience: int = DEFAULT_PATIENCE,
    max_iters: int = DEFAULT_MAX_ITERS,
) -> DMFBatch:
    """Initialize a batch: one problem for all runs, or one problem per run."""
    if isinstance(problems, CompletionProblem):
        problems = [problems] * len(configs)
    if len(problems) != len(configs) or not configs:
        raise ValueError("need one config per run and one problem per run (or a single problem)")
    dim = problems[0].dim
    if any(p.shape != (dim, dim) for p in problems):
        raise ValueError("all problems of a batch must have the same square shape")
    depths = np.array([c.depth for c in configs], dtype=np.int64)
    max_depth = int(depths.max())
    layers = np.broadcast_to(np.eye(dim, dtype=dtype), (len(configs), max_depth, dim, dim)).copy()
    for b, c in enumerate(configs):
        layers[b, : c.depth] = init_layers(c, dim, dtype)
    n = len(configs)
    return DMFBatch(
        layers=layers,
        depth=depths,
        lr=np.array([c.lr for c in configs], dtype=dtype),
        mask=np.stack([p.mask() for p in problems]).astype(dtype),
        target=np.stack([p.observed_matrix() for p in problems]).astype(dtype),
        iteration=np.zeros(n, dtype=np.int64),
        below_tol=np.zeros(n, dtype=np.int64),
        status=np.zeros(n, dtype=np.int64),
        history=np.zeros((n, 1024, 2 + dim * dim), dtype=np.float64),
        history_len=np.zeros(n, dtype=np.int64),
        log_every=int(log_every),
        tol=float(tol),
        patience=int(patience),
        max_iters=int(max_iters),
    )


def _mm_into(a, b, out):  # out = a @ b
    d = a.shape[0]
    for i in range(d):
        for j in range(d):
            s = a[i, 0] * b[0, j]
            for k in range(1, d):
                s = s + a[i, k] * b[k, j]
            out[i, j] = s


def _mtm_into(a, b, out):  # out = aᵀ @ b
    d = a.shape[0]
    for i in range(d):
        for j in range(d):
            s = a[0, i] * b[0, j]
            for k in range(1, d):
                s = s + a[k, i] * b[k, j]
            out[i, j] = s


def _mmt_into(a, b, out):  # out = a @ bᵀ
    d = a.shape[0]
    for i in range(d):
        for j in range(d):
            s = a[i, 0] * b[j, 0]
            for k in range(1, d):
                s = s + a[i, k] * b[j, k]
            out[i, j] = s


def _log_row(history, b, row, t, loss, layers_b, depth, left):
    # The product after the update: recompute the left chain on new layers.
    d = left.shape[1]
    for i in range(d):
        for j in range(d):
            left[0, i, j] = 1.0 if i == j else 0.0
    for j in range(depth):
        _mm_into(left[j], layers_b[j], left[j + 1])
    history[b, row, 0] = t
    history[b, row, 1] = loss
    for i in range(d):
        for j in range(d):
            history[b, row, 2 + i * d + j] = left[depth, i, j]


def _advance_kernel(
    layers,
    depth,
    lr,
    mask,
    target,
    iteration,
    below_tol,
    status,
    history,
    history_len,
    n_iters,
    log_every,
    max_iters,
    tol,
    patience,
    half,
):
    """Advance every running run by up to ``n_iters`` GD steps (in place).

    One run at a time, so a stopped run costs nothing; per step: left and
    right partial products, residual, loss, simultaneous update of all layers,
    then logging and the stop rule. ``history`` must have room for
    ``n_iters // log_every + 2`` more rows per run.
    """
    n_runs, max_depth, d, _ = layers.shape
    left = np.empty((max_depth + 1, d, d), dtype=layers.dtype)
    right = np.empty((max_depth, d, d), dtype=layers.dtype)
    resid = np.empty((d, d), dtype=layers.dtype)
    tmp = np.empty((d, d), dtype=layers.dtype)
    grad = np.empty((d, d), dtype=layers.dtype)
    for b in range(n_runs):
        if status[b] != 0:
            continue
        depth_b = depth[b]
        eta = lr[b]
        w = layers[b]
        for _ in range(n_iters):
            for i in range(d):
                for j in range(d):
                    left[0, i, j] = 1.0 if i == j else 0.0
                    right[depth_b - 1, i, j] = 1.0 if i == j else 0.0
            for j in range(depth_b):
                _mm_into(left[j], w[j], left[j + 1])
            for j in range(depth_b - 2, -1, -1):
                _mm_into(w[j + 1], right[j + 1], right[j])
            for i in range(d):
                for j in range(d):
                    resid[i, j] = mask[b, i, j] * (left[depth_b, i, j] - target[b, i, j])
            # Sequential row-major sum in the layer dtype, as reference_step.
            acc = resid[0, 0] * resid[0, 0]
            for k in range(1, d * d):
                r = resid[k // d, k % d]
                acc = acc + r * r
            loss = half * acc
            for j in range(depth_b):
                _mtm_into(left[j], resid, tmp)
                _mmt_into(tmp, right[j], grad)
                for i in range(d):
                    for k in range(d):
                        w[j, i, k] = w[j, i, k] - eta * grad[i, k]
            t = iteration[b] + 1
            iteration[b] = t
            if not np.isfinite(loss):
                status[b] = 3
                _log_row(history, b, history_len[b], t, loss, w, depth_b, left)
                history_len[b] += 1
                break
            if t % log_every == 0:
                _log_row(history, b, history_len[b], t, loss, w, depth_b, left)
                history_len[b] += 1
                if loss < tol:
                    below_tol[b] += 1
                else:
                    below_tol[b] = 0
                if below_tol[b] > patience:
                    status[b] = 1
                    break
            if t >= max_iters:
                status[b] = 2
                if t % log_every != 0:
                    _log_row(history, b, history_len[b], t, loss, w, depth_b, left)
                    history_len[b] += 1
                break


if HAVE_NUMBA:
    _mm_into = numba.njit(cache=True)(_mm_into)
    _mtm_into = numba.njit(cache=True)(_mtm_into)
    _mmt_into = numba.njit(cache=True)(_mmt_into)
    _log_row = numba.njit(cache=True)(_log_row)
    _advance_kernel_jit = numba.njit(cache=True)(_advance_kernel)
    _advance_kernel_py = _advance_kernel_jit.py_func
else:  # pragma: no cover
    _advance_kernel_jit = None
    _advance_kernel_py = _advance_kernel


def _ensure_history_room(batch: DMFBatch, n_iters: int) -> None:
    need = int(batch.history_len.max()) + n_iters // batch.log_every + 2
    cap = batch.history.shape[1]
    if need > cap:
        new_cap = max(need, 2 * cap)
        grown = np.zeros((batch.n_runs, new_cap, batch.history.shape[2]), dtype=np.float64)
        grown[:, :cap] = batch.history
        batch.history = grown


def advance(batch: DMFBatch, n_iters: int, backend: str = "auto") -> DMFBatch:
    """Advance every running run by up to ``n_iters`` iterations, in place.

    ``backend``: ``"numba"`` (compiled), ``"python"`` (same kernel, interpreted;
    slow, for tests) or ``"auto"`` (numba when available). Results do not
    depend on how the iterations are split into calls.
    """
    if backend == "auto":
        backend = "numba" if HAVE_NUMBA else "python"
    if backend == "numba" and not HAVE_NUMBA:
        raise RuntimeError("numba is not installed")
    kernel = {"numba": _advance_kernel_jit, "python": _advance_kernel_py}.get(backend)
    if kernel is None:
        raise ValueError(f"unknown backend {backend!r}")
    if n_iters <= 0 or not batch.running().any():
        return batch
    _ensure_history_room(batch, n_iters)
    kernel(
        batch.layers,
        batch.depth,
        batch.lr,
        batch.mask,
        batch.target,
        batch.iteration,
        batch.below_tol,
        batch.status,
        batch.history,
        batch.history_len,
        int(n_iters),
        int(batch.log_every),
        int(batch.max_iters),
        float(batch.tol),
        int(batch.patience),
        batch.layers.dtype.type(0.5),
    )
    return batch


def run_batch(
    batch: DMFBatch,
    checkpoint_every: int | None = None,
    on_checkpoint: Callable[[DMFBatch], None] | None = None,
    backend: str = "auto",
) -> DMFBatch:
    """Run until every run has stopped.

    Every ``checkpoint_every`` iterations (of the slowest run) ``on_checkpoint``
    is called with the batch, e.g. to save :func:`get_state` atomically.
    """
    chunk = int(checkpoint_every) if checkpoint_every else 1_000_000
    while batch.running().any():
        advance(batch, chunk, backend)
        if on_checkpoint is not None and batch.running().any():
            on_checkpoint(batch)
    return batch


_STATE_ARRAYS = (
    "layers", "depth", "lr", "mask", "target", "iteration", "below_tol", "status", "history_len",
)


def get_state(batch: DMFBatch) -> dict[str, np.ndarray]:
    """Full engine state as a dict of numpy arrays (``np.savez``-ready)."""
    state = {k: np.array(getattr(batch, k), copy=True) for k in _STATE_ARRAYS}
    state["history"] = batch.history[:, : max(int(batch.history_len.max()), 1)].copy()
    state["settings"] = np.array(
        [batch.log_every, batch.tol, batch.patience, batch.max_iters], dtype=np.float64
    )
    return state


def restore_state(state: Mapping[str, np.ndarray]) -> DMFBatch:
    """Inverse of :func:`get_state`; resuming gives bit-identical results."""
    log_every, tol, patience, max_iters = (float(x) for x in np.asarray(state["settings"]))
    kwargs = {k: np.array(state[k], copy=True) for k in _STATE_ARRAYS}
    return DMFBatch(
        history=np.array(state["history"], dtype=np.float64, copy=True),
        log_every=int(log_every),
        tol=tol,
        patience=int(patience),
        max_iters=int(max_iters),
        **kwargs,
    )


# --------------------------------------------------------------------------
# Results and figure helpers
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class DMFRunResult:
    """Outcome of one run: status name, stopping iteration, logged history.

    ``history`` maps ``iteration``, ``loss`` and ``p11``, ``p12``, … (1-based
    entry names of the product matrix) to equal-length arrays.
    """

    status: str
    final_iteration: int
    history: dict[str, np.ndarray]
    final_product: np.ndarray


def entry_names(dim: int) -> list[str]:
    """Column names ``p11, p12, …`` of the logged product entries."""
    return [f"p{i + 1}{j + 1}" for i in range(dim) for j in range(dim)]


def _quiet_product(layers: np.ndarray) -> np.ndarray:
    # A diverged run's layers hold inf/NaN; their product is expected garbage.
    with np.errstate(over="ignore", invalid="ignore"):
        return product_matrix(layers)


def run_results(batch: DMFBatch) -> list[DMFRunResult]:
    """Per-run results (works mid-run too: status ``running``)."""
    names = entry_names(batch.dim)
    out = []
    for b in range(batch.n_runs):
        rows = batch.history[b, : batch.history_len[b]]
        hist = {"iteration": rows[:, 0].astype(np.int64), "loss": rows[:, 1].copy()}
        for k, name in enumerate(names):
            hist[name] = rows[:, 2 + k].copy()
        out.append(
            DMFRunResult(
                status=STATUS_NAMES[int(batch.status[b])],
                final_iteration=int(batch.iteration[b]),
                history=hist,
                final_product=_quiet_product(batch.layers[b, : batch.depth[b]]),
            )
        )
    return out


def first_below(loss: np.ndarray, thresholds: Sequence[float] = MARKER_LOSSES) -> np.ndarray:
    """Index of the first logged loss strictly below each threshold (−1: never)."""
    loss = np.asarray(loss)
    out = np.full(len(thresholds), -1, dtype=np.int64)
    for k, thr in enumerate(thresholds):
        hit = np.flatnonzero(loss < thr)
        if hit.size:
            out[k] = hit[0]
    return out


def curve_cut(loss: np.ndarray, threshold: float = CURVE_CUT_LOSS) -> int:
    """Number of history rows Figure 1 draws: up to and including the first loss < 1e-4."""
    idx = first_below(loss, [threshold])[0]
    return len(loss) if idx < 0 else int(idx) + 1


def marker_indices(loss: np.ndarray, thresholds: Sequence[float] = MARKER_LOSSES) -> np.ndarray:
    """History rows of Figure 1's markers, with the authors' plotting rule (−1: never).

    Marker k goes at the first row *after* marker k−1 whose loss is < the
    k-th threshold; this equals :func:`first_below` unless one logging step
    crosses two thresholds, in which case the later marker moves one row on.
    """
    loss = np.asarray(loss)
    out = np.full(len(thresholds), -1, dtype=np.int64)
    start = 0
    for k, thr in enumerate(thresholds):
        hit = np.flatnonzero(loss[start:] < thr)
        if not hit.size:
            break
        out[k] = start + hit[0]
        start = out[k] + 1
    return out


def unobserved_at_markers(
    loss: np.ndarray, unobserved: np.ndarray, thresholds: Sequence[float] = MARKER_LOSSES
) -> np.ndarray:
    """``|unobserved entry|`` at Figure 1's markers (:func:`marker_indices`; NaN: never)."""
    idx = marker_indices(loss, thresholds)
    vals = np.abs(np.asarray(unobserved, dtype=np.float64))
    return np.array([vals[i] if i >= 0 else math.nan for i in idx])


def singular_values(products: np.ndarray) -> np.ndarray:
    """Singular values (descending) of product matrices ``[..., d, d]``."""
    return np.linalg.svd(np.asarray(products, dtype=np.float64), compute_uv=False)


def effective_rank(products: np.ndarray) -> np.ndarray:
    """Roy & Vetterli effective rank over the nonzero singular values (spec §2.1)."""
    sv = singular_values(products)
    total = sv.sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = sv / total
        ent = np.where(p > 0, -p * np.log(np.where(p > 0, p, 1.0)), 0.0).sum(axis=-1)
    return np.exp(ent)


def history_products(history: Mapping[str, np.ndarray]) -> np.ndarray:
    """Logged product matrices ``[rows, d, d]`` from a result history."""
    names = [k for k in history if k.startswith("p") and k[1:].isdigit()]
    dim = int(round(math.sqrt(len(names))))
    return np.stack([history[n] for n in entry_names(dim)], axis=-1).reshape(-1, dim, dim)
