"""The training cost model shared by the planner and the makespan bench (arora2019.job_costs)."""

from __future__ import annotations

import pytest

from implicit_reg.arora2019 import batching, job_costs


def _entries() -> tuple[dict, dict]:
    entries = {"e1": {"kind": job_costs.DEEP_FACTORIZATION, "cpu_seconds": 300.0, "keys": {"a": "ka", "b": "kb"}},
               "e2": {"kind": "arora2019.min_nuclear_norm", "cpu_seconds": 50.0, "keys": {"x": "kx"}}}
    rows = [{"run_id": "a", "task": "completion", "optimizer": "gd", "n_obs": 2000, "depth": 3, "iterations": 100},
            {"run_id": "b", "task": "completion", "optimizer": "gd", "n_obs": 2000, "depth": 3, "iterations": 200}]
    return entries, {"e1": rows}


def test_an_archived_jobs_runs_give_back_its_measured_time() -> None:
    entries, tables = _entries()
    measured = job_costs.archived_runs(entries, tables)
    assert measured.iterations == {"ka": 100.0, "a": 100.0, "kb": 200.0, "b": 200.0}
    # gd: no sharing, so 300 s over 300 run-iterations
    assert measured.seconds["ka"] == pytest.approx(1.0) and measured.by_kind[("completion", "gd", 2000, 3)] == 1.0
    curve = job_costs.group_curve("completion", "gd")
    assert job_costs.job_seconds([100, 200], [measured.seconds["ka"]] * 2, curve, "completion") == pytest.approx(300.0)
    # a MovieLens job on 2 threads: the measured 2-thread speed-up
    movielens = job_costs.job_seconds([100, 200], [1.0] * 2, curve, "movielens", threads=2)
    assert movielens == pytest.approx(300.0 / 1.795, rel=1e-3)


def test_shared_operator_jobs_are_shared_out_along_the_measured_curve() -> None:
    curve = job_costs.group_curve("sensing", "grouprmsprop")
    alone = job_costs.entry_run_seconds([10.0] * 48, 480.0, curve)
    # 48 runs together cost 1/15.6 per run of what one alone does
    assert alone == pytest.approx(480.0 / (10 * 48 / 15.6))
    assert batching.group_seconds([10.0] * 48, [alone] * 48, curve) == pytest.approx(480.0)


def test_a_partial_table_gives_iterations_but_no_time() -> None:
    entries, tables = _entries()
    measured = job_costs.archived_runs(entries, {"e1": tables["e1"][:1]})
    assert measured.iterations == {"ka": 100.0, "a": 100.0} and measured.seconds == {}


def test_run_costs_prefer_the_archive_then_the_kind_then_the_estimate() -> None:
    from implicit_reg.arora2019.plan import build_plan
    from test_batching import _config

    plan = build_plan(_config("test.yaml"))
    runs = next(b.runs for b in plan.batches.values() if b.dataset.task == "completion" and len(b.runs) > 2)
    keys = plan.run_keys
    first, second = runs[0], runs[1]
    measured = job_costs.ArchivedRuns({keys[first.run_id]: 500.0}, {second.run_id: 2.0},
                                      {job_costs.run_kind(first): 3.0})
    its, secs, flags = job_costs.run_costs(runs, keys, measured, lambda rs: ([7.0] * len(rs), [0.5] * len(rs)))
    # first: iterations by key, time by its kind's median; second: time by run id, iterations estimated
    assert its[:2] == [500.0, 7.0] and secs[:2] == [3.0, 2.0]
    assert flags[:2] == [True, False]
    assert job_costs.read_archived_runs(None) == job_costs.ArchivedRuns()
