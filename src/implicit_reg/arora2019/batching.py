"""How the runs of one data set, depth and schedule become training jobs, for the cores a run has.

On a workstation (``engine.cores`` unset) a group of runs is cut into the fewest
even chunks of at most ``engine.max_batch_runs``: the shared work of a batch (one
product with the sensing operator for every run, the per-step bookkeeping) is
paid once, and two cores are kept busy by the other jobs.

On a cluster (``engine.cores`` = the job slots the run gets, set by the Slurm
profile) the longest batches would leave all other slots idle at the end: the
whole paper at paper scale is about 19 CPU hours, so 64 cores could finish it in
about 20 minutes, but its longest batches take 2 hours each. A group whose
estimated longest job exceeds the *job limit* is split into more groups, runs of
similar iteration counts together: the limit is the estimated total over the cores, but never below
the longest run that cannot be split (a single run: MovieLens at depth 3), since
smaller jobs would then only cost CPU time. Splitting pays for the lost sharing:
the per-run cost of a group of B runs over the cost in the whole group follows
the measured curves :data:`SHARED_OPERATOR_COST` and :data:`COMPLETION_COST`.

A run's numbers do not depend on the group it trains in (the engine trains each
run on its own factors; its provenance key names no batch), so a split changes
job names, never run keys: archived and finished runs are still found.

Only a job of one run whose matrix is large (MovieLens, 943 × 1682; at least
``engine.threads_min_entries`` entries) gets threads, and only as many of
``engine.threads`` as bring it within the total over the cores: batched small
matrices gain more from the other cores running other jobs, and a thread that
cannot shorten the makespan only costs CPU time. Thread speed-ups follow Amdahl's
law with the measured parallel fraction :data:`THREADS_PARALLEL_FRACTION`.

Costs are CPU seconds per iteration of a run *alone* (a group of one); the planner
takes them from the archive's measurements where it holds the run
(:mod:`implicit_reg.arora2019.job_costs`), as ``bench/bench_makespan.py`` does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Generic, Hashable, Mapping, Sequence, TypeVar

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)

#: Per-run cost of a sensing shared-operator group of B runs over the cost in a group of 48
#: (``bench/bench_batching.py``: runs taken evenly from the paper's rank-5 row at m = 2000,
#: n = 100, one thread, lockstep medians; at m = 5000 the same within 20 %). A step streams the
#: whole operator A whatever B is, so a step of one run costs a third of a step of 48: small
#: groups pay 3-15 times more per run. Interpolated in log B.
SHARED_OPERATOR_COST: dict[int, float] = {1: 15.6, 2: 10.2, 4: 5.36, 8: 3.02, 12: 2.25, 24: 1.40, 48: 1.0}
#: Per-run cost of a completion group of B runs over the cost in a group of 24
#: (``estimate.COMPLETION_PER_RUN`` at depth 3, n = 100: 306.6 µs alone, 236.6 µs at B = 24).
COMPLETION_COST: dict[int, float] = {1: 1.30, 24: 1.0}
#: Plain gradient descent batches (the dynamics figures) are charged per run: no sharing assumed.
NO_SHARING: dict[int, float] = {1: 1.0}
#: Share of a MovieLens depth-3 step that runs in parallel on torch threads (Amdahl), from the
#: measured 2-thread speed-up of 1.795 (``bench/bench_batching.py``: a step of the sampled path,
#: 943 × 1682, 132.6 ms at 1 thread, 74.2 ms at 2, medians of 7 rounds on this 2-core machine
#: at load average 0.49; bench/results.json): 0.886, so 2.98x at 4 threads, 4.45x at 8, 5.90x at
#: 16. The 943 × 1682 by 1682 × 1682 product alone scaled 1.96x at 2 threads.
THREADS_PARALLEL_FRACTION = 0.886
#: A single-run job whose matrix has at least this many entries may get threads (the default of
#: ``engine.threads_min_entries``; MovieLens: 943 × 1682 = 1.6 M; the synthetic matrices are
#: 100 × 100, whose steps are too short to share out).
THREADS_MIN_ENTRIES = 250_000


def relative_cost(curve: Mapping[int, float], size: int) -> float:
    """Per-run cost of a group of ``size`` runs on ``curve``, linear in log(size), flat outside it.

    Parameters
    ----------
    curve : mapping of int to float
        Group size -> per-run cost (any unit; only ratios are used).
    size : int
        Runs in the group (at least 1).

    Returns
    -------
    float
        The interpolated per-run cost.
    """
    points = sorted(curve.items())
    if size <= points[0][0]:
        return points[0][1]
    for (b0, c0), (b1, c1) in zip(points, points[1:]):
        if size <= b1:
            x = (math.log(size) - math.log(b0)) / (math.log(b1) - math.log(b0))
            return c0 + x * (c1 - c0)
    return points[-1][1]


def even_chunks(runs: Sequence[T], n_chunks: int) -> list[list[T]]:
    """``runs`` cut into ``n_chunks`` contiguous chunks whose sizes differ by at most one.

    Even chunks, not full ones: a 96-run row in two jobs of 48 keeps both cores busy, where
    64 + 32 would leave one idle for a third of the time.
    """
    n = len(runs)
    return [list(runs[c * n // n_chunks:(c + 1) * n // n_chunks]) for c in range(n_chunks)]


def chunks_by_iterations(runs: Sequence[T], n_groups: int, iterations: Sequence[float]) -> list[list[T]]:
    """``runs`` in ``n_groups`` groups of equal size (±1), runs of similar iteration counts together.

    A batch lasts as long as its longest run, and a step costs nearly as much for a few runs
    as for many (sensing: the operator is read whole), so the long runs go together and the
    short ones finish early in their own jobs. Each group keeps the order of ``runs``; the
    groups are ordered by their first run, so the result depends on the runs only.
    """
    order = sorted(range(len(runs)), key=lambda i: (iterations[i], i))
    groups = [sorted(c) for c in even_chunks(order, n_groups) if c]
    groups.sort(key=lambda g: g[0])
    return [[runs[i] for i in g] for g in groups]


def group_seconds(iterations: Sequence[float], run_iteration_seconds: Sequence[float],
                  curve: Mapping[int, float], whole: int = 1) -> float:
    """Seconds of one job training runs of ``iterations``, runs leaving as they stop.

    ``run_iteration_seconds`` are the runs' costs per iteration in a group of ``whole`` runs;
    while B runs are active each costs ``relative_cost(curve, B) / relative_cost(curve, whole)``
    times that.
    """
    order = sorted(range(len(iterations)), key=lambda i: iterations[i])
    ref = relative_cost(curve, whole)
    total, done = 0.0, 0.0
    for k, i in enumerate(order):
        active = order[k:]
        total += (iterations[i] - done) * sum(run_iteration_seconds[j] for j in active) \
            * relative_cost(curve, len(active)) / ref
        done = iterations[i]
    return total


def split_times(iterations: Sequence[float], run_iteration_seconds: Sequence[float],
                curve: Mapping[int, float], n_groups: int) -> list[float]:
    """Seconds of each job when the runs, at ``run_iteration_seconds`` each alone, are cut into
    ``n_groups`` (:func:`chunks_by_iterations`)."""
    n = len(iterations)
    return [group_seconds([iterations[i] for i in g], [run_iteration_seconds[i] for i in g], curve, 1)
            for g in chunks_by_iterations(list(range(n)), n_groups, iterations)]


def thread_speedup(threads: int, parallel_fraction: float = THREADS_PARALLEL_FRACTION) -> float:
    """Amdahl's law: the speed-up of ``threads`` threads on a step whose ``parallel_fraction`` runs in parallel."""
    return 1.0 / ((1.0 - parallel_fraction) + parallel_fraction / max(1, threads))


def job_threads(n_runs: int, shape: Sequence[int], threads: int, seconds: float = math.inf,
                limit: float = 0.0, min_entries: int = THREADS_MIN_ENTRIES, min_seconds: float | None = None) -> int:
    """Threads of a training job of ``n_runs`` runs taking ``seconds`` on one thread.

    One run on a matrix of at least ``min_entries`` entries gets the fewest threads, up to
    ``threads``, that bring it within ``limit`` (all ``threads`` if none does); within the
    limit already it gets one, unless it is longer than ``min_seconds``, then all
    ``threads``. Any other job gets one.
    """
    entries = math.prod(int(s) for s in shape)
    top = max(1, int(threads))
    if n_runs != 1 or entries < min_entries:
        return 1
    if seconds <= limit:
        return top if min_seconds is not None and seconds > min_seconds else 1
    return next((t for t in range(1, top + 1) if seconds / thread_speedup(t) <= limit), top)


def job_limit(total_seconds: float, cores: int, floor_seconds: float) -> float:
    """Longest job the plan aims at: the total over the cores, but not below the longest indivisible run."""
    return max(total_seconds / max(1, cores), floor_seconds)


def split_groups(
    groups: Mapping[K, Sequence[T]],
    iterations: Mapping[K, Sequence[float]],
    run_iteration_seconds: Mapping[K, Sequence[float]],
    curves: Mapping[K, Mapping[int, float]],
    max_batch: int,
    cores: int | None = None,
    floor_seconds: float = 0.0,
    extra_seconds: float = 0.0,
) -> dict[K, list[list[T]]]:
    """The training jobs of each group of runs.

    Parameters
    ----------
    groups : mapping
        Key (data set, depth, schedule) -> the runs sharing it, in the planner's order.
    iterations, run_iteration_seconds : mapping
        Key -> each run's iterations, and its seconds per iteration alone (a group of one).
    curves : mapping
        Key -> per-run cost by group size (:data:`SHARED_OPERATOR_COST`, ...).
    max_batch : int
        Most runs in one job (``engine.max_batch_runs``).
    cores : int or None
        Job slots of the whole run (``engine.cores``); None: even chunks of at most
        ``max_batch`` (a workstation), no estimate used.
    floor_seconds : float
        The longest job that cannot be split (a single run at its threads).
    extra_seconds : float
        Seconds of the other jobs (convex solves ...), counted in the total.

    Returns
    -------
    dict
        Key -> the runs of each job.
    """
    base = {key: -(-len(runs) // max_batch) for key, runs in groups.items()}
    if cores is None:
        return {key: even_chunks(runs, base[key]) for key, runs in groups.items()}
    times = {key: split_times(iterations[key], run_iteration_seconds[key], curves[key], base[key]) for key in groups}
    limit = job_limit(extra_seconds + sum(sum(t) for t in times.values()), cores, floor_seconds)
    out: dict[K, list[list[T]]] = {}
    for key, runs in groups.items():
        its, secs, curve, n = iterations[key], run_iteration_seconds[key], curves[key], len(runs)
        k = base[key]
        if max(times[key]) > limit:
            k = best_split(its, secs, curve, base[key], limit, cores)
        out[key] = even_chunks(runs, k) if k == base[key] else chunks_by_iterations(runs, k, its)
    return out


def best_split(iterations: Sequence[float], run_iteration_seconds: Sequence[float], curve: Mapping[int, float],
               first: int, limit: float, cores: int) -> int:
    """Number of jobs for a group whose longest job exceeds ``limit``.

    The fewest jobs whose longest is within ``limit``; when no split gets there (its longest
    run alone is near the limit, or the step costs nearly as much for few runs as for many),
    the split that minimizes its longest job plus the CPU time it adds spread over the
    ``cores``: a makespan is at least the longest job and at least the CPU time over the cores.
    """
    base = sum(split_times(iterations, run_iteration_seconds, curve, first))
    best, best_score = first, math.inf
    for k in range(first, len(iterations) + 1):
        times = split_times(iterations, run_iteration_seconds, curve, k)
        if max(times) <= limit:
            return k
        score = max(times) + (sum(times) - base) / cores
        if score < best_score * (1 - 1e-3):
            best, best_score = k, score
    return best


def longest_single_run(iterations: Mapping[K, Sequence[float]], run_iteration_seconds: Mapping[K, Sequence[float]],
                       curves: Mapping[K, Mapping[int, float]],
                       speedup: Callable[[K], float] = lambda key: 1.0) -> float:
    """Seconds of the longest run trained alone, at its threads' ``speedup``."""
    best = 0.0
    for key, its in iterations.items():
        best = max([best] + [i * c / speedup(key) for i, c in zip(its, run_iteration_seconds[key])])
    return best


def cost_curve(task: str, optimizer: str, shared_operator: bool) -> Mapping[int, float]:
    """The per-run cost curve of a group: shared-operator sensing, batched completion, or none."""
    if shared_operator:
        return SHARED_OPERATOR_COST
    if optimizer != "gd" and task == "completion":
        return COMPLETION_COST
    return NO_SHARING


@dataclass
class PlannedJob(Generic[T]):
    """One training job: its runs and the threads it gets."""

    runs: list[T]
    threads: int = 1


def plan_jobs(
    groups: Mapping[K, Sequence[T]],
    engine: Mapping[str, object],
    run_costs: Callable[[K, Sequence[T]], tuple[Sequence[float], Sequence[float]]],
    describe: Callable[[K], tuple[str, str, bool, Sequence[int]]],
) -> dict[K, list[PlannedJob[T]]]:
    """The training jobs of the planner's groups for the ``engine`` section of the config.

    Parameters
    ----------
    groups : mapping
        Key (data set, depth, schedule) -> the runs to train, in the planner's order.
    engine : mapping
        ``max_batch_runs``, and ``cores`` / ``threads`` / ``threads_min_entries`` /
        ``threads_min_seconds`` when the run has more cores.
    run_costs : callable
        (key, runs) -> (each run's iterations, its CPU seconds per iteration alone).
    describe : callable
        key -> (task, optimizer, shared operator?, matrix shape).

    Returns
    -------
    dict
        Key -> its jobs (runs as :func:`split_groups` cuts them; threads by :func:`job_threads`
        against the total over the cores).
    """
    max_batch = int(engine.get("max_batch_runs", 64))
    cores = engine.get("cores")
    if cores is None:
        return {key: [PlannedJob(c) for c in chunks]
                for key, chunks in split_groups(groups, {}, {}, {}, max_batch).items()}
    cores = int(cores)
    threads = int(engine.get("threads") or 1)
    min_entries = int(engine.get("threads_min_entries") or THREADS_MIN_ENTRIES)
    min_seconds = engine.get("threads_min_seconds")
    info = {key: describe(key) for key in groups}
    curves = {key: cost_curve(*info[key][:3]) for key in groups}
    costs = {key: run_costs(key, runs) for key, runs in groups.items()}
    its = {key: list(c[0]) for key, c in costs.items()}
    secs = {key: list(c[1]) for key, c in costs.items()}
    total = sum(sum(split_times(its[key], secs[key], curves[key], -(-len(groups[key]) // max_batch)))
                for key in groups)

    def run_threads(key: K, seconds: float) -> int:
        return job_threads(1, info[key][3], threads, seconds, total / cores, min_entries,
                           None if min_seconds is None else float(min_seconds))

    floor = max((i * c / thread_speedup(run_threads(key, i * c)) for key in groups
                 for i, c in zip(its[key], secs[key])), default=0.0)
    split = split_groups(groups, its, secs, curves, max_batch, cores, floor)
    out: dict[K, list[PlannedJob[T]]] = {}
    for key, chunks in split.items():
        index = {id(r): i for i, r in enumerate(groups[key])}
        out[key] = []
        for chunk in chunks:
            rows = [index[id(r)] for r in chunk]
            seconds = group_seconds([its[key][i] for i in rows], [secs[key][i] for i in rows], curves[key])
            out[key].append(PlannedJob(list(chunk), run_threads(key, seconds) if len(chunk) == 1 else 1))
    return out
