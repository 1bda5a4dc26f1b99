"""Bad input met through the workflow: each fails (or is recorded) with the culprit named,
and what was already computed stays.

- a corrupt data file (checksum mismatch): the data job fails naming the file and the key;
- a diverging run: its batch finishes, the run is recorded as ``diverged``, and its figure
  is still drawn.

(Config errors: tests/test_config.py and test_workflow.py; missing local data:
test_workflow.py; solver failures: test_convex.py; failing notebooks: test_notebooks.py.)
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pandas as pd
import pytest
from workflow_support import copy_repo, run_snakemake

# An extra figure whose depth-3 runs at learning rate 5 blow up at once.
DIVERGING_FIGURE = """\
arora2019:
  figures:
    arora2019_diverging:
      notebook: arora2019_error_vs_observations
      sweeps:
        - {task: completion, rank: 2, n_obs: [120], depth: 3, init: gaussian, init_scale: 0.1,
           lr: [5.0, 1.0e-2], optimizer: gd, seeds: 1}
"""


def _snakemake(work: Path, target: str, *options: str) -> subprocess.CompletedProcess:
    """``target`` with the test preset (``options`` may name more config files right after it)."""
    return run_snakemake(target, "--cores", "1", "--configfile", "config/test.yaml", *options, cwd=work,
                         timeout=900)


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("bad_inputs") / "repo"
    copy_repo(work)
    return work


def test_corrupt_data_file_fails_naming_file_and_key(work: Path) -> None:
    kept = "results/data/completion-r2/ground_truth.npz"
    assert _snakemake(work, kept).returncode == 0
    out = _snakemake(work, "results/data/movielens/m300.npz", "--config",
                     'data={"movielens": {"file_sha256": "' + "0" * 64 + '"}}')
    assert out.returncode != 0
    text = out.stdout + out.stderr
    assert "tests/data/u.data" in text and "data.movielens.file_sha256" in text
    assert not (work / "results/data/movielens/m300.npz").exists()
    assert (work / kept).exists()  # nothing already computed is lost


def test_diverging_run_is_recorded_and_drawn(work: Path) -> None:
    (work / "config" / "diverging.yaml").write_text(DIVERGING_FIGURE)
    out = _snakemake(work, "figures/arora2019_diverging.pdf", "config/diverging.yaml")
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    runs = pd.read_parquet(work / "results/arora2019_diverging/runs.parquet")
    status = dict(zip(runs["lr"], runs["status"]))
    assert status[5.0] == "diverged"
    assert status[1.0e-2] in {"converged", "max_iters"}
    assert (work / "figures/arora2019_diverging.pdf").stat().st_size > 0
    executed = (work / "results/notebooks/arora2019_diverging.ipynb").read_text()
    assert "diverged" in executed  # the notebook reports the failed run
