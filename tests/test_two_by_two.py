"""Tests of the batched 2×2 deep matrix factorization engine (Razin & Cohen Fig. 1)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from implicit_reg.razin2020 import loss_markers as lm
from implicit_reg.razin2020 import two_by_two as tt
from implicit_reg.razin2020 import two_by_two_kernel as tk
from implicit_reg.razin2020 import two_by_two_problem as tp

DATA = Path(
    os.environ.get(
        "RAZIN2020_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "razin2020_data"
    )
)
MAIN_JSON = DATA / "dmf" / "completion_2x2_w_1_1_0.json"

# The Figure 1 problem [[*, 1], [1, 0]], built without the data files.
MAIN = tp.make_completion_problem({(0, 1): 1.0, (1, 0): 1.0, (1, 1): 0.0})


def fig1_like_configs() -> list[tp.DMFRunConfig]:
    return [
        tp.DMFRunConfig(2, 6e-3, 1e-5, "gaussian", 1, 11),
        tp.DMFRunConfig(2, 3e-3, 1e-6, "balanced", 1, 12),
        tp.DMFRunConfig(3, 6e-3, 1e-5, "gaussian", 1, 13),
        tp.DMFRunConfig(3, 3e-3, 1e-6, "balanced", 1, 14),
        tp.DMFRunConfig(4, 3e-3, 1e-3, "gaussian", 1, 15),
        tp.DMFRunConfig(4, 1.5e-3, 1e-4, "balanced", 1, 16),
    ]


# ---------------------------------------------------------------- problem


@pytest.mark.skipif(not MAIN_JSON.exists(), reason="authors' data not available")
def test_load_authors_problem():
    p = tp.load_completion_problem(MAIN_JSON)
    assert p.shape == (2, 2)
    assert list(zip(p.rows.tolist(), p.cols.tolist())) == [(0, 1), (1, 0), (1, 1)]
    np.testing.assert_array_equal(p.values, [1.0, 1.0, 0.0])
    assert p.unobserved() == [(0, 0)]
    np.testing.assert_array_equal(p.mask(), MAIN.mask())
    np.testing.assert_array_equal(p.observed_matrix(), MAIN.observed_matrix())


def test_load_rejects_non_completion(tmp_path):
    path = tmp_path / "sensing.json"
    path.write_text('{"A": [[[1.0, 1.0], [0.0, 0.0]]], "y": [1.0], "target_matrix": [[1,0],[0,0]]}')
    with pytest.raises(ValueError, match="not one-hot"):
        tp.load_completion_problem(path)


def test_initial_loss_is_one_for_main_problem():
    # ½ (1² + 1² + 0²) = 1 for a near-zero product matrix (spec §7).
    batch = tt.init_batch(MAIN, [tp.DMFRunConfig(3, 1e-3, 1e-6, seed=0)], log_every=1)
    tt.advance(batch, 1)
    assert batch.history[0, 0, 1] == pytest.approx(1.0, abs=1e-5)


# ---------------------------------------------------------------- init


@pytest.mark.parametrize(
    "depth, scale, expected",
    [(2, 1e-5, 2.66e-3), (2, 1e-6, 8.41e-4), (3, 1e-5, 1.71e-2), (3, 1e-6, 7.94e-3),
     (4, 1e-3, 1.37e-1), (4, 1e-4, 7.71e-2)],
)
def test_per_layer_std_table(depth, scale, expected):
    assert tp.per_layer_std(scale, depth) == pytest.approx(expected, rel=5e-3)


@pytest.mark.parametrize("kind", ["gaussian", "balanced"])
@pytest.mark.parametrize("depth", [2, 3, 4])
def test_product_std_is_init_product_std(kind, depth):
    rng = np.random.default_rng(0)
    init = tp.init_gaussian if kind == "gaussian" else tp.init_balanced
    prods = np.stack(
        [tp.product_matrix(init(depth, 1e-3, rng, det_sign=0, dtype=np.float64)) for _ in range(4000)]
    )
    # 16000 entries; the sample std of a Gaussian is within ~2% here, a product of
    # Gaussians has heavier tails, hence 8%.
    assert prods.std() == pytest.approx(1e-3, rel=0.08)
    assert abs(prods.mean()) < 1e-4


@pytest.mark.parametrize("kind", ["gaussian", "balanced"])
@pytest.mark.parametrize("sign", [1, -1])
def test_det_sign_is_enforced(kind, sign):
    for seed in range(40):
        layers = tp.init_layers(tp.DMFRunConfig(3, 1e-3, 1e-5, kind, sign, seed))
        det = np.linalg.det(tp.product_matrix(layers.astype(np.float64)))
        assert np.sign(det) == sign


def test_det_sign_zero_gives_both_signs():
    signs = {
        np.sign(np.linalg.det(tp.product_matrix(tp.init_layers(tp.DMFRunConfig(2, 1e-3, 1e-3, det_sign=0, seed=s)).astype(float))))
        for s in range(30)
    }
    assert signs == {-1.0, 1.0}


@pytest.mark.parametrize("depth", [2, 3, 4, 5])
def test_balanced_init_is_balanced(depth):
    layers = tp.init_balanced(depth, 1e-2, np.random.default_rng(depth), dtype=np.float64)
    for j in range(depth - 1):
        np.testing.assert_allclose(
            layers[j].T @ layers[j], layers[j + 1] @ layers[j + 1].T, rtol=1e-10, atol=1e-16
        )


def test_init_is_seeded_and_identity_exact():
    cfg = tp.DMFRunConfig(4, 1e-3, 1e-4, "gaussian", 1, 123)
    np.testing.assert_array_equal(tp.init_layers(cfg), tp.init_layers(cfg))
    assert not np.array_equal(tp.init_layers(cfg), tp.init_layers(tp.DMFRunConfig(4, 1e-3, 1e-4, seed=124)))
    ident = tp.init_layers(tp.DMFRunConfig(3, 1e-3, 0.5, "identity", 1, 0))
    np.testing.assert_array_equal(ident, np.broadcast_to(0.5 * np.eye(2), (3, 2, 2)).astype(np.float32))


# ---------------------------------------------------------------- gradients


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
def test_gradients_match_autograd(depth):
    rng = np.random.default_rng(depth)
    layers = rng.standard_normal((depth, 2, 2))
    mask = MAIN.mask()
    target = MAIN.observed_matrix() + rng.standard_normal((2, 2)) * 0.1 * mask
    loss, grads = tk.loss_and_gradients(layers, mask, target)

    w = [torch.tensor(layers[j], requires_grad=True) for j in range(depth)]
    prod = w[0]
    for j in range(1, depth):
        prod = prod @ w[j]
    t_loss = 0.5 * ((torch.tensor(mask) * (prod - torch.tensor(target))) ** 2).sum()
    t_loss.backward()
    assert loss == pytest.approx(t_loss.item(), rel=1e-12)
    for j in range(depth):
        np.testing.assert_allclose(grads[j], w[j].grad.numpy(), rtol=1e-10, atol=1e-14)


def test_reference_step_is_gradient_step():
    layers = np.random.default_rng(0).standard_normal((3, 2, 2))
    new, loss = tk.reference_step(layers, 0.01, MAIN.mask(), MAIN.observed_matrix())
    ref_loss, grads = tk.loss_and_gradients(layers, MAIN.mask(), MAIN.observed_matrix())
    np.testing.assert_allclose(new, layers - 0.01 * grads, rtol=1e-12)
    assert loss == pytest.approx(ref_loss, rel=1e-12)


# ---------------------------------------------------------------- fast path


def exact_product(layers: np.ndarray) -> np.ndarray:
    """Product with the kernel's accumulation order (numpy matmul may use FMA)."""
    p = np.eye(layers.shape[-1], dtype=layers.dtype)
    for w in layers:
        p = tk._mm_ref(p, w)
    return p


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernel_matches_reference_step_by_step(dtype):
    configs = fig1_like_configs()
    batch = tt.init_batch(MAIN, configs, dtype=dtype, log_every=1, max_iters=10**6)
    layers = [tp.init_layers(c, dtype=dtype) for c in configs]
    for step in range(300):
        tt.advance(batch, 1)
        for b, c in enumerate(configs):
            layers[b], loss = tk.reference_step(layers[b], c.lr, MAIN.mask(), MAIN.observed_matrix())
            np.testing.assert_allclose(batch.layers[b, : c.depth], layers[b], rtol=1e-6, atol=0)
            assert batch.history[b, step, 1] == pytest.approx(loss, rel=1e-6, abs=0)
            np.testing.assert_array_equal(batch.history[b, step, 2:], exact_product(layers[b]).ravel())
    # Same arithmetic in the same order: in practice bit-identical.
    for b, c in enumerate(configs):
        np.testing.assert_array_equal(batch.layers[b, : c.depth], layers[b])


def test_python_backend_equals_numba_backend():
    configs = fig1_like_configs()[:3]
    fast = tt.init_batch(MAIN, configs, log_every=10, max_iters=150)
    slow = tt.init_batch(MAIN, configs, log_every=10, max_iters=150)
    tt.advance(fast, 200, backend="numba")
    tt.advance(slow, 200, backend="python")
    for key, val in tt.get_state(fast).items():
        np.testing.assert_array_equal(val, tt.get_state(slow)[key], err_msg=key)


def test_chunking_does_not_change_results():
    configs = fig1_like_configs()
    one = tt.advance(tt.init_batch(MAIN, configs), 5000)
    many = tt.init_batch(MAIN, configs)
    for n in (1, 49, 50, 51, 1000, 3849):
        tt.advance(many, n)
    for key, val in tt.get_state(one).items():
        np.testing.assert_array_equal(val, tt.get_state(many)[key], err_msg=key)


# ---------------------------------------------------------------- stop rule


def exact_solution_config() -> tt.DMFBatch:
    batch = tt.init_batch(MAIN, [tp.DMFRunConfig(1, 1e-2, 1.0, "identity", 0, 0)])
    batch.layers[0, 0] = np.array([[5.0, 1.0], [1.0, 0.0]], dtype=np.float32)  # loss exactly 0
    return batch


def test_converges_after_patience_plus_one_logs_below_tol():
    batch = exact_solution_config()
    tt.run_batch(batch)
    res = tt.run_results(batch)[0]
    assert res.status == "converged"
    assert res.final_iteration == (tt.DEFAULT_PATIENCE + 1) * tt.DEFAULT_LOG_EVERY == 550
    assert len(res.history["loss"]) == 11
    np.testing.assert_array_equal(res.history["iteration"], np.arange(50, 551, 50))
    assert res.history["p11"][-1] == 5.0  # the unobserved entry gets no gradient


def test_below_tol_counter_resets():
    batch = exact_solution_config()
    tt.advance(batch, 500)  # 10 logs below tol
    batch.layers[0, 0, 1, 1] = 1.0  # loss 0.5 at the next log
    tt.advance(batch, 50)
    assert batch.below_tol[0] == 0 and batch.status[0] == tk.RUNNING
    batch.layers[0, 0, 1, 1] = 0.0
    tt.advance(batch, 10_000)
    assert batch.status[0] == tk.CONVERGED and batch.iteration[0] == 550 + 550


def test_max_iters_status_and_final_row():
    batch = tt.init_batch(MAIN, [tp.DMFRunConfig(3, 3e-3, 1e-6, seed=1)], max_iters=120)
    tt.run_batch(batch)
    res = tt.run_results(batch)[0]
    assert res.status == "max_iters" and res.final_iteration == 120
    np.testing.assert_array_equal(res.history["iteration"], [50, 100, 120])


def test_divergence_is_detected():
    batch = tt.init_batch(MAIN, [tp.DMFRunConfig(3, 10.0, 1.0, seed=3)])
    tt.run_batch(batch)
    res = tt.run_results(batch)[0]
    assert res.status == "diverged"
    assert res.final_iteration < 200
    assert res.history["iteration"][-1] == res.final_iteration
    assert not np.isfinite(res.history["loss"][-1])


def test_runs_stop_independently_and_match_solo_runs():
    fast_cfg = tp.DMFRunConfig(2, 6e-3, 1e-5, "gaussian", 1, 5)
    slow_cfg = tp.DMFRunConfig(3, 3e-3, 1e-6, "balanced", 1, 6)
    batch = tt.init_batch(MAIN, [fast_cfg, slow_cfg], max_iters=60_000)
    tt.run_batch(batch)
    solo = [tt.run_batch(tt.init_batch(MAIN, [c], max_iters=60_000)) for c in (fast_cfg, slow_cfg)]
    res = tt.run_results(batch)
    assert res[0].status == "converged" and res[1].status == "max_iters"
    assert res[0].final_iteration < 60_000 == res[1].final_iteration
    for b in range(2):
        solo_res = tt.run_results(solo[b])[0]
        assert solo_res.final_iteration == res[b].final_iteration
        for key in res[b].history:
            np.testing.assert_array_equal(solo_res.history[key], res[b].history[key])


def test_per_run_problems():
    eps = tp.make_completion_problem({(0, 1): -2.0, (1, 0): 0.5, (1, 1): 0.1})
    batch = tt.init_batch([MAIN, eps], [tp.DMFRunConfig(2, 1e-2, 1e-6, seed=0)] * 2, log_every=1)
    tt.advance(batch, 1)
    np.testing.assert_array_equal(batch.target[1], np.float32([[0, -2], [0.5, 0.1]]))
    # ½ (4 + 0.25 + 0.01) ≈ 2.13 for a near-zero product.
    assert batch.history[1, 0, 1] == pytest.approx(2.13, abs=1e-3)


# ---------------------------------------------------------------- checkpoints


def test_checkpoint_resume_is_identical(tmp_path):
    configs = fig1_like_configs()
    straight = tt.init_batch(MAIN, configs, max_iters=30_000)
    tt.run_batch(straight)

    saved = []
    resumed = tt.init_batch(MAIN, configs, max_iters=30_000)
    tt.advance(resumed, 7_321)
    np.savez(tmp_path / "ckpt.npz", **tt.get_state(resumed))
    del resumed
    with np.load(tmp_path / "ckpt.npz") as z:
        resumed = tt.restore_state(dict(z))
    tt.run_batch(resumed, checkpoint_every=5_000, on_checkpoint=lambda b: saved.append(int(b.iteration.max())))
    assert saved  # the callback ran
    a, b = tt.get_state(straight), tt.get_state(resumed)
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


# ---------------------------------------------------------------- helpers


def test_marker_helpers():
    loss = np.array([1.0, 0.2, 0.12, 0.05, 0.012, 1e-3, 2e-4, 1.2e-4, 9e-5, 8e-5])
    p11 = -np.arange(len(loss), dtype=float)
    assert [lm.first_below(loss, t) for t in lm.MARKER_LOSSES] == [2, 4, 5, 7]
    assert lm.first_below(loss, 1e-9) == -1
    np.testing.assert_array_equal(lm.unobserved_at_markers(loss, p11), [2.0, 4.0, 5.0, 7.0])
    assert lm.curve_cut(loss) == 9
    assert lm.curve_cut(loss[:5]) == 5
    assert np.isnan(lm.unobserved_at_markers(loss[:3], p11[:3])[1])
    # Authors' rule: one marker per row, so a jump across two thresholds
    # puts the second marker on the next row below its threshold.
    jump = np.array([1.0, 0.01, 0.009, 1e-3, 1e-5])
    assert [lm.first_below(jump, t) for t in lm.MARKER_LOSSES] == [1, 1, 3, 4]
    assert lm.marker_rows(jump) == [1, 2, 3, 4]


def test_history_products():
    hist = {"iteration": np.array([50]), "loss": np.array([0.1]), "p11": np.array([1.0]),
            "p12": np.array([2.0]), "p21": np.array([3.0]), "p22": np.array([4.0])}
    np.testing.assert_array_equal(tt.history_products(hist)[0], [[1, 2], [3, 4]])
