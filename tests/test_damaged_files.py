"""Damaged files are named in one line and recomputed where they can be, never a traceback.

A damaged archive manifest stops the workflow with one line naming the file and what to
do; a finished job whose table no longer matches the checksum of its record is named in
a warning, and its job is recomputed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from workflow_support import copy_repo, run_snakemake

from implicit_reg.results import archive, archive_admin
from implicit_reg.pipeline import planning

ROOT = Path(__file__).resolve().parents[1]


def _job(results: Path, name: str = "b1", keys: dict[str, str] | None = None) -> Path:
    keys = keys or {"r1": "k1", "r2": "k2"}
    d = results / "runs" / name
    d.mkdir(parents=True)
    pd.DataFrame({"run_id": list(keys), "value": np.arange(len(keys), dtype=float)}).to_parquet(d / "runs.parquet")
    pd.DataFrame({"run_id": list(keys), "iteration": [0] * len(keys)}).to_parquet(d / "trajectories.parquet")
    archive.write_job_record(d / "provenance.json", archive.JobRecord(
        "arora2019.deep_factorization", name, keys, {"runs": "runs.parquet", "trajectories": "trajectories.parquet"}))
    return d


def _archive(tmp_path: Path) -> Path:
    results, arch = tmp_path / "results", tmp_path / "archive"
    _job(results)
    archive_admin.add_jobs(results, arch, log=lambda _: None)
    shutil.rmtree(results)
    return arch


# ---------------------------------------------------------------------------- the manifest


@pytest.mark.parametrize("damage", ["truncated", "no_sha256", "no_keys", "not_utf8", "no_entries"])
def test_a_damaged_manifest_is_one_line_naming_the_file(tmp_path: Path, damage: str) -> None:
    arch = _archive(tmp_path)
    path = arch / "manifest.json"
    text = path.read_text()
    if damage == "truncated":
        path.write_text(text[: len(text) // 2])
    elif damage == "not_utf8":
        path.write_bytes(b"\xff\xfe" + text.encode()[:40])
    elif damage == "no_entries":
        path.write_text(json.dumps({"format": archive.FORMAT}))
    else:
        data = json.loads(text)
        for entry in data["entries"].values():
            del entry["sha256" if damage == "no_sha256" else "keys"]
        path.write_text(json.dumps(data))
    with pytest.raises(archive.ArchiveError) as err:
        archive.ResultStore(tmp_path / "results", arch)
    message = str(err.value)
    assert "\n" not in message and str(path) in message and "is damaged" in message
    assert "git checkout HEAD --" in message and "implicit_reg.pipeline.archive_command verify" in message
    if damage == "no_sha256":
        assert "'sha256'" in message


def test_the_command_line_names_a_damaged_manifest_without_a_traceback(tmp_path: Path) -> None:
    arch = _archive(tmp_path)
    (arch / "manifest.json").write_text('{"format": "implicit-reg-archive/1", "entr')
    for command in ("verify", "list"):
        proc = subprocess.run([sys.executable, "-m", "implicit_reg.pipeline.archive_command", command, str(arch)],
                              capture_output=True, text=True)
        assert proc.returncode == 2
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
        assert str(arch / "manifest.json") in proc.stderr


def test_prepare_turns_a_damaged_manifest_into_a_planning_error(tmp_path: Path, monkeypatch) -> None:
    arch = _archive(tmp_path)
    (arch / "manifest.json").write_text("{")
    monkeypatch.setattr(planning, "resolve_archive", lambda config: arch)
    monkeypatch.setattr(planning, "validated_config", lambda config, schemas, select=False: config)
    monkeypatch.setattr(planning, "defined_figures", lambda config: [])
    monkeypatch.setattr(planning, "select_figures", lambda config: config)
    with pytest.raises(planning.PlanningError, match="manifest.json is damaged"):
        planning.prepare({}, ROOT / "workflow" / "schemas", tmp_path / "results")


# ---------------------------------------------------------------------------- local job outputs


def test_records_carry_the_checksums_of_their_tables(tmp_path: Path) -> None:
    d = _job(tmp_path / "results")
    record = archive.read_job_record(d / "provenance.json")
    from implicit_reg.core.hashing import sha256_file

    assert record.checksums == {"runs": sha256_file(d / "runs.parquet"),
                                "trajectories": sha256_file(d / "trajectories.parquet")}
    assert archive.damaged_tables(d / "provenance.json", record) == []


@pytest.mark.parametrize("damage", ["truncated", "changed", "missing"])
def test_a_damaged_result_file_is_named_and_its_job_recomputed(tmp_path: Path, damage: str) -> None:
    results = tmp_path / "results"
    d = _job(results)
    _job(results, "b2", {"r3": "k3"})
    runs = d / "runs.parquet"
    if damage == "truncated":
        runs.write_bytes(runs.read_bytes()[:-200])
    elif damage == "changed":  # a valid parquet file, but not the one the job wrote
        pd.DataFrame({"run_id": ["r1", "r2"], "value": [9.0, 9.0]}).to_parquet(runs)
    else:
        runs.unlink()
    warnings: list[str] = []
    store = archive.ResultStore(results, None, warn=warnings.append)
    assert store.find("k3").origin == "local"  # the sound job is untouched
    assert store.find("k1") is None and store.find("k2") is None
    if damage == "missing":  # a job whose table is gone never counted as finished
        assert warnings == [] and (d / "provenance.json").exists()
        return
    assert len(warnings) == 1 and "\n" not in warnings[0]
    assert str(runs) in warnings[0] and "recomputed" in warnings[0]
    # The record and the damaged file are set aside (kept for inspection), so Snakemake reruns the job.
    assert not (d / "provenance.json").exists() and (d / "provenance.json.damaged").exists()
    assert not runs.exists() and (d / "runs.parquet.damaged").exists() and (d / "trajectories.parquet").exists()
    assert archive.find_job_records(results) == [results / "runs" / "b2" / "provenance.json"]


def test_an_old_record_without_checksums_still_catches_a_truncated_table(tmp_path: Path) -> None:
    d = _job(tmp_path / "results")
    data = json.loads((d / "provenance.json").read_text())
    del data["sha256"]
    (d / "provenance.json").write_text(json.dumps(data))
    (d / "runs.parquet").write_bytes((d / "runs.parquet").read_bytes()[:100])
    warnings: list[str] = []
    assert archive.ResultStore(tmp_path / "results", None, warn=warnings.append).find("k1") is None
    assert len(warnings) == 1 and "unreadable" in warnings[0] and str(d / "runs.parquet") in warnings[0]


def test_a_damaged_job_is_not_archived(tmp_path: Path) -> None:
    results = tmp_path / "results"
    d = _job(results)
    (d / "runs.parquet").write_bytes((d / "runs.parquet").read_bytes()[:-50])
    lines: list[str] = []
    assert archive_admin.add_jobs(results, tmp_path / "archive", log=lines.append) == []
    assert len(lines) == 1 and lines[0].startswith("not archived") and str(d / "runs.parquet") in lines[0]


# ---------------------------------------------------------------------------- through Snakemake

TARGET = "results/arora2019_fig1/runs.parquet"


def test_a_truncated_runs_table_of_the_test_preset_is_recomputed(tmp_path: Path) -> None:
    """The issue's case: a truncated results/runs/<batch>/runs.parquet counted as done and failed
    every later job with ArrowInvalid; now it is named and its batch trained again."""
    work = copy_repo(tmp_path / "repo")
    args = (TARGET, "--cores", "2", "--configfile", "config/test.yaml", "--config", "use_archive=False")
    first = run_snakemake(*args, cwd=work, timeout=900)
    assert first.returncode == 0, (first.stdout + first.stderr)[-3000:]
    before = pd.read_parquet(work / TARGET)
    victim = sorted((work / "results" / "runs").glob("*/runs.parquet"))[0]
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    (work / TARGET).unlink()  # so that the figure table is read again
    second = run_snakemake(*args, cwd=work, timeout=900)
    out = second.stdout + second.stderr
    assert second.returncode == 0, out[-3000:]
    assert "ArrowInvalid" not in out and "Traceback" not in out
    assert str(victim.relative_to(work)) in out and "recomputed" in out
    assert f"train_factorization_batch" in out and victim.parent.name in out
    pd.read_parquet(victim)  # whole again
    volatile = [c for c in before.columns if "wall" in c or "seconds" in c]
    pd.testing.assert_frame_equal(pd.read_parquet(work / TARGET).drop(columns=volatile),
                                  before.drop(columns=volatile), check_exact=True)
