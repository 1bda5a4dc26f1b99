"""Sensing engine (Arora et al. 2019, Figs 4–6): batched runs against one run at a time.

n = 100, m = 2000 and 5000 Gaussian measurements, depth 3, float32, one thread.
Runs of a batch share the measurement matrix A (``[m, n²]``), so one step of
B runs is one ``[B, n²]×[n², m]`` product for the residuals and one
``[B, m]×[m, n²]`` product for the gradients, instead of B matrix–vector
products each. Measured in one process, in lockstep (see ``_common.Lockstep``):

* ``BatchTrainer.run`` with B = 1, 8, 24 runs: time per run-iteration, and the
  speed-up of B over B = 1 (target ≥ 10× at m = 2000 for B = 24);
* a loop written the way the authors' code runs (one run, autograd,
  GroupRMSprop optimizer object, ``.item()`` every step, and the measurement
  as a broadcast multiply-and-sum over the ``[m, n, n]`` stack, spec §5.10);
* what bounds the engine: the two products alone, as achieved bandwidth over
  A (bytes of A / time) at B = 1 and as GFLOP/s at B = 24, beside a large
  square SGEMM (the core's practical FLOP rate with this BLAS), and the layout
  alternatives for the residual product (A stored ``[m, n²]`` and used
  transposed, as the engine does, vs a contiguous ``[n², m]`` copy).

Usage::

    .venv/bin/python bench/bench_sensing.py [--quick] [--json OUT]
"""

from __future__ import annotations

import argparse

from _common import Lockstep, entry, loop_participant, median, print_entries, write_json

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench_deep_factorization import GroupRMSprop  # noqa: E402
from implicit_reg import deep_factorization as dfm  # noqa: E402
from implicit_reg import matrix_data  # noqa: E402

N_SIZE, RANK, DEPTH = 100, 5, 3
LR, INIT_SCALE = 1e-3, 1e-3


def sensing_problem(m: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    gt = matrix_data.low_rank_ground_truth(N_SIZE, N_SIZE, RANK, rng)
    obs = matrix_data.sensing_arrays(gt, m, rng)
    return obs, dfm.build_problem("sensing", obs, gt, "cpu", torch.float32)


class AuthorsStyleSensing:
    """One run as the authors' code trains it: ⟨X_i, W⟩ by broadcasting, autograd, ``.item()``."""

    def __init__(self, problem: dfm.Problem, depth: int = DEPTH, seed: int = 0) -> None:
        init = dfm.initial_factors((N_SIZE, N_SIZE), depth, "gaussian", INIT_SCALE, np.random.default_rng(seed))
        self.layers = [torch.nn.Parameter(torch.tensor(w, dtype=torch.float32)) for w in init]
        self.opt = GroupRMSprop(self.layers, lr=LR)
        self.xs = problem.train.matrix.view(-1, N_SIZE, N_SIZE)  # [m, n, n], no copy
        self.ys = problem.train.targets

    def step(self) -> None:
        self.opt.zero_grad()
        e2e = self.layers[0]
        for w in self.layers[1:]:
            e2e = w @ e2e
        loss = ((self.xs * e2e).sum(dim=(1, 2)) - self.ys).pow(2).mean()
        loss.backward()
        self.opt.step()
        loss.item()


def engine(problem: dfm.Problem, batch: int):
    init = [dfm.initial_factors((N_SIZE, N_SIZE), DEPTH, "gaussian", INIT_SCALE, np.random.default_rng(s))
            for s in range(batch)]
    schedule = dfm.Schedule(max_iters=10**9, log_every=10**9, sync_every=100, train_loss_tol=-1.0,
                            checkpoint_seconds=0)
    return dfm.BatchTrainer(problem, init, [LR] * batch, schedule, dtype=torch.float32).run


def engines(m: int, batches, rounds: int, authors: bool) -> dict[str, np.ndarray]:
    _, problem = sensing_problem(m)
    lock = Lockstep(rounds)
    undo = lock.hook_forward(dfm)
    for batch in batches:
        lock.add(f"engine {batch}", engine(problem, batch), {1: 4, 8: 2}.get(batch, 1))
    if authors:
        run = AuthorsStyleSensing(problem)
        lock.add("authors", loop_participant(lock, "authors", run.step), 1)
    try:
        return {k: np.asarray(v) for k, v in lock.run().items()}
    finally:
        undo()


def products(m: int, rounds: int) -> dict[str, np.ndarray]:
    """The step's two products alone, both residual layouts, B = 1 and 24; and a square SGEMM."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(m, N_SIZE * N_SIZE, generator=g) / N_SIZE
    a_t = a.T.contiguous()
    neg_y = torch.randn(m, generator=g)
    lock = Lockstep(rounds)
    for batch in (1, 24):
        x = torch.randn(batch, N_SIZE * N_SIZE, generator=g)
        r = torch.randn(batch, m, generator=g)
        out_r, out_g = torch.empty(batch, m), torch.empty(batch, N_SIZE * N_SIZE)
        work = {
            f"residual A.T {batch}": lambda x=x, o=out_r: torch.addmm(neg_y, x, a.T, out=o),
            f"residual At {batch}": lambda x=x, o=out_r: torch.addmm(neg_y, x, a_t, out=o),
            f"adjoint A {batch}": lambda r=r, o=out_g: torch.mm(r, a, out=o),
        }
        for name, fn in work.items():
            lock.add(name, loop_participant(lock, name, fn), 3 if batch == 1 else 1)
    sq = torch.randn(1024, 1024, generator=g)
    out_sq = torch.empty(1024, 1024)
    lock.add("square", loop_participant(lock, "square", lambda: torch.mm(sq, sq, out=out_sq)), 3)
    return {k: np.asarray(v) for k, v in lock.run().items()}


def benchmark(quick: bool = False) -> list[dict]:
    entries: list[dict] = []
    ms = (2000,) if quick else (2000, 5000)
    batches = (1, 24) if quick else (1, 8, 24)
    rounds = 4 if quick else 20
    for m in ms:
        t = engines(m, batches, rounds, authors=not quick or m == 2000)
        one = t["engine 1"]
        for batch in batches:
            per_run = t[f"engine {batch}"] / batch
            entries.append(entry(f"sensing m={m} d{DEPTH} B={batch}: engine time per run-iteration "
                                 f"(ratio: B=1 time / this)", median(per_run) * 1e3, "ms",
                                 median(one / per_run), **({"target": 10.0} if batch == 24 and m == 2000 else {})))
        if "authors" in t:
            entries.append(entry(f"sensing m={m} d{DEPTH}: authors-style loop, time per iteration "
                                 f"(ratio: vs engine B={batches[-1]} per run)", median(t["authors"]) * 1e3, "ms",
                                 median(t["authors"] / (t[f"engine {batches[-1]}"] / batches[-1]))))
    p = products(2000, 3 if quick else 8)
    m, n2 = 2000, N_SIZE * N_SIZE
    bytes_a = 4 * m * n2
    for batch in (1, 24):
        flops = 2 * batch * m * n2
        for name, label in ((f"residual A.T {batch}", "residual X·Aᵀ (A [m,n²], engine)"),
                            (f"residual At {batch}", "residual X·At (contiguous [n²,m] copy)"),
                            (f"adjoint A {batch}", "adjoint R·A (engine)")):
            sec = median(p[name])
            if batch == 1:
                entries.append(entry(f"sensing m=2000 B=1 product {label}: A streamed at", bytes_a / sec / 1e9,
                                     "GB/s"))
            else:
                entries.append(entry(f"sensing m=2000 B=24 product {label}", flops / sec / 1e9, "GFLOP/s"))
        entries.append(entry(f"sensing m=2000 B={batch}: residual layout, time A.T / time At",
                             median(p[f"residual A.T {batch}"]) * 1e3, "ms",
                             median(p[f"residual A.T {batch}"] / p[f"residual At {batch}"])))
    entries.append(entry("SGEMM 1024x1024 (this BLAS, one core)", 2 * 1024**3 / median(p["square"]) / 1e9,
                         "GFLOP/s"))
    return entries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json")
    args = parser.parse_args()
    entries = benchmark(args.quick)
    print_entries(entries, "sensing engine")
    if args.json:
        write_json(entries, args.json)


if __name__ == "__main__":
    main()
