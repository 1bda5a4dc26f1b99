"""A figure added by a config overlay is in the PDF, with a generated section, and the PDF states
the overlay's setup (issue 27 item 2). Builds the test preset's new figure alone (about a minute)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from workflow_support import copy_repo, run_snakemake

pytestmark = pytest.mark.skipif(shutil.which("latexmk") is None or shutil.which("pdftotext") is None,
                                reason="needs TeX and poppler (scripts/setup.sh installs them)")

#: the overlay: one more Arora et al. figure, drawn by an existing notebook under a new name, built alone
OVERLAY = {
    "figures": ["arora2019_rank3_depths"],
    "arora2019": {"figures": {"arora2019_rank3_depths": {
        "notebook": "arora2019_error_vs_observations",
        "notebook_params": {"y_scale": "linear"},
        "title": "Rank 3, depths 2 to 4",
        "sweeps": [{"task": "completion", "rank": 3, "n_obs": [150, 250], "depth": [2, 3, 4], "init": "gaussian",
                    "init_scale": 1.0e-2, "lr": 1.0e-2, "optimizer": "grouprmsprop", "seeds": 1}],
    }}},
}


@pytest.fixture(scope="module")
def overlay_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = copy_repo(tmp_path_factory.mktemp("overlay") / "repo")
    (work / "overlay.yaml").write_text(yaml.safe_dump(OVERLAY), encoding="utf-8")
    out = run_snakemake("--cores", "2", "--configfile", "config/test.yaml", "overlay.yaml", cwd=work, timeout=900)
    assert out.returncode == 0, (out.stdout + out.stderr)[-6000:]
    return work


def test_an_overlay_figure_gets_a_generated_section(overlay_build: Path) -> None:
    pdf = overlay_build / "paper" / "build" / "report.pdf"
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    flat = re.sub(r"\s+", " ", text)
    assert "Further figures of this configuration" in flat and "Rank 3, depths 2 to 4" in flat
    # its caption, source, setup and note are generated
    assert "(Added by the configuration.)" in flat and "6 runs (completion runs of deep matrix factorization)" in flat
    assert "drawn by workflow/notebooks/arora2019_error_vs_observations.py" in flat
    assert re.search(r"Runs: completion, 20 ?× ?20, rank 3, m = 150 and 250 observed entries, depths 2, 3 and 4", flat)
    assert "No published value refers to arora2019_rank3_depths" in flat
    # the test preset's setup, not the paper's
    assert re.search(r"A 20 ?× ?20 ground truth", flat) and not re.search(r"100 ?× ?100 ground truth", flat)
    sections = (overlay_build / "paper" / "generated" / "figure_sections.tex").read_text()
    assert sections.count("\\subsection{") == 1  # the hand-written figures are not repeated
    assert (overlay_build / "figures" / "arora2019_rank3_depths.pdf").stat().st_size > 1000
