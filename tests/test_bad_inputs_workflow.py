"""Bad input met through the workflow: each fails (or is recorded) with the culprit named,
and what was already computed stays.

- a corrupt data file (checksum mismatch): the data job fails naming the file and the key;
- MovieLens contents (rating out of 1..5, duplicate (user, item), malformed line): the split
  fails naming ``file:line``;
- an authors' ``.pt`` file in resources/ that differs from its ``pt_sha256``, or that is
  unreadable: the conversion fails naming the file and the config key;
- a failing figure notebook: the executed copy the message points to survives under logs/;
- a missing ``latexmk``: the message points to scripts/setup.sh, the previous PDF stays;
- a figure name that is not an identifier, an empty ``razin2020.data.data_dir``: refused
  before any job, naming the key;
- a diverging run: its batch finishes, the run is recorded as ``diverged``, and its figure
  is still drawn.

(Config errors: tests/test_config.py, test_config_checks.py and test_workflow.py; missing
local data: test_workflow.py; solver failures: test_convex.py; corrupt or foreign
checkpoints: test_checkpoint.py and test_resume_workflow.py.)
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from workflow_support import BIN, copy_repo

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


def _snakemake(work: Path, target: str, *options: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """``target`` with the test preset (``options`` may name more config files right after it)."""
    args = [str(BIN / "snakemake"), target, "--cores", "1", "--configfile", "config/test.yaml", *options]
    return subprocess.run(args, cwd=work, capture_output=True, text=True, timeout=900, env=env)


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


KEPT = "results/data/completion-r2/ground_truth.npz"


def _kept(work: Path) -> Path:
    """A finished output that no failure below may delete."""
    if not (work / KEPT).exists():
        assert _snakemake(work, KEPT).returncode == 0
    return work / KEPT


@pytest.mark.parametrize(
    "line, replacement, message",
    [(5, "3\t7\t9\t0", "rating 9 is outside 1..5"),
     (7, "13\t36\t2\t0", "user 13 rated item 36 already on line 1"),
     (9, "3\t7", "expected tab-separated integers")],
    ids=["rating", "duplicate", "malformed"],
)
def test_bad_movielens_contents_fail_naming_file_and_line(work: Path, line: int, replacement: str,
                                                          message: str) -> None:
    kept = _kept(work)
    lines = (work / "tests/data/u.data").read_text().splitlines()
    lines[line - 1] = replacement
    bad = work / "tests/data/bad_u.data"
    bad.write_text("\n".join(lines) + "\n")
    digest = hashlib.sha256(bad.read_bytes()).hexdigest()
    out = _snakemake(work, "results/data/movielens/m300.npz", "--config",
                     f'data={{"movielens": {{"path": "tests/data/bad_u.data", "file_sha256": "{digest}"}}}}')
    assert out.returncode != 0
    text = out.stdout + out.stderr
    assert f"tests/data/bad_u.data:{line}: " in text and message in text, text[-3000:]
    assert kept.exists()


DATASET = "completion_2x2_w_1_1_0"
PT = f"resources/razin2020/dmf/{DATASET}.pt"


@pytest.mark.parametrize("case", ["other_sha256", "unreadable"])
def test_damaged_razin_pt_input_names_file_and_key(work: Path, case: str) -> None:
    """A .pt already in resources/ is re-hashed; an unreadable one is a clear error, not a torch traceback."""
    kept = _kept(work)
    pt = work / PT
    pt.parent.mkdir(parents=True, exist_ok=True)
    pt.write_bytes(b"PK\x03\x04 truncated download")
    config = {"data": {"source": "download"}}
    if case == "unreadable":  # its sha256 matches the config: the file itself is the problem
        config["data"]["datasets"] = {DATASET: {"pt_sha256": hashlib.sha256(pt.read_bytes()).hexdigest()}}
    import json

    out = _snakemake(work, f"resources/razin2020/dmf/{DATASET}.json", "--config",
                     f"razin2020={json.dumps(config)}")
    assert out.returncode != 0
    text = out.stdout + out.stderr
    key = f"razin2020.data.datasets.{DATASET}"
    assert PT in text and key in text, text[-3000:]
    if case == "other_sha256":
        assert f"differs from {key}.pt_sha256" in text
    else:
        assert "not a readable .pt data file" in text and "weights_only=False" not in text
    assert pt.exists() and kept.exists()


BROKEN_FIGURE = """\
arora2019:
  figures:
    arora2019_broken:
      notebook: broken_figure
      sweeps:
        - {task: completion, rank: 2, n_obs: [120], depth: 1, init: gaussian, init_scale: 0.1,
           lr: 1.0e-2, optimizer: gd, seeds: 1, max_iters: 100}
"""
BROKEN_NOTEBOOK = """\
# %% tags=["parameters"]
runs_path = ""
trajectories_path = ""
figure_pdf = ""
figure_png = ""

# %%
raise ValueError(f"cannot draw {runs_path}")
"""


def test_failing_notebook_keeps_its_executed_copy_under_logs(work: Path) -> None:
    (work / "config" / "broken.yaml").write_text(BROKEN_FIGURE)
    (work / "workflow" / "notebooks" / "broken_figure.py").write_text(BROKEN_NOTEBOOK)
    out = _snakemake(work, "figures/arora2019_broken.pdf", "config/broken.yaml")
    assert out.returncode != 0
    text = out.stdout + out.stderr
    log = (work / "logs/render_figure/arora2019_broken.log").read_text()
    copy = "logs/render_figure/arora2019_broken.failed.ipynb"
    assert f"executed copy with the error: {copy}" in log, log[-3000:]
    assert "cannot draw results/arora2019_broken/runs.parquet" in (work / copy).read_text()
    assert not (work / "results/notebooks/arora2019_broken.ipynb").exists()  # Snakemake removed the output
    assert (work / "results/arora2019_broken/runs.parquet").exists()  # the finished table stays
    assert "NotebookFailed" in text or "arora2019_broken" in text


def test_missing_latexmk_points_to_setup_and_keeps_the_previous_pdf(work: Path, tmp_path: Path) -> None:
    """PATH without latexmk; the report of one selected figure; the previous PDF must survive."""
    (work / "config" / "diverging.yaml").write_text(DIVERGING_FIGURE)
    (work / "config" / "only_diverging.yaml").write_text("figures: [arora2019_diverging]\n")
    options = ["config/diverging.yaml", "config/only_diverging.yaml"]
    assert _snakemake(work, "figures/arora2019_diverging.pdf", *options).returncode == 0
    pdf = work / "paper/build/report.pdf"
    pdf.parent.mkdir(parents=True, exist_ok=True)
    pdf.write_bytes(b"%PDF-1.5 the previous report")
    farm = tmp_path / "bin"  # every command of the system but latexmk
    farm.mkdir()
    for directory in ("/usr/local/bin", "/usr/bin", "/bin"):
        for tool in Path(directory).glob("*") if Path(directory).is_dir() else []:
            if tool.name != "latexmk" and not (farm / tool.name).exists():
                (farm / tool.name).symlink_to(tool)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{farm}"}
    assert shutil.which("latexmk", path=env["PATH"]) is None
    out = _snakemake(work, "paper/build/report.pdf", *options, "--forcerun", "report_pdf", env=env)
    assert out.returncode != 0
    text = out.stdout + out.stderr
    assert "latexmk not found" in text and "scripts/setup.sh" in text, text[-3000:]
    assert pdf.read_bytes() == b"%PDF-1.5 the previous report"
    assert (work / "figures/arora2019_diverging.pdf").exists()


def test_bad_figure_name_is_refused_before_any_job(work: Path) -> None:
    kept = _kept(work)
    # a name needs no paper prefix (issue 27) but must be an identifier, and a selected one must exist
    (work / "config" / "badname.yaml").write_text(DIVERGING_FIGURE.replace("arora2019_diverging", "diverging-1"))
    for options, says in ((["config/badname.yaml"], "figure name"),
                          (["--config", "figures=[\"fig1\"]"], "no figure 'fig1'")):
        out = _snakemake(work, "-n", *options)
        text = out.stdout + out.stderr
        assert out.returncode != 0 and says in text and "Job stats" not in text, text[-3000:]
    assert kept.exists()


def test_empty_razin_data_dir_is_refused_naming_the_key(work: Path) -> None:
    kept = _kept(work)
    out = _snakemake(work, "-n", "--config", 'razin2020={"data": {"source": "shared", "data_dir": ""}}')
    text = out.stdout + out.stderr
    assert out.returncode != 0 and "razin2020.data.data_dir: empty" in text and "Job stats" not in text, text[-3000:]
    assert kept.exists()
