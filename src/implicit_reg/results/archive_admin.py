"""Administration of a results archive: adding jobs, verifying, packing.

The archive's format, its provenance keys and the lookup of results are in
:mod:`implicit_reg.results.archive`; this module writes archives. :func:`add_jobs` stores every
finished job of ``results/`` that the archive lacks (one entry file per job, named by
the job and the hash of its keys, with the job's Snakemake benchmark times), and
:func:`verify` checks every entry's sha256 against the manifest. An archive is published
as a ``.tar.gz`` (:func:`pack_archive`) and read back from any URL with its sha256
(:func:`implicit_reg.results.archive.fetch_archive`). The command line is
:mod:`implicit_reg.pipeline.archive_command`.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import tarfile
from pathlib import Path
from typing import Any, Callable, Mapping

import pyarrow.compute as pc
import pyarrow.parquet as pq

from implicit_reg.results.archive import (
    ENTRY_SUFFIX,
    FORMAT,
    MANIFEST,
    ArchiveError,
    JobRecord,
    damaged_tables,
    describe_damage,
    find_job_records,
    load_manifest,
    provenance_key,
    read_entry,
    read_job_record,
    write_entry,
)
from implicit_reg.core.hashing import sha256_file
from implicit_reg.core.numerics import NUMERICS_VERSIONS

__all__ = ["add_jobs", "job_benchmark", "job_seconds", "retime_resumed", "pack_archive", "verify"]

# ---------------------------------------------------------------------------- adding jobs


def _write_manifest(archive_dir: Path, manifest: Mapping[str, Any]) -> None:
    # One entry per line, sorted: adding entries adds lines, so git stores small diffs.
    lines = [f"  {json.dumps(k)}: {json.dumps(v, sort_keys=True)}" for k, v in sorted(manifest["entries"].items())]
    text = "{\n" + f'"format": {json.dumps(FORMAT)},\n"entries": {{\n' + ",\n".join(lines) + "\n}\n}\n"
    tmp = archive_dir / (MANIFEST + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, archive_dir / MANIFEST)


def _safe_name(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


#: the rule whose benchmark file times a job of each kind
_BENCHMARK_RULES = {
    "arora2019.deep_factorization": ("train_factorization_batch",),
    "arora2019.min_nuclear_norm": ("min_nuclear_norm",),
    "razin2020.two_by_two": ("razin2020_dmf_batch",),
    "razin2020.tensor_completion": ("razin2020_tc_train",),
    "razin2020.cp_rank": ("razin2020_tc_ground_truth", "razin2020_tc_linear"),
}


def job_benchmark(benchmarks_dir: str | Path, record: JobRecord) -> dict[str, float]:
    """Wall and CPU seconds of a job from its Snakemake benchmark file ({} when there is none).

    Benchmark files are named by the job's wildcards joined by ``-``; a CP-rank job of a
    ground truth ``<name>/ground_truth`` is ``razin2020_tc_ground_truth/<name>.tsv``.

    Parameters
    ----------
    benchmarks_dir : path
        Snakemake's ``benchmarks/`` directory.
    record : JobRecord
        The job.

    Returns
    -------
    dict of str to float
        ``wall_seconds`` and ``cpu_seconds`` of the job's last benchmark row (and
        ``max_rss_mb``, its peak resident memory, when measured), or {}.
    """
    job = record.job.replace("/instances/", "/")
    stems = [job.replace("/", "-"), job.replace("/linear", ""), job.split("/")[0]]
    rules = _BENCHMARK_RULES.get(record.kind, ())
    if "/instances/" in record.job:  # the instance spread's jobs have rules of their own
        rules = {"razin2020.two_by_two": ("razin2020_dmf_spread_batch",),
                 "razin2020.tensor_completion": ("razin2020_tc_spread_train",)}.get(record.kind, rules)
    for rule in rules:
        for stem in stems:
            path = Path(benchmarks_dir) / rule / f"{stem}.tsv"
            if path.is_file() and not (rule.endswith("ground_truth") and not record.job.endswith("ground_truth")):
                lines = path.read_text().splitlines()
                if len(lines) >= 2:
                    row = dict(zip(lines[0].split("\t"), lines[-1].split("\t")))
                    try:
                        times = {"wall_seconds": float(row["s"]), "cpu_seconds": float(row["cpu_time"])}
                    except (KeyError, ValueError):
                        return {}
                    try:  # the measured peak, which checks implicit_reg.pipeline.memory's estimates
                        times["max_rss_mb"] = float(row["max_rss"])
                    except (KeyError, ValueError):
                        pass
                    return times
    return {}


def job_seconds(benchmarks_dir: str | Path, record: JobRecord) -> dict[str, float]:
    """A job's wall and CPU seconds over all its attempts ({} when nothing timed it).

    The benchmark file times the last attempt; a job that resumed from a checkpoint adds
    the earlier attempts' wall and CPU time, ``record.resumed_seconds`` and
    ``record.resumed_cpu_seconds``, which its checkpoint carried. (Records written before
    the CPU time was carried use the wall time for it, an upper bound for a job on one
    thread.)

    Parameters
    ----------
    benchmarks_dir : path
        Snakemake's ``benchmarks/`` directory.
    record : JobRecord
        The job.

    Returns
    -------
    dict of str to float
        ``wall_seconds`` and ``cpu_seconds``, plus ``resumed_seconds`` and
        ``resumed_cpu_seconds`` for a resumed job.
    """
    seconds = job_benchmark(benchmarks_dir, record)
    if record.resumed_seconds > 0 and seconds:
        return _with_earlier_attempts(seconds, record.resumed_seconds, record.resumed_cpu_seconds)
    return seconds


def _with_earlier_attempts(seconds: Mapping[str, float], resumed_seconds: float,
                           resumed_cpu_seconds: float) -> dict[str, float]:
    """``wall_seconds``/``cpu_seconds`` of the last attempt plus the earlier attempts'."""
    earlier = {"wall_seconds": resumed_seconds, "cpu_seconds": resumed_cpu_seconds}
    out = {k: float(v) + earlier.get(k, 0.0) for k, v in seconds.items()}
    out["resumed_seconds"] = resumed_seconds
    out["resumed_cpu_seconds"] = resumed_cpu_seconds
    return out


def add_jobs(results_dir: str | Path, archive_dir: str | Path, *, commit: str = "unknown",
             versions: Mapping[str, str] | None = None, benchmarks_dir: str | Path = "benchmarks",
             only_keys: set[str] | None = None, log: Callable[[str], None] = print) -> list[str]:
    """Add every finished job under ``results_dir`` that the archive lacks.

    A job is finished when its record ``provenance.json`` exists. An entry is named by
    the job and the hash of its keys, so the same job computed twice is stored once.

    Parameters
    ----------
    results_dir : path
        Where jobs write their records (``results/``).
    archive_dir : path
        The archive (created when absent).
    commit : str
        The code's commit, stored with each entry.
    versions : mapping, optional
        Package versions, stored with each entry.
    benchmarks_dir : path
        Snakemake benchmark files (job times, see :func:`job_benchmark`).
    only_keys : set of str, optional
        Only jobs holding one of these keys (the jobs a config needs).
    log : callable
        Receives one line per entry added.

    Returns
    -------
    list of str
        The manifest names of the entries added.
    """
    archive_dir = Path(archive_dir)
    archive_dir.mkdir(parents=True, exist_ok=True)
    manifest = load_manifest(archive_dir)
    known = {k for e in manifest["entries"].values() for k in e["keys"].values()}
    added = []
    for record_path in find_job_records(results_dir):
        record = read_job_record(record_path)
        if record.keys and set(record.keys.values()) <= known:
            continue
        if only_keys is not None and not set(record.keys.values()) & only_keys:
            continue  # a job of another config (another preset in the same results/)
        damaged = damaged_tables(record_path, record)
        if damaged:
            log(f"not archived: {record.kind} {record.job}: damaged result {describe_damage(damaged)} "
                "(rerun the workflow to recompute it)")
            continue
        tables = {}
        for name, rel in record.tables.items():
            tables[name] = pq.read_table(record_path.parent / rel)
        job_key = provenance_key({"keys": sorted(record.keys.values())})
        rel_name = f"entries/{_safe_name(record.kind)}/{_safe_name(record.job)}-{job_key[:10]}{ENTRY_SUFFIX}"
        target = archive_dir / rel_name
        info = {"kind": record.kind, "job": record.job, "keys": record.keys, "figures": record.figures,
                "numerics": dict(NUMERICS_VERSIONS), "commit": commit,
                "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
        write_entry(tables, target, info)
        manifest["entries"][rel_name] = {**info, "sha256": sha256_file(target), "size": target.stat().st_size,
                                         "versions": dict(versions or {}),
                                         **job_seconds(benchmarks_dir, record)}
        known |= set(record.keys.values())
        added.append(rel_name)
        log(f"archived {record.kind} {record.job}: {len(record.keys)} result(s) -> {rel_name}")
    if added:
        _write_manifest(archive_dir, manifest)
    return added


def retime_resumed(archive_dir: str | Path, log: Callable[[str], None] = print) -> list[str]:
    """Add earlier attempts' time to entries archived before job records carried it.

    Such an entry's benchmark timed only its job's last attempt. Its runs table's
    ``wall_seconds`` counts the training from the first attempt on (the checkpoint
    carries the clock), so the largest of them less the benchmark's wall time is a lower
    bound on what the earlier attempts spent; it is added to ``wall_seconds`` and
    ``cpu_seconds`` (training runs on one thread) and kept as ``resumed_seconds``.
    Entries that already have ``resumed_seconds``, or whose runs never resumed, are left
    as they are, so running this twice changes nothing.

    Parameters
    ----------
    archive_dir : path
        The archive.
    log : callable
        Receives one line per retimed entry.

    Returns
    -------
    list of str
        The retimed entries' names.
    """
    archive_dir = Path(archive_dir)
    manifest = load_manifest(archive_dir)
    retimed = []
    for name, e in sorted(manifest["entries"].items()):
        if "resumed_seconds" in e or "wall_seconds" not in e or not (archive_dir / name).is_file():
            continue
        try:
            runs = read_entry(archive_dir / name, ["runs"])["runs"]
        except KeyError:
            continue  # a single-row entry (a convex solve) without a runs table
        if "wall_seconds" not in runs.column_names or runs.num_rows == 0:
            continue
        training = float(pc.max(runs["wall_seconds"]).as_py() or 0.0)
        earlier = training - float(e["wall_seconds"])
        if earlier <= 0:
            continue
        e.update(_with_earlier_attempts({k: e[k] for k in ("wall_seconds", "cpu_seconds") if k in e},
                                        round(earlier, 3), round(earlier, 3)))
        retimed.append(name)
        log(f"retimed {e['job']}: +{earlier:.0f} s of earlier attempts")
    if retimed:
        _write_manifest(archive_dir, manifest)
    return retimed


# ---------------------------------------------------------------------------- publishing


def pack_archive(archive_dir: str | Path, tarball: str | Path) -> str:
    """Pack an archive directory into a ``.tar.gz`` for publishing.

    Parameters
    ----------
    archive_dir : path
        The archive (stored under its own name inside the tarball).
    tarball : path
        The ``.tar.gz`` to write.

    Returns
    -------
    str
        The tarball's sha256 (what ``archive.sha256`` of a config must name).
    """
    archive_dir = Path(archive_dir)
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(archive_dir, arcname=archive_dir.name)
    return sha256_file(tarball)


# ---------------------------------------------------------------------------- command line


def verify(archive_dir: str | Path) -> list[str]:
    """Names of the entries whose file is missing or whose sha256 differs from the manifest.

    Parameters
    ----------
    archive_dir : path
        The archive.

    Returns
    -------
    list of str
        Manifest names of the bad entries (empty for a sound archive).
    """
    archive_dir = Path(archive_dir)
    bad = []
    for name, entry in load_manifest(archive_dir)["entries"].items():
        path = archive_dir / name
        if not path.exists() or sha256_file(path) != entry["sha256"]:
            bad.append(name)
    return bad
