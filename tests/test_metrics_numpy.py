"""The numpy effective rank (core.metrics_numpy) against the torch one (core.metrics) and its conventions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from implicit_reg.core import metrics, metrics_numpy


def test_numpy_and_torch_effective_rank_agree() -> None:
    rng = np.random.default_rng(0)
    sv = np.sort(np.abs(rng.standard_normal((50, 7))), axis=-1)[:, ::-1].copy()
    sv[:5, -3:] = 0.0  # rank-deficient matrices: zero singular values contribute nothing
    torch_erank = metrics.effective_rank_from_singular_values(torch.from_numpy(sv)).numpy()
    np.testing.assert_allclose(metrics_numpy.effective_rank(sv), torch_erank, rtol=1e-13)
    np.testing.assert_allclose([metrics_numpy.effective_rank(s) for s in sv], torch_erank, rtol=1e-13)


def test_effective_rank_conventions() -> None:
    assert metrics_numpy.effective_rank(np.array([1.0, 1.0]), log_guard=None) == 2.0
    assert metrics_numpy.effective_rank(np.array([3.0, 0.0]), log_guard=None) == 1.0
    # the authors' guard changes the value by about 1e-10, no more
    sv = np.array([2.0, 1.0, 0.5])
    exact, guarded = metrics_numpy.effective_rank(sv, log_guard=None), metrics_numpy.effective_rank(sv)
    assert exact != guarded and guarded == pytest.approx(exact, rel=1e-9)
    batch = metrics_numpy.effective_rank(np.array([[1.0, 1.0], [0.0, 0.0], [np.inf, 1.0]]), log_guard=None)
    assert batch[0] == 2.0 and math.isnan(batch[1]) and math.isnan(batch[2])


def test_singular_values_and_nuclear_norm() -> None:
    m = np.array([[3.0, 0.0], [0.0, -4.0]])
    np.testing.assert_array_equal(metrics_numpy.singular_values(m), [4.0, 3.0])
    assert metrics_numpy.nuclear_norm(m) == 7.0
    assert metrics_numpy.singular_values(np.stack([m, 2 * m])).shape == (2, 2)
