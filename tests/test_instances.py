"""The instance spread: further seeded instances, sampling with replacement, weighted duplicates."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from implicit_reg.arora2019 import data as matrix_data
from implicit_reg.arora2019 import tables
from implicit_reg.arora2019.observations import build_problem
from implicit_reg.arora2019.plan import (
    ConfigError,
    build_plan,
    ground_truth_seed_keys,
    observations_seed_keys,
)
from implicit_reg.pipeline.config import load_schema, validate_config

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
    assert labels == {(i, s, "protocol" if s == "without_replacement" else s)
                      for i in range(4) for s in ("without_replacement", "with_replacement")}
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
    problem = build_problem("completion", obs, truth, "cpu", torch.float64)
    product = torch.as_tensor(rng.standard_normal((1, 6, 5)))
    grad = problem.product_gradient(problem.train.residual(product))[0]
    # d/dP (1/m) sum over the drawn list of (P[i] - y_i)^2
    flat = product[0].reshape(-1).clone().requires_grad_(True)
    loss = ((flat[torch.as_tensor(indices)] - torch.as_tensor(obs["labels"], dtype=torch.float64)) ** 2).mean()
    loss.backward()
    np.testing.assert_allclose(grad.reshape(-1).numpy(), flat.grad.numpy(), rtol=1e-12, atol=1e-14)


def test_fewer_distinct_draws_as_many_distinct_entries_as_replacement_gives() -> None:
    assert matrix_data.expected_distinct(10_000, 2000) == 1813
    assert matrix_data.expected_distinct(10_000, 5000) == 3935
    idx = matrix_data.sampled_indices(100, 100, 2000, np.random.default_rng(0), "fewer_distinct")
    assert len(idx) == len(np.unique(idx)) == 1813
    # the protocol's draw is the one it always was
    np.testing.assert_array_equal(
        matrix_data.sampled_indices(100, 100, 2000, np.random.default_rng(3), "without_replacement"),
        matrix_data.completion_indices(100, 100, 2000, np.random.default_rng(3)))
    with pytest.raises(ValueError, match="sampling"):
        matrix_data.sampled_indices(10, 10, 5, np.random.default_rng(0), "bootstrap")


def test_convex_variant_solves_the_protocols_data_with_its_own_settings() -> None:
    cfg = _config(2, {**SPREAD, "sampling": ["without_replacement", "fewer_distinct"]})
    cfg["convex"]["variants"] = {"loose": {"solver_options": {"eps_abs": 1.0e-3, "eps_rel": 1.0e-3}}}
    cfg["arora2019"]["figures"]["arora2019_n2"]["instance_convex_variants"] = ["loose"]
    plan = build_plan(cfg)
    spread = plan.figures["arora2019_n2"].instances
    assert spread.convex_variants == ["loose"]
    variant = [d for d in spread.convex_datasets if d.convex_variant]
    assert sorted(d.name for d in variant) == sorted(f"completion-r2{i}-m200-loose" for i in ("", "-i1", "-i2"))
    jobs = {j.dataset.name: j for j in plan.convex_jobs.values()}
    for d in variant:  # same data as the protocol's, another solve
        protocol = d.name.removesuffix("-loose")
        assert jobs[d.name].key != jobs[protocol].key
        assert d.observations_suffix == jobs[protocol].dataset.observations_suffix
        assert spread.instance_labels[f"min_nuclear_norm:{d.name}"][2] == "loose"
    assert {tuple(v)[2] for v in spread.instance_labels.values()} == {"protocol", "fewer_distinct", "loose"}
    assert not any(d.convex_variant for d in spread.ground_truth_datasets)  # one ground truth per data set
    cfg["arora2019"]["figures"]["arora2019_n2"]["instance_convex_variants"] = ["tight"]
    with pytest.raises(ConfigError, match="instance_convex_variants.*tight"):
        build_plan(cfg)


def test_variant_copies_give_a_convex_variant_the_protocols_other_rows() -> None:
    df = pd.DataFrame({"method": ["deep_factorization", "min_nuclear_norm", "ground_truth", "min_nuclear_norm",
                                  "deep_factorization"],
                       "variant": ["protocol", "protocol", "protocol", "loose", "fewer_distinct"]})
    out = tables.with_variant_copies(df, ["loose"])
    assert sorted(out.loc[out["variant"] == "loose", "method"]) == [
        "deep_factorization", "ground_truth", "min_nuclear_norm"]
    assert len(out.loc[out["variant"] == "fewer_distinct"]) == 1
    assert tables.with_variant_copies(df, []) is df


def test_instance_columns_need_a_label_for_every_row() -> None:
    df = pd.DataFrame({"run_id": ["a", "b"], "x": [1.0, 2.0]})
    out = tables.with_instance_columns(df, {"a": [0, "without_replacement", "protocol"],
                                            "b": [2, "with_replacement", "with_replacement"]})
    assert list(out["instance"]) == [0, 2] and out["instance"].dtype == "int64"
    assert list(out["sampling"]) == ["without_replacement", "with_replacement"]
    assert list(out["variant"]) == ["protocol", "with_replacement"]
    with pytest.raises(ValueError, match="without an instance label"):
        tables.with_instance_columns(df, {"a": [0, "without_replacement", "protocol"]})


def test_paper_preset_spreads_the_instance_dependent_values() -> None:
    cfg = validate_config(yaml.safe_load((ROOT / "config" / "config.yaml").read_text()), SCHEMA)
    assert cfg["instances"] >= 10
    spread = build_plan(copy.deepcopy(cfg)).figures["arora2019_n2"].instances
    samplings = {tuple(v)[1] for v in spread.instance_labels.values()}
    assert samplings == {"without_replacement", "with_replacement", "fewer_distinct"}
    assert {tuple(v)[2] for v in spread.instance_labels.values()} == {
        "protocol", "with_replacement", "fewer_distinct", "scs2_accuracy"}
    for preset in ("quick.yaml", "test.yaml"):
        quick = validate_config(yaml.safe_load((ROOT / "config" / preset).read_text()), SCHEMA)
        assert quick["instances"] == 0


# ---------------------------------------------------------------------------- Razin & Cohen


def _razin(instances: int):
    from implicit_reg.razin2020.plan import RazinPlan

    cfg = validate_config(yaml.safe_load((ROOT / "config" / "config.yaml").read_text()), SCHEMA)
    section = validate_config(cfg["razin2020"], load_schema(ROOT / "workflow" / "schemas" / "razin2020.schema.yaml"),
                              "razin2020")
    return RazinPlan(section, cfg["seed"], instances)


def test_razin_2x2_spread_reruns_the_figures_seed_and_adds_others() -> None:
    assert _razin(0).spread_figures() == []
    plan = _razin(3)
    assert plan.spread_figures() == ["razin2020_fig1"]
    main = {(r["run_index"], r["rep"]): r for r in plan.dmf_spec("razin2020_fig1", 2)["runs"]}
    spread = plan.dmf_spec("razin2020_fig1", 2, spread=True)["runs"]
    assert sorted({r["rep"] for r in spread}) == [0, 1, 2, 3]
    for r in spread:
        if r["rep"] == 0:  # the figure's own draw
            assert r["seed"] == main[(r["run_index"], 0)]["seed"]
    assert len({r["seed"] for r in spread}) == len(spread) and all("/instances/" in r["run_id"] for r in spread)
    # its own archive key, apart from the figure's panel
    assert plan.job_provenance("dmf_spread", figure="razin2020_fig1", depth=2)["key"] != \
        plan.job_provenance("dmf", figure="razin2020_fig1", depth=2)["key"]


def test_razin_tensor_spread_varies_only_the_init_on_the_fixed_observed_set() -> None:
    """The protocol spread (spec §9.7): the first n of the authors' permutation, other seeds."""
    plan = _razin(2)
    assert plan.tc_spread_figures() == ["razin2020_fig2"]
    name = "tensor_rank_1_fro_1_order_3_dim_8"
    items = plan.tc_spread_items("razin2020_fig2")
    n50 = next(d for d in items if d["variant"] == "protocol" and 50 in d["n_obs"])
    assert n50["observed"] == "fixed" and n50["instances"] == 50
    own, first, second = (plan.tc_spec("razin2020_fig2", name, 50, instance=i, variant="protocol") for i in range(3))
    assert not any("permutation_seed" in s for s in (own, first, second))
    assert [r["init_std"] for r in own["runs"]] == [1.0e-2] * 5 + [1.0e-3] * 5
    main = {(r["init_std"], r["rep"]): r["seed"] for r in plan.tc_spec("razin2020_fig2", name, 50)["runs"]}
    assert {(r["init_std"], r["rep"]): r["seed"] for r in own["runs"]} == main  # instance 0: the figure's seeds
    seeds = [r["seed"] for s in (own, first, second) for r in s["runs"]]
    assert len(set(seeds)) == len(seeds)
    assert all("/instances/protocol/i1/" in r["run_id"] for r in first["runs"])
    # at n = 50 51 protocol jobs and 3 redrawn ones (K = 2); at larger n K + 1 each; every key its own
    jobs = plan.tc_spread_jobs("razin2020_fig2")
    at50 = [j for j in jobs if j["n_obs"] == 50]
    assert sum(j["variant"] == "protocol" for j in at50) == 51
    assert sum(j["variant"] == "redrawn_observed" for j in at50) == 3
    assert sum(j["n_obs"] == 200 for j in jobs) == 3
    assert plan.tc_spec("razin2020_fig2", name, 200, instance=1, variant="protocol")["runs"][0]["init_std"] == 1e-2
    keys = {plan.job_provenance("tc_spread", figure="razin2020_fig2", name=j["name"], n_obs=j["n_obs"],
                                depth=j["instance"], variant=j["variant"])["key"] for j in jobs}
    assert len(keys) == len(jobs)
    assert plan.tc_spread_variants("razin2020_fig2") == [j["variant"] for j in jobs]


def test_razin_tensor_redrawn_spread_draws_other_observed_sets() -> None:
    plan = _razin(2)
    name = "tensor_rank_1_fro_1_order_3_dim_8"
    own, first, second = (plan.tc_spec("razin2020_fig2", name, 50, instance=i, variant="redrawn_observed")
                          for i in range(3))
    assert "permutation_seed" not in own and first["permutation_seed"] != second["permutation_seed"]
    assert [r["init_std"] for r in own["runs"]] == [1.0e-3] * 5
    main = {r["rep"]: r["seed"] for r in plan.tc_spec("razin2020_fig2", name, 50)["runs"] if r["init_std"] == 1e-3}
    assert {r["rep"]: r["seed"] for r in own["runs"]} == main
    assert not {r["seed"] for r in first["runs"]} & set(main.values())
    # the redrawn spread keeps the job names (and keys) of its archived jobs
    prov = plan.job_provenance("tc_spread", figure="razin2020_fig2", name=name, n_obs=50, depth=1,
                               variant="redrawn_observed")
    assert prov["job"] == f"razin2020_fig2/instances/{name}/n50/i1"


def test_razin_linear_rank_spread_reestimates_the_same_tensor_with_other_als_seeds() -> None:
    from implicit_reg.razin2020 import spread_tables
    from implicit_reg.razin2020 import tables as rt

    plan = _razin(2)
    name = "tensor_rank_1_fro_1_order_3_dim_8"
    jobs = plan.linear_spread_jobs("razin2020_fig2")
    assert len(jobs) == 10 * 3 and {j["instance"] for j in jobs} == {0, 1, 2}
    own, other = plan.reference_spec(name, 50), plan.reference_spec(name, 50, instance=1)
    assert "instance" not in own and other["instance"] == 1 and own["rank_seed"] != other["rank_seed"]
    # instance 0 is the figure's own job (same key, same path); the others are jobs of their own
    prov0 = plan.job_provenance("tc_reference", name=name, n_obs=50, depth=0)
    assert prov0["key"] == plan.job_provenance("tc_reference", name=name, n_obs=50)["key"]
    assert plan.job_provenance("tc_reference", name=name, n_obs=50, depth=1)["job"] == f"{name}/linear-n50/i1"
    assert plan.linear_spread_path(name, 50, 0).endswith(f"{name}/linear-n50.parquet")
    inputs = plan.tc_spread_inputs("razin2020_fig2")
    assert len(inputs["linear"]) == len(plan.linear_spread_instances("razin2020_fig2")) == 30
    row = pd.DataFrame([{c: None for c in rt.TC_RUN_COLUMNS} | {"run_id": f"linear/{name}/n50", "method": "linear",
                                                              "n_obs": 50, "cp_rank": 12}])
    runs = spread_tables.spread_runs([], [], [row, row.assign(cp_rank=11)], [0, 1])
    assert list(runs["instance"]) == [0, 1] and set(runs["variant"]) == {"protocol"}
    with pytest.raises(ValueError, match="linear rows"):
        spread_tables.spread_runs([], [], [row], [0, 1])


def test_razin_tensor_spread_refuses_one_n_twice_in_a_variant() -> None:
    plan = _razin(2)
    fig = plan.figures["razin2020_fig2"]
    fig["instance_datasets"] = [*fig["instance_datasets"], {"name": "tensor_rank_1_fro_1_order_3_dim_8",
                                                           "n_obs": [50, 100]}]
    assert any("n = 50 is in two items" in p for p in plan.problems())


def test_with_permutation_checks_its_argument() -> None:
    from implicit_reg.razin2020 import tensor_data as td

    data = td.TensorCompletionData(np.zeros((2, 2, 2), np.float32), np.arange(8), 1)
    other = td.with_permutation(data, np.arange(8)[::-1])
    assert list(td.observed_indices(other, 3)) == [7, 6, 5]
    with pytest.raises(ValueError, match="permutation"):
        td.with_permutation(data, np.zeros(8))


def test_tensor_spread_tables_have_one_summary_per_variant_and_instance() -> None:
    from implicit_reg.razin2020 import spread_tables
    from implicit_reg.razin2020 import tables as rt

    parts = []
    for variant, prefix in (("protocol", "instances/protocol/"), ("redrawn_observed", "instances/")):
        for i in range(3):
            rows = []
            for rep in range(4):
                rows.append({c: None for c in rt.TC_RUN_COLUMNS} | {
                    "run_id": f"razin2020_fig2/{prefix}i{i}/t/n50/tf-0.001/rep{rep}", "figure": "razin2020_fig2",
                    "dataset": "t", "order": 3, "rank": 1, "method": "tf", "series": "tf, init 1e-3",
                    "n_obs": 50, "status": "converged", "recon_error": float(i + rep), "cp_rank": 1})
            parts.append((variant, pd.DataFrame(rows)))
    runs = spread_tables.spread_runs([p for _, p in parts], [v for v, _ in parts])
    assert sorted(runs["instance"].unique()) == [0, 1, 2]
    assert set(runs["variant"]) == {"protocol", "redrawn_observed"}
    summary = spread_tables.spread_summary(runs)
    assert list(summary["variant"]) == ["protocol"] * 3 + ["redrawn_observed"] * 3
    np.testing.assert_allclose(summary["recon_error_median"], [1.5, 2.5, 3.5] * 2)
    with pytest.raises(ValueError, match="variant"):
        spread_tables.spread_runs([p for _, p in parts], ["protocol"])


def test_razin_keys_follow_the_data_not_where_they_come_from() -> None:
    """The authors' files read from the shared copy or downloaded are the same data (same sha256)."""
    from implicit_reg.razin2020.plan import RazinPlan

    cfg = validate_config(yaml.safe_load((ROOT / "config" / "config.yaml").read_text()), SCHEMA)
    schema = load_schema(ROOT / "workflow" / "schemas" / "razin2020.schema.yaml")
    keys = {}
    for source in ("shared", "download", "generated"):
        section = copy.deepcopy(cfg["razin2020"])
        section["data"]["source"] = source
        plan = RazinPlan(validate_config(section, schema, "razin2020"), cfg["seed"])
        keys[source] = plan.job_provenance("dmf", figure="razin2020_fig1", depth=2)["key"]
    assert keys["shared"] == keys["download"] != keys["generated"]


def test_top_level_instances_0_switches_every_razin_spread_off() -> None:
    """A preset with instances: 0 (test, quick) runs no spread, whatever K an item sets."""
    plan = _razin(0)
    assert plan.tc_spread_figures() == [] and plan.tc_spread_jobs("razin2020_fig2") == []
    assert plan.linear_spread_jobs("razin2020_fig2") == []
