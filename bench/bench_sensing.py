"""Sensing engine (Arora et al. 2019, Figs 4–6): shared-operator batches, backends, layouts.

n = 100, m = 2000 and 5000 Gaussian measurements, float32, one thread. All runs
on one data set share the measurement matrix A (``[m, n²]``), so one step of B
runs is one ``[B, n²]×[n², m]`` product for the residuals and one
``[B, m]×[m, n²]`` product for the gradients (4·m·n² flops per run), whatever
the runs' depths. Measured in one process, in lockstep (see ``_common.Lockstep``;
engines tick once per step):

* the **shared-operator batch**: the paper's whole rank-5 row at m as the plan
  builds it (every depth, init, lr and seed), against the per-depth depth-3
  batch of B = 24 on the BLAS backend (the engine before these batches) and on
  the default backend: time per run-iteration and ratios (target ≥ 1.5×), and
  its effective rate over the square-SGEMM rate of the same lockstep
  (torch.mm and oneDNN 1024³; target 0.9);
* ``BatchTrainer`` at depth 3 with B = 1, 8, 24 runs, and a loop written the way
  the authors' code runs (one run, autograd, GroupRMSprop optimizer object,
  ``.item()`` every step, the measurement as a broadcast multiply-and-sum over
  the ``[m, n, n]`` stack, spec §5.10);
* the two products alone at B = 1, 24, 96: every layout of A (stored ``[m, n²]``
  and used transposed, a contiguous ``[n², m]`` copy, the transposed problem)
  on BLAS, and oneDNN with A prepacked or not; bandwidth over A at B = 1,
  GFLOP/s otherwise.

Usage::

    .venv/bin/python bench/bench_sensing.py [--quick] [--json OUT]
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _common import Lockstep, entry, load_config, loop_participant, median, print_entries, stepping, write_json
from bench_deep_factorization import GroupRMSprop  # noqa: E402

from implicit_reg.arora2019 import data as matrix_data  # noqa: E402
from implicit_reg.arora2019.initialization import initial_factors  # noqa: E402
from implicit_reg.arora2019.observations import Problem, build_problem, onednn_available  # noqa: E402
from implicit_reg.arora2019.schedule import Schedule  # noqa: E402
from implicit_reg.arora2019.trainer import BatchTrainer  # noqa: E402

N_SIZE, RANK, DEPTH = 100, 5, 3
LR, INIT_SCALE = 1e-3, 1e-3


def sensing_problem(m: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    gt = matrix_data.low_rank_ground_truth(N_SIZE, N_SIZE, RANK, rng)
    obs = matrix_data.sensing_arrays(gt, m, rng)
    return obs, build_problem("sensing", obs, gt, "cpu", torch.float32)


class AuthorsStyleSensing:
    """One run as the authors' code trains it: ⟨X_i, W⟩ by broadcasting, autograd, ``.item()``."""

    def __init__(self, problem: Problem, depth: int = DEPTH, seed: int = 0) -> None:
        init = initial_factors((N_SIZE, N_SIZE), depth, "gaussian", INIT_SCALE, np.random.default_rng(seed))
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


def _trainer(problem: Problem, init: list, lrs: list[float]) -> BatchTrainer:
    schedule = Schedule(max_iters=10**9, log_every=10**9, sync_every=100, train_loss_tol=-1.0,
                        checkpoint_seconds=0)
    return BatchTrainer(problem, init, lrs, schedule, dtype=torch.float32)


def engine(problem: Problem, batch: int):
    init = [initial_factors((N_SIZE, N_SIZE), DEPTH, "gaussian", INIT_SCALE, np.random.default_rng(s))
            for s in range(batch)]
    return _trainer(problem, init, [LR] * batch)


def with_backend(problem: Problem, backend: str) -> Problem:
    """The same problem (same A, no copy) with the sensing products on ``backend``."""
    return dataclasses.replace(problem, train=dataclasses.replace(problem.train, backend=backend))


def paper_row(m: int) -> list:
    """The runs of the paper-scale shared-operator batch of rank-5 sensing at m (all depths, inits, lrs, seeds)."""
    from implicit_reg.arora2019.plan import build_plan

    plan = build_plan(load_config())
    name = next(n for n, b in plan.batches.items() if b.dataset.task == "sensing" and b.dataset.rank == RANK
                and b.dataset.n_obs == m and b.schedule.optimizer == "grouprmsprop")
    return plan.batches[name].runs


def row_trainer(problem: Problem, runs: list) -> BatchTrainer:
    init = [initial_factors((N_SIZE, N_SIZE), r.depth, r.init, r.init_scale, np.random.default_rng(r.init_seed))
            for r in runs]
    return _trainer(problem, init, [r.lr for r in runs])


def square_products(lock: Lockstep, g: torch.Generator) -> None:
    """Square 1024³ SGEMM, torch.mm (MKL) and oneDNN: the core's practical FLOP rate per backend."""
    sq = torch.randn(1024, 1024, generator=g)
    out_sq = torch.empty(1024, 1024)
    lock.add("square", loop_participant(lock, "square", lambda: torch.mm(sq, sq, out=out_sq)), 3)
    if onednn_available():
        packed = torch.ops.mkldnn._reorder_linear_weight(sq, 1024)
        lock.add("square onednn", loop_participant(
            lock, "square onednn", lambda: torch.ops.mkldnn._linear_pointwise(sq, packed, None, "none", [], "")), 3)


def engines(m: int, batches, rounds: int, authors: bool, row: bool) -> dict[str, np.ndarray]:
    """Engine participants at m: per-depth depth-3 batches of B runs (default backend, and B = 24 on
    BLAS: the engine before shared-operator batches), the paper's whole row in one batch on both
    backends, the authors-style loop, and the square SGEMMs."""
    _, problem = sensing_problem(m)
    blas = with_backend(problem, "blas")
    lock = Lockstep(rounds)
    for batch in batches:
        name = f"engine {batch}"
        lock.add(name, stepping(lock, name, engine(problem, batch)), {1: 4, 8: 2}.get(batch, 1))
    lock.add("per-depth 24 blas", stepping(lock, "per-depth 24 blas", engine(blas, 24)), 1)
    if row:
        runs = paper_row(m)
        lock.add("row", stepping(lock, "row", row_trainer(problem, runs)), 1)
        lock.add("row blas", stepping(lock, "row blas", row_trainer(blas, runs)), 1)
        square_products(lock, torch.Generator().manual_seed(1))
    if authors:
        run = AuthorsStyleSensing(problem)
        lock.add("authors", loop_participant(lock, "authors", run.step), 1)
    out = {k: np.asarray(v) for k, v in lock.run().items()}
    if row:
        out["row size"] = np.asarray([len(runs)])
        out["row depths"] = np.asarray([r.depth for r in runs])
    return out


def products(m: int, rounds: int) -> dict[str, np.ndarray]:
    """The step's two products alone: layouts of A, backends, B = 1, 24 and 96; and square SGEMMs."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(m, N_SIZE * N_SIZE, generator=g) / N_SIZE
    a_t = a.T.contiguous()
    neg_y = torch.randn(m, generator=g)
    lock = Lockstep(rounds)
    onednn = onednn_available()
    for batch in PRODUCT_BATCHES:
        x = torch.randn(batch, N_SIZE * N_SIZE, generator=g)
        r = torch.randn(batch, m, generator=g)
        out_r, out_g = torch.empty(batch, m), torch.empty(batch, N_SIZE * N_SIZE)
        out_rt, out_gt = torch.empty(m, batch), torch.empty(N_SIZE * N_SIZE, batch)
        work = {
            f"residual A.T {batch}": lambda x=x, o=out_r: torch.addmm(neg_y, x, a.T, out=o),
            f"residual At {batch}": lambda x=x, o=out_r: torch.addmm(neg_y, x, a_t, out=o),
            f"residual A X.T {batch}": lambda x=x, o=out_rt: torch.mm(a, x.T, out=o),
            f"adjoint A {batch}": lambda r=r, o=out_g: torch.mm(r, a, out=o),
            f"adjoint At.T {batch}": lambda r=r, o=out_g: torch.mm(r, a_t.T, out=o),
            f"adjoint A.T R.T {batch}": lambda r=r, o=out_gt: torch.mm(a.T, r.T, out=o),
        }
        if onednn:
            pa = torch.ops.mkldnn._reorder_linear_weight(a, batch)
            pat = torch.ops.mkldnn._reorder_linear_weight(a_t, batch)
            lin = torch.ops.mkldnn._linear_pointwise
            work[f"residual onednn {batch}"] = lambda x=x, p=pa: lin(x, p, neg_y, "none", [], "")
            work[f"adjoint onednn {batch}"] = lambda r=r, p=pat: lin(r, p, None, "none", [], "")
            work[f"residual onednn dense {batch}"] = lambda x=x: lin(x, a, neg_y, "none", [], "")
        for name, fn in work.items():
            lock.add(name, loop_participant(lock, name, fn), 3 if batch == 1 else 1)
    square_products(lock, g)
    return {k: np.asarray(v) for k, v in lock.run().items()}


#: The shrinking tail of a batch (long lr-3e-4 runs left alone): its batch sizes and the row block
#: of the one-pass alternative (32 rows of A, 1.25 MB at n = 100, stay in L2/L3 between the products).
TAIL_BATCHES = (1, 4, 16)
TAIL_BLOCK = 32


def tail_products(m: int, rounds: int) -> dict[str, np.ndarray]:
    """A step's two products at the tail's batch sizes: the engine's (oneDNN, A and Aᵀ prepacked,
    two passes over A) against one pass over A in row blocks (residual and adjoint of a block
    while it is in cache, BLAS), the alternative that halves the DRAM traffic of a memory-bound step."""
    g = torch.Generator().manual_seed(2)
    a = torch.randn(m, N_SIZE * N_SIZE, generator=g) / N_SIZE
    neg_y = torch.randn(m, generator=g)
    lock = Lockstep(rounds)
    onednn = onednn_available()
    lin = torch.ops.mkldnn._linear_pointwise
    for batch in TAIL_BATCHES:
        x = torch.randn(batch, N_SIZE * N_SIZE, generator=g)
        grad = torch.empty_like(x)

        def one_pass(x=x, grad=grad) -> None:
            grad.zero_()
            for i in range(0, m, TAIL_BLOCK):
                block = a[i:i + TAIL_BLOCK]
                grad.addmm_(torch.addmm(neg_y[i:i + TAIL_BLOCK], x, block.T), block)

        lock.add(f"tail one pass {batch}", loop_participant(lock, f"tail one pass {batch}", one_pass), 1)
        if onednn:
            pa = torch.ops.mkldnn._reorder_linear_weight(a, batch)
            pat = torch.ops.mkldnn._reorder_linear_weight(a.T.contiguous(), batch)
            lock.add(f"tail onednn {batch}", loop_participant(
                lock, f"tail onednn {batch}",
                lambda x=x, pa=pa, pat=pat: lin(lin(x, pa, neg_y, "none", [], ""), pat, None, "none", [], "")), 1)
    return {k: np.asarray(v) for k, v in lock.run().items()}


def _tail_entries(m: int, t: dict[str, np.ndarray]) -> list[dict]:
    entries = []
    bytes_a = 4 * m * N_SIZE**2
    for batch in TAIL_BATCHES:
        if f"tail onednn {batch}" not in t:
            continue
        engine_s, fused_s = t[f"tail onednn {batch}"], t[f"tail one pass {batch}"]
        entries.append(entry(f"sensing m={m} tail B={batch}: the step's two products, engine (oneDNN, two passes "
                             f"over A; value: A's bytes read per second) (ratio: one pass in {TAIL_BLOCK}-row "
                             f"blocks, BLAS / engine; not adopted while above 1)", median(2 * bytes_a / engine_s) / 1e9,
                             "GB/s", median(fused_s / engine_s)))
    return entries


PRODUCT_BATCHES = (1, 24, 96)
PRODUCT_LABELS = {
    "residual A.T": "residual X·Aᵀ, BLAS (A [m,n²], the blas backend)",
    "residual At": "residual X·At, BLAS (contiguous [n²,m] copy)",
    "residual A X.T": "residual transposed A·Xᵀ, BLAS",
    "adjoint A": "adjoint R·A, BLAS (the blas backend)",
    "adjoint At.T": "adjoint R·Atᵀ, BLAS ([n²,m] copy)",
    "adjoint A.T R.T": "adjoint transposed Aᵀ·Rᵀ, BLAS",
    "residual onednn": "residual, oneDNN, A prepacked (the onednn backend)",
    "adjoint onednn": "adjoint, oneDNN, Aᵀ prepacked (the onednn backend)",
    "residual onednn dense": "residual, oneDNN, A not prepacked",
}


def _engine_entries(m: int, t: dict[str, np.ndarray], batches) -> list[dict]:
    entries = []
    one = t["engine 1"]
    for batch in batches:
        per_run = t[f"engine {batch}"] / batch
        entries.append(entry(f"sensing m={m} d{DEPTH} B={batch}: engine time per run-iteration "
                             f"(ratio: B=1 time / this)", median(per_run) * 1e3, "ms",
                             median(one / per_run), **({"target": 10.0} if batch == 24 and m == 2000 else {})))
    old = t["per-depth 24 blas"] / 24
    entries.append(entry(f"sensing m={m} d{DEPTH} B=24, BLAS backend (the engine before shared-operator batches): "
                         f"time per run-iteration (ratio: this / default backend B=24)", median(old) * 1e3, "ms",
                         median(old / (t["engine 24"] / 24))))
    if "authors" in t:
        entries.append(entry(f"sensing m={m} d{DEPTH}: authors-style loop, time per iteration "
                             f"(ratio: vs engine B={batches[-1]} per run)", median(t["authors"]) * 1e3, "ms",
                             median(t["authors"] / (t[f"engine {batches[-1]}"] / batches[-1]))))
    if "row" in t:
        b = int(t["row size"][0])
        depths = {int(d): int((t["row depths"] == d).sum()) for d in np.unique(t["row depths"])}
        row, row_blas = t["row"] / b, t["row blas"] / b
        mix = "+".join(f"{n}×d{d}" for d, n in depths.items())
        entries.append(entry(f"sensing m={m}: shared-operator batch vs per-depth B=24 batch (time per run-iteration; "
                             f"ratio: per-depth B=24 BLAS / shared, B={b} = {mix})", median(row) * 1e3, "ms",
                             median(old / row), target=1.5))
        entries.append(entry(f"sensing m={m}: shared-operator batch on BLAS (ratio: per-depth B=24 BLAS / this; "
                             f"the batching alone)", median(row_blas) * 1e3, "ms", median(old / row_blas)))
        entries.append(entry(f"sensing m={m}: shared-operator batch vs per-depth B=24 on the same (default) backend "
                             f"(ratio: B=24 / shared)", median(row) * 1e3, "ms",
                             median((t["engine 24"] / 24) / row)))
        flops = 4 * m * N_SIZE**2
        sq = 2 * 1024**3 / t["square"]
        entries.append(entry(f"sensing m={m}: shared-operator batch, fraction of the square-SGEMM rate "
                             f"(4·m·n² flops per run-iteration / time, over torch.mm 1024³)",
                             median(flops / row / 1e9), "GFLOP/s", median(flops / row / sq), target=0.9))
        if "square onednn" in t:
            sq_d = 2 * 1024**3 / t["square onednn"]
            entries.append(entry(f"sensing m={m}: shared-operator batch, fraction of the oneDNN square-SGEMM rate",
                                 median(flops / row / 1e9), "GFLOP/s", median(flops / row / sq_d)))
            entries.append(entry("SGEMM 1024x1024 oneDNN prepacked (ratio: over torch.mm)", median(sq_d) / 1e9,
                                 "GFLOP/s", median(sq_d / sq)))
        entries.append(entry("SGEMM 1024x1024 torch.mm (this BLAS, one core), in the engines' lockstep",
                             median(sq) / 1e9, "GFLOP/s"))
    return entries


def benchmark(quick: bool = False) -> list[dict]:
    entries: list[dict] = []
    ms = (2000,) if quick else (2000, 5000)
    batches = (1, 24) if quick else (1, 8, 24)
    rounds = 4 if quick else 15
    for m in ms:
        t = engines(m, batches, rounds, authors=not quick or m == 2000, row=True)
        entries += _engine_entries(m, t, batches)
    entries += _tail_entries(2000, tail_products(2000, 3 if quick else 8))
    p = products(2000, 3 if quick else 8)
    m, n2 = 2000, N_SIZE * N_SIZE
    bytes_a = 4 * m * n2
    for batch in PRODUCT_BATCHES:
        flops = 2 * batch * m * n2
        for key, label in PRODUCT_LABELS.items():
            name = f"{key} {batch}"
            if name not in p:
                continue
            sec = median(p[name])
            if batch == 1:
                entries.append(entry(f"sensing m=2000 B=1 product {label}: A streamed at", bytes_a / sec / 1e9,
                                     "GB/s"))
            else:
                entries.append(entry(f"sensing m=2000 B={batch} product {label} (ratio: over BLAS residual X·Aᵀ)",
                                     flops / sec / 1e9, "GFLOP/s", median(p[f"residual A.T {batch}"] / p[name])))
    entries.append(entry("SGEMM 1024x1024 (this BLAS, one core)", 2 * 1024**3 / median(p["square"]) / 1e9,
                         "GFLOP/s"))
    if "square onednn" in p:
        entries.append(entry("SGEMM 1024x1024 oneDNN prepacked, beside the products", 2 * 1024**3
                             / median(p["square onednn"]) / 1e9, "GFLOP/s"))
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
