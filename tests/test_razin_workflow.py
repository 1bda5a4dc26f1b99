"""Razin & Cohen rules beyond the end-to-end test preset: paper-scale plan, data sources."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from workflow_support import (
    ROOT,
    copy_repo,
    environment_without_shared_data,
    pipeline_uses_shared_data,
    run_snakemake,
)

DATA = Path(os.environ.get("RAZIN2020_DATA", ROOT.parent / "shared" / "razin2020_data"))
NO_ARCHIVE = "use_archive=False"


def _snakemake(*args: str, cwd: Path = ROOT, timeout: int = 600, env=None) -> subprocess.CompletedProcess:
    return run_snakemake(*args, cwd=cwd, timeout=timeout, env=env)


def _counts(out: subprocess.CompletedProcess) -> dict[str, int]:
    return {k: int(v) for k, v in re.findall(r"^(\w+)\s+(\d+)\s*$", out.stdout + out.stderr, flags=re.M)}


def test_paper_preset_plans_every_razin_job():
    targets = [f"figures/razin2020_{f}.pdf" for f in ("fig1", "fig2", "rank3", "perturbed")]
    # every job, as without an archive (archive/paper restores the finished ones)
    out = _snakemake(*targets, "-n", "--forceall", "--nolock", "--quiet", "rules", "--config", NO_ARCHIVE)
    assert out.returncode == 0, out.stdout + out.stderr
    c = _counts(out)
    assert c["razin2020_dmf_batch"] == 5  # depths 2, 3, 4 + perturbed depths 3, 2
    assert c["razin2020_tc_train"] == 2 * (10 + 9)  # one job per (figure, data set, n)
    assert c["razin2020_tc_linear"] == 2 * (10 + 9)  # one rank estimate per distinct linear tensor
    assert c["razin2020_tc_ground_truth"] == 4
    assert c["razin2020_dataset"] == 10 and c["render_figure"] == 4
    if pipeline_uses_shared_data():
        assert "razin2020_download" not in c  # $IMPLICIT_REG_SHARED_DATA: the team's copy
    else:  # the default: the download of every data set
        assert c["razin2020_download"] == 10


def test_download_source_is_planned():
    out = _snakemake("figures/razin2020_fig1.pdf", "-n", "--forceall", "--nolock", "--quiet", "rules",
                     "--config", 'razin2020={"data": {"source": "download"}}', NO_ARCHIVE,
                     env=environment_without_shared_data())  # the variable would read the team's copy
    assert out.returncode == 0, out.stdout + out.stderr
    c = _counts(out)
    assert c["razin2020_download"] == 1 and c["razin2020_convert"] == 1


@pytest.mark.skipif(not (DATA / "dmf" / "completion_2x2_w_1_1_0.pt").exists(), reason="authors' data not available")
def test_download_convert_and_check(tmp_path: Path):
    """The download path end to end, with a file:// URL standing in for GitHub."""
    work = tmp_path / "repo"
    copy_repo(work)
    target = "results/razin2020/data/completion_2x2_w_1_1_0.json"
    url = DATA.resolve().as_uri() + "/{kind}/{name}.pt"
    config = json.dumps({"data": {"source": "download", "download": {"url": url}}})
    user = environment_without_shared_data()  # the variable would read the team's copy
    out = _snakemake(target, "--cores", "1", "--config", f"razin2020={config}", cwd=work, env=user)
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    assert (work / target).read_bytes() == (DATA / "dmf" / "completion_2x2_w_1_1_0.json").read_bytes()
    # a wrong checksum stops the data job
    bad = json.dumps({"data": {"source": "download", "download": {"url": url, "dir": "resources/other"},
                               "datasets": {"completion_2x2_w_1_1_0": {"pt_sha256": "0" * 64}}}})
    out = _snakemake(target, "--cores", "1", "--forceall", "--config", f"razin2020={bad}", cwd=work, env=user)
    assert out.returncode != 0
    assert "differs from the expected 0000" in out.stdout + out.stderr


def test_bad_dataset_reference_fails_before_any_job(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("razin2020:\n  figures:\n    razin2020_fig1:\n      datasets: [no_such_data]\n")
    out = _snakemake("-n", "--nolock", "--configfile", str(bad))
    assert out.returncode != 0
    assert "no_such_data" in out.stdout + out.stderr
