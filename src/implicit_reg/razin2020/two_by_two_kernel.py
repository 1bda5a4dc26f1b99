"""The gradient-descent step of the 2×2 deep matrix factorization: kernel and reference.

Spec: ``shared/spec/razin2020.md`` §2.1 (loss, optimizer, logging, stopping). The
loss of a run is ``ℓ(W_1, …, W_L) = ½ Σ_{(i,j)∈Ω} (P_ij − b_ij)²`` with
``P = W_1 ⋯ W_L``, and one step of plain gradient descent updates every layer
simultaneously, ``W_j ← W_j − η ∂ℓ/∂W_j``.

:func:`advance_kernel` advances a whole batch ``[runs, max_depth, d, d]`` in place
for many iterations per call, with the logging every ``log_every`` steps and the
stop rule inside, so Python stays out of the inner loop. It is compiled by numba
when available (``advance_kernel_jit``); ``advance_kernel_py`` is the same code
interpreted (slow, for tests). The kernel multiplies matrices with an explicit
left-to-right accumulation (no BLAS, no fused multiply-add), and
:func:`reference_step` does exactly the same arithmetic with numpy array
operations; the tests check that both agree step by step. The batch state and its
driver are :mod:`implicit_reg.razin2020.two_by_two`.
"""

from __future__ import annotations

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


def loss_and_gradients(
    layers: np.ndarray, mask: np.ndarray, target: np.ndarray
) -> tuple[float, np.ndarray]:
    """The loss ``ℓ = ½ Σ_Ω (P − b)²`` and its gradient with respect to each layer.

    With the masked residual ``G = mask ⊙ (P − b)``,
    ``∂ℓ/∂W_j = (W_1⋯W_{j−1})ᵀ G (W_{j+1}⋯W_L)ᵀ`` (spec §2.1). Plain numpy
    matmuls: a reference in float64, not the engine's arithmetic.

    Parameters
    ----------
    layers : numpy.ndarray, shape ``[L, d, d]``
    mask : numpy.ndarray, shape ``[d, d]``
        1 at observed entries, 0 elsewhere.
    target : numpy.ndarray, shape ``[d, d]``
        Observed values in place, 0 elsewhere.

    Returns
    -------
    loss : float
    grads : numpy.ndarray, shape ``[L, d, d]``
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
    """One gradient-descent step of one run in numpy, in the dtype of ``layers``.

    ``W_j ← W_j − η (W_1⋯W_{j−1})ᵀ G (W_{j+1}⋯W_L)ᵀ`` with ``G = mask ⊙ (P − b)``
    (spec §2.1). This is the specification the fast kernel is tested against,
    operation by operation (same products, same accumulation order, same dtype).

    Parameters
    ----------
    layers : numpy.ndarray, shape ``[L, d, d]``
        The run's layers; their dtype is the arithmetic's.
    lr : float
        η.
    mask, target : numpy.ndarray, shape ``[d, d]``
        Observed positions (1/0) and observed values (0 elsewhere).

    Returns
    -------
    new_layers : numpy.ndarray, shape ``[L, d, d]``
    loss : float
        The loss *before* the update (what the engine logs, spec §9.4).
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


def advance_kernel(
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
    then logging and the stop rule (spec §2.1): at a step ``t`` that is a
    multiple of ``log_every`` the row ``(t, loss before the update, P after it)``
    is logged and a run converges once more than ``patience`` consecutive logged
    losses are below ``tol``; a non-finite loss stops it as diverged, ``t =
    max_iters`` as capped. ``history`` must have room for
    ``n_iters // log_every + 2`` more rows per run.

    Parameters
    ----------
    layers : float array ``[runs, max_depth, d, d]``
        Updated in place; slots beyond a run's depth are unused.
    depth, iteration, below_tol, status, history_len : int64 arrays ``[runs]``
        Per-run state, updated in place (``status``: :data:`RUNNING` …).
    lr : float array ``[runs]``
        η per run, in the layers' dtype.
    mask, target : float arrays ``[runs, d, d]``
        Each run's problem.
    history : float64 array ``[runs, rows, 2 + d²]``
        Logged rows ``(iteration, loss, P_11, P_12, …)``, appended in place.
    n_iters, log_every, max_iters, patience : int
    tol : float
    half : scalar of the layers' dtype
        0.5, so the loss is computed in the layers' dtype.
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
    advance_kernel_jit = numba.njit(cache=True)(advance_kernel)
    advance_kernel_py = advance_kernel_jit.py_func
else:  # pragma: no cover
    advance_kernel_jit = None
    advance_kernel_py = advance_kernel
