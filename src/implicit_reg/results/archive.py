"""The results archive: expensive job outputs kept by provenance key, restored per run.

A *job* (a training batch, a convex solve, a Razin & Cohen run or CP-rank job) writes
its tables and a *job record* ``provenance.json`` beside them
(:mod:`implicit_reg.results.job_records`, re-exported here). The record maps each
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
sha256 does not match is named in a warning and never used; so is a finished local job
whose table files no longer match the checksums of its record (its record and damaged
files are set aside, so that Snakemake reruns the job).

Entry files hold all tables of a job in one parquet file: the rows of every table
stacked, a ``__table`` column naming the table, float64 columns stored as float32
where that is exact, and each table's arrow schema in the file metadata, so that
:func:`read_entry` gives back tables equal to the job's own files, bit for bit.

An archive published as a ``.tar.gz`` is read back from any URL with its sha256
(:func:`fetch_archive`, called by :func:`resolve_archive`). Adding finished jobs,
verifying and packing archives are in :mod:`implicit_reg.results.archive_admin`; the command line
``python -m implicit_reg.pipeline.archive_command {add,list,verify,retime,pack}`` in
:mod:`implicit_reg.pipeline.archive_command`.
"""

from __future__ import annotations

import base64
import json
import math
import os
import shutil
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from implicit_reg.core.hashing import sha256_file, sha256_text
from implicit_reg.core.numerics import NUMERICS_VERSIONS
from implicit_reg.results.job_records import (  # noqa: F401  (re-exported: the archive's users read records through it)
    RECORD,
    JobRecord,
    damaged_tables,
    describe_damage,
    find_job_records,
    job_record,
    read_job_record,
    set_aside,
    write_job_record,
)

__all__ = [
    "ArchiveError", "JobRecord", "ResultStore", "Source", "provenance_key", "numerics",
    "write_job_record", "read_job_record", "find_job_records", "write_entry", "read_entry",
    "entry_record", "read_table", "load_manifest", "entry_table_path", "resolve_archive",
    "recompute_figures", "fetch_archive", "job_record", "ENTRY_SUFFIX", "damaged_tables", "describe_damage", "set_aside",
]

MANIFEST = "manifest.json"
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
    return sha256_text(json.dumps(_canonical(payload), sort_keys=True, separators=(",", ":"), ensure_ascii=False))


def numerics(*engines: str) -> dict[str, int]:
    """The numerics versions of ``engines`` (part of every payload).

    Parameters
    ----------
    *engines : str
        Engine names of :data:`implicit_reg.core.numerics.NUMERICS_VERSIONS`.

    Returns
    -------
    dict of str to int
        ``{engine: version}``.
    """
    return {e: NUMERICS_VERSIONS[e] for e in engines}


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


#: what every manifest entry must hold (the lookup and the checks read them)
ENTRY_FIELDS = ("job", "keys", "sha256")


def _damaged_manifest(path: Path, what: str) -> ArchiveError:
    return ArchiveError(f"{path} is damaged ({what}): restore it from git (git checkout HEAD -- {path}), then "
                        f"check the entries with python -m implicit_reg.pipeline.archive_command verify {path.parent}; "
                        "or run without the archive (use_archive: false, scripts/reproduce.sh --no-archive)")


def load_manifest(archive_dir: str | Path) -> dict[str, Any]:
    """The archive's manifest (an empty one when the directory has none yet).

    Raises
    ------
    ArchiveError
        One line naming the file and what to do, when it is not valid JSON, not of
        this format, or has an entry without one of :data:`ENTRY_FIELDS`.
    """
    path = Path(archive_dir) / MANIFEST
    if not path.exists():
        return {"format": FORMAT, "entries": {}}
    try:
        data = json.loads(path.read_text())
    except UnicodeDecodeError:
        raise _damaged_manifest(path, "not UTF-8 text") from None
    except json.JSONDecodeError as err:
        raise _damaged_manifest(path, f"invalid JSON at line {err.lineno} column {err.colno}: {err.msg}") from None
    if not isinstance(data, dict) or not isinstance(data.get("entries"), dict):
        raise _damaged_manifest(path, "no 'entries' mapping")
    if data.get("format") != FORMAT:
        raise ArchiveError(f"{path}: unknown archive format {data.get('format')!r} (expected {FORMAT})")
    for name, entry in data["entries"].items():
        missing = [f for f in ENTRY_FIELDS if not isinstance(entry, dict) or f not in entry]
        if missing:
            raise _damaged_manifest(path, f"entry {name} has no {', '.join(repr(f) for f in missing)}")
        if not isinstance(entry["keys"], dict):
            raise _damaged_manifest(path, f"entry {name}: 'keys' is not a mapping")
    return data


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
        self._records: dict[str, tuple[Path, JobRecord]] = {}  # local job -> its record, until checked
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
            self._records[str(path)] = (path, record)
            for key in record.keys.values():
                self._local[key] = src
        self.damaged: list[str] = []  # local job records set aside, their jobs recomputed
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

    def _local_ok(self, key: str) -> Source | None:
        """The finished local job holding ``key``, its tables checked once against its record.

        A job with a damaged table is named in a warning, its record and damaged files
        are set aside (:func:`set_aside`) and its results count as missing: the plan
        computes them again, and Snakemake, seeing the files gone, reruns the job.
        """
        src = self._local.get(key)
        if src is None:
            return None
        record_path = str(Path(next(iter(src.tables.values()))).parent / RECORD)
        checked = self._records.pop(record_path, None)
        if checked is not None:
            path, record = checked
            damaged = damaged_tables(path, record)
            if damaged:
                set_aside(path, damaged)
                self.warn(f"job {record.job}: damaged result {describe_damage(damaged)}: its results are "
                          f"recomputed (the record and damaged files are kept as <name>.damaged)")
                self.damaged.append(str(path))
                for k in record.keys.values():
                    if self._local.get(k) is src:
                        del self._local[k]
                return None
        return src

    def find(self, key: str, use_archive: bool = True, local_first: bool = True) -> Source | None:
        """Where the result with provenance ``key`` can be read, or None (compute it).

        ``local_first=False`` prefers a verified archive entry over a finished local job:
        jobs that Snakemake still matches (Razin & Cohen) would otherwise rerun when their
        rule's code or params change, although no number does. A local job's tables are
        checked against its record's checksums before it is first used.
        """
        if local_first and self._local_ok(key) is not None:
            return self._local[key]
        if use_archive and key in self._archive:
            name, _ = self._archive[key]
            if self._entry_ok(name):
                self.used_archive.add(name)
                entry = self._entries[name]
                path = str(self.archive_dir / name)
                return Source("archive", entry["job"], {t: path for t in ("*",)}, entry.get("commit", ""))
        return self._local_ok(key)

    def is_stale(self, identity: str, key: str) -> bool:
        """True when the archive holds ``identity`` only under other keys (config, data or numerics changed)."""
        keys = self._identities.get(identity)
        return bool(keys) and key not in keys

    def commits(self) -> list[str]:
        """Commits of the archive entries used so far."""
        return sorted({self._entries[n].get("commit", "") for n in self.used_archive})

    def restored_summary(self) -> str:
        """One log line: how many archive entries were restored and at which commits they were computed.

        Empty when nothing came from the archive. The counts per commit let a reader check
        out the code that computed a result before recomputing it.
        """
        if not self.used_archive:
            return ""
        per_commit: dict[str, int] = {}
        for name in self.used_archive:
            commit = self._entries[name].get("commit") or "unknown"
            per_commit[commit] = per_commit.get(commit, 0) + 1
        commits = ", ".join(f"{c} ({n})" for c, n in sorted(per_commit.items(), key=lambda kv: (-kv[1], kv[0])))
        n = len(self.used_archive)
        return (f"archive {self.archive_dir}: {n} {'entry' if n == 1 else 'entries'} restored, computed at "
                f"commit{'s' if len(per_commit) > 1 else ''} {commits}")


def entry_table_path(source: Source, table: str) -> str:
    """The file to read ``table`` from (an entry file holds every table of its job)."""
    return source.tables.get(table, source.tables.get("*", ""))


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
