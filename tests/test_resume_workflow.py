"""A training job killed with SIGKILL resumes from its checkpoint through Snakemake, and only then.

The whole workflow is killed (process group, SIGKILL: no handler runs), unlocked and
started again as a user would. Three cases, each compared *exactly* (every value, every
column but the wall-clock seconds) with an uninterrupted run of the same configuration:

- same configuration: the job logs that it resumed and ends as the uninterrupted run;
- changed configuration (``seed: 7`` -> ``8``, the issue's probe): the old checkpoint is
  not resumed; the log warns naming it; the tables are those of a fresh seed-8 run;
- corrupt checkpoint (truncated): the log warns naming it, the file is moved aside to
  ``.corrupt``, and the job starts afresh instead of failing on every rerun.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
from workflow_support import BIN, copy_repo, run_snakemake

# Long enough to be killed mid-way (every run goes to the cap), checkpoints often.
LONG_BATCH = """\
engine: {checkpoint_seconds: 0.3, sync_every: 50}
arora2019:
  training:
    grouprmsprop: {max_iters: 20000, log_every: 500, train_loss_tol: 1.0e-30}
"""
SEED_8 = "seed: 8\n"
BATCH = r"completion-r2-m200-d3-grouprmsprop-\w+"


def _snakemake(work: Path, *args: str) -> subprocess.CompletedProcess:
    return run_snakemake(*args, cwd=work)


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("resume") / "repo"
    copy_repo(work)
    (work / "config" / "long_batch.yaml").write_text(LONG_BATCH)
    (work / "config" / "seed8.yaml").write_text(SEED_8)
    return work


def _config_args(*extra: str) -> list[str]:
    return ["--configfile", "config/test.yaml", "config/long_batch.yaml", *extra, "--cores", "1"]


def _batch(work: Path, *extra: str) -> str:
    out = _snakemake(work, "-n", "--nolock", *_config_args(*extra))
    assert out.returncode == 0, out.stdout + out.stderr
    batches = sorted(set(re.findall(rf"results/runs/({BATCH})/runs\.parquet", out.stdout + out.stderr)))
    assert len(batches) == 1, batches
    return batches[0]


def _paths(work: Path, batch: str) -> dict[str, Path]:
    logs = work / "logs" / "train_factorization_batch"
    return {"target": work / f"results/runs/{batch}/runs.parquet",
            "trajectories": work / f"results/runs/{batch}/trajectories.parquet",
            "checkpoint": logs / f"{batch}.checkpoint.pt", "log": logs / f"{batch}.log"}


def _forget(work: Path, batch: str) -> None:
    """Make a finished batch's runs missing again: without its job record the plan trains it anew
    (same runs, same name); with it, the batch is read and never rerun."""
    (work / "results" / "runs" / batch / "provenance.json").unlink(missing_ok=True)


def _start_and_kill(work: Path, batch: str, *extra: str) -> None:
    """Run the batch until a checkpoint written well into training exists, then SIGKILL everything."""
    p = _paths(work, batch)
    _forget(work, batch)
    p["log"].unlink(missing_ok=True)  # an earlier run's log would count its checkpoints
    # --forcerun: the batch's tables may be up to date from an earlier test.
    proc = subprocess.Popen([str(BIN / "snakemake"), str(p["target"].relative_to(work)), "--forcerun",
                             "train_factorization_batch", *_config_args(*extra)],
                            cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            text = p["log"].read_text() if p["log"].exists() else ""
            if len(re.findall(r"checkpoint written at iteration", text)) >= 2:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the batch finished before it could be killed; make it longer"
        assert p["checkpoint"].stat().st_size > 0, "no checkpoint written before the deadline"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    assert not p["target"].exists()
    # As a user would: unlock before running again (--rerun-incomplete comes from profiles/default).
    assert _snakemake(work, "--unlock", *_config_args(*extra)).returncode == 0


def _run(work: Path, batch: str, *extra: str, force: bool = False) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    p = _paths(work, batch)
    _forget(work, batch)  # every case here trains the batch (afresh or from its checkpoint)
    options = ["--forcerun", "train_factorization_batch"] if force else []
    out = _snakemake(work, str(p["target"].relative_to(work)), *options, *_config_args(*extra))
    assert out.returncode == 0, out.stdout + out.stderr
    assert not p["checkpoint"].exists()  # removed once the batch is complete
    return pd.read_parquet(p["target"]), pd.read_parquet(p["trajectories"]), p["log"].read_text()


def _assert_identical(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Every value equal, bit for bit (no rtol), except the wall-clock columns."""
    volatile = [c for c in a.columns if "wall" in c or "seconds" in c]
    pd.testing.assert_frame_equal(a.drop(columns=volatile), b.drop(columns=volatile), check_exact=True)


@pytest.fixture(scope="module")
def fresh(work: Path) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    """Uninterrupted runs of the long batch, seed 7 and seed 8 (the references)."""
    out = {}
    for name, extra in (("seed7", ()), ("seed8", ("config/seed8.yaml",))):
        runs, traj, log = _run(work, _batch(work, *extra), *extra, force=True)
        assert "resumed from checkpoint" not in log
        assert (runs["status"] == "max_iters").all() and (runs["iterations"] == 20000).all()
        out[name] = (runs, traj)
    return out


def test_sigkilled_training_job_resumes_to_identical_tables(work: Path, fresh) -> None:
    batch = _batch(work)
    _start_and_kill(work, batch)
    runs, traj, log = _run(work, batch)
    resumed = re.search(r"resumed from checkpoint .* at iteration (\d+)", log)
    assert resumed and int(resumed.group(1)) > 0, log[-3000:]
    # The record keeps the killed attempt's time, which the benchmark file does not see.
    record = json.loads((work / "results" / "runs" / batch / "provenance.json").read_text())
    assert record["resumed_seconds"] > 0 and record["resumed_cpu_seconds"] > 0
    _assert_identical(runs, fresh["seed7"][0])
    _assert_identical(traj, fresh["seed7"][1])


def test_changed_config_does_not_resume_the_old_checkpoint(work: Path, fresh) -> None:
    """The issue's probe: kill, change seed 7 to 8, rerun: a fresh seed-8 run, with a warning."""
    batch = _batch(work)
    _start_and_kill(work, batch)
    batch8 = _batch(work, "config/seed8.yaml")
    checkpoint = _paths(work, batch)["checkpoint"]
    if batch8 != batch:
        # The seed is part of the run ids but not of the batch name: the checkpoint path is the
        # same. Should naming ever change, put the old checkpoint where the new job looks.
        os.replace(checkpoint, _paths(work, batch8)["checkpoint"])
        checkpoint = _paths(work, batch8)["checkpoint"]
    runs, traj, log = _run(work, batch8, "config/seed8.yaml")
    assert f"checkpoint {checkpoint.relative_to(work)} was written for another configuration" in log, log[-3000:]
    assert "resumed from checkpoint" not in log
    _assert_identical(runs, fresh["seed8"][0])
    _assert_identical(traj, fresh["seed8"][1])


def test_corrupt_checkpoint_is_moved_aside_and_the_job_starts_afresh(work: Path, fresh) -> None:
    batch = _batch(work)
    _start_and_kill(work, batch)
    checkpoint = _paths(work, batch)["checkpoint"]
    checkpoint.write_bytes(checkpoint.read_bytes()[:1000])  # as a full disk or a crash mid-copy leaves it
    runs, traj, log = _run(work, batch)
    assert f"checkpoint {checkpoint.relative_to(work)} is unreadable" in log, log[-3000:]
    assert "weights_only=False" not in log
    assert checkpoint.with_name(checkpoint.name + ".corrupt").stat().st_size == 1000
    assert "resumed from checkpoint" not in log
    _assert_identical(runs, fresh["seed7"][0])
    _assert_identical(traj, fresh["seed7"][1])
