"""Helpers shared by the workflow tests: a copy of the repository to run Snakemake in,
and config overrides for planning the paper preset on a machine without ``../shared``.

The paper preset reads the MovieLens file and the Razin & Cohen data sets from the
team's shared copy. A clean clone elsewhere (CI) has no such copy; the pipeline then
refuses the config up front (``check_local_data``), so the planning tests switch to
the download sources, which plan the same figures.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # snakemake and snakefmt of the test interpreter
# Outputs, state and environments stay behind: a copy starts like a fresh clone.
COPY_IGNORE = shutil.ignore_patterns(
    ".venv", ".git", ".snakemake", "results", "logs", "benchmarks", "build", "generated",
    "__pycache__", ".pytest_cache", "*.pdf", "*.png", "resources", "archive",
)


def copy_repo(dest: Path) -> Path:
    """Copy the repository's sources (no outputs, no .venv) to ``dest`` and return it.

    Snakemake's jobs and the notebook kernels in the copy import ``implicit_reg`` as
    installed (this checkout's sources, editable), not the copy's ``src/``: nothing puts
    a directory on the import path.
    """
    shutil.copytree(ROOT, dest, ignore=COPY_IGNORE)
    return dest


def run_snakemake(*args: str, cwd: Path = ROOT, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run this interpreter's ``snakemake`` with ``args`` in ``cwd``, capturing its output."""
    return subprocess.run([str(BIN / "snakemake"), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def razin2020_data_present(repo: Path = ROOT) -> bool:
    return (repo.parent / "shared" / "razin2020_data").is_dir()


def movielens_present(repo: Path = ROOT) -> bool:
    return (repo.parent / "shared" / "data" / "ml-100k" / "u.data").is_file()


def paper_data_overrides(repo: Path = ROOT) -> list[str]:
    """Snakemake arguments that replace missing shared data by the download rules.

    A config file rather than ``--config`` (which reads ``null`` as a string); it is
    merged on top of the Snakefile's config, and a test's own ``--config`` still wins.
    """
    values: dict = {}
    if not movielens_present(repo):
        values["data"] = {"movielens": {"path": None, "split": "seeded_permutation"}}
    if not razin2020_data_present(repo):
        values["razin2020"] = {"data": {"source": "download"}}
    if not values:
        return []
    name = "-".join(sorted(values))
    path = Path(tempfile.gettempdir()) / f"implicit-reg-paper-data-overrides-{name}.yaml"
    path.write_text(yaml.safe_dump(values))
    return ["--configfile", str(path)]
