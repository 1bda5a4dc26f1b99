"""How the runs of one data set, depth and schedule become training jobs, for the cores a run has.

On a workstation (``engine.cores`` unset) a group of runs is cut into the fewest
even chunks of at most ``engine.max_batch_runs``: the shared work of a batch (one
product with the sensing operator for every run, the per-step bookkeeping) is
paid once, and two cores are kept busy by the other jobs.

On a cluster (``engine.cores`` = the job slots the run gets, set by the Slurm
profile) the longest batches would leave all other slots idle at the end: the
whole paper at paper scale is about 20 CPU hours, so 64 cores could finish it in
about 20 minutes, but its longest batches take 2 hours each. Each group of runs
then has *options*: cut into more jobs (runs of similar iteration counts together),
each job on 1 to ``engine.threads`` threads where its task was measured to scale
(:data:`THREADS_PARALLEL_FRACTION`: sensing groups and MovieLens, whose steps read at
least ``engine.threads_min_entries`` entries). Cutting pays for the lost sharing (the
per-run cost of a group of B runs follows the measured curves
:data:`SHARED_OPERATOR_COST` and :data:`COMPLETION_COST`); a thread pays its core for
the job's whole time, at the speed-up of Amdahl's law. :func:`choose_options` keeps, for
the job limit of least estimated makespan (the longest job, or the CPU time over the
cores), each group's cheapest option within it; no job is asked to get below the
longest indivisible one (a single run on all its threads). On two cores the CPU time
decides, and nothing is cut or threaded.

A run's numbers do not depend on the group it trains in or on its threads (the engine
trains each run on its own factors; its provenance key names neither; 2 threads give
the same products bit for bit, ``tests/test_batching.py``), so a split changes job
names, never run keys: archived and finished runs are still found.

Costs are CPU seconds per iteration of a run *alone* (a group of one); the planner
takes them from the archive's measurements where it holds the run
(:mod:`implicit_reg.arora2019.job_costs`), as ``bench/bench_makespan.py`` does.
"""

from __future__ import annotations

import bisect
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
#: (``costs.COMPLETION_PER_RUN`` at depth 3, n = 100: 306.6 µs alone, 236.6 µs at B = 24).
COMPLETION_COST: dict[int, float] = {1: 1.30, 24: 1.0}
#: Plain gradient descent batches (the dynamics figures) are charged per run: no sharing assumed.
NO_SHARING: dict[int, float] = {1: 1.0}
#: Share of a training step that runs in parallel on torch threads (Amdahl), by task, from the
#: measured 2-thread speed-ups S (p = 2(1 - 1/S); on this 2-core machine at load average below
#: 1.2, medians of 5-7 interleaved rounds, ``bench/bench_batching.py``; bench/results.json):
#:
#: * ``movielens``: a depth-3 step of the sampled path, 943 × 1682: 132.6 ms at 1 thread,
#:   74.2 ms at 2, S = 1.795, p = 0.886 (the 943 × 1682 by 1682 × 1682 product alone: 1.96x);
#: * ``sensing``: a shared-operator group of the paper's rank-5 row, n = 100: at m = 5000,
#:   S = 1.82 for one run, 1.86 for 4, 1.85 for 12; at m = 2000, 1.92, 1.85, 1.86 (final
#:   products bit for bit those of one thread). The smallest, p = 0.903, is taken for every group.
#:
#: Completion at n = 100 is not listed: its steps were not measured on threads, so it gets none.
#: At 8 threads p = 0.886 gives 4.45x and p = 0.903 4.76x: an extrapolation from 2 cores, which
#: a node whose memory bandwidth the threads share may not reach.
THREADS_PARALLEL_FRACTION: dict[str, float] = {"movielens": 0.886, "sensing": 0.903}
#: A job whose step reads at least this many entries may get threads (the default of
#: ``engine.threads_min_entries``): the matrix's for completion and MovieLens (943 × 1682 =
#: 1.6 M), the measurement operator's for sensing (m × n², 20 M at m = 2000, n = 100).
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
    active_seconds = sum(run_iteration_seconds)
    total, done = 0.0, 0.0
    for k, i in enumerate(order):
        total += (iterations[i] - done) * active_seconds * relative_cost(curve, len(order) - k) / ref
        active_seconds -= run_iteration_seconds[i]
        done = iterations[i]
    return total


def split_times(iterations: Sequence[float], run_iteration_seconds: Sequence[float],
                curve: Mapping[int, float], n_groups: int) -> list[float]:
    """Seconds of each job when the runs, at ``run_iteration_seconds`` each alone, are cut into
    ``n_groups`` (:func:`chunks_by_iterations`)."""
    n = len(iterations)
    return [group_seconds([iterations[i] for i in g], [run_iteration_seconds[i] for i in g], curve, 1)
            for g in chunks_by_iterations(list(range(n)), n_groups, iterations)]


def thread_speedup(threads: int, parallel_fraction: float) -> float:
    """Amdahl's law: the speed-up of ``threads`` threads on a step whose ``parallel_fraction`` runs in parallel."""
    return 1.0 / ((1.0 - parallel_fraction) + parallel_fraction / max(1, threads))


def task_speedup(task: str, threads: int) -> float:
    """The speed-up of a ``task`` job on ``threads`` threads (1 for a task not measured on threads)."""
    return thread_speedup(threads, THREADS_PARALLEL_FRACTION.get(task, 0.0))


#: One way to run a group of runs: (jobs, threads of a one-run job, longest job seconds, CPU seconds).
Option = tuple[int, int, float, float]


def split_options(iterations: Sequence[float], run_iteration_seconds: Sequence[float], curve: Mapping[int, float],
                  first: int, floor_seconds: float = 0.0) -> list[Option]:
    """The ways to cut a group into ``first`` jobs or more (:func:`split_times`), fewest jobs first.

    Cuts stop where the longest job is within ``floor_seconds`` (no makespan gets below the
    longest indivisible job, so more jobs would only add CPU time) or at one run per job.
    """
    out: list[Option] = []
    for k in range(first, len(iterations) + 1):
        times = split_times(iterations, run_iteration_seconds, curve, k)
        out.append((k, 1, max(times), sum(times)))
        if max(times) <= floor_seconds:
            break
    return out


def with_threads(options: Sequence[Option], threads: int, fraction: float,
                 min_seconds: float | None = None) -> list[Option]:
    """Each of ``options`` (on one thread) on 1 to ``threads`` threads, for a step whose
    ``fraction`` runs in parallel.

    A job of ``t`` threads holds them for as long as it runs: its CPU time is ``t`` times its
    wall time. An option whose longest job at one thread exceeds ``min_seconds`` is offered on
    all ``threads`` only (``engine.threads_min_seconds``: threads for every long job).
    """
    top = max(1, int(threads))
    out: list[Option] = []
    for jobs, _, longest, cpu in options:
        counts = [top] if min_seconds is not None and longest > min_seconds else range(1, top + 1)
        for t in counts:
            s = thread_speedup(t, fraction)
            out.append((jobs, t, longest / s, t * cpu / s))
    return out


def choose_options(options: Mapping[K, Sequence[Option]], cores: int, floor_seconds: float = 0.0,
                   extra_seconds: float = 0.0) -> dict[K, Option]:
    """One option per group: those of the job limit that gives the shortest estimated makespan.

    For a job limit L each group takes, among its options whose longest job is within L, the
    one of least CPU time, then of fewest jobs and threads (none within L: its shortest). A makespan is at least the longest job
    and at least the CPU time over the cores, so the estimate is the larger of the two (and of
    ``floor_seconds``); every option's longest job is tried as L, and among estimates within
    0.1 % of the best the largest L is kept: it splits least, so it costs least CPU time. With
    few cores the CPU time dominates and nothing is split or threaded.
    """
    # per group, options by longest job, and the cheapest (least CPU) of each prefix of them
    ordered = {key: sorted(opts, key=lambda o: (o[2], o[3], o[0], o[1])) for key, opts in options.items()}
    longest = {key: [o[2] for o in opts] for key, opts in ordered.items()}
    cheapest: dict[K, list[Option]] = {}
    for key, opts in ordered.items():
        best: list[Option] = []
        for o in opts:
            b = best[-1] if best else None
            # equal CPU time: fewer jobs and threads (a split that costs nothing gains nothing)
            better = b is None or o[3] < b[3] * (1 - 1e-9) or (o[3] <= b[3] * (1 + 1e-9) and o[:2] < b[:2])
            best.append(o if better else b)
        cheapest[key] = best

    def pick(limit: float) -> dict[K, Option]:
        out = {}
        for key, opts in ordered.items():
            i = bisect.bisect_right(longest[key], limit)
            out[key] = cheapest[key][i - 1] if i else opts[0]
        return out

    def estimate(chosen: Mapping[K, Option]) -> float:
        cpu = extra_seconds + sum(o[3] for o in chosen.values())
        return max([floor_seconds, cpu / max(1, cores)] + [o[2] for o in chosen.values()])

    limits = sorted({o[2] for opts in options.values() for o in opts if o[2] >= floor_seconds * (1 - 1e-9)}
                    | {max((min(ls) for ls in longest.values()), default=0.0)}, reverse=True)
    scored = [(estimate(pick(limit)), limit) for limit in limits] or [(0.0, math.inf)]
    best_score = min(score for score, _ in scored)
    return pick(max(limit for score, limit in scored if score <= best_score * (1 + 1e-3)))


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
        CPU seconds of the other jobs (convex solves ...), counted in the total.

    Returns
    -------
    dict
        Key -> the runs of each job (:func:`choose_options` over :func:`split_options`).
    """
    base = {key: -(-len(runs) // max_batch) for key, runs in groups.items()}
    if cores is None:
        return {key: even_chunks(runs, base[key]) for key, runs in groups.items()}
    options = {key: split_options(iterations[key], run_iteration_seconds[key], curves[key], base[key],
                                  floor_seconds) for key in groups}
    chosen = choose_options(options, cores, floor_seconds, extra_seconds)
    return {key: cut(runs, chosen[key][0], base[key], iterations[key]) for key, runs in groups.items()}


def cut(runs: Sequence[T], n_jobs: int, first: int, iterations: Sequence[float]) -> list[list[T]]:
    """``runs`` in ``n_jobs`` jobs: even chunks as on a workstation when not split further."""
    return even_chunks(runs, n_jobs) if n_jobs == first else chunks_by_iterations(runs, n_jobs, iterations)


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
    describe: Callable[[K], tuple[str, str, bool, int]],
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
        key -> (task, optimizer, shared operator?, entries its step reads: the matrix's, or
        the measurement operator's for sensing).

    Returns
    -------
    dict
        Key -> its jobs. Every group chooses among its cuts (:func:`split_options`); one of a
        task measured on threads (:data:`THREADS_PARALLEL_FRACTION`) whose step reads at least
        ``threads_min_entries`` entries also among thread counts for them (:func:`with_threads`);
        all together by :func:`choose_options`. The jobs of a group get the same threads.
    """
    max_batch = int(engine.get("max_batch_runs", 64))
    cores = engine.get("cores")
    if cores is None:
        return {key: [PlannedJob(c) for c in chunks]
                for key, chunks in split_groups(groups, {}, {}, {}, max_batch).items()}
    threads = int(engine.get("threads") or 1)
    min_entries = int(engine.get("threads_min_entries") or THREADS_MIN_ENTRIES)
    min_seconds = engine.get("threads_min_seconds")
    info = {key: describe(key) for key in groups}
    costs = {key: run_costs(key, runs) for key, runs in groups.items()}
    its = {key: list(c[0]) for key, c in costs.items()}
    secs = {key: list(c[1]) for key, c in costs.items()}
    fraction = {key: THREADS_PARALLEL_FRACTION.get(info[key][0], 0.0) if int(info[key][3]) >= min_entries else 0.0
                for key in groups}
    top = {key: thread_speedup(threads, fraction[key]) for key in groups}
    # the longest indivisible job: one run alone, on every thread where threads help it
    floor = max((i * c / top[k] for k in groups for i, c in zip(its[k], secs[k])), default=0.0)
    base = {key: -(-len(runs) // max_batch) for key, runs in groups.items()}
    options: dict[K, list[Option]] = {}
    for key in groups:
        cuts = split_options(its[key], secs[key], cost_curve(*info[key][:3]), base[key], floor * top[key])
        options[key] = with_threads(cuts, threads, fraction[key], None if min_seconds is None else float(min_seconds)) \
            if fraction[key] > 0 and threads > 1 else cuts
    chosen = choose_options(options, int(cores), floor)
    return {key: [PlannedJob(c, chosen[key][1]) for c in cut(runs, chosen[key][0], base[key], its[key])]
            for key, runs in groups.items()}
