"""Tests for implicit_reg.results.provenance."""

from __future__ import annotations

import platform
import shutil
import subprocess
from pathlib import Path

import pytest

from implicit_reg.results.provenance import (
    PACKAGES,
    config_hash,
    git_commit,
    package_versions,
    provenance,
    provenance_tex,
)

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
        check=True, capture_output=True,
    )


def test_config_hash_is_canonical():
    a = {"b": [1, 2.5, {"z": None, "y": "s"}], "a": {"x": True}}
    b = {"a": {"x": True}, "b": [1, 2.5, {"y": "s", "z": None}]}
    h = config_hash(a)
    assert h == config_hash(b)
    assert len(h) == 12 and all(c in "0123456789abcdef" for c in h)
    assert h != config_hash({**a, "c": 1})
    # known value: sha256('{"a":1}')
    assert config_hash({"a": 1}) == "015abd7f5cc5"


def test_package_versions():
    v = package_versions(("pytest", "surely-not-installed-xyz"))
    assert v["pytest"] == pytest.__version__
    assert v["surely-not-installed-xyz"] == "absent"


def test_outside_git_is_unknown(tmp_path):
    assert git_commit(tmp_path) == {"commit": "unknown", "dirty": None}
    prov = provenance(tmp_path, {"a": 1})
    assert prov["commit"] == "unknown" and prov["dirty"] is None
    assert prov["python"] == platform.python_version()
    assert set(prov["versions"]) == set(PACKAGES)


@needs_git
def test_git_commit_and_dirty(tmp_path):
    _git(tmp_path, "init", "-q")
    assert git_commit(tmp_path)["commit"] == "unknown"  # no commit yet
    (tmp_path / "f.txt").write_text("1")
    _git(tmp_path, "add", "f.txt")
    _git(tmp_path, "commit", "-q", "-m", "x")
    info = git_commit(tmp_path)
    assert len(info["commit"]) >= 7 and info["dirty"] is False
    (tmp_path / "untracked.txt").write_text("ignored for dirtiness")
    assert git_commit(tmp_path)["dirty"] is False
    (tmp_path / "f.txt").write_text("2")
    assert git_commit(tmp_path)["dirty"] is True


def test_provenance_tex_escapes_and_defines_macros():
    prov = {
        "commit": "abc1234",
        "dirty": True,
        "config_hash": "0123456789ab",
        "python": "3.11.7",
        "versions": {"torch": "2.13.0+cpu", "my_pkg": "1.0_rc#1", "tensorly": "absent"},
    }
    tex = provenance_tex(prov)
    for name in ("ProvCommit", "ProvConfigHash", "ProvVersions", "ProvPython"):
        assert f"\\providecommand{{\\{name}}}{{}}\\renewcommand{{\\{name}}}" in tex
    assert "abc1234 (dirty)" in tex
    assert r"my\_pkg~1.0\_rc\#1" in tex
    assert "torch~2.13.0+cpu" in tex and "Python 3.11.7" in tex
    clean = provenance_tex({**prov, "dirty": False})
    assert "(dirty)" not in clean


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed")
def test_provenance_tex_compiles(tmp_path):
    (tmp_path / "prov.tex").write_text(provenance_tex(provenance(tmp_path, {"x": [1, 2]})))
    (tmp_path / "t.tex").write_text(
        "\\documentclass{article}\\usepackage[T1]{fontenc}\n"
        "\\newcommand{\\ProvCommit}{default}\n"  # a default defined before the fragment is fine
        "\\input{prov.tex}\\begin{document}\\ProvCommit; \\ProvConfigHash; \\ProvVersions\\end{document}\n"
    )
    proc = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "t.tex"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
