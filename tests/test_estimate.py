"""implicit_reg.pipeline.estimate: the CPU-time estimate printed before a run starts."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from implicit_reg.pipeline import estimate
from implicit_reg.arora2019 import costs
from implicit_reg.arora2019.plan import build_plan
from implicit_reg.pipeline.config import (
    load_schema,
    merge_config,
    select_figures,
    validate_config,
)
from implicit_reg.razin2020.plan import RazinPlan

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = ROOT / "workflow" / "schemas"


def _merged(*presets: str) -> dict:
    config: dict = {}
    for name in ("config.yaml", *presets):
        merge_config(config, yaml.safe_load((ROOT / "config" / name).read_text()))
    validate_config(config, load_schema(SCHEMAS / "config.schema.yaml"))
    validate_config(config["razin2020"], load_schema(SCHEMAS / "razin2020.schema.yaml"), "razin2020")
    return config


def _jobs(plan, razin) -> list[tuple[str, dict]]:
    jobs = [("train_factorization_batch", {"batch": b}) for b in plan.batches]
    jobs += [("min_nuclear_norm", {"job": j}) for j in plan.convex_jobs]
    for figure in razin.figure_names():
        fig = razin.figures[figure]
        if "panels" in fig:
            jobs += [("razin2020_dmf_batch", {"figure": figure, "depth": str(p["depth"])}) for p in fig["panels"]]
        else:
            jobs += [("razin2020_tc_train", {"figure": figure, "name": d["name"], "n_obs": str(n)})
                     for d in fig["datasets"] for n in d["n_obs"]]
    return jobs


def test_paper_scale_estimate_is_hours_and_test_preset_minutes() -> None:
    """Sanity against the README's measured costs: paper scale tens of CPU-hours, the test preset minutes."""
    paper = _merged()
    plan, razin = build_plan(paper), RazinPlan(paper["razin2020"], paper["seed"])
    paper_seconds = sum(estimate.job_seconds(r, wc, plan, razin) for r, wc in _jobs(plan, razin))
    assert 5 * 3600 < paper_seconds < 200 * 3600  # README: 19.2 CPU-hours measured
    test = _merged("test.yaml")
    plan, razin = build_plan(test), RazinPlan(test["razin2020"], test["seed"])
    test_seconds = sum(estimate.job_seconds(r, wc, plan, razin) for r, wc in _jobs(plan, razin))
    assert 60 < test_seconds < 30 * 60  # README: 2.5 min of wall time on 2 cores


def test_cost_grows_with_depth_size_and_iterations() -> None:
    config = _merged("test.yaml")
    plan = build_plan(config)
    batches = list(plan.batches.values())
    by_depth = {b.depth: b for b in batches if b.dataset.task == "completion" and b.schedule.optimizer == "gd"}
    assert costs.run_iteration_seconds(by_depth[1]) < costs.run_iteration_seconds(by_depth[3])
    big = copy.deepcopy(by_depth[3])
    object.__setattr__(big, "dataset", type(big.dataset)(big.dataset.task, big.dataset.rank, big.dataset.n_obs,
                                                          (100, 100), big.dataset.default_size))
    assert costs.run_iteration_seconds(big) > 10 * costs.run_iteration_seconds(by_depth[3])
    b = by_depth[3]
    assert costs.run_iterations(b, 0.1, 1e-3) <= b.schedule.max_iters


def test_summary_counts_jobs_and_says_it_is_an_estimate() -> None:
    config = _merged("test.yaml")
    plan, razin = build_plan(config), RazinPlan(config["razin2020"], config["seed"])
    jobs = _jobs(plan, razin) + [("render_figure", {"figure": "arora2019_fig1"})]
    text = estimate.summary(jobs, plan, razin)
    assert f"execute {len(jobs)} jobs" in text and "render_figure 1" in text
    assert "Estimated CPU time: about" in text and "estimate" in text.split("about", 1)[1]


@pytest.mark.parametrize("seconds, text", [(42, "42 s"), (720, "12 min"), (3.4 * 3600, "3.4 h")])
def test_format_seconds(seconds: float, text: str) -> None:
    assert estimate.format_seconds(seconds) == text


def test_selecting_figures_prunes_the_plan() -> None:
    config = select_figures(_merged("test.yaml") | {"figures": ["arora2019_fig6", "razin2020_fig2"]})
    assert list(build_plan(config).figures) == ["arora2019_fig6"]
    assert RazinPlan(config["razin2020"], config["seed"]).figure_names() == ["razin2020_fig2"]
