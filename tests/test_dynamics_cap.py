"""Tests for implicit_reg.arora2019.dynamics: what a run stopped at its step cap had reached."""

from __future__ import annotations

import numpy as np
import pandas as pd

from implicit_reg.arora2019.dynamics import (
    cap_evidence,
    cap_note,
    cap_sentence,
    minimum_state,
)
from implicit_reg.core.metrics_numpy import half_rise_step


def _run(run_id: str, depth: int, steps: np.ndarray, jump: float, mse_min_at: float, status: str = "max_iters"):
    sv1 = 3000.0 / (1.0 + np.exp(-(steps - jump) / 500.0))
    sv2 = 30.0 / (1.0 + np.exp(-(steps - jump * 1.5) / 500.0))
    mse = 1.4 + 1e-9 * (steps - mse_min_at) ** 2
    traj = pd.DataFrame({"run_id": run_id, "iteration": steps, "sv_1": sv1, "sv_2": sv2, "test_mse": mse})
    run = {"run_id": run_id, "task": "movielens", "depth": depth, "iterations": int(steps[-1]), "status": status}
    return run, traj


def test_half_rise_step_is_the_jump_midpoint() -> None:
    steps = np.arange(0, 20000, 100.0)
    values = 50.0 / (1.0 + np.exp(-(steps - 8000.0) / 300.0))
    assert half_rise_step(steps, values) == 8000.0
    assert np.isnan(half_rise_step(steps[:0], values[:0]))


def test_capped_runs_report_minimum_jumps_and_flatness() -> None:
    steps = np.arange(0, 50001, 100.0)
    r2, t2 = _run("a", 2, steps, jump=7000.0, mse_min_at=26000.0)
    r3, t3 = _run("b", 3, steps, jump=8000.0, mse_min_at=50000.0)  # still falling at the cap
    r1, t1 = _run("c", 1, steps, jump=9000.0, mse_min_at=1000.0, status="converged")
    ev = cap_evidence(pd.DataFrame([r2, r3, r1]), pd.concat([t2, t3, t1])).set_index("run_id")
    assert list(ev.index) == ["a", "b"]  # the converged run is not capped
    assert ev.loc["a", "min_test_mse_step"] == 26000.0 and ev.loc["a", "min_test_mse_inside"]
    assert ev.loc["b", "min_test_mse_step"] == 50000.0 and not ev.loc["b", "min_test_mse_inside"]
    assert ev.loc["a", "last_jump_step"] == 10500.0  # sv_2 jumps at 1.5 x 7000
    assert ev.loc["a", "sv_tail_change"] < 1e-6  # flat over the last fifth
    text = cap_sentence(ev.reset_index(), {"movielens": "ML-100K"})
    assert text.startswith("ML-100K depth 2, 3 stopped at the step cap (50000, 50000)")
    assert "minimum test MSE at step 26000 (passed), 50000 (still falling)" in text
    assert "last singular-value jump at step 10500, 12000" in text


def test_a_rising_singular_value_shows_in_the_tail_change() -> None:
    steps = np.arange(0, 50001, 100.0)
    run, traj = _run("a", 2, steps, jump=45000.0, mse_min_at=20000.0)  # jump near the cap
    ev = cap_evidence(pd.DataFrame([run]), traj)
    assert ev.loc[0, "sv_tail_change"] > 0.5
    assert cap_evidence(pd.DataFrame([{**run, "status": "converged"}]), traj).empty
    assert cap_sentence(ev.iloc[:0]) == ""


def test_cap_note_reads_only_the_identity_init_runs() -> None:
    steps = np.arange(0, 50001, 100.0)
    r2, t2 = _run("a", 2, steps, jump=7000.0, mse_min_at=26000.0)
    r3, t3 = _run("b", 3, steps, jump=8000.0, mse_min_at=30000.0)
    runs = pd.DataFrame([{**r2, "init": "identity"}, {**r3, "init": "gaussian"}])
    note = cap_note(runs, pd.concat([t2, t3]))
    assert note.startswith("ML-100K depth 2 stopped at the step cap (50000)")
    assert cap_note(runs.assign(init="gaussian"), pd.concat([t2, t3])) == ""


def test_a_flat_test_mse_curve_is_called_flat_not_still_falling() -> None:
    steps = np.arange(0, 50001, 100.0)
    run, traj = _run("a", 1, steps, jump=7000.0, mse_min_at=0.0)
    traj["test_mse"] = 13.728  # a depth-1 prediction that stays at zero
    ev = cap_evidence(pd.DataFrame([run]), traj)
    assert ev.loc[0, "min_test_mse_state"] == "flat" and not ev.loc[0, "min_test_mse_inside"]
    assert "minimum test MSE at step 0 (flat)" in cap_sentence(ev)
    assert minimum_state(np.array([3.0, 2.0, 1.0])) == "still falling"
    assert minimum_state(np.array([3.0, 1.0, 2.0])) == "passed"
    assert minimum_state(np.array([1.0, np.nan, 1.0 + 1e-8])) == "flat"
