"""Peak-memory estimates (implicit_reg.pipeline.memory): they bound the measured peaks, and a config
whose job cannot fit is refused before any job starts."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from workflow_support import run_snakemake

from implicit_reg.pipeline import memory
from implicit_reg.arora2019.plan import Dataset, build_plan
from implicit_reg.pipeline.config import load_schema, validate_config

ROOT = Path(__file__).resolve().parents[1]
MEASURED = json.loads((ROOT / "bench" / "memory.json").read_text())["cases"]
#: Below this, a measured size-dependent part is allocator noise beside the interpreter.
NOISE_MB = 50.0


def _baseline(job: str) -> float:
    """The peak of the bench's bare interpreter for this kind of job (what the sizes add to)."""
    kind = "interpreter" if job == "train" else "interpreter_numpy"
    return next(c["max_rss_mb"] for c in MEASURED if c["job"] == kind)


def _estimate(case: dict) -> int:
    dataset = Dataset(case["task"] if "task" in case else "completion", case["rank"], case.get("n_obs", 0),
                      (case["size"], case["size"]))
    if case["job"] == "ground_truth":
        return memory.ground_truth_mb(dataset)
    if case["job"] == "observations":
        return memory.observations_mb(dataset)
    runs = [SimpleNamespace(depth=d) for d in case["depths"]]
    return memory.batch_mb(SimpleNamespace(dataset=dataset, depth=0, runs=runs), "float32")


SIZED = [c for c in MEASURED if c["job"] in ("ground_truth", "observations", "train")]


def test_the_bench_measured_every_kind_of_job() -> None:
    assert {c["job"] for c in SIZED} == {"ground_truth", "observations", "train"}
    assert {c.get("task") for c in SIZED if c["job"] == "train"} == {"completion", "sensing"}


@pytest.mark.parametrize("case", SIZED, ids=lambda c: f"{c['job']}-{c.get('task', '')}-n{c['size']}-m{c.get('n_obs', 0)}")
def test_the_estimate_bounds_the_measured_peak(case: dict) -> None:
    """The whole estimate is above the measured peak; its size-dependent part is above what the sizes
    added to the bare interpreter, and at most MAX_OVERESTIMATE times that (the margin)."""
    estimate = _estimate(case)
    assert estimate >= case["max_rss_mb"], (estimate, case)
    added = case["max_rss_mb"] - _baseline(case["job"])
    part = estimate - memory.JOB_BASE_MB
    if added >= NOISE_MB:
        assert added <= part <= memory.MAX_OVERESTIMATE * added, (part, added, case)


def test_the_job_base_covers_the_interpreter() -> None:
    # The bench's bare interpreter; a Snakemake job adds its script wrapper (test preset: 327-342 MB).
    assert memory.JOB_BASE_MB >= max(_baseline("train"), _baseline("ground_truth"))


def test_estimates_grow_with_every_size() -> None:
    small = Dataset("sensing", 5, 2000, (100, 100))
    assert memory.observations_mb(Dataset("sensing", 5, 5000, (100, 100))) > memory.observations_mb(small)
    assert memory.ground_truth_mb(Dataset("completion", 5, 2000, (200, 200))) > memory.ground_truth_mb(small)

    def batch(depths, dataset=small, dtype="float32"):
        return memory.batch_mb(SimpleNamespace(dataset=dataset, depth=0, runs=[SimpleNamespace(depth=d) for d in depths]),
                               dtype)

    assert batch([3] * 48) > batch([3] * 24) and batch([4] * 24) > batch([3] * 24)
    assert batch([3] * 24, dtype="float64") > batch([3] * 24)
    assert batch([3] * 24, Dataset("sensing", 5, 5000, (100, 100))) > batch([3] * 24)


def _config(**arora) -> dict:
    cfg = yaml.safe_load((ROOT / "config" / "test.yaml").read_text())
    cfg["arora2019"].update(arora)
    return validate_config(cfg, load_schema(ROOT / "workflow" / "schemas" / "config.schema.yaml"))


def test_a_matrix_too_large_for_any_job_is_refused_with_the_estimate_and_the_key() -> None:
    plan = build_plan(_config(matrix_size=100000))
    jobs = memory.oversized_jobs(plan, 64_000)
    assert jobs and all(mb > 64_000 for _, mb, _ in jobs)
    assert {"ground_truth", "observations", "train_factorization_batch"} <= {j.split()[0] for j, _, _ in jobs}
    message = memory.refusal(jobs, 64_000, "max_job_mem_mb")
    assert message.startswith("arora2019.matrix_size: job ") and "\n" not in message
    assert f"{jobs[0][1] / 1000:.1f} GB" in message and "64.0 GB of max_job_mem_mb" in message


def test_the_test_preset_fits_a_4_gb_machine() -> None:
    plan = build_plan(_config())
    assert memory.oversized_jobs(plan, 4000) == [] and memory.refusal([], 4000, "x") == ""


def test_the_limit_is_the_config_value_or_this_machine() -> None:
    assert memory.job_limit_mb({"max_job_mem_mb": 128000}) == (128000, "max_job_mem_mb")
    limit, source = memory.job_limit_mb({"max_job_mem_mb": None})
    assert limit == memory.machine_mb() > 500 and "this machine" in source


def test_the_dry_run_refuses_matrix_size_100000(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("arora2019: {matrix_size: 100000}\n")
    proc = run_snakemake("-n", "--cores", "1", "--configfile", "config/test.yaml", str(big), timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "arora2019.matrix_size: job " in out and "GB at its peak" in out and "max_job_mem_mb" in out
    assert "Job stats" not in out  # refused before any job is planned
