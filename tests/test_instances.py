"""The instance spread: further seeded instances, sampling with replacement, weighted duplicates."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from implicit_reg import deep_factorization as dfm
from implicit_reg import matrix_data, tables
from implicit_reg.config import load_schema, validate_config
from implicit_reg.plan import ConfigError, build_plan, ground_truth_seed_keys, observations_seed_keys

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = load_schema(ROOT / "workflow" / "schemas" / "config.schema.yaml")
SPREAD = {"task": "completion", "rank": 2, "n_obs": 200, "depth": 2, "init": "gaussian", "init_scale": 1.0e-3,
          "lr": 1.0e-3, "optimizer": "grouprmsprop", "seeds": 1,
          "sampling": ["without_replacement", "with_replacement"]}


def _config(instances: int, sweep: dict | None = None) -> dict:
    cfg = yaml.safe_load((ROOT / "config" / "test.yaml").read_text())
    cfg["instances"] = instances
    cfg["arora2019"]["figures"]["arora2019_n2"]["instance_sweeps"] = [sweep or SPREAD]
    return validate_config(cfg, SCHEMA)


def test_spread_adds_instances_and_keeps_the_figures_own_runs() -> None:
    off, on = build_plan(_config(0)), build_plan(_config(3))
    assert all(f.instances is None for f in off.figures.values())
    spread = on.figures["arora2019_n2"].instances
    # 4 instances (0..3) x 2 samplings, one run each; the figure's own keys are untouched
    assert len(spread.run_ids) == 8
    assert set(off.run_keys.items()) <= set(on.run_keys.items())
    labels = {tuple(v) for rid, v in spread.instance_labels.items() if rid in spread.run_ids}
    assert labels == {(i, s) for i in range(4) for s in ("without_replacement", "with_replacement")}
    names = {d.name for d in spread.convex_datasets}
    assert "completion-r2-m200" in names and "completion-r2-i3-m200-wr" in names
    assert "completion-r2-i3" in on.ground_truths


def test_instance_zero_keeps_its_seeds_and_others_differ() -> None:
    plan = build_plan(_config(2))
    records = {d.name: d.record() for d in plan.datasets.values() if d.task == "completion" and d.n_obs == 200}
    base = records["completion-r2-m200"]
    assert ground_truth_seed_keys(base) == ("ground_truth", "completion", 2, 20)
    assert observations_seed_keys(base) == ("observations", "completion", 2, 20, 200)
    keys = {observations_seed_keys(r) for r in records.values()}
    assert len(keys) == len(records)  # every instance and sampling draws its own entries


def test_replacement_only_for_completion() -> None:
    with pytest.raises(ConfigError, match="instance_sweeps.*sampling"):
        build_plan(_config(1, {**SPREAD, "task": "sensing", "matrix_size": 12}))


def test_sampling_with_replacement_keeps_duplicates() -> None:
    rng = np.random.default_rng(0)
    idx = matrix_data.completion_indices(100, 100, 2000, rng, replacement=True)
    assert len(idx) == 2000 and np.all(np.diff(idx) >= 0)
    distinct = len(np.unique(idx))
    assert 1750 < distinct < 1880  # about N(1 - exp(-m/N)) = 1813
    plain = matrix_data.completion_indices(100, 100, 2000, np.random.default_rng(0))
    assert len(np.unique(plain)) == 2000


def test_duplicate_entries_weigh_as_in_a_loss_over_the_drawn_list() -> None:
    rng = np.random.default_rng(1)
    truth = rng.standard_normal((6, 5)).astype(np.float32)
    indices = np.array([0, 3, 3, 7, 7, 7, 12, 29], dtype=np.int64)
    obs = {"indices": indices, "labels": truth.reshape(-1)[indices]}
    problem = dfm.build_problem("completion", obs, truth, "cpu", torch.float64)
    product = torch.as_tensor(rng.standard_normal((1, 6, 5)))
    grad = problem.product_gradient(problem.train.residual(product))[0]
    # d/dP (1/m) sum over the drawn list of (P[i] - y_i)^2
    flat = product[0].reshape(-1).clone().requires_grad_(True)
    loss = ((flat[torch.as_tensor(indices)] - torch.as_tensor(obs["labels"], dtype=torch.float64)) ** 2).mean()
    loss.backward()
    np.testing.assert_allclose(grad.reshape(-1).numpy(), flat.grad.numpy(), rtol=1e-12, atol=1e-14)


def test_instance_columns_need_a_label_for_every_row() -> None:
    df = pd.DataFrame({"run_id": ["a", "b"], "x": [1.0, 2.0]})
    out = tables.with_instance_columns(df, {"a": [0, "without_replacement"], "b": [2, "with_replacement"]})
    assert list(out["instance"]) == [0, 2] and out["instance"].dtype == "int64"
    assert list(out["sampling"]) == ["without_replacement", "with_replacement"]
    with pytest.raises(ValueError, match="without an instance label"):
        tables.with_instance_columns(df, {"a": [0, "without_replacement"]})


def test_paper_preset_spreads_the_instance_dependent_values() -> None:
    cfg = validate_config(yaml.safe_load((ROOT / "config" / "config.yaml").read_text()), SCHEMA)
    assert cfg["instances"] >= 10
    spread = build_plan(copy.deepcopy(cfg)).figures["arora2019_n2"].instances
    samplings = {tuple(v)[1] for v in spread.instance_labels.values()}
    assert samplings == {"without_replacement", "with_replacement"}
    for preset in ("quick.yaml", "test.yaml"):
        quick = validate_config(yaml.safe_load((ROOT / "config" / preset).read_text()), SCHEMA)
        assert quick["instances"] == 0
