"""CP tensor completion of Razin & Cohen (2020), Fig. 2 and appendix (spec §2.2, §4, §6.1).

A CP factorization ``W = Σ_{ρ≤R} A_1[:, ρ] ⊗ … ⊗ A_N[:, ρ]`` with
``R = 8^{N−1}`` components (the product of all mode sizes but the largest)
is fitted to the first ``n`` entries of a stored permutation of the target's
row-major linear indices by minimizing the mean squared error on those
entries with the authors' global adaptive step ("GroupRMSprop": one scalar
step ``lr / (√v̂ + eps)`` per run, ``v`` a float32 running mean of the squared
gradient norm with β = 0.99 and bias correction).

Batched engine: the repetitions of one ``n`` (and both inits) are stacked on
a leading batch axis and trained together; each run keeps its own step size,
stop rule and history, and finished runs are dropped from the stacked
tensors. Gradients are written by hand: splitting the modes into a left and a
right group turns the forward pass and both halves of the backward pass into
three batched matrix products (``[D_left, R] × [R, D_right]``), followed by
cheap contractions inside each group. Tests check them against autograd.

Every intermediate of a step lives in a workspace allocated once per set of
running runs (:class:`StepWorkspace`), and the factors and optimizer state
are updated in place: at order 4, R = 512, the ~1.3 MB per-step temporaries
of the earlier allocating step cost a fresh ``mmap`` and its page faults each
(two thirds of the step time). The arithmetic is the earlier step's,
operation by operation (same float32 operations on the same operands in the
same order; ``tests/test_tensor_completion.py`` checks bit-identity against a
copy of it). ``bench/bench_tensor.py`` times both in one process.

Every ``check_every`` = 100 iterations the normalized reconstruction error
``‖W − T*‖_F / ‖T*‖_F`` of the updated model is logged together with the
train MSE of that iteration (computed before its update); a run stops when
that MSE was < 1e-6 at 3 consecutive checks, at 10⁶ iterations, or when the
loss becomes NaN/inf (status ``diverged``, detected without a per-iteration
host synchronization and reported at the iteration where it happened).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import torch

from implicit_reg.razin2020.cp_rank import cp_reconstruct, max_cp_rank

RUNNING, CONVERGED, MAX_ITERS, DIVERGED = 0, 1, 2, 3
STATUS_NAMES = ("running", "converged", "max_iters", "diverged")

DEFAULT_LR = 0.01
DEFAULT_BETA = 0.99
DEFAULT_EPS = 1e-6
DEFAULT_CHECK_EVERY = 100
DEFAULT_TOL = 1e-6
DEFAULT_PATIENCE = 2
DEFAULT_MAX_ITERS = 1_000_000


# --------------------------------------------------------------------------
# Data and the "linear" baseline
# --------------------------------------------------------------------------


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


# --------------------------------------------------------------------------
# Model: forward pass and hand-written gradients
# --------------------------------------------------------------------------


def _khatri_rao(mats: Sequence[torch.Tensor], out: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
    """Batched column-wise Kronecker product ``[B, Π d, R]`` (first matrix slowest).

    Broadcast products rather than einsum: they write the result contiguously
    instead of going through permuted copies (half the step time at order 4).
    ``out``: workspace buffers for the partial products ``[B, d_1, d_2, R]``,
    ``[B, d_1 d_2, d_3, R]``, … (same products, same order), or ``None``.
    """
    result = mats[0]
    for i, m in enumerate(mats[1:]):
        buf = None if out is None else out[i]
        result = torch.mul(result[:, :, None, :], m[:, None, :, :], out=buf).reshape(
            result.shape[0], -1, result.shape[-1])
    return result


def mode_split(order: int) -> int:
    """Number of leading modes in the left group (``order // 2``, at least 1)."""
    return max(order // 2, 1)


def cp_full_tensor(factors: Sequence[torch.Tensor]) -> torch.Tensor:
    """Model tensors ``[B, d_1, …, d_N]`` from factors ``[B, d_m, R]``."""
    h = mode_split(len(factors))
    left, right = _khatri_rao(factors[:h]), _khatri_rao(factors[h:])
    mat = torch.bmm(left, right.transpose(1, 2))
    return mat.reshape(mat.shape[0], *[f.shape[1] for f in factors])


def _factor_view(factor: torch.Tensor, i: int, k: int) -> torch.Tensor:
    """Factor ``[B, d_i, R]`` of position ``i`` in a group of ``k``, viewed as ``[B, 1, …, d_i, …, 1, R]``."""
    view = [factor.shape[0]] + [1] * k + [factor.shape[-1]]
    view[1 + i] = factor.shape[1]
    return factor.reshape(view)


def _group_gradients(
    h: torch.Tensor,
    group: Sequence[torch.Tensor],
    prod: torch.Tensor | None,
    out: Sequence[torch.Tensor] | None,
) -> list[torch.Tensor]:
    """Per-mode gradients from ``h = G_(group) · KR(other group)``.

    ``h`` is reshaped to the group's modes ``[B, d_1, …, d_k, R]``; the
    gradient of mode j multiplies in the group's other factors (broadcast,
    ``((h · A_i) · A_i') …`` in mode order) and sums over their axes.
    ``prod`` (``h``'s size) and ``out`` (one ``[B, d_j, R]`` per mode) are
    workspace buffers to write into, or ``None`` to allocate; the values
    are the same bits either way.
    """
    if len(group) == 1:
        return [h]
    k = len(group)
    h = h.reshape(h.shape[0], *[g.shape[1] for g in group], h.shape[-1])
    grads = []
    for j in range(k):
        others = [i for i in range(k) if i != j]
        p = torch.mul(h, _factor_view(group[others[0]], others[0], k),
                      out=None if prod is None else prod.view(h.shape))
        for i in others[1:]:
            p.mul_(_factor_view(group[i], i, k))
        axes = tuple(1 + i for i in others)
        grads.append(p.sum(dim=axes) if out is None else torch.sum(p, dim=axes, out=out[j]))
    return grads


class StepWorkspace:
    """Buffers of one step (loss, gradients, optimizer) for ``B`` stacked runs.

    Allocated once per set of running runs: fresh per-step temporaries of
    this size (``[B, 64, 512]`` float32, 1.3 MB at B = 10) come from ``mmap``
    and are paid for in page faults at every step. Each buffer is its own
    allocation (no views into a shared block), so the matrix products see
    the same kind of operands as with fresh tensors.

    Parameters
    ----------
    batch : int
        Number of stacked runs B.
    shape : sequence of int
        Mode sizes ``d_1 … d_N``.
    num_components : int
        R.
    dtype, device
        Of the factors.
    """

    def __init__(self, batch: int, shape: Sequence[int], num_components: int,
                 dtype: torch.dtype, device: torch.device) -> None:
        h = mode_split(len(shape))
        r = int(num_components)

        def empty(*size: int) -> torch.Tensor:
            return torch.empty(*size, dtype=dtype, device=device)

        def chain(group: Sequence[int]) -> list[torch.Tensor]:
            # Partial Khatri-Rao products of a group: [B, d_1, d_2, R], [B, d_1 d_2, d_3, R], ...
            return [empty(batch, int(np.prod(group[:i])), group[i], r) for i in range(1, len(group))]

        left, right = list(shape[:h]), list(shape[h:])
        d_left, d_right = int(np.prod(left)), int(np.prod(right))
        self.kr_left, self.kr_right = chain(left), chain(right)
        self.resid = empty(batch, d_left, d_right)
        self.resid_sq = empty(batch, d_left, d_right)
        self.loss_sum = empty(batch)
        self.loss = empty(batch)
        self.h_left, self.h_right = empty(batch, d_left, r), empty(batch, d_right, r)
        self.prod_left = empty(batch, d_left, r) if len(left) > 1 else None
        self.prod_right = empty(batch, d_right, r) if len(right) > 1 else None
        self.grads_left = [empty(batch, d, r) for d in left] if len(left) > 1 else None
        self.grads_right = [empty(batch, d, r) for d in right] if len(right) > 1 else None
        self.grad_sq = [empty(batch, d, r) for d in shape]
        self.grad_sq_sum = empty(batch)


def loss_and_gradients(
    factors: Sequence[torch.Tensor],
    target_mat: torch.Tensor,
    mask_mat: torch.Tensor,
    n_obs: int,
    workspace: StepWorkspace | None = None,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Per-run MSE over the observed entries and its gradient w.r.t. each factor.

    ``target_mat`` / ``mask_mat`` are the target and the 0/1 observation mask
    unfolded to ``[D_left, D_right]`` (row-major, left group = first
    :func:`mode_split` modes). Returns ``loss [B]`` and ``[B, d_m, R]`` grads.

    With the residual ``E = M ⊙ (L Rᵀ − T)`` of the unfolded model
    ``L Rᵀ`` (``L``, ``R`` the Khatri-Rao products of the two groups), the
    loss is ``‖E‖²/n`` and ``∂/∂L = (2/n) E R``, ``∂/∂R = (2/n) Eᵀ L``, split
    over each group's modes by :func:`_group_gradients`.

    ``workspace``: buffers to write into (the returned tensors are those
    buffers, overwritten by the next call); ``None`` allocates fresh tensors.
    """
    ws = workspace if workspace is not None else StepWorkspace(
        factors[0].shape[0], [f.shape[1] for f in factors], factors[0].shape[-1],
        factors[0].dtype, factors[0].device)
    h = mode_split(len(factors))
    left = _khatri_rao(factors[:h], ws.kr_left)
    right = _khatri_rao(factors[h:], ws.kr_right)
    resid = torch.bmm(left, right.transpose(1, 2), out=ws.resid)
    resid.sub_(target_mat)
    torch.mul(mask_mat, resid, out=resid)
    loss = torch.div(torch.sum(torch.square(resid, out=ws.resid_sq), dim=(1, 2), out=ws.loss_sum),
                     n_obs, out=ws.loss)
    g = resid.mul_(2.0 / n_obs)
    grads = _group_gradients(torch.bmm(g, right, out=ws.h_left), factors[:h], ws.prod_left, ws.grads_left)
    grads += _group_gradients(torch.bmm(g.transpose(1, 2), left, out=ws.h_right), factors[h:], ws.prod_right,
                              ws.grads_right)
    return loss, grads


def init_factors(
    shape: Sequence[int], num_components: int, init_std: float, seed: int
) -> list[np.ndarray]:
    """Factors ``[d_m, R]`` with i.i.d. N(0, σ²) float32 entries, from ``default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    return [
        rng.standard_normal((d, num_components), dtype=np.float32) * np.float32(init_std)
        for d in shape
    ]


def resolve_device(device: str | None = None) -> torch.device:
    """``"cpu"``, ``"cuda"`` or ``None``/``"auto"`` (CUDA when available)."""
    if device in (None, "auto"):
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


# --------------------------------------------------------------------------
# Batched engine
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class TCRunResult:
    """Outcome of one run. ``history`` maps ``iteration``, ``train_loss``, ``reconstruction_error``."""

    status: str
    final_iteration: int
    final_train_loss: float
    reconstruction_error: float
    history: dict[str, np.ndarray]


class CPCompletionBatch:
    """Runs of CP tensor completion on one observation set, trained together.

    Parameters mirror the spec: ``init_stds`` and ``seeds`` (one per run),
    ``num_components`` (default R = product of all mode sizes but the
    largest), the optimizer's ``lr``/``beta``/``eps`` and the logging/stop
    settings. ``device``: ``"cpu"``, ``"cuda"`` or ``None`` (auto).
    """

    def __init__(
        self,
        target: np.ndarray,
        observed: np.ndarray,
        init_stds: Sequence[float],
        seeds: Sequence[int],
        num_components: int | None = None,
        lr: float = DEFAULT_LR,
        beta: float = DEFAULT_BETA,
        eps: float = DEFAULT_EPS,
        check_every: int = DEFAULT_CHECK_EVERY,
        tol: float = DEFAULT_TOL,
        patience: int = DEFAULT_PATIENCE,
        max_iters: int = DEFAULT_MAX_ITERS,
        device: str | None = None,
        _factors: Sequence[np.ndarray] | None = None,
    ) -> None:
        if len(init_stds) != len(seeds) or len(seeds) == 0:
            raise ValueError("need one seed per init std, at least one run")
        self.target = np.asarray(target, dtype=np.float32)
        self.observed = np.asarray(observed, dtype=np.int64)
        self.shape = tuple(self.target.shape)
        self.num_components = int(num_components or max_cp_rank(self.shape))
        self.init_stds = np.asarray(init_stds, dtype=np.float64)
        self.seeds = np.asarray(seeds, dtype=np.int64)
        self.lr, self.beta, self.eps = float(lr), float(beta), float(eps)
        self.check_every, self.tol = int(check_every), float(tol)
        self.patience, self.max_iters = int(patience), int(max_iters)
        self.device = resolve_device(device)
        n = len(seeds)
        if _factors is None:
            per_run = [init_factors(self.shape, self.num_components, s, int(seed))
                       for s, seed in zip(self.init_stds, self.seeds)]
            _factors = [np.stack([f[m] for f in per_run]) for m in range(len(self.shape))]
        self.factors_np = [np.array(f, dtype=np.float32, copy=True) for f in _factors]
        self.square_avg = np.zeros(n, dtype=np.float32)
        self.iteration = np.zeros(n, dtype=np.int64)
        self.below_tol = np.zeros(n, dtype=np.int64)
        self.status = np.zeros(n, dtype=np.int64)
        self.first_bad = np.full(n, -1, dtype=np.int64)
        self.last_loss = np.full(n, np.nan, dtype=np.float64)
        self.history = np.zeros((n, 64, 3), dtype=np.float64)
        self.history_len = np.zeros(n, dtype=np.int64)
        self._setup_constants()
        self._load_active()

    # ---- device-side working set -------------------------------------

    def _setup_constants(self) -> None:
        h = mode_split(len(self.shape))
        d_left = int(np.prod(self.shape[:h]))
        mask = np.zeros(self.target.size, dtype=np.float32)
        mask[self.observed] = 1.0
        dev = self.device
        self._target_mat = torch.from_numpy(self.target.reshape(d_left, -1).copy()).to(dev)
        self._mask_mat = torch.from_numpy(mask.reshape(d_left, -1)).to(dev)
        self._target_norm = float(np.linalg.norm(self.target.astype(np.float64)))

    def _load_active(self) -> None:
        """Move the running runs' parameters to the device (stacked) and size the step's workspace."""
        self._active = np.flatnonzero(self.status == RUNNING)
        idx = self._active
        dev = self.device
        # Copies (updated in place by the step) in memory of the device's allocator.
        self._factors = [torch.from_numpy(f[idx]).to(dev, copy=True) for f in self.factors_np]
        self._v = torch.from_numpy(self.square_avg[idx]).to(dev, copy=True)
        self._t = torch.from_numpy(self.iteration[idx]).to(dev, copy=True)
        self._first_bad = torch.from_numpy(self.first_bad[idx]).to(dev, copy=True)
        self._loss = torch.full((len(idx),), float("nan"), dtype=torch.float32, device=dev)
        self._beta64 = torch.tensor(self.beta, dtype=torch.float64, device=dev)
        self._workspace = StepWorkspace(len(idx), self.shape, self.num_components, torch.float32, dev)

    def _store_active(self) -> None:
        """Copy the device working set back into the numpy state."""
        idx = self._active
        if idx.size == 0:
            return
        for m, f in enumerate(self._factors):
            self.factors_np[m][idx] = f.cpu().numpy()
        self.square_avg[idx] = self._v.cpu().numpy()
        self.iteration[idx] = self._t.cpu().numpy()
        self.first_bad[idx] = self._first_bad.cpu().numpy()

    def running(self) -> np.ndarray:
        """Boolean mask of the runs that have not stopped."""
        return self.status == RUNNING

    # ---- training ------------------------------------------------------

    def _step(self) -> None:
        """One adaptive-step GD update of every active run (no host sync), in place.

        Writes the loss and gradients into the workspace and updates the
        factors, ``v`` and ``t`` in place; every operation is the one of the
        allocating form ``f ← f − (lr / (√(v/(1−β^t)) + eps))·g`` with the
        same operands in the same order.
        """
        ws = self._workspace
        loss, grads = loss_and_gradients(
            self._factors, self._target_mat, self._mask_mat, self.observed.size, ws
        )
        beta = self.beta
        # Same accumulation order as the authors' GroupRMSprop: decay, then
        # add (1 − β)·‖g‖² parameter by parameter, all in float32.
        v = self._v.mul_(beta)
        for g, sq in zip(grads, ws.grad_sq):
            v.add_(torch.sum(torch.square(g, out=sq), dim=(1, 2), out=ws.grad_sq_sum).mul_(1.0 - beta))
        t = self._t.add_(1)
        bias = 1.0 - torch.pow(self._beta64, t)
        step = self.lr / ((v / bias.to(v.dtype)).sqrt() + self.eps)
        for f, g in zip(self._factors, grads):
            f.sub_(torch.mul(step[:, None, None], g, out=g))
        self._loss = loss
        bad = ~torch.isfinite(loss)
        self._first_bad = torch.where(bad & (self._first_bad < 0), t, self._first_bad)

    def _append(self, b: int, t: int, loss: float, err: float) -> None:
        if self.history_len[b] >= self.history.shape[1]:
            grown = np.zeros((self.history.shape[0], 2 * self.history.shape[1], 3))
            grown[:, : self.history.shape[1]] = self.history
            self.history = grown
        self.history[b, self.history_len[b]] = (t, loss, err)
        self.history_len[b] += 1

    def _check(self) -> None:
        """Host-side logging and stop rule for runs at a check (or final) iteration."""
        t = self._t.cpu().numpy()
        loss = self._loss.double().cpu().numpy()
        first_bad = self._first_bad.cpu().numpy()
        due = (t % self.check_every == 0) | (t >= self.max_iters) | (first_bad >= 0)
        if not due.any():
            return
        with torch.no_grad():
            full = cp_full_tensor(self._factors).reshape(len(self._active), -1)
            diff = full - self._target_mat.reshape(1, -1)
            err = (torch.linalg.vector_norm(diff.double(), dim=1) / self._target_norm).cpu().numpy()
        stopped = False
        for k in np.flatnonzero(due):
            b = int(self._active[k])
            self.last_loss[b] = loss[k]
            if first_bad[k] >= 0:
                self.status[b] = DIVERGED
                self._append(b, int(first_bad[k]), math.nan, math.nan)
                stopped = True
                continue
            if t[k] % self.check_every == 0:
                self._append(b, int(t[k]), float(loss[k]), float(err[k]))
                self.below_tol[b] = self.below_tol[b] + 1 if loss[k] < self.tol else 0
                if self.below_tol[b] > self.patience:
                    self.status[b] = CONVERGED
                    stopped = True
                    continue
            if t[k] >= self.max_iters:
                if t[k] % self.check_every != 0:
                    self._append(b, int(t[k]), float(loss[k]), float(err[k]))
                self.status[b] = MAX_ITERS
                stopped = True
        if stopped:
            self._store_active()
            for b in np.flatnonzero(self.status == DIVERGED):
                self.iteration[b] = min(self.iteration[b], self.first_bad[b])
            self._load_active()

    def _steps_to_next_check(self, limit: int) -> int:
        """Iterations (1 .. ``limit``) until some active run reaches a check or ``max_iters``."""
        it = self.iteration[self._active]
        to_check = int((self.check_every - it % self.check_every).min())
        to_cap = int((self.max_iters - it).min())
        return max(1, min(limit, to_check, to_cap))

    def advance(self, n_iters: int) -> "CPCompletionBatch":
        """Advance every running run by up to ``n_iters`` iterations."""
        remaining = int(n_iters)
        with torch.no_grad():
            while remaining > 0 and self._active.size:
                # The host mirror of the device counters says how many steps
                # run before the next check, so no step synchronizes.
                k = self._steps_to_next_check(remaining)
                for _ in range(k):
                    self._step()
                remaining -= k
                self.iteration[self._active] += k
                it = self.iteration[self._active]
                if (it % self.check_every == 0).any() or (it >= self.max_iters).any():
                    self._check()
        self._store_active()
        return self

    def run(
        self,
        checkpoint_every: int | None = None,
        on_checkpoint: Callable[["CPCompletionBatch"], None] | None = None,
    ) -> "CPCompletionBatch":
        """Train until every run has stopped, calling ``on_checkpoint`` every ``checkpoint_every`` iterations."""
        chunk = int(checkpoint_every) if checkpoint_every else self.max_iters
        while self.running().any():
            self.advance(chunk)
            if on_checkpoint is not None and self.running().any():
                on_checkpoint(self)
        return self

    # ---- state and results ------------------------------------------

    def get_state(self) -> dict[str, np.ndarray]:
        """Full state (data, settings, parameters, optimizer, counters, histories) as numpy arrays."""
        self._store_active()
        state = {f"factors_{m}": f.copy() for m, f in enumerate(self.factors_np)}
        state.update(
            target=self.target.copy(),
            observed=self.observed.copy(),
            init_stds=self.init_stds.copy(),
            seeds=self.seeds.copy(),
            square_avg=self.square_avg.copy(),
            iteration=self.iteration.copy(),
            below_tol=self.below_tol.copy(),
            status=self.status.copy(),
            first_bad=self.first_bad.copy(),
            last_loss=self.last_loss.copy(),
            history=self.history[:, : max(int(self.history_len.max()), 1)].copy(),
            history_len=self.history_len.copy(),
            settings=np.array(
                [self.num_components, self.lr, self.beta, self.eps, self.check_every,
                 self.tol, self.patience, self.max_iters], dtype=np.float64),
        )
        return state

    @classmethod
    def from_state(cls, state: Mapping[str, np.ndarray], device: str | None = None) -> "CPCompletionBatch":
        """Rebuild a batch from :meth:`get_state`; resuming reproduces an uninterrupted run."""
        r, lr, beta, eps, check, tol, patience, max_iters = (float(x) for x in state["settings"])
        order = len(state["target"].shape)
        obj = cls(
            state["target"], state["observed"], state["init_stds"], state["seeds"],
            num_components=int(r), lr=lr, beta=beta, eps=eps, check_every=int(check), tol=tol,
            patience=int(patience), max_iters=int(max_iters), device=device,
            _factors=[state[f"factors_{m}"] for m in range(order)],
        )
        for key in ("square_avg", "iteration", "below_tol", "status", "first_bad", "last_loss", "history_len"):
            setattr(obj, key, np.array(state[key], dtype=getattr(obj, key).dtype, copy=True))
        obj.history = np.array(state["history"], dtype=np.float64, copy=True)
        obj._load_active()
        return obj

    def model_tensors(self) -> np.ndarray:
        """Current model tensors ``[runs, d_1, …, d_N]`` (float32, numpy)."""
        self._store_active()
        with torch.no_grad():
            facs = [torch.from_numpy(f) for f in self.factors_np]
            return cp_full_tensor(facs).numpy()

    def results(self) -> list[TCRunResult]:
        """Per-run results; the reconstruction error is recomputed from the final model."""
        tensors = self.model_tensors()
        out = []
        for b in range(len(self.seeds)):
            rows = self.history[b, : self.history_len[b]]
            out.append(
                TCRunResult(
                    status=STATUS_NAMES[int(self.status[b])],
                    final_iteration=int(self.iteration[b]),
                    final_train_loss=float(self.last_loss[b]),
                    reconstruction_error=reconstruction_error(tensors[b], self.target),
                    history={
                        "iteration": rows[:, 0].astype(np.int64),
                        "train_loss": rows[:, 1].copy(),
                        "reconstruction_error": rows[:, 2].copy(),
                    },
                )
            )
        return out
