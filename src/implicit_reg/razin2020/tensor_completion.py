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
tensors. The loss and its hand-written gradients, computed into a workspace
allocated once per set of running runs, are in
:mod:`implicit_reg.razin2020.cp_gradients`; the factors and optimizer state
are updated in place, with the arithmetic of the earlier allocating step
operation by operation (``tests/test_tensor_completion.py`` checks
bit-identity). The data, the linear baseline and the reconstruction error
are in :mod:`implicit_reg.razin2020.tensor_data`.

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
from typing import Callable, Mapping, Sequence

import numpy as np
import torch

from implicit_reg.razin2020.cp_gradients import (
    StepWorkspace,
    cp_full_tensor,
    init_factors,
    loss_and_gradients,
    mode_split,
)
from implicit_reg.razin2020.cp_rank import max_cp_rank
from implicit_reg.razin2020.tensor_data import reconstruction_error

RUNNING, CONVERGED, MAX_ITERS, DIVERGED = 0, 1, 2, 3
STATUS_NAMES = ("running", "converged", "max_iters", "diverged")

DEFAULT_LR = 0.01
DEFAULT_BETA = 0.99
DEFAULT_EPS = 1e-6
DEFAULT_CHECK_EVERY = 100
DEFAULT_TOL = 1e-6
DEFAULT_PATIENCE = 2
DEFAULT_MAX_ITERS = 1_000_000


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
