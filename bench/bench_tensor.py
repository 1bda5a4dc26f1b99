"""Speed of CP tensor completion and of the CP-rank estimate (Razin & Cohen 2020, Fig. 2).

Default (benchmark):

* time per iteration for order 4 (8⁴, R = 512): the hand-written batched step
  (10 runs stacked, and a single run) versus an autograd step written like the
  authors' model (full einsum, gather the observed entries, MSELoss, backward,
  GroupRMSprop);
* time of one CP-rank estimate for a model-like rank-1 tensor (the ground
  truth plus 1e-4 noise) and for a linear-baseline tensor (order 4, n = 1000);
* time per ALS sweep of this project's ALS versus tensorly's ``parafac``
  (same initial factors, rank 40, order-4 linear-baseline tensor).

``--experiment`` instead trains one (order, n) cell to completion (5 seeds ×
the given inits, stacked) and prints each run's status, iterations, error
and estimated rank, plus the linear baseline's error and rank.

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_tensor.py --data-dir DIR [--json OUT]
    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_tensor.py --data-dir DIR --experiment --order 4 --n 1000 --inits 1e-3
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from implicit_reg.razin2020 import cp_rank as cr  # noqa: E402
from implicit_reg.razin2020 import tensor_completion as tc  # noqa: E402

#: Benchmark timings use process CPU time: on a shared machine wall time counts
#: the time the process waits for a core. (--experiment reports wall time.)
clock = time.process_time


def load(data_dir: str | None, order: int, rank: int = 1) -> tc.TensorCompletionData:
    if data_dir:
        return tc.load_tensor_data(Path(data_dir) / f"tensor_rank_{rank}_fro_1_order_{order}_dim_8.npz")
    return tc.generate_tensor_data(order, rank, seed=0)


def time_engine(data: tc.TensorCompletionData, n: int, runs: int, iters: int) -> float:
    """Seconds per iteration of the stacked hand-written engine."""
    obs = tc.observed_indices(data, n)
    batch = tc.CPCompletionBatch(data.target, obs, [1e-3] * runs, list(range(runs)), tol=-1.0, device="cpu")
    batch.advance(3)
    start = clock()
    batch.advance(iters)
    return (clock() - start) / iters


def time_autograd(data: tc.TensorCompletionData, n: int, iters: int) -> float:
    """Seconds per iteration of an autograd step shaped like the authors' code."""
    obs = torch.from_numpy(tc.observed_indices(data, n))
    target = torch.from_numpy(data.target.reshape(-1))[obs]
    r = cr.max_cp_rank(data.target.shape)
    params = [torch.nn.Parameter(torch.from_numpy(f)) for f in tc.init_factors(data.target.shape, r, 1e-3, 0)]
    letters = "abcdefgh"[: data.target.ndim]
    spec = ",".join(f"{c}z" for c in letters) + "->" + letters
    loss_fn = torch.nn.MSELoss()
    square_avg, beta = torch.tensor(0.0), 0.99

    def step(t: int) -> None:
        nonlocal square_avg
        for p in params:
            p.grad = None
        loss = loss_fn(torch.einsum(spec, *params).reshape(-1)[obs], target)
        loss.backward()
        with torch.no_grad():
            square_avg = square_avg * beta + sum((1 - beta) * p.grad.pow(2).sum() for p in params)
            lr = 0.01 / ((square_avg / (1 - beta**t)).sqrt() + 1e-6)
            for p in params:
                p.add_(-lr * p.grad)

    step(1)
    start = clock()
    for t in range(2, iters + 2):
        step(t)
    return (clock() - start) / iters


def time_rank(tensor: np.ndarray, seed: int = 0) -> tuple[float, int]:
    start = clock()
    rank = cr.estimate_cp_rank(tensor, seed)
    return clock() - start, rank


def time_als_sweeps(tensor: np.ndarray, rank: int, sweeps: int) -> tuple[float, float]:
    """Seconds per sweep: this project's ALS vs tensorly's parafac, same start, no early stop."""
    import tensorly as tl
    from tensorly.cp_tensor import CPTensor
    from tensorly.decomposition import parafac

    start = clock()
    cr.cp_als(tensor, rank, np.random.default_rng(0), tol=-1.0, max_sweeps=sweeps)
    own = (clock() - start) / sweeps

    x = tensor.astype(np.float64)
    init = [np.random.default_rng(0).standard_normal((d, rank)) for d in x.shape]
    norm_x = np.linalg.norm(x)

    def stop_on_mse(_cp, rec_error):
        # Early stop on the MSE as in the paper's procedure (never met here).
        return (rec_error * norm_x) ** 2 / x.size < -1.0

    tl.set_backend("numpy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = clock()
        parafac(x, rank, n_iter_max=sweeps, init=CPTensor((np.ones(rank), [f.copy() for f in init])),
                tol=0, normalize_factors=False, return_errors=True, callback=stop_on_mse)
        other = (clock() - start) / sweeps
    return own, other


def benchmark(data_dir: str | None, iters: int, quick: bool = False, orders: tuple[int, ...] = (4,)) -> list[dict]:
    """``quick`` skips the slow linear-tensor rank estimate and times 30 ALS sweeps instead of 200."""
    entries = []
    for order in orders:
        if order == 4:
            continue
        d = load(data_dir, order)
        n = d.target.size // 2
        auto_o = time_autograd(d, n, iters)
        single_o = time_engine(d, n, 1, iters)
        stacked_o = time_engine(d, n, 10, iters)
        entries += [
            {"name": f"order {order} autograd step, 1 run", "value": auto_o * 1e3, "unit": "ms", "ratio": 1.0},
            {"name": f"order {order} hand-written step, 1 run", "value": single_o * 1e3, "unit": "ms",
             "ratio": auto_o / single_o},
            {"name": f"order {order} hand-written step, 10 runs stacked (per run)", "value": stacked_o / 10 * 1e3,
             "unit": "ms", "ratio": auto_o / (stacked_o / 10)},
        ]
    d4 = load(data_dir, 4)
    stacked = time_engine(d4, 1000, 10, iters)
    single = time_engine(d4, 1000, 1, iters)
    auto = time_autograd(d4, 1000, iters)
    entries += [
        {"name": "order 4 R=512 autograd step, 1 run", "value": auto * 1e3, "unit": "ms", "ratio": 1.0},
        {"name": "order 4 R=512 hand-written step, 1 run", "value": single * 1e3, "unit": "ms",
         "ratio": auto / single},
        {"name": "order 4 R=512 hand-written step, 10 runs stacked (per run)", "value": stacked / 10 * 1e3,
         "unit": "ms", "ratio": auto / (stacked / 10)},
        {"name": "order 4 R=512 hand-written step, 10 runs stacked (whole batch)", "value": stacked * 1e3,
         "unit": "ms", "ratio": None},
    ]
    rng = np.random.default_rng(1)
    model_like = d4.target + 1e-4 * rng.standard_normal(d4.target.shape).astype(np.float32)
    t_model, r_model = time_rank(model_like)
    linear = tc.linear_baseline_tensor(d4.target, tc.observed_indices(d4, 1000))
    entries.append({"name": f"cp rank estimate, order 4 model-like rank-1 tensor (-> {r_model})", "value": t_model,
                    "unit": "s", "ratio": None})
    if not quick:
        t_lin, r_lin = time_rank(linear)
        entries.append({"name": f"cp rank estimate, order 4 linear tensor n=1000 (-> {r_lin})", "value": t_lin,
                        "unit": "s", "ratio": None})
    own, other = time_als_sweeps(linear, 40, 30 if quick else 200)
    entries += [
        {"name": "ALS sweep rank 40 order 4, tensorly parafac", "value": other * 1e3, "unit": "ms", "ratio": 1.0},
        {"name": "ALS sweep rank 40 order 4, this project", "value": own * 1e3, "unit": "ms",
         "ratio": other / own},
    ]
    return entries


def experiment(data_dir: str | None, order: int, n: int, inits: list[float], reps: int, rank: int) -> list[dict]:
    data = load(data_dir, order, rank)
    obs = tc.observed_indices(data, n)
    stds = [s for s in inits for _ in range(reps)]
    seeds = list(range(len(stds)))
    start = time.perf_counter()
    batch = tc.CPCompletionBatch(data.target, obs, stds, seeds, device="cpu").run()
    train_time = time.perf_counter() - start
    lin_err = tc.linear_baseline_error(data.target, obs)
    t_lin, r_lin = time_rank(tc.linear_baseline_tensor(data.target, obs))
    t_gt, r_gt = time_rank(data.target)
    print(f"order {order} rank {rank} n={n}: training {len(stds)} runs took {train_time:.1f} s")
    print(f"  linear: error {lin_err:.4g}, estimated rank {r_lin} ({t_lin:.1f} s); ground truth rank {r_gt}")
    entries = [
        {"name": f"order {order} n={n} training wall time ({len(stds)} runs stacked)", "value": train_time,
         "unit": "s", "ratio": None},
        {"name": f"order {order} n={n} linear error", "value": lin_err, "unit": "", "ratio": None},
        {"name": f"order {order} n={n} linear rank", "value": r_lin, "unit": "", "ratio": None},
    ]
    tensors = batch.model_tensors()
    for b, res in enumerate(batch.results()):
        t_rank, rank_b = time_rank(tensors[b], seed=b)
        print(f"  tf init {stds[b]:g} seed {seeds[b]}: {res.status} at {res.final_iteration} it, "
              f"train mse {res.final_train_loss:.2e}, error {res.reconstruction_error:.3e}, "
              f"rank {rank_b} ({t_rank:.2f} s)")
        tag = f"order {order} n={n} tf init {stds[b]:g} seed {seeds[b]}"
        entries += [
            {"name": f"{tag} error", "value": res.reconstruction_error, "unit": "", "ratio": None},
            {"name": f"{tag} rank", "value": rank_b, "unit": "", "ratio": None},
            {"name": f"{tag} iterations", "value": res.final_iteration, "unit": "it", "ratio": None},
        ]
    for std in inits:
        errs = [r.reconstruction_error for r, s in zip(batch.results(), stds) if s == std]
        print(f"  init {std:g}: median error {np.median(errs):.3e} (IQR {np.percentile(errs, 25):.2e}"
              f" - {np.percentile(errs, 75):.2e})")
    return entries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", help="folder with the authors' tc/*.npz (default: own generated instance)")
    parser.add_argument("--iters", type=int, default=50, help="iterations per timing (benchmark mode)")
    parser.add_argument("--quick", action="store_true", help="skip the linear-tensor rank estimate, fewer ALS sweeps")
    parser.add_argument("--orders", type=int, nargs="+", default=[4], help="tensor orders to time (3 and/or 4)")
    parser.add_argument("--experiment", action="store_true")
    parser.add_argument("--order", type=int, default=3)
    parser.add_argument("--rank", type=int, default=1)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--inits", type=float, nargs="+", default=[1e-2, 1e-3])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--json", help="write the results as a list of {name, value, unit, ratio}")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.experiment:
        entries = experiment(args.data_dir, args.order, args.n, args.inits, args.reps, args.rank)
    else:
        entries = benchmark(args.data_dir, args.iters, args.quick, tuple(args.orders))
        width = max(len(e["name"]) for e in entries)
        for e in entries:
            ratio = "" if e["ratio"] is None else f"  x{e['ratio']:.2f}"
            print(f"{e['name']:<{width}}  {e['value']:>10.4g} {e['unit']:<3}{ratio}")
    if args.json:
        Path(args.json).write_text(json.dumps(entries, indent=1))


if __name__ == "__main__":
    main()
