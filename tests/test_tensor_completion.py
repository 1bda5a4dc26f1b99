"""Tests of CP tensor completion (Razin & Cohen Fig. 2): data, baseline, gradients, optimizer, engine."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from implicit_reg.razin2020 import tensor_completion as tc

DATA = Path(
    os.environ.get(
        "RAZIN2020_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "razin2020_data"
    )
)
ORDER3_RANK1 = DATA / "tc" / "tensor_rank_1_fro_1_order_3_dim_8.npz"
ORDER4_RANK1 = DATA / "tc" / "tensor_rank_1_fro_1_order_4_dim_8.npz"


# ---------------------------------------------------------------- data and baseline


def test_generated_data_is_unit_norm_and_seeded():
    d = tc.generate_tensor_data(order=3, rank=2, seed=5, mode_size=8)
    assert d.target.shape == (8, 8, 8) and d.target.dtype == np.float32
    assert np.linalg.norm(d.target.astype(np.float64)) == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_array_equal(np.sort(d.permutation), np.arange(512))
    again = tc.generate_tensor_data(order=3, rank=2, seed=5, mode_size=8)
    np.testing.assert_array_equal(d.target, again.target)
    np.testing.assert_array_equal(d.permutation, again.permutation)
    assert d.target_cp_rank == 2


def test_observed_indices_are_first_n_of_permutation():
    d = tc.generate_tensor_data(order=3, rank=1, seed=0, mode_size=4)
    np.testing.assert_array_equal(tc.observed_indices(d, 10), d.permutation[:10])
    with pytest.raises(ValueError):
        tc.observed_indices(d, 0)


def test_linear_baseline_tensor_and_exact_error():
    d = tc.generate_tensor_data(order=4, rank=1, seed=1, mode_size=5)
    obs = tc.observed_indices(d, 200)
    lin = tc.linear_baseline_tensor(d.target, obs)
    flat = lin.reshape(-1)
    np.testing.assert_array_equal(flat[obs], d.target.reshape(-1)[obs])
    assert np.count_nonzero(np.delete(flat, obs)) == 0
    seen = float(np.sum(d.target.reshape(-1)[obs].astype(np.float64) ** 2))
    expected = math.sqrt(1.0 - seen)
    assert tc.linear_baseline_error(d.target, obs) == pytest.approx(expected, rel=1e-6)
    assert tc.reconstruction_error(lin, d.target) == pytest.approx(expected, rel=1e-6)
    # Row-major linear indices: index 1 is entry (0, 0, 0, 1).
    one = tc.linear_baseline_tensor(d.target, np.array([1]))
    assert one[0, 0, 0, 1] == d.target[0, 0, 0, 1] and np.count_nonzero(one) <= 1


@pytest.mark.skipif(not ORDER3_RANK1.exists(), reason="authors' data not available")
@pytest.mark.parametrize("n, published", [(50, 0.967), (100, 0.905), (511, 0.0766)])
def test_linear_error_on_authors_order3_data(n, published):
    d = tc.load_tensor_data(ORDER3_RANK1)
    assert d.target.shape == (8, 8, 8) and d.target_cp_rank == 1
    assert tc.linear_baseline_error(d.target, tc.observed_indices(d, n)) == pytest.approx(published, rel=0.05)


@pytest.mark.skipif(not ORDER4_RANK1.exists(), reason="authors' data not available")
def test_linear_error_on_authors_order4_data_last_point():
    d = tc.load_tensor_data(ORDER4_RANK1)
    err = tc.linear_baseline_error(d.target, tc.observed_indices(d, 4095))
    assert 3e-3 < err < 3e-2  # ≈ 1e-2 on the paper's log axis: one entry left unobserved


# ---------------------------------------------------------------- gradients


@pytest.mark.parametrize("shape", [(3, 4, 5), (3, 2, 4, 3), (2, 3, 2, 2, 3)])
def test_gradients_match_autograd(shape):
    torch.manual_seed(0)
    rank, batch = 5, 3
    target = torch.randn(shape, dtype=torch.float64)
    obs = torch.randperm(target.numel())[: target.numel() // 2]
    mask = torch.zeros(target.numel(), dtype=torch.float64)
    mask[obs] = 1.0
    h = tc.mode_split(len(shape))
    d_left = int(np.prod(shape[:h]))
    factors = [torch.randn(batch, d, rank, dtype=torch.float64, requires_grad=True) for d in shape]

    loss, grads = tc.loss_and_gradients(
        [f.detach() for f in factors], target.reshape(d_left, -1), mask.reshape(d_left, -1), len(obs)
    )
    full = tc.cp_full_tensor(factors).reshape(batch, -1)
    t_loss = ((full[:, obs] - target.reshape(-1)[obs]) ** 2).mean(dim=1)
    t_loss.sum().backward()
    torch.testing.assert_close(loss, t_loss.detach(), rtol=1e-12, atol=1e-14)
    for g, f in zip(grads, factors):
        torch.testing.assert_close(g, f.grad, rtol=1e-10, atol=1e-12)


def test_full_tensor_matches_numpy_reconstruction():
    from implicit_reg.razin2020.cp_rank import cp_reconstruct

    facs = [np.random.default_rng(m).standard_normal((1, d, 4)) for m, d in enumerate((2, 3, 4, 2))]
    got = tc.cp_full_tensor([torch.from_numpy(f) for f in facs]).numpy()[0]
    np.testing.assert_allclose(got, cp_reconstruct([f[0] for f in facs]), rtol=1e-12)


# ---------------------------------------------------------------- optimizer and engine


def small_problem(n_obs: int = 40):
    d = tc.generate_tensor_data(order=3, rank=1, seed=0, mode_size=4)
    return d.target, tc.observed_indices(d, n_obs)


def test_init_factors_std_and_default_components():
    f = tc.init_factors((8, 8, 8, 8), 512, 1e-2, seed=3)
    assert [x.shape for x in f] == [(8, 512)] * 4 and f[0].dtype == np.float32
    assert np.std(np.concatenate([x.ravel() for x in f])) == pytest.approx(1e-2, rel=0.03)
    target, obs = small_problem()
    assert tc.CPCompletionBatch(target, obs, [1e-3], [0], device="cpu").num_components == 16


def test_two_steps_follow_group_rmsprop_formula():
    target, obs = small_problem()
    batch = tc.CPCompletionBatch(target, obs, [1e-2], [7], device="cpu")
    facs = [torch.from_numpy(f[0].copy()) for f in batch.factors_np]
    t_target = torch.from_numpy(target.reshape(-1)[obs])
    v = torch.tensor(0.0)
    for step in (1, 2):
        params = [f.clone().requires_grad_(True) for f in facs]
        full = torch.einsum("ir,jr,kr->ijk", *params).reshape(-1)
        torch.nn.functional.mse_loss(full[torch.from_numpy(obs)], t_target).backward()
        v = v * 0.99 + sum(0.01 * p.grad.pow(2).sum() for p in params)
        lr = 0.01 / ((v / (1 - 0.99**step)).sqrt() + 1e-6)
        facs = [p.detach() - lr * p.grad for p in params]
    batch.advance(2)
    for m, f in enumerate(facs):
        np.testing.assert_allclose(batch.factors_np[m][0], f.numpy(), rtol=2e-5, atol=1e-9)
    assert batch.square_avg[0] == pytest.approx(float(v), rel=1e-5)


def test_converges_with_stop_rule_and_logs_every_100():
    target, obs = small_problem()
    batch = tc.CPCompletionBatch(target, obs, [1e-2, 1e-3], [0, 1], device="cpu").run()
    for res in batch.results():
        assert res.status == "converged"
        assert res.final_iteration % 100 == 0
        np.testing.assert_array_equal(res.history["iteration"], np.arange(100, res.final_iteration + 1, 100))
        assert np.all(res.history["train_loss"][-3:] < 1e-6)
        assert not res.history["train_loss"][-4] < 1e-6
        assert res.final_train_loss == res.history["train_loss"][-1]
        assert res.reconstruction_error == pytest.approx(res.history["reconstruction_error"][-1], rel=1e-4)


def test_max_iters_and_independent_stops():
    target, obs = small_problem()
    batch = tc.CPCompletionBatch(target, obs, [1e-2, 1e-3], [0, 1], max_iters=150, device="cpu")
    batch.run()
    for res in batch.results():
        assert res.status == "max_iters" and res.final_iteration == 150
        np.testing.assert_array_equal(res.history["iteration"], [100, 150])


def test_batch_equals_solo_runs():
    target, obs = small_problem()
    both = tc.CPCompletionBatch(target, obs, [1e-2, 1e-3], [4, 5], device="cpu").run()
    for k, (std, seed) in enumerate([(1e-2, 4), (1e-3, 5)]):
        solo = tc.CPCompletionBatch(target, obs, [std], [seed], device="cpu").run()
        a, b = both.results()[k], solo.results()[0]
        assert a.final_iteration == b.final_iteration
        np.testing.assert_allclose(a.history["train_loss"], b.history["train_loss"], rtol=1e-4)


def test_divergence_is_reported():
    target, obs = small_problem()
    batch = tc.CPCompletionBatch(target, obs, [1e-2], [0], lr=1e30, device="cpu").run()
    res = batch.results()[0]
    assert res.status == "diverged"
    assert res.final_iteration < 100 and res.history["iteration"][-1] == res.final_iteration


def test_checkpoint_resume_is_identical(tmp_path):
    target, obs = small_problem()
    straight = tc.CPCompletionBatch(target, obs, [1e-2, 1e-3], [0, 1], device="cpu").run()

    part = tc.CPCompletionBatch(target, obs, [1e-2, 1e-3], [0, 1], device="cpu")
    part.advance(237)
    np.savez(tmp_path / "ckpt.npz", **part.get_state())
    with np.load(tmp_path / "ckpt.npz") as z:
        resumed = tc.CPCompletionBatch.from_state(dict(z), device="cpu")
    calls = []
    resumed.run(checkpoint_every=100, on_checkpoint=lambda b: calls.append(1))
    assert calls
    a, b = straight.get_state(), resumed.get_state()
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_load_rejects_non_permutation(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, target_tensor=np.ones((2, 2), np.float32), train_indices_order=np.array([0, 0, 1, 2]),
             target_cp_rank=np.int64(1))
    with pytest.raises(ValueError, match="permutation"):
        tc.load_tensor_data(path)


def test_resolve_device():
    assert tc.resolve_device("cpu").type == "cpu"
    assert tc.resolve_device(None).type == ("cuda" if torch.cuda.is_available() else "cpu")
