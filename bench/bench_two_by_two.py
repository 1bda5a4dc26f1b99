"""Speed of the batched 2×2 deep-matrix-factorization engine vs a plain PyTorch loop.

Default: advance the 12-run Figure 1 batch (Razin & Cohen 2020, spec §3) for
a short chunk with the compiled kernel, run a plain eager PyTorch loop
(autograd + SGD + ``.item()`` every 50 steps, as the authors' trainer does
minus its callbacks) for a short chunk per depth, and print iterations/s and
the ratio. Both are measured in the same process, one thread.

``--figure1`` instead runs the real Figure 1 configuration to completion
(up to 5·10⁶ iterations per run) and prints the wall time, each run's status
and final iteration, and ``|P_11|`` at the four marker losses next to the
published values.

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_two_by_two.py [--data JSON] [--json OUT]
    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_two_by_two.py --figure1 --data JSON
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from implicit_reg.razin2020 import loss_markers as lm  # noqa: E402
from implicit_reg.razin2020 import two_by_two as tt  # noqa: E402
from implicit_reg.razin2020 import two_by_two_problem as tp  # noqa: E402

#: Speed figures use process CPU time: on a shared machine wall time counts the
#: time the process waits for a core.
clock = time.process_time

# (depth, lr, init, balanced) in the order of the spec §3 table, runs o v ^ D.
FIG1 = [
    (2, 6e-3, 1e-5, False), (2, 6e-3, 1e-5, True), (2, 3e-3, 1e-6, False), (2, 3e-3, 1e-6, True),
    (3, 6e-3, 1e-5, False), (3, 6e-3, 1e-5, True), (3, 3e-3, 1e-6, False), (3, 3e-3, 1e-6, True),
    (4, 3e-3, 1e-3, False), (4, 3e-3, 1e-3, True), (4, 1.5e-3, 1e-4, False), (4, 1.5e-3, 1e-4, True),
]

# Published |P_11| at the markers (spec §3, digitized); None = not given.
PUBLISHED = {
    (2, 3e-3, 1e-6, True): (1.54, 6.03, 7.16, 7.19),
    (2, 6e-3, 1e-5, True): (1.5, 6.0, 6.9, 6.91),
    (2, 3e-3, 1e-6, False): (0.87, 1.10, 1.13, 1.15),
    (2, 6e-3, 1e-5, False): (0.60, 0.69, 0.73, None),
    (3, 3e-3, 1e-6, True): (1.82, 6.07, 19.46, 61.84),
    (3, 6e-3, 1e-5, False): (None, None, None, 43.4),
    (4, 1.5e-3, 1e-4, True): (1.82, 6.09, 19.52, 62.0),
    (4, 3e-3, 1e-3, False): (None, None, None, 57.1),
}


def fig1_configs(seed_offset: int) -> list[tp.DMFRunConfig]:
    return [
        tp.DMFRunConfig(d, lr, x, "balanced" if bal else "gaussian", 1, seed_offset + k)
        for k, (d, lr, x, bal) in enumerate(FIG1)
    ]


def load_problem(path: str | None) -> tp.CompletionProblem:
    if path:
        return tp.load_completion_problem(path)
    return tp.make_completion_problem({(0, 1): 1.0, (1, 0): 1.0, (1, 1): 0.0})


def eager_torch_steps_per_second(
    problem: tp.CompletionProblem, cfg: tp.DMFRunConfig, n_steps: int
) -> float:
    """A plain PyTorch loop: autograd, SGD, ``.item()`` of the loss every 50 steps."""
    layers = [torch.nn.Parameter(torch.from_numpy(w.copy())) for w in tp.init_layers(cfg)]
    opt = torch.optim.SGD(layers, lr=cfg.lr)
    rows, cols = torch.from_numpy(problem.rows), torch.from_numpy(problem.cols)
    vals = torch.from_numpy(problem.values.astype(np.float32))
    start = clock()
    for t in range(1, n_steps + 1):
        opt.zero_grad()
        prod = layers[0]
        for w in layers[1:]:
            prod = prod @ w
        loss = 0.5 * ((prod[rows, cols] - vals) ** 2).sum()
        loss.backward()
        opt.step()
        if t % 50 == 0:
            loss.item()
            prod.detach()[0, 0].item()
    return n_steps / (clock() - start)


def benchmark(problem: tp.CompletionProblem, fast_iters: int, eager_iters: int, repeats: int = 1) -> list[dict]:
    """Fast batch vs eager loop, timed in CPU time and alternated ``repeats`` times (medians)."""
    configs = fig1_configs(0)
    # tol < 0: no run converges during the measurement, all 12 stay busy.
    warm = tt.init_batch(problem, configs, tol=-1.0)
    tt.advance(warm, 100)  # compile (or load the cache) outside the timing
    batch = tt.init_batch(problem, configs, tol=-1.0)
    fast_rates, eager_rates, ratios = [], {d: [] for d in (2, 3, 4)}, []
    for _ in range(repeats):
        start = clock()
        tt.advance(batch, fast_iters)
        fast_rates.append(fast_iters / (clock() - start))
        for d in (2, 3, 4):
            eager_rates[d].append(eager_torch_steps_per_second(
                problem, next(c for c in configs if c.depth == d), eager_iters))
        ratios.append(fast_rates[-1] * len(configs) / np.mean([eager_rates[d][-1] for d in (2, 3, 4)]))
    batch_its = float(np.median(fast_rates))
    run_its = batch_its * len(configs)
    eager = {d: float(np.median(v)) for d, v in eager_rates.items()}
    eager_mean = float(np.mean(list(eager.values())))
    entries = [
        {"name": "fast batch (12 runs), batch iterations/s", "value": batch_its, "unit": "it/s", "ratio": None},
        {"name": "fast batch, run-iterations/s", "value": run_its, "unit": "it/s",
         "ratio": float(np.median(ratios))},
        {"name": "fast batch, time per run-iteration", "value": 1e9 / run_its, "unit": "ns", "ratio": None},
    ]
    for d, v in eager.items():
        entries.append({"name": f"eager torch loop depth {d}, iterations/s", "value": v, "unit": "it/s",
                        "ratio": 1.0})
    entries.append({"name": "eager torch loop, time per iteration (mean of depths)",
                    "value": 1e6 / eager_mean, "unit": "us", "ratio": None})
    # Figure 1 needs ≈ 12 runs × ≤ 5e6 iterations; projected from the measured speeds.
    worst = 12 * 5e6
    entries.append({"name": "projected worst case Figure 1 (12 × 5e6), fast", "value": worst / run_its,
                    "unit": "s", "ratio": None})
    entries.append({"name": "projected worst case Figure 1 (12 × 5e6), eager", "value": worst / eager_mean,
                    "unit": "s", "ratio": None})
    return entries


def figure1(problem: tp.CompletionProblem, seed_offset: int) -> list[dict]:
    configs = fig1_configs(seed_offset)
    batch = tt.init_batch(problem, configs)
    tt.advance(tt.init_batch(problem, configs[:1]), 50)  # compile outside the timing
    start = time.perf_counter()
    tt.run_batch(batch)
    wall = time.perf_counter() - start
    print(f"Figure 1, 12 runs, seeds {seed_offset}..{seed_offset + 11}: wall {wall:.1f} s")
    header = (f"{'depth':>5} {'lr':>7} {'init':>6} {'b':>1} {'seed':>4} {'status':>9} {'iters':>8} "
              f"{'|P11| @0.13':>11} {'@0.013':>7} {'@1.3e-3':>7} {'@1.3e-4':>7} {'end':>6} {'det':>4}   published")
    print(header)
    entries = [{"name": "figure1 wall time", "value": wall, "unit": "s", "ratio": None}]
    for cfg, (d, lr, x, bal), res in zip(configs, FIG1, tt.run_results(batch)):
        h = res.history
        marks = lm.unobserved_at_markers(h["loss"], h["p11"])
        cut = lm.curve_cut(h["loss"])
        end = abs(h["p11"][cut - 1])
        det = np.sign(np.linalg.det(res.final_product.astype(np.float64)))
        pub = PUBLISHED.get((d, lr, x, bal))
        pub_txt = "" if pub is None else " / ".join("-" if v is None else f"{v:g}" for v in pub)
        print(f"{d:>5} {lr:>7.1e} {x:>6.0e} {'b' if bal else ' '} {cfg.seed:>4} {res.status:>9} "
              f"{res.final_iteration:>8} {marks[0]:>11.3f} {marks[1]:>7.3f} {marks[2]:>7.3f} "
              f"{marks[3]:>7.3f} {end:>6.2f} {det:>+4.0f}   {pub_txt}")
        tag = f"depth {d} lr {lr:g} init {x:g}{' (b)' if bal else ''} seed {cfg.seed}"
        entries.append({"name": f"{tag}: final iteration", "value": res.final_iteration, "unit": "it",
                        "ratio": None})
        for thr, m in zip(lm.MARKER_LOSSES, marks):
            ref = None if pub is None else pub[lm.MARKER_LOSSES.index(thr)]
            entries.append({"name": f"{tag}: |P11| at loss {thr:g}", "value": float(m), "unit": "",
                            "ratio": None if ref is None or not np.isfinite(m) else float(m) / ref})
    return entries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="authors' JSON export of the 2x2 problem (default: built-in [[*,1],[1,0]])")
    parser.add_argument("--fast-iters", type=int, default=200_000)
    parser.add_argument("--eager-iters", type=int, default=3_000)
    parser.add_argument("--repeats", type=int, default=3, help="alternate fast and eager this many times")
    parser.add_argument("--figure1", action="store_true", help="run the real Figure 1 configuration")
    parser.add_argument("--seed-offset", type=int, default=0)
    parser.add_argument("--json", help="write the results as a list of {name, value, unit, ratio}")
    args = parser.parse_args()
    torch.set_num_threads(1)
    problem = load_problem(args.data)
    if args.figure1:
        entries = figure1(problem, args.seed_offset)
    else:
        entries = benchmark(problem, args.fast_iters, args.eager_iters, args.repeats)
        width = max(len(e["name"]) for e in entries)
        for e in entries:
            ratio = "" if e["ratio"] is None else f"  x{e['ratio']:.1f}"
            print(f"{e['name']:<{width}}  {e['value']:>12.4g} {e['unit']:<4}{ratio}")
    if args.json:
        Path(args.json).write_text(json.dumps(entries, indent=1))


if __name__ == "__main__":
    main()
