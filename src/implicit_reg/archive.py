"""The results archive: expensive job outputs kept by provenance key, restored per run.

A *job* (a training batch, a convex solve, a Razin & Cohen run or CP-rank job) writes
its tables and a *job record* ``provenance.json`` beside them. The record maps each
result the job holds (a run of a training batch, or the job itself) to its
*provenance key*:

.. math::

    \\mathrm{key} = \\mathrm{sha256}\\big(\\mathrm{canonical\\ JSON}(\\text{parameters},
    \\text{data identity}, \\text{numerics versions})\\big)

where the parameters are the resolved values that determine the numbers (sweep
values, schedule, numerics-relevant engine settings), the data identity is the
sha256 of every input data file (or, for data the pipeline draws itself, the seeds and
sizes that determine it) and the numerics versions are those of
:mod:`implicit_reg.core.numerics`. File layout, batch composition and code that changes no
number are not part of the key, so a refactor keeps every archived result valid.

An *archive* is a directory with ``manifest.json`` and one compressed parquet file per
job under ``entries/``. Entries are only ever added; the manifest lists each entry's
sha256, size, keys, numerics versions, package versions and commit, one entry per line
so that its git history stays small. :class:`ResultStore` answers, for a key, where the
result can be read: a finished local job, or a verified archive entry. An entry whose
sha256 does not match is named in a warning and never used.

Entry files hold all tables of a job in one parquet file: the rows of every table
stacked, a ``__table`` column naming the table, float64 columns stored as float32
where that is exact, and each table's arrow schema in the file metadata, so that
:func:`read_entry` gives back tables equal to the job's own files, bit for bit.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import json
import math
import os
import shutil
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from implicit_reg.core.numerics import NUMERICS_VERSIONS

__all__ = [
    "ArchiveError", "JobRecord", "ResultStore", "provenance_key", "sha256_file",
    "write_job_record", "read_job_record", "write_entry", "read_entry", "read_table",
    "load_manifest", "add_jobs", "fetch_archive", "ENTRY_SUFFIX",
]

MANIFEST = "manifest.json"
RECORD = "provenance.json"
ENTRY_SUFFIX = ".entry.parquet"
FORMAT = "implicit-reg-archive/1"
_TABLE_COLUMN = "__table"
_META_TABLES = b"implicit_reg.tables"
_META_RECORD = b"implicit_reg.record"


class ArchiveError(RuntimeError):
    """An archive that cannot be used as asked (missing path, bad download)."""


# ---------------------------------------------------------------------------- keys


def _canonical(obj: Any) -> Any:
    if isinstance(obj, Mapping) or hasattr(obj, "items"):
        return {str(k): _canonical(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_canonical(v) for v in obj]
    if isinstance(obj, float):
        # repr keeps 1e-3 and 0.001 equal and distinguishes nan/inf in text form
        return repr(obj) if not math.isfinite(obj) else obj
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return _canonical(float(obj))
    if obj is None or isinstance(obj, (str, bool, int)):
        return obj
    return str(obj)


def provenance_key(payload: Mapping[str, Any]) -> str:
    """sha256 (hex) of the canonical JSON of ``payload``.

    Parameters
    ----------
    payload : mapping
        Everything that determines a result: parameters, data identity, numerics
        versions. Key order does not matter; floats compare by value.

    Returns
    -------
    str
        64 hex digits.
    """
    text = json.dumps(_canonical(payload), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def numerics(*engines: str) -> dict[str, int]:
    """The numerics versions of ``engines`` (part of every payload)."""
    return {e: NUMERICS_VERSIONS[e] for e in engines}


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """sha256 (hex) of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


# ---------------------------------------------------------------------------- job records


@dataclass
class JobRecord:
    """What a finished job holds: its kind, name, keys and table files.

    ``keys`` maps an *identity* (a run id for training batches, the job name for
    single-result jobs) to its provenance key; ``tables`` maps a table name to a file
    path relative to the record's directory.
    """

    kind: str
    job: str
    keys: dict[str, str]
    tables: dict[str, str]
    figures: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "job": self.job, "keys": dict(sorted(self.keys.items())),
                "tables": dict(sorted(self.tables.items())), "figures": sorted(self.figures)}


def write_job_record(path: str | Path, record: JobRecord) -> None:
    """Write a job record atomically; written last by a job, it marks the job as finished."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record.to_json(), indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)


def read_job_record(path: str | Path) -> JobRecord:
    """Read a job record written by :func:`write_job_record`."""
    data = json.loads(Path(path).read_text())
    return JobRecord(kind=data["kind"], job=data["job"], keys=dict(data["keys"]),
                     tables=dict(data["tables"]), figures=list(data.get("figures", [])))


def find_job_records(results_dir: str | Path) -> list[Path]:
    """Every job record under ``results_dir`` (``**/provenance.json``), sorted."""
    root = Path(results_dir)
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*" + RECORD) if p.is_file())


# ---------------------------------------------------------------------------- entry files


def _schema_b64(schema: pa.Schema) -> str:
    return base64.b64encode(schema.serialize().to_pybytes()).decode("ascii")


def _schema_from_b64(text: str) -> pa.Schema:
    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(text)))


def _float32_if_exact(table: pa.Table) -> pa.Table:
    """Store float64 columns as float32 where every value survives the round trip."""
    for i, f in enumerate(table.schema):
        if f.type != pa.float64():
            continue
        values = table.column(i).to_numpy(zero_copy_only=False)
        narrow = values.astype(np.float32)
        with np.errstate(over="ignore", invalid="ignore"):
            exact = np.array_equal(narrow.astype(np.float64), values, equal_nan=True)
        if exact:
            table = table.set_column(i, pa.field(f.name, pa.float32(), f.nullable), pa.array(narrow))
    return table


def write_entry(tables: Mapping[str, pa.Table], path: str | Path, record: Mapping[str, Any]) -> None:
    """Write a job's tables into one zstd-compressed parquet entry file.

    Parameters
    ----------
    tables : mapping of str to pyarrow.Table
        The job's tables, as read from its own files.
    path : path
        Destination (written atomically).
    record : mapping
        JSON-serialisable description stored in the file metadata.
    """
    stacked, schemas = [], {}
    for name, table in tables.items():
        schemas[name] = {"schema": _schema_b64(table.schema), "rows": table.num_rows}
        plain = table.replace_schema_metadata(None)
        plain = _float32_if_exact(plain)
        plain = plain.append_column(_TABLE_COLUMN, pa.array([name] * plain.num_rows, pa.string()))
        stacked.append(plain)
    combined = pa.concat_tables(stacked, promote_options="permissive") if stacked else pa.table({})
    meta = {_META_TABLES: json.dumps(schemas).encode(), _META_RECORD: json.dumps(record, sort_keys=True).encode()}
    combined = combined.replace_schema_metadata(meta)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(combined, tmp, compression="zstd", compression_level=9)
    os.replace(tmp, path)


def read_entry(path: str | Path, names: Iterable[str] | None = None) -> dict[str, pa.Table]:
    """Tables of an entry file, each with its original schema (exact round trip)."""
    stored = pq.read_table(path)
    meta = stored.schema.metadata or {}
    schemas = json.loads(meta[_META_TABLES])
    wanted = list(schemas) if names is None else list(names)
    out = {}
    for name in wanted:
        if name not in schemas:
            raise KeyError(f"{path}: no table {name!r} (has {sorted(schemas)})")
        schema = _schema_from_b64(schemas[name]["schema"])
        rows = stored.filter(pc.equal(stored.column(_TABLE_COLUMN), name))
        rows = rows.select(schema.names)
        out[name] = rows.cast(pa.schema([f for f in schema], metadata=None)).replace_schema_metadata(schema.metadata)
    return out


def entry_record(path: str | Path) -> dict[str, Any]:
    """The job description stored in an entry file's metadata."""
    meta = pq.read_schema(path).metadata or {}
    return json.loads(meta[_META_RECORD])


def read_table(path: str | Path, table: str):
    """A table as a pandas DataFrame, from a job's own parquet file or an archive entry.

    Consumers of archivable jobs read through this function, so that the same code
    takes a result computed here or restored from an archive.
    """
    import pandas as pd

    if str(path).endswith(ENTRY_SUFFIX):
        return read_entry(path, [table])[table].to_pandas()
    return pd.read_parquet(path)


# ---------------------------------------------------------------------------- manifest


def load_manifest(archive_dir: str | Path) -> dict[str, Any]:
    """The archive's manifest (an empty one when the directory has none yet)."""
    path = Path(archive_dir) / MANIFEST
    if not path.exists():
        return {"format": FORMAT, "entries": {}}
    data = json.loads(path.read_text())
    if data.get("format") != FORMAT:
        raise ArchiveError(f"{path}: unknown archive format {data.get('format')!r} (expected {FORMAT})")
    return data


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
                        return {"wall_seconds": float(row["s"]), "cpu_seconds": float(row["cpu_time"])}
                    except (KeyError, ValueError):
                        return {}
    return {}


def add_jobs(results_dir: str | Path, archive_dir: str | Path, *, commit: str = "unknown",
             versions: Mapping[str, str] | None = None, benchmarks_dir: str | Path = "benchmarks",
             only_keys: set[str] | None = None, log: Callable[[str], None] = print) -> list[str]:
    """Add every finished job under ``results_dir`` that the archive lacks.

    A job is finished when its record ``provenance.json`` exists. An entry is named by
    the job and the hash of its keys, so the same job computed twice is stored once.

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
                                         **job_benchmark(benchmarks_dir, record)}
        known |= set(record.keys.values())
        added.append(rel_name)
        log(f"archived {record.kind} {record.job}: {len(record.keys)} result(s) -> {rel_name}")
    if added:
        _write_manifest(archive_dir, manifest)
    return added


# ---------------------------------------------------------------------------- lookup


@dataclass(frozen=True)
class Source:
    """Where a result can be read: a local job's files or an archive entry."""

    origin: str  # "local" or "archive"
    job: str
    tables: dict[str, str]  # table name -> path (an entry path for every table when archived)
    commit: str = ""


class ResultStore:
    """Finished results by provenance key: local job records first, then the archive.

    Parameters
    ----------
    results_dir : path
        Where jobs write their records (``results/``).
    archive_dir : path or None
        An archive directory (``manifest.json`` + entries), or None for none.
    warn : callable
        Receives one line per corrupt entry (the entry is then never used).
    ignore_archive_for : callable, optional
        ``identity -> bool``: results that must be recomputed, not restored.
    """

    def __init__(self, results_dir: str | Path = "results", archive_dir: str | Path | None = None,
                 warn: Callable[[str], None] = print) -> None:
        self.results_dir = Path(results_dir)
        self.archive_dir = Path(archive_dir) if archive_dir is not None else None
        self.warn = warn
        self._local: dict[str, Source] = {}
        for path in find_job_records(self.results_dir):
            try:
                record = read_job_record(path)
            except (OSError, ValueError, KeyError) as err:
                warn(f"ignoring unreadable job record {path}: {err}")
                continue
            tables = {name: str(path.parent / rel) for name, rel in record.tables.items()}
            if not all(Path(p).exists() for p in tables.values()):
                continue
            src = Source("local", record.job, tables)
            for key in record.keys.values():
                self._local[key] = src
        self._archive: dict[str, tuple[str, str]] = {}  # key -> (entry name, identity)
        self._identities: dict[str, set[str]] = {}  # identity -> archived keys
        self._entries: dict[str, dict[str, Any]] = {}
        self._verified: dict[str, bool] = {}
        if self.archive_dir is not None:
            self._entries = load_manifest(self.archive_dir)["entries"]
            for name, entry in self._entries.items():
                for identity, key in entry["keys"].items():
                    self._archive[key] = (name, identity)
                    self._identities.setdefault(identity, set()).add(key)
        self.used_archive: set[str] = set()
        self.corrupt: set[str] = set()

    def _entry_ok(self, name: str) -> bool:
        if name not in self._verified:
            entry = self._entries[name]
            path = self.archive_dir / name
            if not path.exists():
                self.warn(f"archive entry {path} is listed in the manifest but missing: its results are recomputed")
                ok = False
            else:
                digest = sha256_file(path)
                ok = digest == entry["sha256"]
                if not ok:
                    self.warn(f"archive entry {path} is corrupt (sha256 {digest[:12]}… ≠ manifest "
                              f"{entry['sha256'][:12]}…): not used, its results are recomputed")
            if not ok:
                self.corrupt.add(name)
            self._verified[name] = ok
        return self._verified[name]

    def find(self, key: str, use_archive: bool = True, local_first: bool = True) -> Source | None:
        """Where the result with provenance ``key`` can be read, or None (compute it).

        ``local_first=False`` prefers a verified archive entry over a finished local job:
        jobs that Snakemake still matches (Razin & Cohen) would otherwise rerun when their
        rule's code or params change, although no number does.
        """
        if local_first and key in self._local:
            return self._local[key]
        if use_archive and key in self._archive:
            name, _ = self._archive[key]
            if self._entry_ok(name):
                self.used_archive.add(name)
                entry = self._entries[name]
                path = str(self.archive_dir / name)
                return Source("archive", entry["job"], {t: path for t in ("*",)}, entry.get("commit", ""))
        return self._local.get(key)

    def is_stale(self, identity: str, key: str) -> bool:
        """True when the archive holds ``identity`` only under other keys (config, data or numerics changed)."""
        keys = self._identities.get(identity)
        return bool(keys) and key not in keys

    def commits(self) -> list[str]:
        """Commits of the archive entries used so far."""
        return sorted({self._entries[n].get("commit", "") for n in self.used_archive})


def entry_table_path(source: Source, table: str) -> str:
    """The file to read ``table`` from (an entry file holds every table of its job)."""
    return source.tables.get(table, source.tables.get("*", ""))


# ---------------------------------------------------------------------------- remote archives


def fetch_archive(url: str, sha256: str, dest: str | Path) -> Path:
    """Download a ``.tar.gz`` archive (any urllib URL, ``file://`` included), check it, unpack it.

    Parameters
    ----------
    url : str
        Where the tarball is (a release asset, a Zenodo record, a local ``file://``).
    sha256 : str
        Its expected sha256; a mismatch raises :class:`ArchiveError` and unpacks nothing.
    dest : path
        Directory to unpack into; the archive is the directory holding ``manifest.json``.

    Returns
    -------
    Path
        The archive directory.
    """
    dest = Path(dest)
    stamp = dest / ".fetched-sha256"
    if stamp.exists() and stamp.read_text().strip() == sha256:
        return _archive_root(dest)
    with tempfile.TemporaryDirectory() as tmp:
        tarball = Path(tmp) / "archive.tar.gz"
        try:
            with urllib.request.urlopen(url) as response, open(tarball, "wb") as out:
                shutil.copyfileobj(response, out)
        except OSError as err:
            raise ArchiveError(f"archive.url: cannot download {url}: {err}") from None
        digest = sha256_file(tarball)
        if digest != sha256:
            raise ArchiveError(f"archive.sha256: {url} has sha256 {digest}, expected {sha256}")
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir(parents=True)
        with tarfile.open(tarball, "r:gz") as tar:
            tar.extractall(dest, filter="data")
    stamp.write_text(sha256 + "\n")
    return _archive_root(dest)


def _archive_root(dest: Path) -> Path:
    if (dest / MANIFEST).exists():
        return dest
    found = sorted(dest.rglob(MANIFEST))
    if not found:
        raise ArchiveError(f"archive.url: the downloaded archive in {dest} holds no {MANIFEST}")
    return found[0].parent


def pack_archive(archive_dir: str | Path, tarball: str | Path) -> str:
    """Pack an archive directory into a ``.tar.gz`` for publishing; returns its sha256."""
    archive_dir = Path(archive_dir)
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(archive_dir, arcname=archive_dir.name)
    return sha256_file(tarball)


# ---------------------------------------------------------------------------- config


def resolve_archive(config: Mapping[str, Any], resources: str | Path = "resources/archive") -> Path | None:
    """The archive directory that a config asks for, or None.

    ``archive.url`` (with ``archive.sha256``) is fetched into ``resources/``;
    an explicit ``archive.path`` must exist; otherwise ``archive/<preset>`` is used when
    it holds a manifest and ``use_archive`` is true (the default).

    Raises
    ------
    ArchiveError
        Naming the key, for a missing explicit path or a bad download.
    """
    section = dict(config.get("archive") or {})
    if section.get("url"):
        sha = section.get("sha256")
        if not sha:
            raise ArchiveError("archive.sha256: an archive URL needs the sha256 of its tarball")
        return fetch_archive(section["url"], sha, Path(resources) / sha[:16])
    if section.get("path"):
        path = Path(section["path"])
        if not (path / MANIFEST).is_file():
            what = "does not exist" if not path.exists() else f"holds no {MANIFEST}"
            raise ArchiveError(f"archive.path: {str(path)!r} {what}; give an archive directory "
                               "(e.g. archive/paper) or leave archive.path unset")
        return path
    if not config.get("use_archive", True):
        return None
    default = Path("archive") / str(config.get("preset", "paper"))
    return default if (default / MANIFEST).is_file() else None


def recompute_figures(config: Mapping[str, Any]) -> list[str]:
    """Figures whose results must be computed here, not restored (``recompute``; ``all`` for every one)."""
    wanted = list(config.get("recompute") or [])
    figures = list((config.get("arora2019") or {}).get("figures", {}))
    figures += list(((config.get("razin2020") or {}).get("figures") or {}))
    if "all" in wanted:
        return figures
    unknown = [f for f in wanted if f not in figures]
    if unknown:
        raise ArchiveError(f"recompute: unknown figure(s) {unknown}; known: {sorted(figures)}")
    return wanted


def job_record(provenance: Mapping[str, Any], tables: Mapping[str, str]) -> JobRecord:
    """The record of a single-result job from its ``provenance`` params (kind, job, key, figures)."""
    return JobRecord(kind=provenance["kind"], job=provenance["job"], keys={provenance["job"]: provenance["key"]},
                     tables=dict(tables), figures=list(provenance.get("figures", [])))


# ---------------------------------------------------------------------------- command line


def config_keys(configfiles: list[str], root: str | Path = ".") -> set[str]:
    """Every provenance key a config needs: Arora runs and solves, Razin & Cohen jobs.

    The files are merged in order over ``config/config.yaml``, as Snakemake does.
    """
    import yaml

    from implicit_reg.arora2019.plan import build_plan
    from implicit_reg.config import (
        load_schema,
        merge_config,
        select_figures,
        validate_config,
    )
    from implicit_reg.razin2020.plan import RazinPlan

    root = Path(root)
    config: dict[str, Any] = yaml.safe_load((root / "config" / "config.yaml").read_text())
    for f in configfiles:
        merge_config(config, yaml.safe_load(Path(f).read_text()) or {})
    schemas = root / "workflow" / "schemas"
    config = select_figures(validate_config(config, load_schema(schemas / "config.schema.yaml")))
    config["razin2020"] = validate_config(config["razin2020"], load_schema(schemas / "razin2020.schema.yaml"),
                                          "razin2020")
    plan = build_plan(config)
    keys = set(plan.run_keys.values()) | {job.key for job in plan.convex_jobs.values()}
    razin = RazinPlan(config["razin2020"], config["seed"], config.get("instances", 0))
    return keys | razin.all_job_keys()


def verify(archive_dir: str | Path) -> list[str]:
    """Names of the entries whose file is missing or whose sha256 differs from the manifest."""
    archive_dir = Path(archive_dir)
    bad = []
    for name, entry in load_manifest(archive_dir)["entries"].items():
        path = archive_dir / name
        if not path.exists() or sha256_file(path) != entry["sha256"]:
            bad.append(name)
    return bad


def main(argv: list[str] | None = None) -> int:
    """``python -m implicit_reg.archive {add,verify,list,pack} ...`` (see ``--help``)."""
    import argparse

    from implicit_reg.provenance import git_commit, package_versions

    parser = argparse.ArgumentParser(prog="python -m implicit_reg.archive", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_add = sub.add_parser("add", help="add every finished job under results/ that the archive lacks")
    p_add.add_argument("archive", help="archive directory, e.g. archive/paper")
    p_add.add_argument("--results", default="results", help="results directory (default: results)")
    p_add.add_argument("--benchmarks", default="benchmarks", help="Snakemake benchmark files (job times)")
    p_add.add_argument("--configfile", nargs="+", default=None,
                       help="only jobs this config needs (files merged in order over config/config.yaml)")
    p_verify = sub.add_parser("verify", help="check every entry's sha256 against the manifest")
    p_verify.add_argument("archive")
    p_list = sub.add_parser("list", help="entries, results and sizes")
    p_list.add_argument("archive")
    p_pack = sub.add_parser("pack", help="pack the archive into a .tar.gz and print its sha256")
    p_pack.add_argument("archive")
    p_pack.add_argument("tarball")
    args = parser.parse_args(argv)
    if args.command == "add":
        info = git_commit(".")
        commit = info["commit"] + (" (dirty)" if info.get("dirty") else "")
        wanted = config_keys(args.configfile) if args.configfile else None
        added = add_jobs(args.results, args.archive, commit=commit, versions=package_versions(),
                         benchmarks_dir=args.benchmarks, only_keys=wanted)
        print(f"{len(added)} entries added to {args.archive}")
    elif args.command == "verify":
        bad = verify(args.archive)
        for name in bad:
            print(f"corrupt or missing: {Path(args.archive) / name}")
        print(f"{args.archive}: {'OK' if not bad else f'{len(bad)} bad entries'}")
        return 1 if bad else 0
    elif args.command == "list":
        entries = load_manifest(args.archive)["entries"]
        total = 0
        for name, e in sorted(entries.items()):
            total += e["size"]
            print(f"{e['size'] / 1e6:8.2f} MB  {len(e['keys']):4d} results  {e['kind']:32s} {e['job']}")
        print(f"{len(entries)} entries, {sum(len(e['keys']) for e in entries.values())} results, {total / 1e6:.1f} MB")
    elif args.command == "pack":
        print(pack_archive(args.archive, args.tarball))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
