"""Provenance of a pipeline run: git commit, config hash and package versions.

:func:`provenance` collects the facts into a plain dict (JSON-serialisable);
:func:`provenance_tex` turns that dict into LaTeX macros for the report's
title page::

    \\ProvCommit      e.g. ``1a2b3c4`` or ``1a2b3c4 (dirty)`` or ``unknown``
    \\ProvConfigHash  first 12 hex digits of sha256(canonical JSON of the config)
    \\ProvPython      Python version
    \\ProvVersions    ``Python 3.11.7, torch 2.13.0+cpu, numpy 2.4.6, ...``

Nothing here depends on the wall clock, so the output is reproducible for a
given commit, config and environment.
"""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable

from implicit_reg.core.latex_text import latex_escape
from implicit_reg.core.numerics import numerics_version

__all__ = [
    "PACKAGES", "config_hash", "git_commit", "package_versions", "provenance", "provenance_tex",
    "table_provenance",
]

#: distributions whose versions are recorded (importlib.metadata names)
PACKAGES = ("torch", "numpy", "pandas", "cvxpy", "scs", "numba", "snakemake", "matplotlib")


def _git(repo_dir: Path, *args: str) -> str | None:
    try:
        proc = subprocess.run(
            ["git", "-C", str(repo_dir), *args],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def git_commit(repo_dir: str | Path) -> dict[str, Any]:
    """``{"commit": short sha or "unknown", "dirty": bool or None}``.

    ``dirty`` means tracked files differ from the commit (untracked files,
    e.g. pipeline outputs, are ignored).  Outside a git work tree, without
    any commit or without git, the commit is ``"unknown"`` and dirty ``None``.
    """
    repo_dir = Path(repo_dir)
    sha = _git(repo_dir, "rev-parse", "--short=7", "--verify", "-q", "HEAD")
    if not sha:
        return {"commit": "unknown", "dirty": None}
    status = _git(repo_dir, "status", "--porcelain", "--untracked-files=no")
    dirty = None if status is None else bool(status)
    return {"commit": sha, "dirty": dirty}


def _canonical(obj: Any) -> Any:
    """Make a config JSON-friendly (Snakemake configs may hold non-dict mappings)."""
    if isinstance(obj, dict) or hasattr(obj, "items"):
        return {str(k): _canonical(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_canonical(v) for v in obj]
    if isinstance(obj, (set, frozenset)):
        return sorted((_canonical(v) for v in obj), key=repr)
    if obj is None or isinstance(obj, (str, bool, int, float)):
        return obj
    return str(obj)


def config_hash(config: Any, length: int = 12) -> str:
    """First ``length`` hex digits of sha256 of the canonical JSON of ``config``.

    Canonical = keys sorted, no whitespace, UTF-8; key order does not matter.
    """
    text = json.dumps(_canonical(config), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def package_versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """Installed version of each distribution, ``"absent"`` when not installed."""
    out = {}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def provenance(repo_dir: str | Path, config: Any) -> dict[str, Any]:
    """Collect commit, config hash, Python and package versions.

    Keys: ``commit`` (short sha or ``"unknown"``), ``dirty`` (bool or None),
    ``config_hash`` (12 hex digits), ``python`` (e.g. ``"3.11.7"``),
    ``versions`` (dict package -> version or ``"absent"``).
    """
    info: dict[str, Any] = {}
    info.update(git_commit(repo_dir))
    info["config_hash"] = config_hash(config)
    info["python"] = platform.python_version()
    info["versions"] = package_versions()
    return info


def table_provenance(repo_dir: str | Path, config: Any, engines: Iterable[str]) -> dict[str, Any]:
    """Where a result table comes from: commit, config hash and the engines' numerics versions.

    Parameters
    ----------
    repo_dir : str or Path
        The repository whose commit is recorded.
    config : mapping
        The whole workflow config; hashed as by :func:`config_hash`, so the hash equals
        the one on the report's title page.
    engines : iterable of str
        The engines whose numbers the table holds (keys of
        :data:`implicit_reg.core.numerics.NUMERICS_VERSIONS`).

    Returns
    -------
    dict
        ``commit`` (short sha, ``" (dirty)"`` appended when tracked files differ, or
        ``"unknown"``), ``config_hash`` and ``numerics_version`` (engine -> version).
    """
    commit = git_commit(repo_dir)
    return {
        "commit": commit["commit"] + (" (dirty)" if commit["dirty"] else ""),
        "config_hash": config_hash(config),
        "numerics_version": {engine: numerics_version(engine) for engine in sorted(set(engines))},
    }


def _tex(text: Any) -> str:
    return latex_escape(text)


def _define(name: str, body: str) -> str:
    # \providecommand + \renewcommand: works whether or not the report defined a default
    return f"\\providecommand{{\\{name}}}{{}}\\renewcommand{{\\{name}}}{{{body}}}\n"


def provenance_tex(prov: dict[str, Any]) -> str:
    """LaTeX macro definitions for a :func:`provenance` dict (all text escaped)."""
    commit = _tex(prov.get("commit", "unknown"))
    if prov.get("dirty"):
        commit += " (dirty)"
    versions = prov.get("versions", {}) or {}
    parts = [f"Python {_tex(prov.get('python', 'unknown'))}"]
    parts += [f"{_tex(k)}~{_tex(v)}" for k, v in versions.items()]
    lines = [
        "% generated by implicit_reg.results.provenance -- do not edit\n",
        _define("ProvCommit", commit),
        _define("ProvConfigHash", _tex(prov.get("config_hash", "unknown"))),
        _define("ProvPython", _tex(prov.get("python", "unknown"))),
        _define("ProvVersions", ", ".join(parts)),
    ]
    return "".join(lines)
