"""A training job killed with SIGKILL resumes from its checkpoint through Snakemake.

The whole workflow is killed (process group, SIGKILL: no handler runs), unlocked and
started again as a user would; the resumed job must log that it resumed and write the
same tables as an uninterrupted run (every column but the wall-clock seconds).
"""

from __future__ import annotations

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


def _snakemake(work: Path, *args: str) -> subprocess.CompletedProcess:
    return run_snakemake(*args, cwd=work)


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("resume") / "repo"
    copy_repo(work)
    (work / "config" / "long_batch.yaml").write_text(LONG_BATCH)
    return work


def _config_args() -> list[str]:
    return ["--configfile", "config/test.yaml", "config/long_batch.yaml", "--cores", "1"]


def _batch_target(work: Path) -> str:
    out = _snakemake(work, "-n", "--nolock", *_config_args())
    assert out.returncode == 0, out.stdout + out.stderr
    batches = sorted(set(re.findall(r"results/runs/(completion-r2-m200-d3-grouprmsprop-\w+)/runs\.parquet",
                                    out.stdout + out.stderr)))
    assert len(batches) == 1, batches
    return batches[0]


def test_sigkilled_training_job_resumes_to_identical_tables(work: Path) -> None:
    batch = _batch_target(work)
    target = f"results/runs/{batch}/runs.parquet"
    checkpoint = work / "logs" / "train_factorization_batch" / f"{batch}.checkpoint.pt"
    rule_log = work / "logs" / "train_factorization_batch" / f"{batch}.log"

    # 1. Start, wait for a checkpoint written well into training, kill everything.
    proc = subprocess.Popen([str(BIN / "snakemake"), target, *_config_args()], cwd=work,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            text = rule_log.read_text() if rule_log.exists() else ""
            if len(re.findall(r"checkpoint written at iteration", text)) >= 2:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the batch finished before it could be killed; make it longer"
        assert checkpoint.exists(), "no checkpoint written before the deadline"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    assert not (work / target).exists()

    # 2. As a user would: unlock, run again (--rerun-incomplete comes from profiles/default).
    assert _snakemake(work, "--unlock", *_config_args()).returncode == 0
    out = _snakemake(work, target, *_config_args())
    assert out.returncode == 0, out.stdout + out.stderr
    resumed = re.search(r"resumed from checkpoint .* at iteration (\d+)", rule_log.read_text())
    assert resumed and int(resumed.group(1)) > 0, rule_log.read_text()[-3000:]
    assert not checkpoint.exists()  # removed once the batch is complete
    resumed_runs = pd.read_parquet(work / target)
    resumed_traj = pd.read_parquet(work / f"results/runs/{batch}/trajectories.parquet")

    # 3. The same batch uninterrupted.
    out = _snakemake(work, target, "--forcerun", "train_factorization_batch", *_config_args())
    assert out.returncode == 0, out.stdout + out.stderr
    assert "resumed from checkpoint" not in rule_log.read_text()
    fresh_runs = pd.read_parquet(work / target)
    fresh_traj = pd.read_parquet(work / f"results/runs/{batch}/trajectories.parquet")

    assert (fresh_runs["status"] == "max_iters").all() and (fresh_runs["iterations"] == 20000).all()
    volatile = [c for c in fresh_runs.columns if "wall" in c]
    pd.testing.assert_frame_equal(resumed_runs.drop(columns=volatile), fresh_runs.drop(columns=volatile))
    volatile = [c for c in fresh_traj.columns if "wall" in c or "seconds" in c]
    pd.testing.assert_frame_equal(resumed_traj.drop(columns=volatile), fresh_traj.drop(columns=volatile))
