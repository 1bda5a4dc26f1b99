"""bench/bench_pipeline.py: measured costs from an archive manifest, and the instance spread.

No real archive and no timing: a fake manifest with made-up times for some of the test
preset's provenance keys, and made-up per-iteration costs.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections import defaultdict
from pathlib import Path

import pytest
import yaml

from implicit_reg.pipeline.config import merge_config

ROOT = Path(__file__).resolve().parents[1]


def _load_bench(name: str):
    """Import ``bench/<name>.py`` as the module ``name``, as ``python bench/<name>.py`` runs it.

    The bench programs are scripts, not a package: each imports its sibling ``_common`` by
    name (its directory is the script's first import path), so ``_common`` is loaded first.
    """
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


_load_bench("_common")
bp = _load_bench("bench_pipeline")
FIG2_TENSOR = "tensor_rank_1_fro_1_order_3_dim_8"


@pytest.fixture(scope="module")
def config() -> dict:
    """The test preset (merged over config.yaml) with a small instance spread (K = 1) in both papers."""
    cfg: dict = {}
    for name in ("config.yaml", "test.yaml"):
        merge_config(cfg, yaml.safe_load((ROOT / "config" / name).read_text()))
    cfg["instances"] = 1
    for fig in cfg["arora2019"]["figures"].values():  # the paper's own are at 2000 and 5000 observations
        fig.pop("instance_sweeps", None)
        fig.pop("instance_convex_variants", None)
    n2 = cfg["arora2019"]["figures"]["arora2019_n2"]
    n2["instance_sweeps"] = [dict(n2["sweeps"][0], n_obs=200, depth=2, init_scale=1.0e-2, seeds=1)]
    figs = cfg["razin2020"]["figures"]
    figs["razin2020_fig1"]["instance_panels"] = [figs["razin2020_fig1"]["panels"][0]]
    figs["razin2020_fig2"]["instance_datasets"] = [{"name": FIG2_TENSOR, "n_obs": [100]}]
    figs["razin2020_fig2"]["instance_linear"] = []
    return bp.validated(cfg)


def _costs() -> defaultdict:
    # Every per-iteration cost 0.1 ms: the attribution, not the cost model, is under test.
    return defaultdict(lambda: 1e-4)


def _write_manifest(path: Path, entries: dict) -> Path:
    path.write_text(json.dumps({"format": "implicit-reg-archive/1", "entries": entries}))
    return path


def _run_costs(config: dict, archived: list[dict]) -> dict[str, float]:
    """CPU seconds per job of :func:`bench_pipeline.estimate`."""
    _, jobs, _ = bp.estimate(config, _costs(), archived=archived)
    return dict(jobs)


def test_archive_times_measure_their_jobs(config: dict, tmp_path: Path) -> None:
    plan = bp.build_plan(config)
    batches = sorted((b for b in plan.batches.values() if len(b.runs) >= 4), key=lambda b: b.name)
    whole, part = batches[0], batches[1]
    half = part.runs[: len(part.runs) // 2]
    convex = sorted(plan.convex_jobs.values(), key=lambda j: j.name)[0]
    rz = bp.RazinPlan(config["razin2020"], config["seed"], config["instances"])
    tc = rz.job_provenance("tc_train", figure="razin2020_fig2", name=FIG2_TENSOR, n_obs=100)
    spread = rz.job_provenance("dmf_spread", figure="razin2020_fig1", depth=2)
    manifest = _write_manifest(tmp_path / "manifest.json", {
        "a": {"kind": bp.DEEP_FACTORIZATION, "job": whole.name, "cpu_seconds": 1000.0, "wall_seconds": 2000.0,
              "keys": {r.run_id: whole.keys[r.run_id] for r in whole.runs}},
        # Wall time only, and one run this plan does not hold (trained under another config).
        "b": {"kind": bp.DEEP_FACTORIZATION, "job": "other-batch", "wall_seconds": 300.0,
              "keys": {**{r.run_id: part.keys[r.run_id] for r in half}, "foreign": "0" * 64}},
        "c": {"kind": "arora2019.min_nuclear_norm", "job": convex.name, "cpu_seconds": 50.0,
              "keys": {convex.name: convex.key}},
        "d": {"kind": tc["kind"], "job": tc["job"], "cpu_seconds": 70.0, "keys": {tc["job"]: tc["key"]}},
        "e": {"kind": spread["kind"], "job": spread["job"], "cpu_seconds": 5.0,
              "keys": {spread["job"]: spread["key"]}},
        "untimed": {"kind": bp.DEEP_FACTORIZATION, "job": part.name,
                    "keys": {r.run_id: part.keys[r.run_id] for r in part.runs}},
    })
    archived = bp.read_archive(manifest)
    assert len(archived) == 5  # the untimed entry is not a measurement

    # The whole batch: its 1000 s split over its runs by iterations.
    iters = {r.run_id: bp.arora_iterations(r, {}, [])[0] for b in plan.batches.values() for r in b.runs}
    per_run = bp.archive_run_costs(archived, plan.run_keys, iters)
    whole_costs = [per_run[r.run_id][0] for r in whole.runs]
    assert sum(whole_costs) == pytest.approx(1000.0)
    assert [c / whole_costs[0] for c in whole_costs] == pytest.approx(
        [iters[r.run_id] / iters[whole.runs[0].run_id] for r in whole.runs])
    # The partial entry: the foreign run weighs the mean of the planned ones and is not counted.
    its = [iters[r.run_id] for r in half]
    part_archived = 300.0 * sum(its) / (sum(its) + sum(its) / len(its))
    assert sum(per_run[r.run_id][0] for r in half) == pytest.approx(part_archived)

    tally, jobs, counts = bp.estimate(config, _costs(), archived=archived)
    measured = sum(tally.measured.values())
    assert measured == pytest.approx(1000.0 + part_archived + 50.0 + 70.0 + 5.0)
    total, share, label = bp.measured_share(tally)
    assert total == pytest.approx(measured + sum(tally.estimated.values()))
    assert share == pytest.approx(measured / total) and label == "estimated"
    # The rest of the partial batch is estimated alone: cheaper than the whole batch.
    before, after = _run_costs(config, []), dict(jobs)
    assert 0 < after[part.name] < before[part.name]
    # Archived jobs enter the 2-core packing under their archive job names, at their time.
    assert after[whole.name] == pytest.approx(1000.0) and after["other-batch"] == pytest.approx(part_archived)
    assert counts["measured batches"] == 1
    # The Razin spread job is charged to the spread's own line.
    assert tally.measured["razin2020_fig1" + bp.SPREAD] == pytest.approx(5.0)

    total_entry = next(e for e in bp.summary_entries(tally, jobs, counts)
                       if e["name"].startswith("pipeline total (estimated): CPU time"))
    assert total_entry["value"] == pytest.approx(total / 3600)
    assert total_entry["measured_fraction"] == pytest.approx(share)
    assert total_entry["measured_h"] == pytest.approx(measured / 3600)


def test_instance_spread_is_its_own_line(config: dict) -> None:
    tally, jobs, counts = bp.estimate(config, _costs())
    spread = {f for f in set(tally.estimated) if f.endswith(bp.SPREAD)}
    assert spread == {"arora2019_n2" + bp.SPREAD, "razin2020_fig1" + bp.SPREAD, "razin2020_fig2" + bp.SPREAD}
    line = next(e for e in bp.summary_entries(tally, jobs, counts) if e["name"].startswith("pipeline instance spread"))
    assert line["value"] * 3600 == pytest.approx(sum(tally.estimated[f] for f in spread))
    # N2's spread has a data set of its own (instance 1): its convex solve is charged to the spread alone.
    plan = bp.build_plan(config)
    assert any(d.instance == 1 for d in plan.figures["arora2019_n2"].instances.convex_datasets)
    assert tally.estimated["arora2019_n2" + bp.SPREAD] > bp.CONVEX_SECONDS["completion"]


def test_label_says_measured_from_90_percent(config: dict, tmp_path: Path) -> None:
    plan = bp.build_plan(config)
    batch = max(plan.batches.values(), key=lambda b: len(b.runs))
    manifest = _write_manifest(tmp_path / "manifest.json", {"a": {
        "kind": bp.DEEP_FACTORIZATION, "job": batch.name, "cpu_seconds": 1e7,
        "keys": {r.run_id: batch.keys[r.run_id] for r in batch.runs}}})
    tally, jobs, counts = bp.estimate(config, _costs(), archived=bp.read_archive(manifest))
    total, share, label = bp.measured_share(tally)
    assert share >= 0.9 and label == "measured"
    names = [e["name"] for e in bp.summary_entries(tally, jobs, counts)]
    assert any(n.startswith("pipeline total (measured): CPU time") for n in names)
    assert bp.read_archive(tmp_path / "missing.json") == []


def test_sensing_floor_counts_only_sensing_training_at_the_given_rate():
    """The roofline: sensing flops / rate replaces the sensing training jobs, nothing else."""
    jobs = [("sensing-r5-m2000-grouprmsprop-aa", 7200.0), ("min_nuclear_norm/sensing-r5-m2000-cvx", 600.0),
            ("completion-r5-m2000-d3-grouprmsprop-bb", 3600.0)]
    flops, rate = 3600.0 * 1e11, 1e11  # one hour of products at the rate
    floor, total = bp.floor_entries(jobs, flops, rate)
    assert floor["value"] == pytest.approx(1.0)
    assert floor["ratio"] == pytest.approx(2.0)  # 2 h of sensing training over its 1 h floor
    assert total["value"] == pytest.approx((600 + 3600 + 3600) / 3600)
    assert total["ratio"] == pytest.approx((7200 + 600 + 3600) / (600 + 3600 + 3600))
    assert bp.floor_entries(jobs, flops, None) == []
    assert bp.floor_entries(jobs, 0.0, rate) == []
