"""The shell entry points: --help prints usage without side effects; a dry run installs nothing."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = ("reproduce.sh", "test.sh", "setup.sh")


def _sandbox(tmp_path: Path, with_venv: bool) -> Path:
    """A copy of scripts/ whose setup.sh only leaves a marker, with stub .venv tools that log their arguments."""
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    for name in SCRIPTS:
        shutil.copy(REPO / "scripts" / name, root / "scripts" / name)
    (root / "scripts" / "setup.sh").write_text("#!/usr/bin/env bash\ntouch SETUP_RAN\n")
    if with_venv:
        bin_dir = root / ".venv" / "bin"
        bin_dir.mkdir(parents=True)
        for tool in ("python", "snakemake", "pytest"):
            stub = bin_dir / tool
            stub.write_text(f'#!/usr/bin/env bash\necho "{tool} $*" >> CALLS\n')
            stub.chmod(stub.stat().st_mode | stat.S_IEXEC)
    return root


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _run(root: Path, script: str, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("SOURCE_DATE_EPOCH",)}
    return subprocess.run(["bash", f"scripts/{script}", *args], cwd=root, env=env, capture_output=True,
                          text=True, timeout=60)


@pytest.mark.parametrize("script", SCRIPTS)
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_prints_usage_without_side_effects(tmp_path, script, flag):
    root = _sandbox(tmp_path, with_venv=False)
    if script == "setup.sh":  # the real one: its --help must stop before any set-up
        shutil.copy(REPO / "scripts" / "setup.sh", root / "scripts" / "setup.sh")
    before = _files(root)
    proc = _run(root, script, flag)
    assert proc.returncode == 0, proc.stderr
    assert "scripts/" + script in proc.stdout
    assert _files(root) == before, "--help created files"


def test_reproduce_dry_run_installs_nothing(tmp_path):
    root = _sandbox(tmp_path, with_venv=True)
    proc = _run(root, "reproduce.sh", "-n", "--configfile", "config/test.yaml")
    assert proc.returncode == 0, proc.stderr
    assert not (root / "SETUP_RAN").exists()
    calls = (root / "CALLS").read_text()
    assert "snakemake --cores all -n --configfile config/test.yaml" in calls


def test_reproduce_combined_dry_run_flag(tmp_path):
    root = _sandbox(tmp_path, with_venv=True)
    assert _run(root, "reproduce.sh", "-np").returncode == 0
    assert not (root / "SETUP_RAN").exists()


def test_reproduce_without_dry_run_sets_up(tmp_path):
    root = _sandbox(tmp_path, with_venv=True)
    proc = _run(root, "reproduce.sh", "--configfile", "config/test.yaml")
    assert proc.returncode == 0, proc.stderr
    assert (root / "SETUP_RAN").exists()


def test_reproduce_dry_run_without_venv_names_setup(tmp_path):
    root = _sandbox(tmp_path, with_venv=False)
    proc = _run(root, "reproduce.sh", "--dry-run")
    assert proc.returncode == 2
    assert "scripts/setup.sh" in proc.stderr
    assert not (root / "SETUP_RAN").exists() and not (root / ".venv").exists()
