"""Batching of the plan: one sensing batch per measurement set, completion per depth."""

from __future__ import annotations

from pathlib import Path

import yaml

from implicit_reg.arora2019.plan import SHARED_OPERATOR_TASKS, build_plan
from implicit_reg.pipeline.config import load_schema, validate_config

ROOT = Path(__file__).resolve().parents[1]


def _plan(name: str):
    config = yaml.safe_load((ROOT / "config" / name).read_text())
    return build_plan(validate_config(config, load_schema(ROOT / "workflow" / "schemas" / "config.schema.yaml")))


def test_sensing_runs_sharing_a_measurement_set_train_in_one_batch() -> None:
    plan = _plan("config.yaml")
    cap = 64  # engine.max_batch_runs (schema default)
    per_key: dict = {}
    for batch in plan.batches.values():
        per_key.setdefault((batch.dataset.name, batch.schedule), []).append(len(batch.runs))
        spec = batch.spec()
        depths = [r["depth"] for r in spec["runs"]]
        if batch.dataset.task in SHARED_OPERATOR_TASKS:
            assert batch.depth == 0 and spec["depth"] == 0  # per-run depths (the engine groups them)
        else:
            assert set(depths) == {batch.depth} and f"-d{batch.depth}-" in batch.name
    sensing = {k: n for k, n in per_key.items() if k[0].startswith("sensing")}
    # one job per measurement set, or even halves of it above the cap (both cores busy)
    assert sensing and all(len(n) == -(-sum(n) // cap) and max(n) - min(n) <= 1 for n in sensing.values())
    # The paper's rank-5 m = 2000 row: every depth, init, lr and seed, in two jobs of 48.
    row = [b for b in plan.batches.values() if b.dataset.name == "sensing-r5-m2000"
           and b.schedule.optimizer == "grouprmsprop"]
    assert sorted({r.depth for b in row for r in b.runs}) == [2, 3, 4] and [len(b.runs) for b in row] == [48, 48]


def test_batching_keeps_run_ids_and_seeds() -> None:
    """Regrouping must not change what archived results are keyed by."""
    plan = _plan("test.yaml")
    for batch in plan.batches.values():
        for run, spec in zip(batch.runs, batch.spec()["runs"]):
            assert spec["run_id"] == run.run_id and spec["init_seed"] == run.init_seed
            assert spec["depth"] == run.depth
