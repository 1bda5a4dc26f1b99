"""A fresh clone with nothing beside it builds the report from the committed archive (issue 26).

What a new user does first: clone the repository and run ``scripts/reproduce.sh``. The
clone has no ``../shared`` and no ``$IMPLICIT_REG_SHARED_DATA``, so no data file; the
committed ``archive/paper`` holds every result, so the default target must build all 15
figures and ``paper/build/report.pdf`` without training, solving or reading any data.
The test clones the committed HEAD into an empty temporary folder and runs Snakemake's
default target there as ``scripts/reproduce.sh`` does, with this interpreter's Snakemake
and packages but the clone's own ``src`` first on ``PYTHONPATH`` (so the committed sources
run, not this checkout's work in progress), without ``scripts/setup.sh``. It needs TeX: CI installs it (scripts/setup.sh), and there this test
fails rather than skips without it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from workflow_support import ROOT, environment_without_shared_data, run_snakemake

#: Rules that train or solve: none may run when everything is restored.
COMPUTE_RULES = {
    "train_factorization_batch", "min_nuclear_norm", "razin2020_dmf_batch", "razin2020_dmf_spread_batch",
    "razin2020_tc_train", "razin2020_tc_spread_train", "razin2020_tc_linear", "razin2020_tc_ground_truth",
}
#: Rules that read or fetch data files: a clone has none and needs none.
DATA_RULES = {
    "movielens_authors", "movielens_grouplens", "movielens_split", "razin2020_download", "razin2020_convert",
    "razin2020_dataset",
}
FIGURES_OF_BOTH_PAPERS = 15


def _user_environment(clone: Path) -> dict[str, str]:
    """A user's environment (no team data) with scripts/reproduce.sh's reproducibility settings."""
    env = environment_without_shared_data()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(clone / "src"), env.get("PYTHONPATH")]))
    epoch = subprocess.run(["git", "log", "-1", "--format=%ct"], cwd=clone, capture_output=True, text=True,
                           check=True).stdout.strip()
    env.update(OMP_NUM_THREADS="1", PYTHONHASHSEED="0", FORCE_SOURCE_DATE="1", SOURCE_DATE_EPOCH=epoch)
    return env


def _configured_figures(clone: Path) -> set[str]:
    config = yaml.safe_load((clone / "config" / "config.yaml").read_text())
    return {name for paper in ("arora2019", "razin2020") for name, fig in config[paper]["figures"].items()
            if (fig or {}).get("enabled", True)}


@pytest.mark.slow
def test_fresh_clone_builds_every_figure_and_the_report_from_the_archive(tmp_path: Path) -> None:
    if not shutil.which("latexmk"):
        if os.environ.get("CI"):
            pytest.fail("CI has no latexmk: scripts/setup.sh installs TeX Live, which this test needs")
        pytest.skip("no latexmk here (scripts/setup.sh installs TeX Live)")
    clone = tmp_path / "clone"  # the only entry of tmp_path: nothing beside it, no ../shared
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(clone)], check=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clone"]
    assert (clone / "archive" / "paper" / "manifest.json").is_file()

    out = run_snakemake("--cores", "all", cwd=clone, env=_user_environment(clone), timeout=1800)
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-6000:]

    # The planner restored every run, solve and Razin & Cohen job from the archive ...
    arora = re.search(r"^arora2019: (\d+) runs: (\d+) restored from the archive, 0 already in results/, "
                      r"0 to train in 0 batches.*; (\d+) convex solves: (\d+) restored, 0 in results/, 0 to solve$",
                      text, flags=re.M)
    assert arora and arora[1] == arora[2] and arora[3] == arora[4], text[:4000]
    razin = re.search(r"^razin2020: (\d+) jobs: (\d+) restored from the archive, 0 already in results/, 0 to run$",
                      text, flags=re.M)
    assert razin and razin[1] == razin[2], text[:4000]
    # ... so no job trained, solved or touched a data file.
    ran = set(re.findall(r"^(?:local)?rule (\w+):$", text, flags=re.M))
    assert "report_pdf" in ran and "render_figure" in ran, text[-4000:]
    assert not ran & (COMPUTE_RULES | DATA_RULES), sorted(ran & (COMPUTE_RULES | DATA_RULES))
    assert not (clone / "resources").exists()

    figures = {p.stem for p in (clone / "figures").glob("*.pdf")}
    assert len(figures) == FIGURES_OF_BOTH_PAPERS and figures == _configured_figures(clone)
    report = clone / "paper" / "build" / "report.pdf"
    assert report.is_file() and report.read_bytes().startswith(b"%PDF")
