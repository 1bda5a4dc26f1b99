"""Helpers shared by the workflow tests: a copy of the repository to run Snakemake in,
and where the team's data copies are.

The default configuration names no local data: MovieLens and Razin & Cohen's data sets
are fetched from the authors' repositories when a job reads them, and a build restored
from the archive reads none. The development and CI machines keep copies of those
files; ``$IMPLICIT_REG_SHARED_DATA`` (set by scripts/test.sh and .ci/run when
``../shared`` exists) makes the pipeline read them instead of downloading.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # snakemake and snakefmt of the test interpreter
# Outputs, state and environments stay behind: a copy starts like a fresh clone.
#: The pipeline's outputs and state: left out at the top of the copy only, since the
#: package has subpackages of the same names (``implicit_reg.results``).
_TOP_LEVEL_OUTPUTS = {".venv", ".git", ".snakemake", "results", "logs", "benchmarks", "resources", "archive"}
_ANYWHERE = shutil.ignore_patterns("build", "generated", "__pycache__", ".pytest_cache", "*.pdf", "*.png")


def COPY_IGNORE(directory: str, names: list[str]) -> set[str]:
    """What :func:`copy_repo` leaves out of ``directory`` (``shutil.copytree``'s ``ignore``)."""
    ignored = set(_ANYWHERE(directory, names))
    if Path(directory).resolve() == ROOT:
        ignored |= _TOP_LEVEL_OUTPUTS & set(names)
    return ignored


def copy_repo(dest: Path) -> Path:
    """Copy the repository's sources (no outputs, no .venv) to ``dest`` and return it.

    Snakemake's jobs and the notebook kernels in the copy import ``implicit_reg`` as
    installed (this checkout's sources, editable), not the copy's ``src/``: nothing puts
    a directory on the import path.
    """
    shutil.copytree(ROOT, dest, ignore=COPY_IGNORE)
    return dest


def run_snakemake(*args: str, cwd: Path = ROOT, timeout: int = 600,
                  env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run this interpreter's ``snakemake`` with ``args`` in ``cwd``, capturing its output."""
    return subprocess.run([str(BIN / "snakemake"), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)


#: Names the team's data directory (``data/ml-100k/u.data``, ``razin2020_data/``); see config.SHARED_DATA_ENV.
SHARED_DATA_ENV = "IMPLICIT_REG_SHARED_DATA"


def shared_data_dir(repo: Path = ROOT) -> Path:
    """The team's data copies: ``$IMPLICIT_REG_SHARED_DATA``, else ``../shared`` beside the repository."""
    return Path(os.environ.get(SHARED_DATA_ENV) or repo.parent / "shared")


def razin2020_data_present(repo: Path = ROOT) -> bool:
    return (shared_data_dir(repo) / "razin2020_data").is_dir()


def movielens_present(repo: Path = ROOT) -> bool:
    return (shared_data_dir(repo) / "data" / "ml-100k" / "u.data").is_file()


def pipeline_uses_shared_data() -> bool:
    """Whether the pipeline run by the tests reads the team's copies instead of downloading."""
    return bool(os.environ.get(SHARED_DATA_ENV)) and razin2020_data_present()


def environment_without_shared_data() -> dict[str, str]:
    """This process's environment as a user's: no team data directory."""
    return {k: v for k, v in os.environ.items() if k != SHARED_DATA_ENV}
