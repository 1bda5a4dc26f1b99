"""Where the engines' time goes: torch.profiler over training steps, by operator class.

Explains the performance targets the engines miss (issue 6): for each engine
the share of CPU time spent in matrix products (``bmm``/``mm``/``addmm``/sparse
kernels), in element-wise and reduction work, and in everything else (Python,
dispatch, bookkeeping). A step that is ≈ 90 % products cannot get much faster
without making the products themselves faster::

    .venv/bin/python bench/profile_engines.py [--json out.json]

Shares are ratios within one profile, so machine load scales them all alike.
"""

from __future__ import annotations

import argparse
import time

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _common import entry, print_entries, run_engine_steps, write_json
from torch.profiler import ProfilerActivity, profile  # noqa: E402

from implicit_reg.arora2019.initialization import initial_factors  # noqa: E402
from implicit_reg.arora2019.observations import Problem, build_problem  # noqa: E402
from implicit_reg.arora2019.schedule import Schedule  # noqa: E402
from implicit_reg.arora2019.trainer import BatchTrainer  # noqa: E402

PRODUCT_OPS = ("aten::bmm", "aten::mm", "aten::addmm", "aten::baddbmm", "aten::sparse_sampled_addmm",
               "aten::_sparse_mm", "aten::_sparse_csr_mm", "aten::sampled_addmm",
               # the sensing products on the oneDNN backend (A prepacked)
               "mkldnn::_linear_pointwise")


def _trainer(problem: Problem, depth: int, batch: int, optimizer: str, init: str) -> BatchTrainer:
    inits = [initial_factors(problem.shape, depth, init, 1e-3, np.random.default_rng(s)) for s in range(batch)]
    schedule = Schedule(optimizer=optimizer, max_iters=10**9, log_every=10**9, sync_every=10**9,
                        train_loss_tol=-1.0, checkpoint_seconds=0)
    lr = 0.1 if optimizer == "gd" else 1e-3
    return BatchTrainer(problem, inits, [lr] * batch, schedule, dtype=torch.float32)


def profile_steps(trainer: BatchTrainer, steps: int, top: int = 0) -> dict[str, float]:
    """Self CPU time by operator class over ``steps`` steps (iteration 0 and its log excluded)."""
    prof = profile(activities=[ProfilerActivity.CPU])
    start = {"t": 0.0}

    def begin() -> None:
        prof.start()
        start["t"] = time.process_time()

    run_engine_steps(trainer, steps, begin)
    elapsed_us = (time.process_time() - start["t"]) * 1e6
    prof.stop()
    shares = {"products": 0.0, "element-wise and reductions": 0.0}
    total_ops = chain = 0.0
    for event in prof.key_averages():
        if not event.key.startswith(("aten::", "mkldnn::")):
            continue
        self_us = event.self_cpu_time_total
        total_ops += self_us
        if event.key in PRODUCT_OPS or "mm" in event.key.split("::")[1]:
            shares["products"] += self_us
            if event.key == "aten::bmm":
                chain += self_us
        else:
            shares["element-wise and reductions"] += self_us
    # Outside aten operators: Python, dispatch, and the profiler's own overhead (an upper bound).
    wall = max(elapsed_us, total_ops)
    shares["outside operators (Python, dispatch, profiler)"] = wall - total_ops
    shares["products: of which the factor chains' bmm"] = chain
    if top:
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=top))
    return {k: v / wall for k, v in shares.items()}


def benchmark(steps: int = 200) -> list[dict]:
    from bench_deep_factorization import completion_problem
    from bench_sensing import sensing_problem

    _, _, completion = completion_problem()
    _, sensing = sensing_problem(2000)
    rng = np.random.default_rng(1)
    idx = rng.choice(1682 * 943, size=12_000, replace=False)
    ratings = {"shape": np.array([1682, 943]), "train_rows": idx[:10_000] // 943, "train_cols": idx[:10_000] % 943,
               "train_values": rng.integers(1, 6, 10_000).astype(np.float32), "test_rows": idx[10_000:] // 943,
               "test_cols": idx[10_000:] % 943, "test_values": rng.integers(1, 6, 2_000).astype(np.float32)}
    movielens = build_problem("movielens", ratings, None, sampled_max_fraction=0.05)
    cases = [
        ("completion d2 B=24", completion, 2, 24, "grouprmsprop", "gaussian", steps),
        ("completion d3 B=24", completion, 3, 24, "grouprmsprop", "gaussian", steps),
        ("completion d4 B=24", completion, 4, 24, "grouprmsprop", "gaussian", steps),
        ("sensing m=2000 d3 B=24", sensing, 3, 24, "grouprmsprop", "gaussian", max(steps // 20, 5)),
        ("movielens sampled d2", movielens, 2, 1, "gd", "identity", max(steps // 10, 5)),
        ("movielens sampled d3", movielens, 3, 1, "gd", "identity", max(steps // 50, 3)),
    ]
    out = []
    for name, problem, depth, batch, optimizer, init, n in cases:
        shares = profile_steps(_trainer(problem, depth, batch, optimizer, init), n)
        for part, share in shares.items():
            out.append(entry(f"{name}: share of CPU time in {part}", share, "", share))
    # The shared-operator batch: the paper's rank-5 m = 2000 row (depths 2-4, 96 runs) in one job.
    from bench_sensing import paper_row, row_trainer

    shares = profile_steps(row_trainer(sensing, paper_row(2000)), max(steps // 40, 5))
    for part, share in shares.items():
        out.append(entry(f"sensing m=2000 shared-operator row B=96: share of CPU time in {part}", share, "", share))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--json")
    args = parser.parse_args()
    entries = benchmark(args.steps)
    print_entries(entries, "Profile of the engines (torch.profiler, self CPU time)")
    if args.json:
        write_json(entries, args.json)


if __name__ == "__main__":
    main()
