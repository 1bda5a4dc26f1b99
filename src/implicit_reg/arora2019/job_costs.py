"""CPU seconds of training jobs: the cost model the planner splits by and the makespan bench scores.

A run that the configured archive holds was trained to its end at paper scale, so its
iteration count is a measurement, and so is the CPU time of the job that trained it. The
planner (``engine.cores``) and ``bench/bench_makespan.py`` read both from the archive, so
that the plan is made with the costs the simulation scores it by; runs the archive lacks
fall back to the spec's estimates (:mod:`implicit_reg.pipeline.estimate`, up to 3x off).

A run's cost is kept as its CPU seconds per iteration *alone* (a group of one): a group
of B runs then costs ``batching.group_seconds(iterations, alone, curve, 1)``, the per-run
cost following the measured per-group-size curve as runs stop. An archived job's runs get
the one per-iteration cost that reproduces its measured ``cpu_seconds`` exactly.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable, Mapping, Sequence

from implicit_reg.arora2019 import batching
from implicit_reg.arora2019.plan_items import SHARED_OPERATOR_TASKS, Run

DEEP_FACTORIZATION = "arora2019.deep_factorization"

#: (task, optimizer, number of observations, depth): runs of one kind cost the same per iteration.
Kind = tuple[str, str, int, int]


@dataclass(frozen=True)
class ArchivedRuns:
    """What the archive measured of its training runs."""

    #: provenance key or run id -> iterations the run took
    iterations: dict[str, float] = field(default_factory=dict)
    #: provenance key or run id -> CPU seconds per iteration alone, from its job's measured time
    seconds: dict[str, float] = field(default_factory=dict)
    #: median of ``seconds`` over the runs of one kind
    by_kind: dict[Kind, float] = field(default_factory=dict)


def group_curve(task: str, optimizer: str) -> Mapping[int, float]:
    """The per-run cost curve of a training group of ``task`` trained by ``optimizer``."""
    return batching.cost_curve(task, optimizer, task in SHARED_OPERATOR_TASKS)


def entry_run_seconds(iterations: Sequence[float], cpu_seconds: float, curve: Mapping[int, float]) -> float:
    """Per-iteration CPU seconds alone of each run of a job that took ``cpu_seconds``.

    The job's runs are taken to cost the same per iteration (they share data set and
    schedule), so this one value, put through :func:`batching.group_seconds`, gives back
    ``cpu_seconds``.
    """
    unit = batching.group_seconds(iterations, [1.0] * len(iterations), curve, 1)
    return cpu_seconds / unit if unit > 0 else 0.0


def archived_runs(entries: Mapping[str, Mapping], tables: Mapping[str, Sequence[Mapping]]) -> ArchivedRuns:
    """The measured costs of the training entries of an archive.

    Parameters
    ----------
    entries : mapping
        The manifest's entries (name -> ``kind``, ``keys`` by run id, ``cpu_seconds``).
    tables : mapping
        Entry name -> its runs table's rows (``run_id``, ``task``, ``optimizer``, ``n_obs``,
        ``depth``, ``iterations``); an entry without rows is skipped.

    Returns
    -------
    ArchivedRuns
        Costs by provenance key, and by run id for runs whose key has since changed.
    """
    iterations: dict[str, float] = {}
    seconds: dict[str, float] = {}
    kinds: dict[Kind, list[float]] = {}
    for name, entry in entries.items():
        rows = [r for r in tables.get(name, ()) if r["iterations"] > 0 and r["run_id"] in entry["keys"]]
        if entry.get("kind") != DEEP_FACTORIZATION or not rows:
            continue
        for r in rows:
            for label in (entry["keys"][r["run_id"]], r["run_id"]):
                iterations[label] = float(r["iterations"])
        cpu = entry.get("cpu_seconds")
        if cpu is None or len(rows) != len(entry["keys"]):  # a partial table cannot share out the time
            continue
        first = rows[0]
        alone = entry_run_seconds([float(r["iterations"]) for r in rows], float(cpu),
                                  group_curve(first["task"], first["optimizer"]))
        for r in rows:
            for label in (entry["keys"][r["run_id"]], r["run_id"]):
                seconds[label] = alone
            kinds.setdefault((r["task"], r["optimizer"], int(r["n_obs"]), int(r["depth"])), []).append(alone)
    return ArchivedRuns(iterations, seconds, {k: statistics.median(v) for k, v in sorted(kinds.items())})


@lru_cache(maxsize=4)
def _read_archive(manifest: str, mtime_ns: int) -> ArchivedRuns:
    from implicit_reg.results.archive import read_entry  # pyarrow: only when an archive is read

    root = Path(manifest).parent
    entries = json.loads(Path(manifest).read_text()).get("entries", {})
    columns = ("run_id", "task", "optimizer", "n_obs", "depth", "iterations")
    tables = {}
    for name, entry in entries.items():
        if entry.get("kind") == DEEP_FACTORIZATION and (root / name).is_file():
            runs = read_entry(root / name, ["runs"])["runs"]
            if all(c in runs.column_names for c in columns):
                tables[name] = runs.select(list(columns)).to_pylist()
    return archived_runs(entries, tables)


def read_archived_runs(archive_dir: str | Path | None) -> ArchivedRuns:
    """:func:`archived_runs` of the archive in ``archive_dir`` (empty when there is none).

    Read once per process and manifest version: every Snakemake start plans again.
    """
    manifest = Path(archive_dir) / "manifest.json" if archive_dir is not None else None
    if manifest is None or not manifest.is_file():
        return ArchivedRuns()
    return _read_archive(str(manifest.resolve()), manifest.stat().st_mtime_ns)


def run_kind(run: Run) -> Kind:
    """The :data:`Kind` of a planned run."""
    return (run.dataset.task, run.schedule.optimizer, int(run.dataset.n_obs), int(run.depth))


def run_costs(runs: Sequence[Run], keys: Mapping[str, str], archived: ArchivedRuns,
              estimated: Callable[[Sequence[Run]], tuple[Sequence[float], Sequence[float]]],
              ) -> tuple[list[float], list[float], list[bool]]:
    """Each run's iterations and CPU seconds per iteration alone, and whether both were measured.

    Parameters
    ----------
    runs : sequence of Run
        Runs of one group (data set, depth, schedule).
    keys : mapping
        Run id -> provenance key.
    archived : ArchivedRuns
        The archive's measurements; looked up by key, then by run id (same run, changed key),
        the per-iteration cost then by the median of its kind.
    estimated : callable
        runs -> (estimated iterations, estimated seconds per iteration alone), for the rest.

    Returns
    -------
    tuple of lists
        Iterations, seconds per iteration alone, measured flags, in the order of ``runs``.
    """
    est_iters, est_secs = estimated(runs)
    iterations, seconds, measured = [], [], []
    for run, e_it, e_sec in zip(runs, est_iters, est_secs):
        labels = (keys[run.run_id], run.run_id)
        its = next((archived.iterations[x] for x in labels if x in archived.iterations), None)
        sec = next((archived.seconds[x] for x in labels if x in archived.seconds), None)
        sec = sec if sec is not None else archived.by_kind.get(run_kind(run))
        iterations.append(float(e_it) if its is None else its)
        seconds.append(float(e_sec) if sec is None else sec)
        measured.append(its is not None and sec is not None)
    return iterations, seconds, measured


def job_seconds(iterations: Sequence[float], seconds_alone: Sequence[float], curve: Mapping[int, float],
                task: str, threads: int = 1) -> float:
    """Wall seconds of one ``task`` training job of these runs on ``threads`` threads (CPU seconds at one)."""
    return batching.group_seconds(iterations, seconds_alone, curve, 1) / batching.task_speedup(task, threads)
