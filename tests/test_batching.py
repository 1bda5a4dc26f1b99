"""implicit_reg.arora2019.batching: how groups of runs become training jobs for the cores a run has."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from implicit_reg.arora2019 import batching
from implicit_reg.arora2019 import data as matrix_data
from implicit_reg.arora2019.initialization import initial_factors
from implicit_reg.arora2019.observations import build_problem
from implicit_reg.arora2019.plan import build_plan
from implicit_reg.arora2019.schedule import Schedule
from implicit_reg.arora2019.trainer import BatchTrainer
from implicit_reg.pipeline.config import load_schema, validate_config

ROOT = Path(__file__).resolve().parents[1]


def test_relative_cost_interpolates_in_log_size_and_is_flat_outside() -> None:
    curve = {1: 4.0, 4: 2.0, 16: 1.0}
    assert batching.relative_cost(curve, 1) == 4.0 and batching.relative_cost(curve, 16) == 1.0
    assert batching.relative_cost(curve, 2) == pytest.approx(3.0)
    assert batching.relative_cost(curve, 64) == 1.0


def test_even_chunks_keep_the_workstation_split() -> None:
    chunks = batching.even_chunks(list(range(96)), 2)
    assert [len(c) for c in chunks] == [48, 48] and sum(chunks, []) == list(range(96))


def test_chunks_by_iterations_put_long_runs_together_in_equal_groups() -> None:
    runs = list("abcdefgh")
    its = [10, 100, 11, 101, 12, 102, 13, 103]
    groups = batching.chunks_by_iterations(runs, 2, its)
    assert groups == [["a", "c", "e", "g"], ["b", "d", "f", "h"]]


def test_group_seconds_integrates_over_the_shrinking_batch() -> None:
    flat = {1: 1.0}
    # Two runs at 1 s per iteration each: both for 10 iterations, then one for 20 more.
    assert batching.group_seconds([10, 30], [1.0, 1.0], flat, 2) == pytest.approx(40.0)
    shared = {1: 2.0, 2: 1.0}  # alone, a run costs twice as much per iteration
    assert batching.group_seconds([10, 30], [1.0, 1.0], shared, 2) == pytest.approx(20 + 20 * 2)


def test_no_cores_means_even_chunks_of_at_most_max_batch() -> None:
    groups = {"g": list(range(70)), "h": list(range(5))}
    jobs = batching.split_groups(groups, {}, {}, {}, max_batch=64)
    assert [len(c) for c in jobs["g"]] == [35, 35] and jobs["h"] == [list(range(5))]


def test_cores_split_a_long_group_down_to_the_limit_and_leave_short_ones() -> None:
    its = {"long": [100.0] * 16, "short": [10.0] * 4}
    secs = {"long": [1.0] * 16, "short": [1.0] * 4}
    curves = {"long": batching.NO_SHARING, "short": batching.NO_SHARING}
    groups = {"long": list(range(16)), "short": list(range(4))}
    jobs = batching.split_groups(groups, its, secs, curves, max_batch=64, cores=4)
    assert jobs["short"] == [list(range(4))]
    # limit: (1600 + 40) / 4 = 410 s, so four jobs of four runs (400 s each)
    assert [len(j) for j in jobs["long"]] == [4, 4, 4, 4]
    assert sorted(sum(jobs["long"], [])) == list(range(16))
    # never below the longest indivisible job
    floor = batching.split_groups(groups, its, secs, curves, max_batch=64, cores=4, floor_seconds=1600)
    assert [len(j) for j in floor["long"]] == [16]


def test_a_split_that_only_multiplies_cpu_time_is_not_made() -> None:
    # A step costs the same for 1 run as for 16 (the shared operator): splitting gains nothing.
    flat_step = {1: 16.0, 16: 1.0}
    its = {"row": [1000.0] * 16}
    secs = {"row": [1.0] * 16}
    jobs = batching.split_groups({"row": list(range(16))}, its, secs, {"row": flat_step}, max_batch=64, cores=64)
    assert len(jobs["row"]) == 1


def test_threads_only_where_they_shorten_the_makespan() -> None:
    """A long single run on a large matrix gets the fewest threads that bring it within the rest."""
    movielens, small = 943 * 1682, 100 * 100
    groups = {"ml": ["ml-d3"], "rows": list(range(64))}
    its, secs = {"ml": [7200.0], "rows": [3600.0] * 64}, {"ml": [1.0], "rows": [1.0] * 64}
    entries = {"ml": movielens, "rows": small}
    def plan(cores, threads=8, task="movielens", **engine):
        return batching.plan_jobs(groups, {"cores": cores, "threads": threads, **engine},
                                  lambda key, runs: (its[key], secs[key]),
                                  lambda key: (task if key == "ml" else "completion", "gd", False, entries[key]))
    # 64 runs of 1 h on 64 cores: 2 h alone is the makespan; 3 threads get it within 1.1 h (2.19x)
    assert [j.threads for j in plan(64)["ml"]] == [3]
    assert [len(j.runs) for j in plan(64)["rows"]] == [1] * 64
    assert [j.threads for j in plan(64)["rows"]] == [1] * 64  # completion is not measured on threads
    # on 2 cores the CPU time decides: no thread, no split
    assert [j.threads for j in plan(2)["ml"]] == [1] and [len(j.runs) for j in plan(2)["rows"]] == [32, 32]
    assert [j.threads for j in plan(2, threads_min_seconds=0)["ml"]] == [8]
    assert [j.threads for j in plan(64, task="completion")["ml"]] == [1]
    entries["ml"] = small
    assert [j.threads for j in plan(64)["ml"]] == [1]
    assert [j.threads for j in plan(64, threads_min_entries=1000)["ml"]] == [3]


def test_a_shared_operator_group_takes_threads_before_it_splits_to_single_runs() -> None:
    """Threads cost a sensing group far less CPU time than cuts into runs that each read the operator."""
    groups = {"row": list(range(48)), "rest": list(range(200))}
    its = {"row": [4000.0] * 40 + [12000.0] * 8, "rest": [3600.0] * 200}
    secs = {"row": [0.3] * 48, "rest": [1.0] * 200}
    info = {"row": ("sensing", "grouprmsprop", True, 2000 * 100 * 100), "rest": ("completion", "gd", False, 10_000)}
    plan = batching.plan_jobs(groups, {"cores": 256, "threads": 8}, lambda key, runs: (its[key], secs[key]),
                              info.__getitem__)
    row = plan["row"]
    assert all(j.threads == row[0].threads for j in row) and row[0].threads > 1
    # never a job per run: each run alone would cost 15.6x its share of the whole row's step
    assert len(row) < 48
    alone_hours = max(its["row"]) * secs["row"][0] / 3600
    longest = max(batching.group_seconds([its["row"][i] for i in range(48) if i in set(j.runs)],
                                         [secs["row"][0]] * len(j.runs), batching.SHARED_OPERATOR_COST)
                  / batching.task_speedup("sensing", j.threads) for j in row) / 3600
    # the longest job is within the longest single run on one thread (3.3 h)
    assert longest <= alone_hours + 1e-9


def test_thread_speedup_is_the_measured_one() -> None:
    # a MovieLens step 1.795x faster on 2 threads than on 1 (bench/results.json, median of 7 rounds);
    # a sensing group at least 1.82x (m = 5000, one run; more runs and m = 2000 scaled better)
    assert batching.task_speedup("movielens", 2) == pytest.approx(1.795, rel=1e-3)
    assert batching.task_speedup("sensing", 2) == pytest.approx(1.823, rel=1e-3)
    assert batching.task_speedup("movielens", 1) == 1.0 and 4.4 < batching.task_speedup("movielens", 8) < 4.5
    assert batching.task_speedup("completion", 8) == 1.0


def _config(name: str, **engine) -> dict:
    config = yaml.safe_load((ROOT / "config" / name).read_text())
    config.setdefault("engine", {}).update(engine)
    return validate_config(config, load_schema(ROOT / "workflow" / "schemas" / "config.schema.yaml"))


def test_cores_change_job_names_but_not_run_keys() -> None:
    default = build_plan(_config("test.yaml"))
    cluster = build_plan(_config("test.yaml", cores=100000))
    assert cluster.run_keys == default.run_keys
    runs = lambda plan: sorted(r.run_id for b in plan.batches.values() for r in b.runs)  # noqa: E731
    assert runs(cluster) == runs(default)
    assert len(cluster.batches) > len(default.batches)
    for batch in cluster.batches.values():
        assert len({(r.dataset, r.schedule) for r in batch.runs}) == 1


def test_two_cores_plan_is_the_default_plan() -> None:
    assert sorted(build_plan(_config("test.yaml", cores=2)).batches) == sorted(build_plan(_config("test.yaml")).batches)


def test_cluster_plan_keeps_its_job_names_while_jobs_finish(tmp_path: Path) -> None:
    """A cluster job plans again when it starts: its batch must still be in the plan."""
    from implicit_reg.results.archive import ResultStore
    from implicit_reg.results.job_records import JobRecord, write_job_record

    config = _config("test.yaml", cores=8, threads=2, threads_min_entries=1000, threads_min_seconds=0)
    before = build_plan(config, ResultStore(tmp_path / "results"))
    done = sorted(before.batches)[::2]
    for name in done:  # these jobs finished: their tables and record are in results/
        batch = before.batches[name]
        out = tmp_path / "results" / "runs" / name
        out.mkdir(parents=True)
        (out / "runs.parquet").write_bytes(b"x")
        write_job_record(out / "provenance.json", JobRecord(kind="arora2019.deep_factorization", job=name,
                                                            keys=dict(batch.keys),
                                                            tables={"runs": "runs.parquet"}))
    after = build_plan(config, ResultStore(tmp_path / "results"))
    assert sorted(after.batches) == sorted(set(before.batches) - set(done))
    assert all(after.batches[n].threads == before.batches[n].threads for n in after.batches)


def _sensing(n: int, m: int):
    rng = np.random.default_rng(1)
    gt = matrix_data.low_rank_ground_truth(n, n, 2, rng)
    return build_problem("sensing", matrix_data.sensing_arrays(gt, m, rng), gt, "cpu", torch.float32)


def test_a_run_gives_the_same_numbers_in_any_group() -> None:
    """Bit for bit: the engine trains each run on its own factors; a group only stacks them."""
    problem = _sensing(20, 700)
    depths = [2, 3, 4, 2, 3, 4, 3, 3]
    init = [initial_factors(problem.shape, d, "gaussian", 1e-2, np.random.default_rng(s)) for s, d in enumerate(depths)]
    lrs = [1e-2, 3e-3] * 4
    sched = Schedule(max_iters=400, log_every=100, sync_every=50, train_loss_tol=1e-4)
    whole = BatchTrainer(problem, init, lrs, sched, dtype=torch.float32).run()
    for group in batching.chunks_by_iterations(list(range(8)), 2, [float(d) for d in depths]):
        part = BatchTrainer(problem, [init[i] for i in group], [lrs[i] for i in group], sched,
                            dtype=torch.float32).run()
        np.testing.assert_array_equal(whole.final_products[group], part.final_products)
        np.testing.assert_array_equal(whole.final["iterations"][group], part.final["iterations"])


def test_split_groups_on_two_threads_give_the_unsplit_single_thread_numbers() -> None:
    """What a cluster plan changes (groups, threads) changes no number: bit for bit."""
    problem = _sensing(20, 700)
    depths = [2, 3, 4, 2, 3, 4]
    init = [initial_factors(problem.shape, d, "gaussian", 1e-2, np.random.default_rng(s)) for s, d in enumerate(depths)]
    lrs = [1e-2, 3e-3] * 3
    sched = Schedule(max_iters=300, log_every=100, sync_every=50, train_loss_tol=1e-4)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        whole = BatchTrainer(problem, init, lrs, sched, dtype=torch.float32).run()
        torch.set_num_threads(2)
        for group in batching.chunks_by_iterations(list(range(6)), 3, [float(d) for d in depths]):
            part = BatchTrainer(problem, [init[i] for i in group], [lrs[i] for i in group], sched,
                                dtype=torch.float32).run()
            np.testing.assert_array_equal(whole.final_products[group], part.final_products)
            np.testing.assert_array_equal(whole.final["iterations"][group], part.final["iterations"])
    finally:
        torch.set_num_threads(before)


def test_threads_give_the_same_numbers() -> None:
    """A MovieLens-sized run (943 × 1682, sampled gradient path) at 1 and 2 threads, bit for bit."""
    rng = np.random.default_rng(1)
    rows, cols = 943, 1682
    idx = rng.choice(rows * cols, size=6_000, replace=False)
    obs = {"shape": np.array([rows, cols]), "train_rows": idx[:5_000] // cols, "train_cols": idx[:5_000] % cols,
           "train_values": rng.integers(1, 6, 5_000).astype(np.float32),
           "test_rows": idx[5_000:] // cols, "test_cols": idx[5_000:] % cols,
           "test_values": rng.integers(1, 6, 1_000).astype(np.float32)}
    problem = build_problem("movielens", obs, None, sampled_max_fraction=0.05)
    init = [initial_factors(problem.shape, 3, "identity", 1e-3, np.random.default_rng(0))]
    sched = Schedule(optimizer="gd", max_iters=8, train_loss_tol=-1.0, log_every=4, checkpoint_seconds=0)
    before = torch.get_num_threads()
    out = {}
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            out[threads] = BatchTrainer(problem, init, [0.1], sched).run().final_products
    finally:
        torch.set_num_threads(before)
    np.testing.assert_array_equal(out[1], out[2])
