"""Job records: what a finished job holds, and the checks that its files are still what it wrote.

A job (a training batch, a convex solve, a Razin & Cohen run or CP-rank job) writes its
tables and, last, a *job record* ``provenance.json`` beside them: its kind, name, the
figures it serves, the provenance key of each result it holds and the sha256 of each of
its table files. The record marks the job as finished; :func:`damaged_tables` finds a
table changed or truncated since. :mod:`implicit_reg.results.archive` re-exports these names.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import pyarrow as pa
import pyarrow.parquet as pq

from implicit_reg.core.hashing import sha256_file

__all__ = ["RECORD", "JobRecord", "write_job_record", "read_job_record", "damaged_tables", "describe_damage",
           "set_aside", "find_job_records", "job_record"]

RECORD = "provenance.json"

@dataclass
class JobRecord:
    """What a finished job holds: its kind, name, keys and table files.

    ``keys`` maps an *identity* (a run id for training batches, the job name for
    single-result jobs) to its provenance key; ``tables`` maps a table name to a file
    path relative to the record's directory. ``resumed_seconds`` and
    ``resumed_cpu_seconds`` are the wall and CPU time that earlier, interrupted attempts
    of a job contributed through its checkpoint: the scheduler's benchmark file times
    only the last attempt.
    """

    kind: str
    job: str
    keys: dict[str, str]
    tables: dict[str, str]
    figures: list[str] = field(default_factory=list)
    resumed_seconds: float = 0.0
    resumed_cpu_seconds: float = 0.0
    #: table name -> sha256 of its file, filled by :func:`write_job_record` (derived from the files,
    #: so not part of a record's identity)
    checksums: dict[str, str] = field(default_factory=dict, compare=False)

    def to_json(self) -> dict[str, Any]:
        data = {"kind": self.kind, "job": self.job, "keys": dict(sorted(self.keys.items())),
                "tables": dict(sorted(self.tables.items())), "figures": sorted(self.figures)}
        if self.checksums:  # absent from records written before checksums were kept
            data["sha256"] = dict(sorted(self.checksums.items()))
        if self.resumed_seconds > 0:  # absent for a job that ran in one go, as records were before
            data["resumed_seconds"] = round(float(self.resumed_seconds), 3)
            data["resumed_cpu_seconds"] = round(float(self.resumed_cpu_seconds), 3)
        return data


def write_job_record(path: str | Path, record: JobRecord) -> None:
    """Write a job record atomically; written last by a job, it marks the job as finished.

    The record carries the sha256 of each of its table files (``record.checksums`` is
    set to them), so that a table damaged later is found before it is read
    (:func:`damaged_tables`).
    """
    path = Path(path)
    record.checksums = {name: sha256_file(path.parent / rel) for name, rel in record.tables.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record.to_json(), indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)


def read_job_record(path: str | Path) -> JobRecord:
    """Read a job record written by :func:`write_job_record`."""
    data = json.loads(Path(path).read_text())
    return JobRecord(kind=data["kind"], job=data["job"], keys=dict(data["keys"]),
                     tables=dict(data["tables"]), figures=list(data.get("figures", [])),
                     resumed_seconds=float(data.get("resumed_seconds", 0.0)),
                     # Records written before CPU time was carried: their wall time bounds it.
                     resumed_cpu_seconds=float(data.get("resumed_cpu_seconds", data.get("resumed_seconds", 0.0))),
                     checksums=dict(data.get("sha256", {})))


def damaged_tables(record_path: str | Path, record: JobRecord) -> list[tuple[Path, str]]:
    """The table files of a finished job that cannot be trusted, each with the reason.

    A file is damaged when it is missing, when its sha256 differs from the one its
    record carries, or (records written before checksums were kept) when it is a
    parquet file without a readable footer (truncated).

    Parameters
    ----------
    record_path : path
        The job record (``provenance.json``); table paths are relative to its directory.
    record : JobRecord
        The record read from it.

    Returns
    -------
    list of (Path, str)
        Each damaged file and why; empty for a sound job.
    """
    damaged = []
    for name, rel in sorted(record.tables.items()):
        path = Path(record_path).parent / rel
        if not path.is_file():
            damaged.append((path, "missing"))
        elif name in record.checksums:
            digest = sha256_file(path)
            if digest != record.checksums[name]:
                damaged.append((path, f"sha256 {digest[:12]}… ≠ job record {record.checksums[name][:12]}…"))
        elif path.suffix == ".parquet":
            try:
                pq.read_metadata(path)
            except (OSError, pa.ArrowException) as err:
                damaged.append((path, f"unreadable: {str(err).splitlines()[0]}"))
    return damaged


def describe_damage(damaged: list[tuple[Path, str]]) -> str:
    """``"<path> (<reason>); ..."``: the damaged files of a job in one line."""
    return "; ".join(f"{path} ({reason})" for path, reason in damaged)


def set_aside(record_path: str | Path, damaged: list[tuple[Path, str]]) -> list[Path]:
    """Move a damaged job's record and damaged files to ``<name>.damaged`` (kept for inspection).

    Snakemake reruns a job only when a file that another job requests is missing, and
    the record is requested by none: the damaged table must go too, so that the job
    that reads it finds it missing and the job that writes it runs again.

    Parameters
    ----------
    record_path : path
        The job record.
    damaged : list of (Path, str)
        The job's damaged files (:func:`damaged_tables`).

    Returns
    -------
    list of Path
        Where the record and the files now are.
    """
    moved = []
    for path in [Path(record_path), *(p for p, _ in damaged)]:
        if path.is_file():
            aside = path.with_name(path.name + ".damaged")
            os.replace(path, aside)
            moved.append(aside)
    return moved


def find_job_records(results_dir: str | Path) -> list[Path]:
    """Every job record under ``results_dir`` (``**/provenance.json``), sorted."""
    root = Path(results_dir)
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*" + RECORD) if p.is_file())


def job_record(provenance: Mapping[str, Any], tables: Mapping[str, str], resumed_seconds: float = 0.0,
               resumed_cpu_seconds: float = 0.0) -> JobRecord:
    """The record of a single-result job from its ``provenance`` params (kind, job, key, figures)."""
    return JobRecord(kind=provenance["kind"], job=provenance["job"], keys={provenance["job"]: provenance["key"]},
                     tables=dict(tables), figures=list(provenance.get("figures", [])),
                     resumed_seconds=resumed_seconds, resumed_cpu_seconds=resumed_cpu_seconds)
