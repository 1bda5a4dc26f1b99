"""Tests of CP tensor completion (Razin & Cohen Fig. 2): data, baseline, gradients, optimizer, engine."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from implicit_reg.razin2020 import cp_gradients as cg
from implicit_reg.razin2020 import tensor_completion as tc
from implicit_reg.razin2020 import tensor_data as td

DATA = Path(
    os.environ.get(
        "RAZIN2020_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "razin2020_data"
    )
)
ORDER3_RANK1 = DATA / "tc" / "tensor_rank_1_fro_1_order_3_dim_8.npz"
ORDER4_RANK1 = DATA / "tc" / "tensor_rank_1_fro_1_order_4_dim_8.npz"


# ---------------------------------------------------------------- data and baseline


def test_generated_data_is_unit_norm_and_seeded():
    d = td.generate_tensor_data(order=3, rank=2, seed=5, mode_size=8)
    assert d.target.shape == (8, 8, 8) and d.target.dtype == np.float32
    assert np.linalg.norm(d.target.astype(np.float64)) == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_array_equal(np.sort(d.permutation), np.arange(512))
    again = td.generate_tensor_data(order=3, rank=2, seed=5, mode_size=8)
    np.testing.assert_array_equal(d.target, again.target)
    np.testing.assert_array_equal(d.permutation, again.permutation)
    assert d.target_cp_rank == 2


def test_observed_indices_are_first_n_of_permutation():
    d = td.generate_tensor_data(order=3, rank=1, seed=0, mode_size=4)
    np.testing.assert_array_equal(td.observed_indices(d, 10), d.permutation[:10])
    with pytest.raises(ValueError):
        td.observed_indices(d, 0)


def test_linear_baseline_tensor_and_exact_error():
    d = td.generate_tensor_data(order=4, rank=1, seed=1, mode_size=5)
    obs = td.observed_indices(d, 200)
    lin = td.linear_baseline_tensor(d.target, obs)
    flat = lin.reshape(-1)
    np.testing.assert_array_equal(flat[obs], d.target.reshape(-1)[obs])
    assert np.count_nonzero(np.delete(flat, obs)) == 0
    seen = float(np.sum(d.target.reshape(-1)[obs].astype(np.float64) ** 2))
    expected = math.sqrt(1.0 - seen)
    assert td.linear_baseline_error(d.target, obs) == pytest.approx(expected, rel=1e-6)
    assert td.reconstruction_error(lin, d.target) == pytest.approx(expected, rel=1e-6)
    # Row-major linear indices: index 1 is entry (0, 0, 0, 1).
    one = td.linear_baseline_tensor(d.target, np.array([1]))
    assert one[0, 0, 0, 1] == d.target[0, 0, 0, 1] and np.count_nonzero(one) <= 1


@pytest.mark.skipif(not ORDER3_RANK1.exists(), reason="authors' data not available")
@pytest.mark.parametrize("n, published", [(50, 0.967), (100, 0.905), (511, 0.0766)])
def test_linear_error_on_authors_order3_data(n, published):
    d = td.load_tensor_data(ORDER3_RANK1)
    assert d.target.shape == (8, 8, 8) and d.target_cp_rank == 1
    assert td.linear_baseline_error(d.target, td.observed_indices(d, n)) == pytest.approx(published, rel=0.05)


@pytest.mark.skipif(not ORDER4_RANK1.exists(), reason="authors' data not available")
def test_linear_error_on_authors_order4_data_last_point():
    d = td.load_tensor_data(ORDER4_RANK1)
    err = td.linear_baseline_error(d.target, td.observed_indices(d, 4095))
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
    h = cg.mode_split(len(shape))
    d_left = int(np.prod(shape[:h]))
    factors = [torch.randn(batch, d, rank, dtype=torch.float64, requires_grad=True) for d in shape]

    loss, grads = cg.loss_and_gradients(
        [f.detach() for f in factors], target.reshape(d_left, -1), mask.reshape(d_left, -1), len(obs)
    )
    full = cg.cp_full_tensor(factors).reshape(batch, -1)
    t_loss = ((full[:, obs] - target.reshape(-1)[obs]) ** 2).mean(dim=1)
    t_loss.sum().backward()
    torch.testing.assert_close(loss, t_loss.detach(), rtol=1e-12, atol=1e-14)
    for g, f in zip(grads, factors):
        torch.testing.assert_close(g, f.grad, rtol=1e-10, atol=1e-12)


def test_full_tensor_matches_numpy_reconstruction():
    from implicit_reg.razin2020.cp_rank import cp_reconstruct

    facs = [np.random.default_rng(m).standard_normal((1, d, 4)) for m, d in enumerate((2, 3, 4, 2))]
    got = cg.cp_full_tensor([torch.from_numpy(f) for f in facs]).numpy()[0]
    np.testing.assert_allclose(got, cp_reconstruct([f[0] for f in facs]), rtol=1e-12)


# ---------------------------------------------------------------- optimizer and engine


def small_problem(n_obs: int = 40):
    d = td.generate_tensor_data(order=3, rank=1, seed=0, mode_size=4)
    return d.target, td.observed_indices(d, n_obs)


def test_init_factors_std_and_default_components():
    f = cg.init_factors((8, 8, 8, 8), 512, 1e-2, seed=3)
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
        td.load_tensor_data(path)


def test_resolve_device():
    assert tc.resolve_device("cpu").type == "cpu"
    assert tc.resolve_device(None).type == ("cuda" if torch.cuda.is_available() else "cpu")


# ---------------------------------------------------------------- bit-identity with the allocating step


def _old_khatri_rao(mats):
    out = mats[0]
    for m in mats[1:]:
        out = (out[:, :, None, :] * m[:, None, :, :]).reshape(out.shape[0], -1, out.shape[-1])
    return out


def _old_group_gradients(h, group):
    if len(group) == 1:
        return [h]
    k = len(group)
    h = h.reshape(h.shape[0], *[g.shape[1] for g in group], h.shape[-1])
    grads = []
    for j in range(k):
        prod = h
        for i in range(k):
            if i != j:
                view = [group[i].shape[0]] + [1] * k + [group[i].shape[-1]]
                view[1 + i] = group[i].shape[1]
                prod = prod * group[i].reshape(view)
        grads.append(prod.sum(dim=tuple(1 + i for i in range(k) if i != j)))
    return grads


def _old_loss_and_gradients(factors, target_mat, mask_mat, n_obs):
    h = cg.mode_split(len(factors))
    left, right = _old_khatri_rao(factors[:h]), _old_khatri_rao(factors[h:])
    resid = mask_mat * (torch.bmm(left, right.transpose(1, 2)) - target_mat)
    loss = resid.square().sum(dim=(1, 2)) / n_obs
    g = resid * (2.0 / n_obs)
    grads = _old_group_gradients(torch.bmm(g, right), factors[:h])
    grads += _old_group_gradients(torch.bmm(g.transpose(1, 2), left), factors[h:])
    return loss, grads


class AllocatingStepBatch(tc.CPCompletionBatch):
    """The engine with the step and loop it had before the workspace (a frozen copy, fresh tensors every step)."""

    def _step(self) -> None:
        loss, grads = _old_loss_and_gradients(self._factors, self._target_mat, self._mask_mat, self.observed.size)
        beta = self.beta
        v = self._v * beta
        for g in grads:
            v = v + (1.0 - beta) * g.square().sum(dim=(1, 2))
        self._v = v
        self._t = self._t + 1
        bias = 1.0 - torch.pow(torch.tensor(beta, dtype=torch.float64, device=self.device), self._t)
        step = self.lr / ((v / bias.to(v.dtype)).sqrt() + self.eps)
        self._factors = [f - step[:, None, None] * g for f, g in zip(self._factors, grads)]
        self._loss = loss
        bad = ~torch.isfinite(loss)
        self._first_bad = torch.where(bad & (self._first_bad < 0), self._t, self._first_bad)

    def advance(self, n_iters: int):
        with torch.no_grad():
            for _ in range(int(n_iters)):
                if self._active.size == 0:
                    break
                self._step()
                self.iteration[self._active] += 1
                it = self.iteration[self._active]
                if (it % self.check_every == 0).any() or (it >= self.max_iters).any():
                    self._check()
        self._store_active()
        return self


def assert_same_bits(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key, value in a.items():
        x, y = np.asarray(value), np.asarray(b[key])
        assert x.dtype == y.dtype and x.shape == y.shape, key
        assert x.tobytes() == y.tobytes(), f"{key} differs"


@pytest.mark.parametrize("order, n_obs, iters", [(3, 200, 400), (4, 1500, 250)])
def test_workspace_step_is_bit_identical_to_allocating_step_at_paper_size(order, n_obs, iters):
    # Mode size 8, R = 8^(N-1) (512 at order 4), both inits and several seeds stacked as a job does;
    # 250-400 iterations: checks at every 100, no run stops, so every step runs on the full batch.
    d = td.generate_tensor_data(order=order, rank=3, seed=order, mode_size=8)
    obs = td.observed_indices(d, n_obs)
    args = (d.target, obs, [1e-2, 1e-2, 1e-3, 1e-3], [0, 1, 2, 3])
    new = tc.CPCompletionBatch(*args, device="cpu")
    old = AllocatingStepBatch(*args, device="cpu")
    assert new.num_components == 8 ** (order - 1)
    new.advance(iters - 37)
    old.advance(iters - 37)
    assert_same_bits(old.get_state(), new.get_state())
    new.advance(37)
    old.advance(37)
    assert_same_bits(old.get_state(), new.get_state())
    assert np.all(new.history_len == iters // 100)


@pytest.mark.parametrize("order, mode_size, n_obs, kwargs", [
    (3, 4, 40, {}),                    # converges: runs stop at different checks and the batch shrinks
    (4, 4, 120, {"max_iters": 2550}),  # order-4 split (2 + 2 modes), stop or cap
    (5, 3, 150, {"max_iters": 700}),   # groups of 2 and 3 modes
    (3, 4, 40, {"lr": 1e30}),          # diverges
])
def test_whole_runs_are_bit_identical_to_allocating_step(order, mode_size, n_obs, kwargs):
    d = td.generate_tensor_data(order=order, rank=1, seed=1, mode_size=mode_size)
    obs = td.observed_indices(d, n_obs)
    args = (d.target, obs, [1e-2, 1e-2, 1e-3], [0, 1, 2])
    new = tc.CPCompletionBatch(*args, device="cpu", **kwargs)
    old = AllocatingStepBatch(*args, device="cpu", **kwargs)
    new.run(checkpoint_every=250, on_checkpoint=lambda b: None)
    old.run()
    assert_same_bits(old.get_state(), new.get_state())
    assert np.array_equal(old.model_tensors().view(np.uint32), new.model_tensors().view(np.uint32))


def test_workspace_gradients_equal_fresh_ones_and_are_reused():
    torch.manual_seed(0)
    shape, rank, batch = (3, 2, 4, 3), 5, 2
    factors = [torch.randn(batch, d, rank) for d in shape]
    target = torch.randn(6, 12)
    mask = (torch.rand(6, 12) < 0.5).float()
    ws = cg.StepWorkspace(batch, shape, rank, torch.float32, torch.device("cpu"))
    loss, grads = cg.loss_and_gradients(factors, target, mask, 30, ws)
    ref_loss, ref_grads = _old_loss_and_gradients(factors, target, mask, 30)
    assert torch.equal(loss, ref_loss) and all(torch.equal(a, b) for a, b in zip(grads, ref_grads))
    again, grads2 = cg.loss_and_gradients(factors, target, mask, 30, ws)
    assert again.data_ptr() == loss.data_ptr() and all(a.data_ptr() == b.data_ptr() for a, b in zip(grads, grads2))
