"""What splitting a batch costs, and what threads give a long job.

Three measurements that the cores-aware plan (``implicit_reg.arora2019.batching``)
and the makespan simulation (``bench_makespan.py``) use:

* **group sizes** — per-run cost of a sensing shared-operator batch of B runs
  (B = 1, 2, 4, 8, 12, 24 and the whole row), the runs taken evenly from the
  paper's rank-5 row at m (every depth, init, lr, seed), n = 100, one thread, in
  lockstep (``_common.Lockstep``, one tick per engine step). The ratio is the
  per-run cost over the whole row's: what a split into groups of B pays for
  losing the shared products with A.
* **threads** — one MovieLens-sized run (943 × 1682, 10,000 ratings, depth 3,
  plain GD on the sampled-gradient path, the dynamics' MovieLens job) at 1 and 2
  torch threads, wall time per step, interleaved in short chunks and repeated,
  medians; the same for the 943 × 1682 products alone. Whether 2 threads give
  the same numbers as 1 bit for bit is checked on 30 steps of that run. Amdahl's
  law through the 2-thread speed-up gives the parallel fraction, hence what T
  threads would give. The load average during the measurement is reported: the
  machine is shared, and a busy second core makes the 2-thread figure low.
* **sensing threads** — shared-operator sensing groups of B = 1, 4, 12 runs of the
  paper's rank-5 row at m = 2000 and 5000, the same way (wall time per step at 1 and
  2 threads, interleaved rounds; final products after 200 steps compared bit for bit).

Usage::

    .venv/bin/python bench/bench_batching.py [--quick] [--json OUT]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from _common import Lockstep, entry, load_config, median, print_entries, stepping, write_json

from implicit_reg.arora2019.initialization import initial_factors
from implicit_reg.arora2019.observations import build_problem
from implicit_reg.arora2019.schedule import Schedule
from implicit_reg.arora2019.trainer import BatchTrainer

GROUP_SIZES = (1, 2, 4, 8, 12, 24)


def paper_row(m: int) -> list:
    """The runs of the largest paper-scale rank-5 sensing batch at m (every depth, init, lr and seed)."""
    from implicit_reg.arora2019.plan import build_plan

    plan = build_plan(load_config())
    batches = [b for b in plan.batches.values() if b.dataset.name == f"sensing-r5-m{m}"
               and b.schedule.optimizer == "grouprmsprop"]
    return max(batches, key=lambda b: len(b.runs)).runs


def evenly(runs: list, size: int) -> list:
    """``size`` runs spread evenly over ``runs`` (same mix of depths, inits and lrs)."""
    idx = np.linspace(0, len(runs) - 1, size).round().astype(int)
    return [runs[i] for i in idx]


def group_sizes(m: int, rounds: int, sizes=GROUP_SIZES) -> list[dict]:
    """Per-run step cost of shared-operator sensing groups of each size, over the whole row's."""
    from bench_sensing import row_trainer, sensing_problem

    _, problem = sensing_problem(m)
    row = paper_row(m)
    full = len(row)
    lock = Lockstep(rounds)
    sizes = [s for s in sizes if s < full] + [full]
    for size in sizes:
        # Small groups step fast: more steps per window keep the windows comparable.
        lock.add(f"B{size}", stepping(lock, f"B{size}", row_trainer(problem, evenly(row, size))),
                 max(1, min(8, full // size)))
    t = {k: np.asarray(v) for k, v in lock.run().items()}
    per_run = {s: t[f"B{s}"] / s for s in sizes}
    out = []
    for s in sizes:
        out.append(entry(f"sensing m={m} shared-operator group of B={s}: CPU per run-iteration (ratio: over "
                         f"the whole row's, B={full})", median(per_run[s]) * 1e3, "ms",
                         median(per_run[s] / per_run[full]), group_size=s, row_size=full, m=m))
    return out


def movielens_problem():
    """MovieLens-sized completion (943 × 1682 as the authors' split, 10,000 ratings) on the sampled path."""
    rng = np.random.default_rng(1)
    rows, cols = 943, 1682
    idx = rng.choice(rows * cols, size=12_000, replace=False)
    obs = {"shape": np.array([rows, cols]), "train_rows": idx[:10_000] // cols, "train_cols": idx[:10_000] % cols,
           "train_values": rng.integers(1, 6, 10_000).astype(np.float32),
           "test_rows": idx[10_000:] // cols, "test_cols": idx[10_000:] % cols,
           "test_values": rng.integers(1, 6, 2_000).astype(np.float32)}
    fraction = load_config()["engine"]["sampled_gradient_max_fraction"]
    return build_problem("movielens", obs, None, sampled_max_fraction=fraction)


def movielens_trainer(problem, steps: int, depth: int = 3) -> BatchTrainer:
    init = [initial_factors(problem.shape, depth, "identity", 1e-3, np.random.default_rng(0))]
    sched = Schedule(optimizer="gd", max_iters=steps, train_loss_tol=-1.0, log_every=10**9, sync_every=10**9,
                     checkpoint_seconds=0)
    return BatchTrainer(problem, init, [0.1], sched)


def _wall_per_step(trainer: BatchTrainer, threads: int, steps: int) -> float:
    """Wall seconds per step of ``trainer`` (built for ``steps`` + 1 steps) on ``threads`` threads,
    from the end of its first step: set-up and the first step's allocations are left out."""
    torch.set_num_threads(threads)
    start = {}

    def on_first(grads, step, original=trainer._step_size):
        start.setdefault("t", time.perf_counter())
        return original(grads, step)

    trainer._step_size = on_first
    trainer.run()
    return (time.perf_counter() - start["t"]) / steps


def _wall_products(threads: int, reps: int) -> float:
    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(943, 1682, generator=g), torch.randn(1682, 1682, generator=g)
    torch.mm(a, b)
    t0 = time.perf_counter()
    for _ in range(reps):
        torch.mm(a, b)
    return (time.perf_counter() - t0) / reps


def same_numbers(problem, steps: int = 30) -> bool:
    """The run's final product at 1 and at 2 threads, equal bit for bit?"""
    out = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        out[threads] = movielens_trainer(problem, steps).run().final_products[0]
    torch.set_num_threads(1)
    return bool(np.array_equal(out[1], out[2]))


def threads(rounds: int, steps: int) -> list[dict]:
    """Speed-up of one MovieLens depth-3 run and of its products at 2 threads over 1 (wall time)."""
    problem = movielens_problem()
    load_before = os.getloadavg()[0]
    run = {1: [], 2: []}
    mm = {1: [], 2: []}
    _wall_per_step(movielens_trainer(problem, 3), 1, 2)
    for _ in range(rounds):  # interleaved: both thread counts see the machine of the moment
        for k in (1, 2):
            run[k].append(_wall_per_step(movielens_trainer(problem, steps + 1), k, steps))
            mm[k].append(_wall_products(k, 5))
    torch.set_num_threads(1)
    load = (load_before + os.getloadavg()[0]) / 2
    speed = median(np.asarray(run[1]) / np.asarray(run[2]))
    speed_mm = median(np.asarray(mm[1]) / np.asarray(mm[2]))
    parallel = min(1.0, max(0.0, 2.0 * (1.0 - 1.0 / speed)))  # Amdahl: S(2) = 1 / (1 - p + p/2)
    identical = same_numbers(problem)
    out = [
        entry("movielens d3 step (943x1682, sampled path): wall time at 1 thread (ratio: over 2 threads, the "
              "speed-up)", median(run[1]) * 1e3, "ms", speed, load_average=load, rounds=rounds),
        entry("movielens d3 step: wall time at 2 threads", median(run[2]) * 1e3, "ms"),
        entry("943x1682 by 1682x1682 float32 product: wall time at 1 thread (ratio: over 2 threads)",
              median(mm[1]) * 1e3, "ms", speed_mm),
        entry("movielens d3 step: parallel fraction from the 2-thread speed-up (Amdahl)", parallel, "",
              None, load_average=load),
        entry("movielens d3 run at 2 threads: final product equal to 1 thread's bit for bit (1 yes, 0 no)",
              float(identical), ""),
    ]
    for t in (4, 8, 16):
        out.append(entry(f"movielens d3 step: speed-up at {t} threads (Amdahl, from the parallel fraction)",
                         1.0 / ((1.0 - parallel) + parallel / t), "x"))
    out.append(entry("load average of the machine during the thread measurement (2 cores)", load, ""))
    return out


def group_trainer(problem, runs: list, steps: int) -> BatchTrainer:
    """A shared-operator sensing group of the paper's runs, for ``steps`` steps (no run stops)."""
    init = [initial_factors(problem.shape, r.depth, r.init, r.init_scale, np.random.default_rng(r.init_seed))
            for r in runs]
    sched = Schedule(optimizer="grouprmsprop", max_iters=steps, train_loss_tol=-1.0, log_every=10**9, sync_every=100,
                     checkpoint_seconds=0)
    return BatchTrainer(problem, init, [r.lr for r in runs], sched, dtype=torch.float32)


def sensing_threads(m: int, rounds: int, steps: int, sizes=(1, 4, 12)) -> list[dict]:
    """Speed-up of shared-operator sensing groups of the paper's row at m on 2 threads over 1 (wall
    time, interleaved rounds), and whether 200 steps give the same factors bit for bit."""
    from bench_sensing import sensing_problem

    _, problem = sensing_problem(m)
    row = paper_row(m)
    load_before = os.getloadavg()[0]
    out = []
    for size in sizes:
        runs = evenly(row, size)
        _wall_per_step(group_trainer(problem, runs, 4), 1, 3)
        wall = {1: [], 2: []}
        for _ in range(rounds):  # interleaved: both thread counts see the machine of the moment
            for k in (1, 2):
                wall[k].append(_wall_per_step(group_trainer(problem, runs, steps + 1), k, steps))
        products = {}
        for k in (1, 2):
            torch.set_num_threads(k)
            products[k] = group_trainer(problem, runs, 200).run().final_products
        torch.set_num_threads(1)
        speed = median(np.asarray(wall[1]) / np.asarray(wall[2]))
        same = all(np.array_equal(a, b) for a, b in zip(products[1], products[2]))
        out += [
            entry(f"sensing m={m} shared-operator group of B={size}: wall time per step at 1 thread (ratio: over "
                  "2 threads, the speed-up)", median(wall[1]) * 1e3, "ms", speed, group_size=size, m=m,
                  rounds=rounds),
            entry(f"sensing m={m} group of B={size}: parallel fraction from the 2-thread speed-up (Amdahl)",
                  min(1.0, max(0.0, 2.0 * (1.0 - 1.0 / speed))), ""),
            entry(f"sensing m={m} group of B={size} at 2 threads: final products equal to 1 thread's bit for bit "
                  "(1 yes, 0 no)", float(same), ""),
        ]
    load = (load_before + os.getloadavg()[0]) / 2
    out.append(entry(f"load average of the machine during the sensing m={m} thread measurement (2 cores)", load, ""))
    return out


def benchmark(quick: bool = False) -> list[dict]:
    entries = threads(3 if quick else 7, 5 if quick else 15)
    for m in (2000, 5000):
        entries += sensing_threads(m, 3 if quick else 5, 10 if quick else 20)
    for m in (2000, 5000):
        entries += group_sizes(m, 3 if quick else 6)
    return entries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json")
    args = parser.parse_args()
    entries = benchmark(args.quick)
    print_entries(entries, "batching and threads")
    if args.json:
        write_json(entries, args.json)


if __name__ == "__main__":
    main()
