"""The batched deep-factorization engine against autograd and its formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from implicit_reg.arora2019 import data as matrix_data
from implicit_reg.arora2019.gradients import (
    backward,
    forward,
    sampled_backward,
    sampled_forward,
)
from implicit_reg.arora2019.initialization import end_to_end, initial_factors
from implicit_reg.arora2019.observations import (
    EntryObservations,
    Problem,
    SampledEntries,
    build_problem,
    onednn_available,
)
from implicit_reg.arora2019.schedule import Schedule
from implicit_reg.arora2019.trainer import (
    STATUS_CONVERGED,
    STATUS_DIVERGED,
    STATUS_MAX_ITERS,
    BatchResult,
    BatchTrainer,
)
from implicit_reg.core.metrics_numpy import effective_rank


def _completion_problem(n: int = 12, rank: int = 2, n_obs: int = 80, seed: int = 0, dtype=torch.float64):
    rng = np.random.default_rng(seed)
    gt = matrix_data.low_rank_ground_truth(n, n, rank, rng)
    obs = matrix_data.completion_arrays(gt, n_obs, rng)
    return gt, obs, build_problem("completion", obs, gt, "cpu", dtype)


def _sensing_problem(n: int = 8, n_obs: int = 40, seed: int = 1, dtype=torch.float64):
    rng = np.random.default_rng(seed)
    gt = matrix_data.low_rank_ground_truth(n, n, 2, rng)
    obs = matrix_data.sensing_arrays(gt, n_obs, rng)
    return gt, obs, build_problem("sensing", obs, gt, "cpu", dtype)


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
@pytest.mark.parametrize("task", ["completion", "sensing"])
def test_hand_written_gradients_equal_autograd(depth: int, task: str) -> None:
    _, _, problem = (_completion_problem if task == "completion" else _sensing_problem)()
    rng = np.random.default_rng(3)
    batch = [initial_factors(problem.shape, depth, "gaussian", 0.5, rng) for _ in range(3)]
    factors = [torch.tensor(np.stack([b[j] for b in batch]), requires_grad=True) for j in range(depth)]
    partial = forward(factors)
    residual = problem.train.residual(partial[-1])
    loss = problem.train.loss(residual)
    auto = torch.autograd.grad(loss.sum(), factors)
    hand = backward([f.detach() for f in factors], [p.detach() for p in partial],
                    problem.product_gradient(residual.detach()))
    for a, h in zip(auto, hand):
        torch.testing.assert_close(h, a, rtol=1e-10, atol=1e-12)


def test_forward_is_product_in_paper_order() -> None:
    rng = np.random.default_rng(0)
    ws = [rng.standard_normal((4, 4)) for _ in range(3)]
    partial = forward([torch.tensor(w[None]) for w in ws])
    np.testing.assert_allclose(partial[-1][0].numpy(), ws[2] @ ws[1] @ ws[0])


def test_group_rmsprop_matches_formula_step_by_step() -> None:
    """Three runs trained by the engine equal a scalar re-implementation of §1.6(a)."""
    gt, obs, problem = _completion_problem()
    depth, lrs, alpha, eps = 3, [1e-2, 3e-3, 1e-3], 0.99, 1e-4
    init = [initial_factors(problem.shape, depth, "gaussian", 1e-1, np.random.default_rng(s)) for s in range(3)]
    steps = 25
    sched = Schedule(max_iters=steps, log_every=1, sync_every=1, train_loss_tol=1e-30,
                     rmsprop_alpha=alpha, rmsprop_eps=eps)
    result = BatchTrainer(problem, init, lrs, sched, dtype=torch.float64).run()
    for r, lr in enumerate(lrs):
        ws = [torch.tensor(w) for w in init[r]]
        v = 0.0
        for t in range(1, steps + 1):
            ws = [w.requires_grad_(True) for w in ws]
            loss = problem.train.loss(problem.train.residual(end_to_end(ws)[None]))[0]
            grads = torch.autograd.grad(loss, ws)
            v = alpha * v + (1 - alpha) * sum(float((g**2).sum()) for g in grads)
            eta = lr / (math.sqrt(v / (1 - alpha**t)) + eps)
            ws = [(w - eta * g).detach() for w, g in zip(ws, grads)]
        np.testing.assert_allclose(result.final_products[r], end_to_end(ws).numpy(), rtol=1e-9, atol=1e-12)
        assert result.status[r] == STATUS_MAX_ITERS
        assert result.final["iterations"][r] == steps


def test_plain_gd_step() -> None:
    _, _, problem = _completion_problem()
    init = [initial_factors(problem.shape, 2, "identity", 1e-1, np.random.default_rng(0))]
    sched = Schedule(optimizer="gd", max_iters=1, log_every=1, sync_every=1, train_loss_tol=1e-30)
    result = BatchTrainer(problem, init, [0.5], sched, dtype=torch.float64).run()
    ws = [torch.tensor(w, requires_grad=True) for w in init[0]]
    loss = problem.train.loss(problem.train.residual(end_to_end(ws)[None]))[0]
    grads = torch.autograd.grad(loss, ws)
    expected = end_to_end([(w - 0.5 * g).detach() for w, g in zip(ws, grads)]).numpy()
    np.testing.assert_allclose(result.final_products[0], expected, rtol=1e-12)


def test_gaussian_init_scale_semantics() -> None:
    """‖W(0)‖_F ≈ √n·init_scale for every depth (spec §1.4)."""
    n = 100
    for depth in (2, 3, 4):
        norms = [np.linalg.norm(end_to_end(initial_factors((n, n), depth, "gaussian", 1e-3,
                                                                  np.random.default_rng(s)))) for s in range(5)]
        assert 0.8 < np.mean(norms) / (math.sqrt(n) * 1e-3) < 1.2
        std = np.std(initial_factors((n, n), depth, "gaussian", 1e-3, np.random.default_rng(0))[0])
        assert std == pytest.approx(1e-3 ** (1 / depth) / math.sqrt(n), rel=0.05)


def test_identity_and_balanced_inits() -> None:
    ws = initial_factors((6, 6), 3, "identity", 1e-3, np.random.default_rng(0))
    np.testing.assert_allclose(end_to_end(ws), 1e-3 * np.eye(6), rtol=1e-12)
    ws = initial_factors((6, 4), 3, "balanced", 1e-2, np.random.default_rng(1))
    assert [w.shape for w in ws] == [(4, 4), (4, 4), (6, 4)]
    for lower, upper in zip(ws[:-1], ws[1:]):
        np.testing.assert_allclose(upper.T @ upper, lower @ lower.T, atol=1e-15)


def test_runs_stop_independently_and_are_frozen_at_the_stopping_iteration() -> None:
    gt, obs, problem = _completion_problem(n=10, n_obs=70)
    init = [initial_factors(problem.shape, 2, "gaussian", 1e-2, np.random.default_rng(s)) for s in range(2)]
    sched = Schedule(max_iters=4000, log_every=50, sync_every=37, train_loss_tol=1e-5)
    result = BatchTrainer(problem, init, [1e-2, 3e-3], sched, dtype=torch.float64).run()
    assert result.status == [STATUS_CONVERGED] * 2
    iters = result.final["iterations"]
    assert iters[0] < iters[1]
    # The final row of each trajectory is its stopping iteration, and its loss is the first ≤ tol.
    traj = result.trajectories
    for r in range(2):
        rows = traj["run"] == r
        assert traj["iteration"][rows].max() == iters[r]
        losses = traj["train_loss"][rows]
        assert losses[-1] <= 1e-5 < losses[-2]
    # Frozen at the stopping iteration: retraining with max_iters = stop gives the same product.
    for r in range(2):
        capped = Schedule(max_iters=int(iters[r]), log_every=50, sync_every=37, train_loss_tol=1e-30)
        again = BatchTrainer(problem, [init[r]], [[1e-2, 3e-3][r]], capped, dtype=torch.float64).run()
        np.testing.assert_allclose(result.final_products[r], again.final_products[0], rtol=1e-12)


def test_divergence_is_recorded_not_dropped() -> None:
    _, _, problem = _completion_problem()
    init = [initial_factors(problem.shape, 2, "gaussian", 1.0, np.random.default_rng(s)) for s in range(2)]
    sched = Schedule(optimizer="gd", max_iters=500, log_every=10, sync_every=10, train_loss_tol=1e-8)
    result = BatchTrainer(problem, init, [1e-3, 1e4], sched, dtype=torch.float64).run()
    assert result.status[1] == STATUS_DIVERGED
    assert result.status[0] == STATUS_MAX_ITERS
    assert not math.isfinite(result.final["final_train_loss"][1]) or result.final["final_train_loss"][1] > 1e29


@pytest.mark.parametrize("log_alignment", [False, True])
def test_overflowing_run_is_recorded_beside_healthy_ones(log_alignment: bool) -> None:
    """float32 overflow gives inf/NaN products: metrics of that run are NaN, the batch goes on."""
    _, _, problem = _completion_problem(dtype=torch.float32)
    init = [initial_factors(problem.shape, 3, "gaussian", 0.1, np.random.default_rng(s)) for s in range(2)]
    sched = Schedule(optimizer="gd", max_iters=200, log_every=1, sync_every=1, train_loss_tol=1e-8,
                     divergence_loss=float("inf"), log_alignment=log_alignment)
    result = BatchTrainer(problem, init, [1e-2, 50.0], sched, dtype=torch.float32).run()
    assert result.status == [STATUS_MAX_ITERS, STATUS_DIVERGED]
    assert not np.isfinite(result.final_products[1]).all()
    assert math.isnan(result.final["nuclear_norm"][1]) and math.isnan(result.final["effective_rank"][1])
    assert math.isfinite(result.final["nuclear_norm"][0]) and math.isfinite(result.final["recon_error_sq"][0])


@pytest.mark.parametrize("path", ["dense", "sampled"])
def test_checkpoint_resume_equals_uninterrupted(tmp_path, path: str) -> None:
    """A job killed mid-run and started again ends exactly as an uninterrupted one."""
    if path == "dense":
        _, _, problem = _completion_problem(dtype=torch.float32)
    else:
        problem = _ratings_problem(1.0, rows=20, cols=12, n_train=40, dtype=torch.float32)
    init = [initial_factors(problem.shape, 3, "gaussian", 1e-2, np.random.default_rng(s)) for s in range(3)]
    lrs = [1e-2, 5e-3, 2e-3]
    sched = Schedule(max_iters=600, log_every=50, sync_every=25, train_loss_tol=1e-4,
                     checkpoint_seconds=1e-9)
    whole = BatchTrainer(problem, init, lrs, sched, dtype=torch.float32).run()
    path = tmp_path / "ckpt.pt"
    killed = BatchTrainer(problem, init, lrs, sched, dtype=torch.float32, checkpoint_path=path)
    _kill_at(killed, 313)
    assert torch.load(path, weights_only=True)["payload"]["iteration"] == 300
    resumed = BatchTrainer(problem, init, lrs, sched, dtype=torch.float32, checkpoint_path=path).run()
    np.testing.assert_array_equal(resumed.final_products, whole.final_products)
    assert resumed.status == whole.status
    np.testing.assert_array_equal(resumed.final["iterations"], whole.final["iterations"])
    assert set(resumed.trajectories) == set(whole.trajectories)
    for key, values in whole.trajectories.items():
        np.testing.assert_array_equal(resumed.trajectories[key], values, err_msg=key)


def _kill_at(trainer: BatchTrainer, iteration: int) -> None:
    """Run the trainer but raise (as if killed) in the backward pass of ``iteration``."""
    original = trainer._step_size

    class Killed(Exception):
        pass

    def step_size(grads, step):
        if step > iteration:
            raise Killed
        return original(grads, step)

    trainer._step_size = step_size
    with pytest.raises(Killed):
        trainer.run()


def test_metrics_in_the_trajectory_equal_numpy() -> None:
    gt, obs, problem = _completion_problem()
    init = [initial_factors(problem.shape, 2, "gaussian", 1e-1, np.random.default_rng(0))]
    sched = Schedule(max_iters=40, log_every=20, sync_every=20, train_loss_tol=1e-30)
    result = BatchTrainer(problem, init, [1e-2], sched, dtype=torch.float64).run()
    w = result.final_products[0]
    sv = np.linalg.svd(w, compute_uv=False)
    assert result.final["nuclear_norm"][0] == pytest.approx(sv.sum(), rel=1e-10)
    assert result.final["effective_rank"][0] == pytest.approx(effective_rank(sv), rel=1e-10)
    err_sq = np.sum((w - gt) ** 2) / np.sum(gt.astype(np.float64) ** 2)
    assert result.final["recon_error_sq"][0] == pytest.approx(err_sq, rel=1e-6)
    assert result.final["recon_error"][0] == pytest.approx(math.sqrt(err_sq), rel=1e-6)
    mask = np.zeros(gt.size)
    mask[obs["indices"]] = 1
    train = np.sum((mask * (w.reshape(-1) - gt.reshape(-1))) ** 2) / len(obs["indices"])
    assert result.final["final_train_loss"][0] == pytest.approx(train, rel=1e-10)


def test_metrics_of_a_non_finite_matrix_are_nan_and_leave_the_others() -> None:
    from implicit_reg.core import metrics

    rng = np.random.default_rng(0)
    batch = torch.as_tensor(rng.standard_normal((3, 5, 4)))
    broken = batch.clone()
    broken[1, 2, 3] = float("inf")
    sv = metrics.singular_values(broken)
    u, s, vh = metrics.svd(broken)
    assert torch.isnan(sv[1]).all() and torch.isnan(s[1]).all() and torch.isnan(u[1]).all() and torch.isnan(vh[1]).all()
    for i in (0, 2):
        np.testing.assert_allclose(sv[i], np.linalg.svd(batch[i].numpy(), compute_uv=False), rtol=1e-12)
        np.testing.assert_allclose(s[i], sv[i], rtol=1e-12)


def _ratings_problem(sampled_max_fraction: float, rows: int = 30, cols: int = 18, n_train: int = 90,
                     dtype=torch.float64) -> Problem:
    """A MovieLens-shaped problem: integer ratings on a few entries of a rectangular matrix."""
    rng = np.random.default_rng(5)
    idx = rng.choice(rows * cols, n_train + 150, replace=False)
    values = rng.integers(1, 6, idx.size).astype(float)
    obs = {"shape": np.array([rows, cols]),
           "train_rows": idx[:n_train] // cols, "train_cols": idx[:n_train] % cols, "train_values": values[:n_train],
           "test_rows": idx[n_train:] // cols, "test_cols": idx[n_train:] % cols, "test_values": values[n_train:]}
    return build_problem("movielens", obs, None, "cpu", dtype, alignment_total=1000,
                         sampled_max_fraction=sampled_max_fraction)


def test_sparse_observations_take_the_sampled_path_below_the_configured_fraction() -> None:
    # 90 of 540 entries = 1/6 of the matrix.
    assert isinstance(_ratings_problem(0.2).train, SampledEntries)
    assert isinstance(_ratings_problem(0.1).train, EntryObservations)
    assert isinstance(_completion_problem()[2].train, EntryObservations)  # default 0: dense


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
def test_sampled_gradients_equal_autograd(depth: int) -> None:
    problem = _ratings_problem(1.0)
    train = problem.train
    rng = np.random.default_rng(3)
    batch = [initial_factors(problem.shape, depth, "gaussian", 2.0, rng) for _ in range(3)]
    factors = [torch.tensor(np.stack([b[j] for b in batch]), requires_grad=True) for j in range(depth)]
    product = end_to_end(factors)
    loss = train.loss(train.residual(product))
    auto = torch.autograd.grad(loss.sum(), factors)
    detached = [f.detach() for f in factors]
    partial, residual = sampled_forward(detached, train)
    torch.testing.assert_close(residual, train.residual(product.detach()), rtol=1e-12, atol=1e-12)
    hand = sampled_backward(detached, partial, train, residual)
    for a, h in zip(auto, hand):
        torch.testing.assert_close(h * train.gradient_scale, a, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_sampled_training_equals_dense_training(depth: int) -> None:
    """Same runs on both paths: same stops (one run diverges), products, trajectories."""
    init = [initial_factors((30, 18), depth, "identity", 1e-3, np.random.default_rng(0)) for _ in range(3)]
    lrs = [0.3, 200.0, 0.1]
    sched = Schedule(optimizer="gd", max_iters=6000, log_every=100, sync_every=50, train_loss_tol=1e-4,
                     log_alignment=True, n_singular_values=4)
    dense = BatchTrainer(_ratings_problem(0.0), init, lrs, sched, dtype=torch.float64).run()
    sampled = BatchTrainer(_ratings_problem(1.0), init, lrs, sched, dtype=torch.float64).run()
    assert dense.status == sampled.status
    assert dense.status[1] == STATUS_DIVERGED and STATUS_CONVERGED in dense.status
    np.testing.assert_array_equal(dense.final["iterations"], sampled.final["iterations"])
    finished = [i for i, s in enumerate(dense.status) if s != STATUS_DIVERGED]
    np.testing.assert_allclose(sampled.final_products[finished], dense.final_products[finished], rtol=1e-9, atol=1e-10)
    for key in ("train_loss", "test_mse", "sv_1", "align_diag_mean", "grad_proj_1"):
        ok = np.isin(dense.trajectories["run"], finished)
        np.testing.assert_allclose(sampled.trajectories[key][ok], dense.trajectories[key][ok],
                                   rtol=1e-8, atol=1e-12, err_msg=key)


def _mixed_depth_runs(problem: Problem, depths: list[int], lrs: list[float], scale: float = 1e-2):
    """One run per (depth, lr), interleaved so that the batch must reorder them by depth."""
    runs = [(d, lr, s) for s, (lr, d) in enumerate((lr, d) for lr in lrs for d in depths)]
    init = [initial_factors(problem.shape, d, "gaussian", scale, np.random.default_rng(s)) for d, _, s in runs]
    return runs, init


def _assert_same_runs(mixed: BatchResult, per_depth: dict[int, tuple[list[int], BatchResult]],
                      rtol: float) -> None:
    for depth, (idx, res) in per_depth.items():
        assert [mixed.status[i] for i in idx] == res.status, depth
        np.testing.assert_array_equal(mixed.final["iterations"][idx], res.final["iterations"])
        # A diverging run amplifies rounding on its way out: its status and stopping iteration must agree.
        ok = [k for k, s in enumerate(res.status) if s != STATUS_DIVERGED]
        sel = [idx[k] for k in ok]
        np.testing.assert_allclose(mixed.final_products[sel], res.final_products[ok], rtol=rtol, atol=rtol * 1e-3)
        for name in ("final_train_loss", "nuclear_norm", "recon_error"):
            np.testing.assert_allclose(mixed.final[name][sel], res.final[name][ok], rtol=rtol, err_msg=name)
        rows = np.isin(mixed.trajectories["run"], idx)
        mapping = {i: k for k, i in enumerate(idx)}
        runs = np.array([mapping[r] for r in mixed.trajectories["run"][rows]])
        np.testing.assert_array_equal(runs, res.trajectories["run"])
        np.testing.assert_array_equal(mixed.trajectories["iteration"][rows], res.trajectories["iteration"])
        finite = np.isin(runs, ok)
        np.testing.assert_allclose(mixed.trajectories["train_loss"][rows][finite],
                                   res.trajectories["train_loss"][finite], rtol=rtol)


@pytest.mark.parametrize("task, optimizer", [("sensing", "grouprmsprop"), ("sensing", "gd"),
                                             ("sensing large", "grouprmsprop"), ("completion", "grouprmsprop")])
def test_mixed_depth_batch_equals_per_depth_batches(task: str, optimizer: str) -> None:
    """Runs of every depth sharing one data set train in one batch, run for run as per depth.

    The lrs make runs stop at different iterations (converged, capped and, for
    GD, diverged), so groups shrink and vanish while the others keep training.
    "sensing large" has an A large enough for the default CPU backend (oneDNN).
    """
    if task == "sensing large":
        _, _, problem = _sensing_problem(n=20, n_obs=700, dtype=torch.float32)
        assert problem.train.backend == ("onednn" if onednn_available() else "blas")
    else:
        make = _sensing_problem if task == "sensing" else _completion_problem
        _, _, problem = make(dtype=torch.float32)
    depths = [3, 1, 2, 4] if optimizer == "gd" else [3, 2, 4]
    lrs = [0.3, 0.05, 30.0] if optimizer == "gd" else [1e-2, 3e-3]
    runs, init = _mixed_depth_runs(problem, depths, lrs)
    sched = Schedule(optimizer=optimizer, max_iters=1500, log_every=100, sync_every=50, train_loss_tol=1e-4,
                     divergence_loss=1e6)
    mixed = BatchTrainer(problem, init, [lr for _, lr, _ in runs], sched, dtype=torch.float32).run()
    per_depth = {}
    for depth in depths:
        idx = [i for i, (d, _, _) in enumerate(runs) if d == depth]
        per_depth[depth] = (idx, BatchTrainer(problem, [init[i] for i in idx], [runs[i][1] for i in idx], sched,
                                              dtype=torch.float32).run())
    statuses = set(mixed.status)
    assert STATUS_CONVERGED in statuses and len(statuses) > 1, statuses
    _assert_same_runs(mixed, per_depth, rtol=2e-4)


def test_mixed_depth_batch_resumes_from_a_checkpoint(tmp_path) -> None:
    _, _, problem = _sensing_problem(dtype=torch.float32)
    runs, init = _mixed_depth_runs(problem, [2, 3], [1e-2, 3e-3])
    lrs = [lr for _, lr, _ in runs]
    sched = Schedule(max_iters=800, log_every=50, sync_every=25, train_loss_tol=1e-4, checkpoint_seconds=1e-9)
    whole = BatchTrainer(problem, init, lrs, sched, dtype=torch.float32).run()
    path = tmp_path / "ckpt.pt"
    _kill_at(BatchTrainer(problem, init, lrs, sched, dtype=torch.float32, checkpoint_path=path), 413)
    resumed = BatchTrainer(problem, init, lrs, sched, dtype=torch.float32, checkpoint_path=path).run()
    np.testing.assert_array_equal(resumed.final_products, whole.final_products)
    assert resumed.status == whole.status
    for key, values in whole.trajectories.items():
        np.testing.assert_array_equal(resumed.trajectories[key], values, err_msg=key)


@pytest.mark.parametrize("optimizer", ["grouprmsprop", "gd"])
def test_device_bookkeeping_path_equals_host_path(optimizer: str) -> None:
    """The step as it runs on a GPU (every op in torch, no numpy) gives the CPU path's numbers."""
    _, _, problem = _sensing_problem(dtype=torch.float32)
    runs, init = _mixed_depth_runs(problem, [1, 2, 3], [0.3, 30.0] if optimizer == "gd" else [1e-2, 3e-3])
    lrs = [lr for _, lr, _ in runs]
    sched = Schedule(optimizer=optimizer, max_iters=600, log_every=100, sync_every=50, train_loss_tol=1e-4,
                     divergence_loss=1e6)
    host = BatchTrainer(problem, init, lrs, sched, dtype=torch.float32).run()
    trainer = BatchTrainer(problem, init, lrs, sched, dtype=torch.float32)
    trainer.host_bookkeeping = False
    trainer._xp = trainer._array_namespace()
    device = trainer.run()
    assert device.status == host.status
    np.testing.assert_array_equal(device.final["iterations"], host.final["iterations"])
    # The two paths round the GroupRMSprop step size in another order: float32 rounding (1.2e-7
    # relative) accumulated over 600 steps, on the scale of the product, not of each entry (an
    # entry near zero differed by 1.1e-7, 4e-5 of itself, on an Intel Xeon).
    scale = float(np.max(np.abs(host.final_products)))
    np.testing.assert_allclose(device.final_products, host.final_products, rtol=1e-5, atol=1e-5 * scale)


def test_sampled_path_refuses_mixed_depths() -> None:
    problem = _ratings_problem(1.0, dtype=torch.float32)
    init = [initial_factors(problem.shape, d, "identity", 1e-3, np.random.default_rng(0)) for d in (2, 3)]
    with pytest.raises(ValueError, match="one depth"):
        BatchTrainer(problem, init, [1e-2, 1e-2], Schedule(max_iters=10)).run()


def test_onednn_sensing_products_equal_blas_within_float32_rounding() -> None:
    """The prepacked oneDNN products (the CPU default for large A) against BLAS and float64."""
    import dataclasses

    _, _, problem = _sensing_problem(n=20, n_obs=700, dtype=torch.float32)
    assert problem.train.backend == "onednn" or not onednn_available()
    if not onednn_available():
        pytest.skip("torch without oneDNN")
    blas = dataclasses.replace(problem.train, backend="blas")
    onednn = dataclasses.replace(problem.train, backend="onednn")
    g = torch.Generator().manual_seed(0)
    for batch in (1, 7, 40):
        p = torch.randn(batch, 20, 20, generator=g)
        exact = torch.addmm(-problem.train.targets.double(), p.flatten(1).double(), problem.train.matrix.double().T)
        r = onednn.residual(p)
        np.testing.assert_allclose(r, blas.residual(p), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(r, exact, rtol=1e-4, atol=1e-5)
        exact_adj = exact @ problem.train.matrix.double()
        np.testing.assert_allclose(onednn.adjoint(exact.float()), exact_adj, rtol=1e-4, atol=1e-5)


def test_onednn_training_equals_blas_training() -> None:
    import dataclasses

    if not onednn_available():
        pytest.skip("torch without oneDNN")
    _, _, problem = _sensing_problem(n=20, n_obs=700, dtype=torch.float32)
    runs, init = _mixed_depth_runs(problem, [2, 3], [1e-2, 3e-3])
    sched = Schedule(max_iters=600, log_every=100, sync_every=50, train_loss_tol=1e-4)
    results = {}
    for backend in ("onednn", "blas"):
        prob = dataclasses.replace(problem, train=dataclasses.replace(problem.train, backend=backend))
        results[backend] = BatchTrainer(prob, init, [lr for _, lr, _ in runs], sched, dtype=torch.float32).run()
    assert results["onednn"].status == results["blas"].status
    np.testing.assert_array_equal(results["onednn"].final["iterations"], results["blas"].final["iterations"])
    np.testing.assert_allclose(results["onednn"].final_products, results["blas"].final_products, rtol=1e-3, atol=1e-6)
