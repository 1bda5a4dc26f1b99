"""The cost model of an Arora et al. run: its iterations and its CPU seconds per iteration.

Costs per run-iteration are the engine timings measured on the project's 2-core machine
(``bench/results.md``, README "Cost", one thread): completion at n = 100, sensing at
m = 2000, MovieLens on the sampled path. They are scaled to other sizes by the work of the
products (n³ for completion, m·n² for sensing). Iterations come from the specifications'
timing tables, capped at ``max_iters``. The planner splits batches with them
(:mod:`implicit_reg.arora2019.batching`) and the pipeline's start-up estimate adds them up
(:mod:`implicit_reg.pipeline.estimate`).
"""

from __future__ import annotations

import math

from implicit_reg.arora2019.plan_items import Batch

#: Completion, n = 100, one thread: seconds per run-iteration, in a batch of 24 and alone.
COMPLETION_PER_RUN = {24: {1: 60e-6, 2: 114.6e-6, 3: 236.6e-6, 4: 377.6e-6},
                      1: {1: 110e-6, 2: 193.8e-6, 3: 306.6e-6, 4: 424.0e-6}}
#: Sensing, m = 2000, n = 100, depth 3: seconds per run-iteration, in a batch of 24 and alone.
SENSING_PER_RUN = {24: 1.974e-3, 1: 7.677e-3}
#: Sensing in a shared-operator batch (every depth of a measurement set in one job, oneDNN
#: products; bench/results.json: 0.635 ms per run-iteration at m = 2000 and 1.415 ms at
#: m = 5000, n = 100): seconds per measurement per run-iteration, and the factor chains'
#: part per run-iteration at depth 3 (the mixed batches' mean depth), which does not grow with m.
SENSING_SHARED_PER_MEASUREMENT = 2.60e-7
SENSING_SHARED_CHAIN_DEPTH3 = 1.14e-4
#: MovieLens-100K on the sampled-gradient path: seconds per step by depth.
MOVIELENS_PER_STEP = {1: 8.3e-3, 2: 17.4e-3, 3: 101.6e-3}
#: Work a tiny problem cannot shave off a step (kernel launches, bookkeeping), per run and layer.
MIN_PER_LAYER_ITERATION = 8e-6
#: Arora et al. §1.7: iterations to loss 1e-6 at lr 1e-3 for init scale 1e-3 and 1e-6, by depth.
ARORA_ITERS_INIT_1E3 = {2: 31e3, 3: 29e3, 4: 31e3}
ARORA_ITERS_INIT_1E6 = {2: 37e3, 3: 48e3, 4: 107e3}
#: Plain gradient descent of the dynamics figures (lr 0.1), by depth.
DYNAMICS_ITERS = {1: 7e4, 2: 1.25e5, 3: 1.25e5}


def run_iterations(batch: Batch, lr: float, init_scale: float, depth: int | None = None) -> float:
    """Expected iterations of one run of ``batch`` (spec timing tables, capped at ``max_iters``).

    Parameters
    ----------
    batch
        The planned batch (task, depth, schedule).
    lr, init_scale
        The run's learning rate and initialization scale.
    depth
        The run's depth (a shared-operator batch mixes depths: its ``depth`` is 0).

    Returns
    -------
    float
        Iterations; GroupRMSprop runs scale as 1/lr and interpolate in log(init scale).
    """
    cap = float(batch.schedule.max_iters)
    depth = depth or batch.depth
    if batch.schedule.optimizer == "gd":
        return cap if batch.dataset.task == "movielens" else min(cap, DYNAMICS_ITERS.get(depth, 1.25e5))
    a = ARORA_ITERS_INIT_1E3.get(depth, 31e3)
    b = ARORA_ITERS_INIT_1E6.get(depth, 107e3)
    x = max(0.0, (-math.log10(init_scale) - 3.0) / 3.0)  # 0 at 1e-3, 1 at 1e-6
    return min(cap, a * (b / a) ** x * (1e-3 / lr))


def run_iteration_seconds(batch: Batch, depth: int | None = None) -> float:
    """CPU seconds per run-iteration of ``batch`` on one thread.

    Parameters
    ----------
    batch
        The planned batch; its size selects the batched or the single-run cost.
    depth
        The run's depth (in a shared-operator batch, whose ``depth`` is 0).

    Returns
    -------
    float
        Seconds.
    """
    depth, task = depth or batch.depth, batch.dataset.task
    rows, cols = batch.dataset.shape
    batched = 24 if len(batch.runs) >= 8 else 1
    table = COMPLETION_PER_RUN[batched]
    # Beyond the measured depths each layer adds about what the last one did.
    top = max(table)
    completion = table.get(depth, table[top] + (depth - top) * (table[top] - table[top - 1]))
    if task == "completion":
        seconds = completion * (rows * cols * max(rows, cols)) / 100**3
    elif task == "sensing" and batch.depth == 0 and batched > 1:
        seconds = (SENSING_SHARED_PER_MEASUREMENT * batch.dataset.n_obs
                   + SENSING_SHARED_CHAIN_DEPTH3 * depth / 3) * rows * cols / 100**2
    elif task == "sensing":
        seconds = SENSING_PER_RUN[batched] * batch.dataset.n_obs * rows * cols / (2000 * 100**2)
        seconds += completion * (rows * cols * max(rows, cols)) / 100**3
    else:
        top = max(MOVIELENS_PER_STEP)
        per_step = MOVIELENS_PER_STEP.get(depth, MOVIELENS_PER_STEP[top] * 3 ** (depth - top))
        seconds = per_step * (rows * cols) / (1682 * 943)
    return max(seconds, MIN_PER_LAYER_ITERATION * depth)
