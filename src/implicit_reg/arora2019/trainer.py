"""Batched gradient descent on deep matrix factorizations (Arora et al. 2019).

The product matrix is ``W = W_N ⋯ W_1`` (depth N). A *batch* is a set of runs
that share one data set (same observations): they differ in initialization,
learning rate, seed and possibly depth, and are trained together as stacked
tensors ``[B, rows, cols]`` (one group per depth) with batched matrix products
and hand-written gradients (:mod:`~implicit_reg.arora2019.gradients`); the
observation of the product matrices (:mod:`~implicit_reg.arora2019.observations`)
runs once for the whole batch (for sensing, two products with the measurement
matrix). Runs that stop (train loss ≤ tolerance, or divergence) are frozen on the
spot and removed from the batch at the next synchronisation point, so the slowest
run does not make the others pay.

Spec references: optimizers §1.6, stopping and logging §1.7, metrics §1.8.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from implicit_reg.arora2019.gradients import (
    Workspace,
    sampled_backward,
    sampled_forward,
)
from implicit_reg.arora2019.observations import Problem
from implicit_reg.arora2019.schedule import Schedule
from implicit_reg.core import checkpoint as ckpt
from implicit_reg.core import metrics
from implicit_reg.core.devices import pick_device  # noqa: F401 - re-exported (scripts, api)
from implicit_reg.core.progress import AttemptClock, progress_text

log = logging.getLogger(__name__)

#: The train loss reached ``train_loss_tol`` (spec §1.7).
STATUS_CONVERGED = "converged"
#: The run was still training at ``max_iters``.
STATUS_MAX_ITERS = "max_iters"
#: The loss became non-finite or exceeded ``divergence_loss``.
STATUS_DIVERGED = "diverged"


def _identity(x):
    return x


@dataclass
class BatchResult:
    """What a batch of runs produced, one entry per run in input order.

    Parameters
    ----------
    final : dict of str to numpy.ndarray
        The metrics of :data:`FINAL_COLUMNS` at each run's stopping iteration (spec §1.8):
        train loss, test MSE, squared and plain normalised reconstruction error
        ``‖W − W*‖_F² / ‖W*‖_F²``, nuclear norm ``Σ σ_i``, effective rank
        ``exp(H(p))`` with ``p_i = σ_i / Σ_j σ_j`` (Roy & Vetterli 2007),
        iterations and wall seconds.
    status : list of str
        ``converged``, ``max_iters`` or ``diverged`` per run.
    trajectories : dict of str to numpy.ndarray
        The logged rows (spec §1.7), sorted by run then iteration: ``run``,
        ``iteration``, the metrics, ``sv_k``, ``step_size`` and, with alignment
        logging, the alignment statistics and ``grad_proj_k``.
    batch_wall_seconds : float
        The batch's training time, earlier attempts up to their last checkpoint included.
    resumed_seconds, resumed_cpu_seconds : float
        The wall and CPU seconds of earlier attempts, included in ``batch_wall_seconds``
        (0 for a batch that ran in one go). A scheduler's benchmark times only the last
        attempt; this is what it misses.
    final_products : numpy.ndarray, optional
        The product matrices W at the stopping iterations, ``[B, rows, cols]``.
    """

    final: dict[str, np.ndarray]
    status: list[str]
    trajectories: dict[str, np.ndarray]
    batch_wall_seconds: float = 0.0
    resumed_seconds: float = 0.0
    resumed_cpu_seconds: float = 0.0
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
    cpu_elapsed: float = 0.0  # process CPU seconds, earlier attempts included
    history: dict[str, list[torch.Tensor]] = field(default_factory=dict)
    final: dict[str, torch.Tensor] = field(default_factory=dict)
    status: dict[int, str] = field(default_factory=dict)
    products: dict[int, torch.Tensor] = field(default_factory=dict)


#: The per-run columns of :attr:`BatchResult.final`.
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
    """Trains a batch of deep-factorization runs that share one problem.

    Each run minimises its training loss over the factors of ``W = W_N ⋯ W_1`` by
    GroupRMSprop or plain gradient descent (:mod:`~implicit_reg.arora2019.schedule`)
    until its train loss is ≤ the tolerance, it diverges or it reaches
    ``max_iters`` (spec §1.6–1.7); runs may differ in depth, initialization and
    learning rate.

    Parameters
    ----------
    problem : Problem
        The shared observations and test entries.
    initial : list of list of numpy.ndarray
        Initial factors W_1 … W_N of every run (:func:`~implicit_reg.arora2019.initialization.initial_factors`).
    lrs : list of float
        Positive learning rate of every run.
    schedule : Schedule
        Optimizer, stopping and logging.
    device, dtype
        Where and in which precision to train (float32 in the paper).
    checkpoint_path : path, optional
        Checkpoint file: the state is saved there every ``schedule.checkpoint_seconds``
        and a checkpoint with this batch's fingerprint is resumed.
    fingerprint : str
        What the caller knows determines the numbers beyond the arguments here (the
        data files' sha256, the spec); the checkpoint's fingerprint adds the learning
        rates, schedule, dtype, device and the initial factors' bytes (hence their
        seeds), so a checkpoint of any other batch is never resumed.
    """

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
        self.resumed_seconds = self.resumed_cpu_seconds = 0.0
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
    def _workspace(self) -> Workspace:
        """Buffers for the current batch; afterwards ``st.factors`` are views into them."""
        st = self.state
        all_active = self.host_bookkeeping and bool(st.active.all())
        train = self.problem.train
        ws = Workspace(st.factors, self._group_depths(), st.lr, train.gradient_scale, all_active,
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
        """Train until every run has stopped or reached ``max_iters``.

        Resumes from the checkpoint first when one with this batch's fingerprint exists.

        Returns
        -------
        BatchResult
            Final metrics, statuses, trajectories and final products of every run.
        """
        self._maybe_resume()
        sched = self.schedule
        st = self.state
        train = self.problem.train
        ws = self._workspace()
        clock = AttemptClock(st.elapsed, st.cpu_elapsed)
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
                st.elapsed = clock.wall()
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
                st.elapsed, st.cpu_elapsed = clock.wall(), clock.cpu()
                self.save_checkpoint(self.checkpoint_path)
                last_ckpt = time.perf_counter()
        st.elapsed, st.cpu_elapsed = clock.wall(), clock.cpu()
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

        GroupRMSprop (spec §1.6a, the authors' ``opt.py``) is gradient descent along
        the full gradient with one adaptive step size per run:

        .. math::

            v_t = \\alpha v_{t-1} + (1 - \\alpha) \\sum_\\theta \\|\\nabla_\\theta L\\|^2, \\qquad
            \\eta_t = \\frac{\\mathrm{lr}}{\\sqrt{v_t / (1 - \\alpha^t)} + \\varepsilon},

        with ``v_0 = 0``; every factor moves by ``θ ← θ − η_t ∇_θ L``. Plain GD uses
        ``η_t = lr``. The true gradients are ``c·grads`` with c = ``gradient_scale``
        (2/m); c is folded in here (η_t·c) instead of being a pass over the residual.
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
            resumed_seconds=self.resumed_seconds,
            resumed_cpu_seconds=self.resumed_cpu_seconds,
            final_products=products,
        )

    # ------------------------------------------------------------ checkpoints
    def save_checkpoint(self, path: str | Path) -> None:
        """Write the whole training state with this batch's fingerprint.

        Parameters
        ----------
        path : path
            The checkpoint file (written atomically, see :mod:`implicit_reg.core.checkpoint`).
        """
        st = self.state
        payload = {
            "n_runs": self.n_runs,
            "iteration": st.iteration,
            "elapsed": st.elapsed,
            "cpu_elapsed": st.cpu_elapsed,
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
        st.elapsed = self.resumed_seconds = float(payload["elapsed"])
        # Checkpoints written before CPU time was carried: the wall time bounds it.
        st.cpu_elapsed = self.resumed_cpu_seconds = float(payload.get("cpu_elapsed", st.elapsed))
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
