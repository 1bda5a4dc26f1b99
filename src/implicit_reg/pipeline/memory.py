"""Peak memory of the Arora et al. jobs, estimated from their sizes before any job starts.

A job's peak resident memory is the interpreter's (Python, numpy, torch, pandas and
Snakemake's script wrapper) plus the arrays its sizes call for, counted in bytes per
entry of the n×n matrices (n = ``arora2019.matrix_size`` or a sweep's ``matrix_size``),
of the sensing operator (m·n² entries) and of the factors (per run and layer):

.. math::

    \\text{ground truth}:\\ b + g\\,n^2 \\qquad
    \\text{observations}:\\ b + o_c\\,n^2 \\ \\text{(completion)},\\ b + o_s\\,m n^2 \\ \\text{(sensing)}

    \\text{training}:\\ b + s\\,m n^2\\,[\\text{sensing}] + t\\,n^2
        + \\text{dtype bytes}\\cdot n^2 \\sum_{\\text{runs}} (\\ell\\,\\text{depth} + r)

with b = :data:`JOB_BASE_MB`. The coefficients follow the arrays the code holds: a
ground truth is drawn in float64 and kept in float32, and its singular values need a
float64 copy and LAPACK's workspace (:data:`GROUND_TRUTH_BYTES`); completion draws a
permutation of the n² entries (:data:`COMPLETION_OBS_BYTES`); sensing draws A in
float64, keeps it in float32 and forms the labels in float64
(:data:`SENSING_OBS_BYTES`); a sensing batch holds A from the file, on the device and
prepacked with its transpose (:data:`SENSING_TRAIN_BYTES`); each layer of each run holds
its factor, gradient, optimizer state, partial products and its checkpoint copy
(:data:`LAYER_BUFFERS`), each run its product, residual and adjoint
(:data:`RUN_BUFFERS`). ``bench/bench_memory.py`` measures the peaks
(``bench/memory.json``) and ``tests/test_memory_estimate.py`` checks that every estimate
bounds its measured peak, at most :data:`MAX_OVERESTIMATE` times over.

Minimum-nuclear-norm solves are sized by :func:`implicit_reg.arora2019.convex.memory_mb`.
"""

from __future__ import annotations

import os
from typing import Any, Iterable, Mapping

from implicit_reg.arora2019 import convex
from implicit_reg.arora2019.plan import Batch, Dataset, Plan

__all__ = ["JOB_BASE_MB", "ground_truth_mb", "observations_mb", "batch_mb", "convex_mb", "machine_mb",
           "job_limit_mb", "oversized_jobs", "refusal"]

#: The interpreter of a job: Python, numpy, torch, pandas and Snakemake's script wrapper
#: (327-342 MB measured in the test preset's jobs, whose arrays are tiny).
JOB_BASE_MB = 400
#: Ground truth: float64 product (8), float32 copy kept (4), float64 copy for the SVD (8)
#: and LAPACK's copy of it (8), bytes per entry of the n×n matrix.
GROUND_TRUTH_BYTES = 28
#: Completion observations: the float32 ground truth (4), a permutation of the n² flat
#: indices (8) and numpy's temporaries while drawing it (8).
COMPLETION_OBS_BYTES = 20
#: Sensing observations: A drawn in float64 (8) then kept in float32 (4), and the labels'
#: float64 copy of A (8): bytes per operator entry (m·n²).
SENSING_OBS_BYTES = 20
#: A sensing batch: A as loaded (4), as a torch tensor (4) and prepacked with its
#: transpose for oneDNN (8), bytes per operator entry.
SENSING_TRAIN_BYTES = 16
#: A training batch's n×n arrays besides the runs: ground truth, observation mask, labels
#: (float64 at most), bytes per entry.
TRAIN_SHARED_BYTES = 24
#: n×n buffers per layer of a run: factor, gradient, optimizer state, two partial
#: products, the checkpoint's copy, and the temporaries of a step. The step's
#: temporaries are what the allocator keeps, which varies between runs of the same batch
#: (completion n = 500, 12 runs of depth 3: 271 and 374 MB above the interpreter in two
#: measurements), so this and RUN_BUFFERS are sized on the larger peak, with a margin.
LAYER_BUFFERS = 10
#: n×n buffers per run: product, residual, adjoint, the logged singular values' input and
#: its SVD workspace.
RUN_BUFFERS = 8
#: How far above a measured peak an estimate may be (tests/test_memory_estimate.py): the
#: terms count every buffer the code can hold at once, the allocator's reuse keeps fewer.
MAX_OVERESTIMATE = 3.0

_DTYPE_BYTES = {"float32": 4, "float64": 8}


def _mb(n_bytes: float) -> float:
    return n_bytes / 1e6


def ground_truth_mb(dataset: Dataset) -> int:
    """Peak memory (MB) of drawing ``dataset``'s ground truth and its singular values."""
    rows, cols = dataset.shape
    return round(JOB_BASE_MB + _mb(GROUND_TRUTH_BYTES * rows * cols))


def observations_mb(dataset: Dataset) -> int:
    """Peak memory (MB) of drawing ``dataset``'s observations (completion entries or sensing operator)."""
    rows, cols = dataset.shape
    if dataset.task == "sensing":
        return round(JOB_BASE_MB + _mb(SENSING_OBS_BYTES * dataset.n_obs * rows * cols))
    return round(JOB_BASE_MB + _mb(COMPLETION_OBS_BYTES * rows * cols))


def batch_mb(batch: Batch, dtype: str = "float32") -> int:
    """Peak memory (MB) of training ``batch``: its data, and its runs' factors and buffers.

    Parameters
    ----------
    batch
        The planned batch (data set, runs and their depths).
    dtype
        The training dtype (config ``dtype``).

    Returns
    -------
    int
        Megabytes.
    """
    rows, cols = batch.dataset.shape
    entries = rows * cols
    width = _DTYPE_BYTES[dtype]
    factors = sum(LAYER_BUFFERS * (r.depth or batch.depth) + RUN_BUFFERS for r in batch.runs)
    total = TRAIN_SHARED_BYTES * entries + width * entries * factors
    if batch.dataset.task == "sensing":
        total += SENSING_TRAIN_BYTES * batch.dataset.n_obs * entries
    return round(JOB_BASE_MB + _mb(total))


def convex_mb(dataset: Dataset) -> int:
    """Memory (MB) of a minimum-nuclear-norm solve (:func:`implicit_reg.arora2019.convex.memory_mb`)."""
    return int(convex.memory_mb(dataset.task, dataset.n_obs, dataset.shape))


def machine_mb() -> int:
    """Physical memory of this machine (MB)."""
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e6)


def job_limit_mb(config: Mapping[str, Any]) -> tuple[int, str]:
    """The most memory one job may have, and where that limit comes from.

    ``max_job_mem_mb`` in the config (the largest cluster node, for a Slurm profile),
    else this machine's physical memory.
    """
    value = config.get("max_job_mem_mb")
    if value:
        return int(value), "max_job_mem_mb"
    return machine_mb(), "this machine's memory (config max_job_mem_mb: none)"


def _size_key(dataset: Dataset) -> str:
    """The config key that sets a data set's size (what to change to shrink a job)."""
    if dataset.task == "movielens":
        return "data.movielens.shape"
    if dataset.default_size and dataset.shape[0] != dataset.default_size:
        return "arora2019.figures.<figure>.sweeps[].matrix_size"
    return "arora2019.matrix_size"


def oversized_jobs(plan: Plan, limit_mb: int, dtype: str = "float32") -> list[tuple[str, int, str]]:
    """The jobs of ``plan`` whose estimated peak exceeds ``limit_mb``, largest first.

    Parameters
    ----------
    plan
        The Arora et al. plan (data sets, batches to train, solves to run).
    limit_mb
        The most memory a job may have (:func:`job_limit_mb`).
    dtype
        The training dtype.

    Returns
    -------
    list of (str, int, str)
        ``(job, estimate MB, config key that sizes it)``.
    """
    jobs: list[tuple[str, int, str]] = []
    seen: set[str] = set()
    for dataset in plan.datasets.values():
        if dataset.task == "movielens":
            continue
        if dataset.ground_truth_name not in seen:
            seen.add(dataset.ground_truth_name)
            jobs.append((f"ground_truth {dataset.ground_truth_name}", ground_truth_mb(dataset), _size_key(dataset)))
        jobs.append((f"observations {dataset.name}", observations_mb(dataset), _size_key(dataset)))
    for name, batch in plan.batches.items():
        jobs.append((f"train_factorization_batch {name}", batch_mb(batch, dtype), _size_key(batch.dataset)))
    for name, job in plan.convex_jobs.items():
        jobs.append((f"min_nuclear_norm {name}", convex_mb(job.dataset), _size_key(job.dataset)))
    return sorted(((j, mb, k) for j, mb, k in jobs if mb > limit_mb), key=lambda t: (-t[1], t[0]))


def refusal(jobs: Iterable[tuple[str, int, str]], limit_mb: int, source: str) -> str:
    """One message refusing a config whose jobs need more memory than a job can have ('' for none)."""
    jobs = list(jobs)
    if not jobs:
        return ""
    job, mb, key = jobs[0]
    more = f" (and {len(jobs) - 1} more jobs)" if len(jobs) > 1 else ""
    return (f"{key}: job {job} needs an estimated {mb / 1000:.1f} GB at its peak, more than the "
            f"{limit_mb / 1000:.1f} GB of {source}{more}; reduce {key}, or set max_job_mem_mb to the "
            "memory of the largest machine the jobs run on (implicit_reg.pipeline.memory estimates)")
