"""The public Python API (implicit_reg.api): the README's example runs, the tables have the pipeline's columns."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import implicit_reg.api as api
from implicit_reg.arora2019 import batch_job
from implicit_reg.arora2019 import tables as arora_tables
from implicit_reg.razin2020 import tables as razin_tables

ROOT = Path(__file__).resolve().parents[1]
sys_path_reference = ROOT / "tests" / "data" / "test_preset_reference.json"


def readme_example() -> str:
    """The first python block of the README's "Python API" section."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert blocks, "the README's Python API section has no python block"
    return blocks[0]


def pipeline_columns(table: str) -> list[str]:
    """Columns of a test-preset table as the pipeline writes it (reference, renamed as the redesign did)."""
    from preset_reference import COLUMN_RENAMES, VOLATILE

    reference = json.loads(sys_path_reference.read_text())["tables"]
    columns = list(reference[table]["order"])
    for pattern, old, new in COLUMN_RENAMES:
        if re.search(pattern, table):
            columns = [new if c == old else c for c in columns]
    assert not any(VOLATILE.search(c) for c in columns)
    return columns


def unvolatile(df: pd.DataFrame) -> list[str]:
    from preset_reference import VOLATILE

    return [c for c in df.columns if not VOLATILE.search(c)]


def test_readme_example_runs_and_says_what_it_prints():
    code = readme_example()
    assert len(code.strip().splitlines()) <= 15
    scope: dict = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), scope)
    runs = scope["runs"].set_index("depth")
    assert "effective_rank" in out.getvalue()
    assert list(runs.index) == [1, 2, 3]
    assert set(runs["status"]) == {"converged"}
    # what the example's closing comment says
    assert runs.loc[1, "effective_rank"] > 15
    assert runs.loc[3, "effective_rank"] < 2.5
    assert runs.loc[3, "recon_error"] < runs.loc[2, "recon_error"] < runs.loc[1, "recon_error"]
    assert list(scope["runs"].columns) == arora_tables.KEY_COLUMNS + arora_tables.VALUE_COLUMNS


def test_api_exports_documented_functions():
    assert sorted(api.__all__) == sorted(set(api.__all__))
    for name in api.__all__:
        obj = getattr(api, name)
        assert obj.__doc__, name
        if callable(obj) and name != "Tables":
            assert "Parameters" in obj.__doc__ and "Returns" in obj.__doc__, name


def test_deep_factorization_columns_equal_the_pipelines():
    w = api.low_rank_matrix(12, rank=2, seed=3)
    runs, traj = api.fit_deep_factorization(w, api.sample_entries(12, 60, seed=4), depth=[2, 3],
                                            init_scale=[1e-2, 1e-3], seeds=2, max_iters=60, log_every=20)
    assert unvolatile(runs) == pipeline_columns("results/arora2019_fig1/runs.parquet")
    assert unvolatile(traj) == pipeline_columns("results/arora2019_fig1/trajectories.parquet")
    assert len(runs) == 2 * 2 * 2 and set(runs["seed"]) == {0, 1}
    assert set(runs["status"]) == {"max_iters"} and set(runs["iterations"]) == {60}
    # logged every 20 steps and at the stopping step, before that step's update
    assert sorted(traj["iteration"].unique()) == [0, 20, 40, 60]
    keys = list(zip(runs["depth"], runs["init_scale"], runs["seed"]))
    assert keys == sorted(keys)  # the pipeline's figure order


def test_sensing_columns_and_labels():
    w = api.low_rank_matrix(6, rank=1, seed=0)
    a = api.gaussian_measurements(6, 30, seed=1)
    runs, traj = api.fit_deep_factorization(w, measurements=a, depth=[1, 2], optimizer="gd", lr=0.05,
                                            max_iters=30, log_every=10)
    assert unvolatile(runs) == pipeline_columns("results/arora2019_fig5/runs.parquet")
    assert set(runs["task"]) == {"sensing"} and set(runs["n_obs"]) == {30}
    assert set(runs["rank"]) == {1}


def test_same_numbers_as_the_job_function_the_pipeline_calls():
    """The API adds no arithmetic: its run equals train_batch on the same spec."""
    import torch

    from implicit_reg.arora2019.observations import build_problem

    w = api.low_rank_matrix(10, rank=1, seed=5)
    idx = api.sample_entries(10, 50, seed=6)
    runs, _ = api.fit_deep_factorization(w, idx, depth=2, max_iters=40, log_every=20, seed=9)
    problem = build_problem("completion", {"indices": idx, "labels": w.reshape(-1)[idx]}, w, "cpu",
                            torch.float32, None, 0.05)
    from implicit_reg.core.seeding import derive_seed

    spec = {"task": "completion", "rank": 1, "n_obs": 50, "depth": 2,
            "schedule": {"optimizer": "grouprmsprop", "max_iters": 40, "log_every": 20, "train_loss_tol": 1e-6,
                         "n_singular_values": 10, "log_alignment": False},
            "runs": [{"run_id": "r", "init": "gaussian", "init_scale": 1e-3, "lr": 1e-3, "seed": 0,
                      "init_seed": derive_seed(9, "init", "completion", 2, "gaussian", 1e-3, 0)}]}
    direct = batch_job.train_batch(problem, spec, batch_job.ENGINE_DEFAULTS, batch_job.GROUP_RMSPROP_DEFAULTS)
    for col in ("final_train_loss", "recon_error", "nuclear_norm", "effective_rank", "iterations"):
        assert runs[col].iloc[0] == direct.runs[col].iloc[0], col


def test_bad_arguments_are_named():
    w = api.low_rank_matrix(5, rank=1)
    with pytest.raises(ValueError, match="either observed"):
        api.fit_deep_factorization(w)
    with pytest.raises(ValueError, match="measurements must be"):
        api.fit_deep_factorization(w, measurements=np.zeros((3, 7)))
    with pytest.raises(ValueError, match="unknown optimizer"):
        api.fit_deep_factorization(w, [0, 1], optimizer="adam")
    with pytest.raises(ValueError, match="NaN at P11"):
        api.fit_two_by_two(np.ones((2, 2)))


def test_two_by_two_columns_equal_the_pipelines():
    runs, traj = api.fit_two_by_two(depth=[2, 3], init=["gaussian", "balanced"], init_product_std=1e-2,
                                    lr=0.05, max_iters=400, log_every=50, backend="python")
    assert unvolatile(runs) == pipeline_columns("results/razin2020_fig1/runs.parquet")
    assert list(traj.columns) == pipeline_columns("results/razin2020_fig1/trajectories.parquet")
    assert list(runs.columns) == razin_tables.DMF_RUN_COLUMNS
    assert len(runs) == 4 and runs["depth"].tolist() == [2, 2, 3, 3]
    assert (runs[["b12", "b21", "b22"]].to_numpy() == [1.0, 1.0, 0.0]).all()


def test_tensor_completion_columns_equal_the_pipelines():
    target, order = api.random_cp_tensor(3, 1, seed=2, mode_size=3)
    runs, traj = api.complete_tensor(target, order[:20], init_std=[1e-2], repetitions=2, rank=1, max_iters=300,
                                     cp_rank_max_sweeps=50)
    assert unvolatile(runs) == pipeline_columns("results/razin2020_fig2/runs.parquet")
    assert list(traj.columns) == pipeline_columns("results/razin2020_fig2/trajectories.parquet")
    assert set(runs["method"]) == {"tf"} and set(runs["n_obs"]) == {20} and set(runs["order"]) == {3}
    assert (runs["cp_rank"] >= 0).all()
