"""Speed of CP tensor completion and of the CP-rank estimate (Razin & Cohen 2020, Fig. 2).

Default (benchmark):

* the engine's time per run-iteration, order 3 (8³, R = 64, n = 250) and
  order 4 (8⁴, R = 512, n = 2000), with the paper's batch (B = 10: 2 init
  stds × 5 repetitions, as a ``razin2020_tc_train`` job stacks them) and a
  single run, **against the engine before the step workspace** (the
  allocating step, ``tensor_completion.py`` at ``--baseline-rev``, default
  the commit before it) in the same run: the four engines take turns in
  this process's main thread, a window of 20 (order 4) or 50 (order 3)
  iterations of ``advance`` each per round, stop rule off; each window is
  timed in CPU time and counted in minor page faults; the ratio old/new is
  taken per round and the median printed (IQR in the JSON). The two steps
  give the same bits (tests/test_tensor_completion.py). At order 4 also
  each engine alone in a fresh process, as a job runs (old/new pairs);
* where the new step's time goes (order 4, B = 10): its parts timed alone;
* an autograd step written like the authors' model (full einsum, gather the
  observed entries, MSELoss, backward, GroupRMSprop), one run, process time;
* alternatives that change float rounding, measured and **not adopted**:
  the engine with its batched products on oneDNN instead of MKL
  (``torch.backends.mkldnn.matmul.fp32_precision = "bf16"``), with whether
  its state is still the same bits after the same iterations; and the loss
  and gradients from the observed entries only (gather the Khatri-Rao rows
  of each observed entry, ``index_add`` the backward) instead of the three
  dense products, at order 4 for n = 100, 1000, 4095, against the workspace
  step's ``loss_and_gradients``, with the largest relative deviation of its
  gradients from the dense ones;
* time of one CP-rank estimate for a model-like rank-1 tensor (the ground
  truth plus 1e-4 noise) and for a linear-baseline tensor (order 4, n = 1000);
* time per ALS sweep of this project's ALS versus tensorly's ``parafac``
  (same initial factors, rank 40, order-4 linear-baseline tensor).

``--experiment`` instead trains one (order, n) cell to completion (5 seeds ×
the given inits, stacked) and prints each run's status, iterations, error
and estimated rank, plus the linear baseline's error and rank.

Usage::

    .venv/bin/python bench/bench_tensor.py --data-dir DIR [--json OUT] [--baseline-rev REV]
    .venv/bin/python bench/bench_tensor.py --data-dir DIR --experiment --order 4 --n 1000 --inits 1e-3
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from _common import ROOT, entry, load_module_from, median, quartiles

from implicit_reg.razin2020 import cp_gradients as cg
from implicit_reg.razin2020 import cp_rank as cr
from implicit_reg.razin2020 import tensor_completion as tc
from implicit_reg.razin2020 import tensor_data as td

#: Benchmark timings use process CPU time: on a shared machine wall time counts
#: the time the process waits for a core. (--experiment reports wall time.)
clock = time.process_time

#: The engine before the step workspace (issue 12): the allocating step.
BASELINE_REV = "9367bdb"
ENGINE_PATH = "src/implicit_reg/razin2020/tensor_completion.py"
#: n per order for the engine timings (the middle of the paper's grids).
ENGINE_N = {3: 250, 4: 2000}
#: The paper's batch: 2 init stds × 5 repetitions per (data set, n).
PAPER_BATCH = 10


def load(data_dir: str | None, order: int, rank: int = 1) -> td.TensorCompletionData:
    if data_dir:
        return td.load_tensor_data(Path(data_dir) / f"tensor_rank_{rank}_fro_1_order_{order}_dim_8.npz")
    return td.generate_tensor_data(order, rank, seed=0)


def baseline_module(rev: str = BASELINE_REV):
    """``tensor_completion.py`` at git revision ``rev`` as its own module, or ``None`` without git.

    At the default revision the file is the whole engine (data, gradients and
    trainer, before the split into ``tensor_data.py`` / ``cp_gradients.py``);
    only its ``CPCompletionBatch`` is used.
    """
    try:
        text = subprocess.run(["git", "show", f"{rev}:{ENGINE_PATH}"], cwd=ROOT, check=True,
                              capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as err:
        print(f"no baseline engine at {rev}: {err}")
        return None
    path = Path(tempfile.mkdtemp()) / "tensor_completion_baseline.py"
    path.write_text(text)
    return load_module_from(path, "tensor_completion_baseline")


def engine_batch(module, data: td.TensorCompletionData, n: int, runs: int):
    """A paper-like batch (init stds 1e-2 and 1e-3, alternating) that never stops."""
    stds = [1e-2 if k % 2 == 0 else 1e-3 for k in range(runs)]
    return module.CPCompletionBatch(data.target, td.observed_indices(data, n), stds, list(range(runs)),
                                    tol=-1.0, max_iters=10**9, device="cpu")


def interleaved(workloads: dict[str, Callable[[], int]], rounds: int, warmup: int = 1) -> dict[str, dict]:
    """Run the workloads in turns in this (main) thread; per-round CPU seconds and minor page faults per unit.

    Each workload runs one window per round and returns the number of units
    (iterations) it did. Not ``_common.Lockstep`` (one thread per workload):
    the allocating step's cost is page faults, and glibc serves a thread's
    allocations from another arena than the main thread's, where a job runs.
    """
    out = {name: {"seconds": [], "faults": []} for name in workloads}
    for r in range(rounds + warmup):
        for name, work in workloads.items():
            faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            start = clock()
            units = work()
            seconds = clock() - start
            faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
            if r >= warmup:
                out[name]["seconds"].append(seconds / units)
                out[name]["faults"].append(faults / units)
    return out


def time_engines(data: td.TensorCompletionData, n: int, baseline, rounds: int, window: int) -> dict[str, dict]:
    """Per-iteration CPU time of the workspace engine (and the baseline) at B = 10 and B = 1, interleaved."""
    modules = {"new": tc} if baseline is None else {"new": tc, "old": baseline}
    workloads = {}
    for tag, module in modules.items():
        for runs in (PAPER_BATCH, 1):
            batch = engine_batch(module, data, n, runs)

            def work(batch=batch) -> int:
                batch.advance(window)
                return window

            workloads[f"{tag} B{runs}"] = work
    return interleaved(workloads, rounds)


def engine_process(data_dir: str | None, engine: str, order: int, iters: int, baseline_rev: str) -> dict:
    """One job-like measurement in this process: a paper batch of ``engine`` ("old"/"new"), ``iters`` iterations."""
    module = tc if engine == "new" else baseline_module(baseline_rev)
    batch = engine_batch(module, load(data_dir, order), ENGINE_N[order], PAPER_BATCH)
    batch.advance(5)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    start = clock()
    batch.advance(iters)
    return {"seconds": (clock() - start) / iters,
            "faults": (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / iters}


def time_engine_processes(data_dir: str | None, order: int, baseline_rev: str, pairs: int,
                          iters: int) -> list[dict]:
    """Old and new engine each alone in a fresh process (as a ``razin2020_tc_train`` job runs), alternating.

    The allocating step's page faults depend on the allocator's state, which
    the other workloads of an interleaved run change; here each engine has a
    process to itself. Ratio per old/new pair, median over pairs.
    """
    def child(engine: str) -> dict:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--engine-process", engine, "--orders", str(order),
               "--iters", str(iters), "--baseline-rev", baseline_rev]
        if data_dir:
            cmd += ["--data-dir", data_dir]
        return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()[-1])

    got = [(child("old"), child("new")) for _ in range(pairs)]
    ratio = [old["seconds"] / new["seconds"] for old, new in got]
    tag = f"order {order}" + (" R=512" if order == 4 else "")
    return [
        entry(f"{tag} speed-up of the workspace step over the allocating step, 10 runs stacked, each engine alone"
              f" in a fresh process ({iters} iterations, {pairs} pairs)", median(ratio), "x", median(ratio),
              iqr=quartiles(ratio), old_ms=[o["seconds"] * 1e3 for o, _ in got],
              new_ms=[n["seconds"] * 1e3 for _, n in got], old_faults=[o["faults"] for o, _ in got],
              new_faults=[n["faults"] for _, n in got]),
    ]


def time_onednn_alternative(data: td.TensorCompletionData, n: int, rounds: int, window: int = 20) -> list[dict]:
    """The engine with its ``bmm`` sent to oneDNN (``mkldnn.matmul.fp32_precision = "bf16"``) vs as it is, interleaved.

    Two paper batches from the same start, the same iterations each; the
    setting is switched around every window. Reports the ratio and whether
    the states are still the same bits (they are not: other kernels, other
    sums; on CPUs with AMX the setting also allows bfloat16 products).
    """
    setting = torch.backends.mkldnn.matmul
    default = setting.fp32_precision
    batches = {"mkl": engine_batch(tc, data, n, PAPER_BATCH), "onednn": engine_batch(tc, data, n, PAPER_BATCH)}

    def work(name: str) -> Callable[[], int]:
        def run() -> int:
            setting.fp32_precision = "bf16" if name == "onednn" else default
            try:
                batches[name].advance(window)
            finally:
                setting.fp32_precision = default
            return window
        return run

    times = interleaved({name: work(name) for name in batches}, rounds)
    a, b = batches["mkl"].get_state(), batches["onednn"].get_state()
    same = all(np.asarray(a[k]).tobytes() == np.asarray(b[k]).tobytes() for k in a)
    dev = max(float(np.abs(a[f"factors_{m}"] - b[f"factors_{m}"]).max() / np.abs(a[f"factors_{m}"]).max())
              for m in range(data.target.ndim))
    ratio = [x / y for x, y in zip(times["mkl"]["seconds"], times["onednn"]["seconds"])]
    return [entry(f"alternative (not adopted): order 4 R=512 engine with bmm on oneDNN (fp32_precision=bf16), "
                  f"n={n}, B=10 (per run)", median(times["onednn"]["seconds"]) / PAPER_BATCH * 1e3, "ms",
                  median(ratio), iqr=quartiles(ratio), same_bits=same, max_rel_deviation=dev,
                  iterations=int(batches["mkl"].iteration.max()))]


def sparse_loss_and_gradients(factors, rows, cols, t_obs, n_obs):
    """Loss and gradients from the observed entries only (rows/cols of the ``[D_left, D_right]`` unfolding).

    ``W_k = Σ_r L[row_k, r] R[col_k, r]`` per observed entry instead of the
    full ``L Rᵀ``; the backward scatters ``(2/n) e_k R[col_k]`` into the rows
    of ``∂L`` (and the transpose into ``∂R``). Other sums, other rounding.
    """
    h = cg.mode_split(len(factors))
    left, right = cg._khatri_rao(factors[:h]), cg._khatri_rao(factors[h:])
    left_obs, right_obs = left[:, rows], right[:, cols]
    resid = (left_obs * right_obs).sum(-1) - t_obs
    loss = resid.square().sum(1) / n_obs
    g = (resid * (2.0 / n_obs))[:, :, None]
    grad_left = torch.zeros_like(left).index_add_(1, rows, g * right_obs)
    grad_right = torch.zeros_like(right).index_add_(1, cols, g * left_obs)
    grads = cg._group_gradients(grad_left, factors[:h], None, None)
    grads += cg._group_gradients(grad_right, factors[h:], None, None)
    return loss, grads


def time_sparse_alternative(data: td.TensorCompletionData, ns: tuple[int, ...], rounds: int,
                            window: int) -> list[dict]:
    """Observed-entries loss/gradients vs the dense workspace ones, order 4, B = 10, interleaved."""
    batch = engine_batch(tc, data, ns[-1], PAPER_BATCH)
    batch.advance(200)  # away from the initialization's tiny gradients
    factors = batch._factors
    d_right = batch._target_mat.shape[1]
    workloads, deviation = {}, {}
    for n in ns:
        obs = torch.from_numpy(td.observed_indices(data, n))
        rows, cols = obs // d_right, obs % d_right
        mask = torch.zeros(data.target.size)
        mask[obs] = 1.0
        mask = mask.reshape(batch._target_mat.shape)
        t_obs = batch._target_mat.reshape(-1)[obs]
        ws = cg.StepWorkspace(PAPER_BATCH, data.target.shape, batch.num_components, torch.float32,
                              torch.device("cpu"))

        def dense(mask=mask, n=n, ws=ws):
            return cg.loss_and_gradients(factors, batch._target_mat, mask, n, ws)

        def sparse(rows=rows, cols=cols, t_obs=t_obs, n=n):
            return sparse_loss_and_gradients(factors, rows, cols, t_obs, n)

        with torch.no_grad():
            ref = [g.clone() for g in dense()[1]]
            alt = sparse()[1]
        deviation[n] = max(float((a - r).abs().max() / r.abs().max()) for a, r in zip(alt, ref))
        for tag, fn in (("dense", dense), ("sparse", sparse)):
            def work(fn=fn):
                with torch.no_grad():
                    for _ in range(window):
                        fn()
                return window

            workloads[f"{tag} n{n}"] = work
    times = interleaved(workloads, rounds)
    entries = []
    for n in ns:
        dense_s, sparse_s = times[f"dense n{n}"]["seconds"], times[f"sparse n{n}"]["seconds"]
        ratio = [a / b for a, b in zip(dense_s, sparse_s)]
        entries.append(entry(
            f"alternative (not adopted): order 4 R=512 loss+gradients from the observed entries only, n={n},"
            f" B=10 (per run)", median(sparse_s) / PAPER_BATCH * 1e3, "ms", median(ratio),
            iqr=quartiles(ratio), dense_ms=median(dense_s) / PAPER_BATCH * 1e3, max_rel_deviation=deviation[n]))
    return entries


def profile_step(data: td.TensorCompletionData, n: int, rounds: int, window: int = 10) -> list[dict]:
    """Where a workspace step's time goes, order 4, B = 10: its parts timed alone on the engine's own buffers.

    Parts: Khatri-Rao products (forward), the forward product, residual and
    loss, the two backward products, the contractions inside each mode group,
    the optimizer update (square sums, v, step, factor update, divergence
    flag) = step − loss-and-gradients, the check every ``check_every``
    iterations (per iteration), and the per-call overhead of the ~45 torch
    calls of a step (the step on a 2×2×2×2, R = 2 problem, where the
    arithmetic is nil).
    """
    batch = engine_batch(tc, data, n, PAPER_BATCH)
    batch.advance(150)
    ws, f, h = batch._workspace, batch._factors, cg.mode_split(data.target.ndim)
    left = cg._khatri_rao(f[:h], ws.kr_left)
    right = cg._khatri_rao(f[h:], ws.kr_right)
    tiny = tc.CPCompletionBatch(np.ones((2, 2, 2, 2), np.float32), np.arange(8), [1e-2] * PAPER_BATCH,
                                list(range(PAPER_BATCH)), num_components=2, tol=-1.0, max_iters=10**9,
                                device="cpu")
    check_every = batch.check_every

    def loss_part():
        ws.resid.sub_(batch._target_mat)
        torch.mul(batch._mask_mat, ws.resid, out=ws.resid)
        torch.div(torch.sum(torch.square(ws.resid, out=ws.resid_sq), dim=(1, 2), out=ws.loss_sum), n, out=ws.loss)
        ws.resid.mul_(2.0 / n)

    parts = {
        "Khatri-Rao products": lambda: (cg._khatri_rao(f[:h], ws.kr_left), cg._khatri_rao(f[h:], ws.kr_right)),
        "forward product L R^T": lambda: torch.bmm(left, right.transpose(1, 2), out=ws.resid),
        "residual and loss": loss_part,
        "backward products E R, E^T L": lambda: (torch.bmm(ws.resid, right, out=ws.h_left),
                                                 torch.bmm(ws.resid.transpose(1, 2), left, out=ws.h_right)),
        "contractions inside the mode groups": lambda: (
            cg._group_gradients(ws.h_left, f[:h], ws.prod_left, ws.grads_left),
            cg._group_gradients(ws.h_right, f[h:], ws.prod_right, ws.grads_right)),
        "loss and gradients (all of the above)": lambda: cg.loss_and_gradients(
            f, batch._target_mat, batch._mask_mat, n, ws),
        "whole step": batch._step,
        "per-call overhead (tiny problem's step)": tiny._step,
    }

    def work(fn):
        def run() -> int:
            with torch.no_grad():
                for _ in range(window):
                    fn()
            return window
        return run

    times = interleaved({k: work(fn) for k, fn in parts.items()}, rounds)
    ms = {k: median(v["seconds"]) * 1e3 for k, v in times.items()}
    # A check (reconstruction error of the updated model, logging, stop rule; the stop rule is off
    # here) spread over the check_every iterations between checks.
    batch._t.fill_(check_every)
    start = clock()
    for _ in range(window):
        batch._check()
    ms["check (per iteration)"] = (clock() - start) / window / check_every * 1e3
    ms["optimizer update (step - loss and gradients)"] = ms["whole step"] - ms["loss and gradients (all of the above)"]
    step = ms["whole step"]
    return [entry(f"order 4 R=512 step profile, B=10, n={n}: {k}", v, "ms", v / step) for k, v in ms.items()]


def time_autograd(data: td.TensorCompletionData, n: int, iters: int) -> float:
    """Seconds per iteration of an autograd step shaped like the authors' code."""
    obs = torch.from_numpy(td.observed_indices(data, n))
    target = torch.from_numpy(data.target.reshape(-1))[obs]
    r = cr.max_cp_rank(data.target.shape)
    params = [torch.nn.Parameter(torch.from_numpy(f)) for f in cg.init_factors(data.target.shape, r, 1e-3, 0)]
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


def engine_entries(order: int, times: dict[str, dict], auto: float) -> list[dict]:
    """Figures of one order: per run-iteration times, speed-up over the baseline and over autograd."""
    tag = f"order {order}" + (" R=512" if order == 4 else "")
    new10 = median(times[f"new B{PAPER_BATCH}"]["seconds"]) / PAPER_BATCH
    new1 = median(times["new B1"]["seconds"])
    entries = [
        entry(f"{tag} autograd step, 1 run", auto * 1e3, "ms", 1.0),
        entry(f"{tag} hand-written step, 1 run", new1 * 1e3, "ms", auto / new1),
        entry(f"{tag} hand-written step, 10 runs stacked (per run)", new10 * 1e3, "ms", auto / new10),
        entry(f"{tag} hand-written step, 10 runs stacked (whole batch)", new10 * PAPER_BATCH * 1e3, "ms"),
    ]
    if "old B1" in times:
        for runs in (PAPER_BATCH, 1):
            old, new = times[f"old B{runs}"], times[f"new B{runs}"]
            ratio = [a / b for a, b in zip(old["seconds"], new["seconds"])]
            label = "10 runs stacked" if runs > 1 else "1 run"
            entries += [
                entry(f"{tag} before: allocating step ({BASELINE_REV}), {label} (per run)",
                      median(old["seconds"]) / runs * 1e3, "ms"),
                entry(f"{tag} speed-up of the workspace step over the allocating step, {label}",
                      median(ratio), "x", median(ratio), iqr=quartiles(ratio)),
                entry(f"{tag} minor page faults per iteration, {label}: allocating step",
                      median(old["faults"]), ""),
                entry(f"{tag} minor page faults per iteration, {label}: workspace step",
                      median(new["faults"]), ""),
            ]
    return entries


def benchmark(data_dir: str | None, iters: int, quick: bool = False, orders: tuple[int, ...] = (4,),
              baseline_rev: str | None = BASELINE_REV) -> list[dict]:
    """``quick`` skips the slow linear-tensor rank estimate, times 30 ALS sweeps instead of 200 and fewer rounds.

    ``iters``: iterations of the autograd timing; ``baseline_rev=None`` skips the before/after figures.
    """
    baseline = baseline_module(baseline_rev) if baseline_rev else None
    rounds = 10 if quick else 40
    entries = []
    for order in sorted(orders):
        d = load(data_dir, order)
        n = ENGINE_N.get(order, d.target.size // 2)
        times = time_engines(d, n, baseline, rounds, 20 if order == 4 else 50)
        entries += engine_entries(order, times, time_autograd(d, n, iters))
        if baseline is not None and order == 4:
            entries += time_engine_processes(data_dir, order, baseline_rev, 3 if quick else 5, 100 if quick else 300)
    d4 = load(data_dir, 4)
    entries += profile_step(d4, ENGINE_N[4], rounds)
    entries += time_onednn_alternative(d4, ENGINE_N[4], rounds)
    entries += time_sparse_alternative(d4, (100, 1000, 4095), rounds, 5)
    rng = np.random.default_rng(1)
    model_like = d4.target + 1e-4 * rng.standard_normal(d4.target.shape).astype(np.float32)
    t_model, r_model = time_rank(model_like)
    linear = td.linear_baseline_tensor(d4.target, td.observed_indices(d4, 1000))
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
    obs = td.observed_indices(data, n)
    stds = [s for s in inits for _ in range(reps)]
    seeds = list(range(len(stds)))
    start = time.perf_counter()
    batch = tc.CPCompletionBatch(data.target, obs, stds, seeds, device="cpu").run()
    train_time = time.perf_counter() - start
    lin_err = td.linear_baseline_error(data.target, obs)
    t_lin, r_lin = time_rank(td.linear_baseline_tensor(data.target, obs))
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
    parser.add_argument("--orders", type=int, nargs="+", default=[3, 4], help="tensor orders to time (3 and/or 4)")
    parser.add_argument("--experiment", action="store_true")
    parser.add_argument("--order", type=int, default=3)
    parser.add_argument("--rank", type=int, default=1)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--inits", type=float, nargs="+", default=[1e-2, 1e-3])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--baseline-rev", default=BASELINE_REV,
                        help="git revision of the engine to compare with ('' to skip)")
    parser.add_argument("--engine-process", choices=["old", "new"], help=argparse.SUPPRESS)
    parser.add_argument("--json", help="write the results as a list of {name, value, unit, ratio}")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.engine_process:
        print(json.dumps(engine_process(args.data_dir, args.engine_process, args.orders[0], args.iters,
                                        args.baseline_rev)))
        return
    if args.experiment:
        entries = experiment(args.data_dir, args.order, args.n, args.inits, args.reps, args.rank)
    else:
        entries = benchmark(args.data_dir, args.iters, args.quick, tuple(args.orders), args.baseline_rev or None)
        width = max(len(e["name"]) for e in entries)
        for e in entries:
            ratio = "" if e["ratio"] is None else f"  x{e['ratio']:.2f}"
            print(f"{e['name']:<{width}}  {e['value']:>10.4g} {e['unit']:<3}{ratio}")
    if args.json:
        Path(args.json).write_text(json.dumps(entries, indent=1))


if __name__ == "__main__":
    main()
