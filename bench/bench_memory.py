"""Peak memory of the pipeline's jobs at several sizes, to check ``implicit_reg.pipeline.memory``.

Each case runs in a fresh interpreter (peak RSS only grows within a process) and does
what the job's adapter does: draw a ground truth (and its SVD), draw observations, or
load a data set and train a batch for a few synchronisation rounds (the buffers are all
allocated by the first step; logging adds the trajectories, small at these lengths).
The peak is ``ru_maxrss`` of the child, the quantity Snakemake's benchmark files report
as ``max_rss``.

    python bench/bench_memory.py            # every case, writes bench/memory.json
    python bench/bench_memory.py --quick    # the small cases only
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "memory.json"

# (job, parameters): sizes chosen to make the size-dependent terms dominate the interpreter.
CASES = [
    ("interpreter", {}),  # the training jobs' imports: torch, pandas, the engine
    ("interpreter_numpy", {}),  # the data jobs' imports
    ("ground_truth", {"size": 1000, "rank": 5}),
    ("ground_truth", {"size": 2500, "rank": 5}),
    ("observations", {"task": "completion", "size": 2000, "rank": 5, "n_obs": 400000}),
    ("observations", {"task": "sensing", "size": 100, "rank": 5, "n_obs": 2000}),
    ("observations", {"task": "sensing", "size": 100, "rank": 5, "n_obs": 5000}),
    ("train", {"task": "completion", "size": 100, "rank": 5, "n_obs": 2000, "depths": [2] * 24}),
    ("train", {"task": "completion", "size": 500, "rank": 5, "n_obs": 50000, "depths": [3] * 12}),
    ("train", {"task": "completion", "size": 1000, "rank": 5, "n_obs": 200000, "depths": [4] * 4}),
    ("train", {"task": "sensing", "size": 100, "rank": 5, "n_obs": 2000, "depths": [2] * 24 + [3] * 24}),
    ("train", {"task": "sensing", "size": 100, "rank": 5, "n_obs": 5000, "depths": [3] * 24 + [4] * 24}),
]
QUICK = {0, 1, 2, 4, 5, 7, 10}


def _case(job: str, p: dict) -> None:
    """Run one case in this process (the child)."""
    import numpy as np

    if job == "interpreter_numpy":
        from implicit_reg.arora2019 import data  # noqa: F401
        return
    if job == "interpreter":
        import pandas  # noqa: F401
        import torch  # noqa: F401

        import implicit_reg.arora2019.trainer  # noqa: F401
        return
    from implicit_reg.arora2019 import data as matrix_data

    rng = np.random.default_rng(0)
    gt = matrix_data.low_rank_ground_truth(p["size"], p["size"], p["rank"], rng)
    if job == "ground_truth":
        np.linalg.svd(gt.astype(np.float64), compute_uv=False)  # as make_ground_truth.py
        return
    if p["task"] == "completion":
        obs = matrix_data.completion_arrays(gt, p["n_obs"], rng)
    else:
        obs = matrix_data.sensing_arrays(gt, p["n_obs"], rng)
    if job == "observations":
        return
    import torch

    from implicit_reg.arora2019.initialization import initial_factors
    from implicit_reg.arora2019.observations import build_problem
    from implicit_reg.arora2019.schedule import Schedule
    from implicit_reg.arora2019.trainer import BatchTrainer

    with tempfile.TemporaryDirectory() as tmp:  # the job reads its observations from a file
        np.savez(Path(tmp) / "obs.npz", **obs)
        del obs
        obs = dict(np.load(Path(tmp) / "obs.npz"))
    problem = build_problem(p["task"], obs, gt, "cpu", torch.float32, None, 0.05)
    initial = [initial_factors(problem.shape, d, "gaussian", 1e-3, np.random.default_rng(i))
               for i, d in enumerate(p["depths"])]
    schedule = Schedule(optimizer="grouprmsprop", max_iters=40, log_every=10, train_loss_tol=0.0,
                        rmsprop_alpha=0.99, rmsprop_eps=1e-8, n_singular_values=10, log_alignment=False,
                        divergence_loss=1e10, sync_every=10, checkpoint_seconds=0)
    BatchTrainer(problem, initial, [1e-3] * len(p["depths"]), schedule, "cpu", torch.float32, None, "x").run()


def measure(job: str, p: dict) -> float:
    """Peak RSS (MB) of one case, run in a fresh interpreter."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    # this very program, asked for one case: a fresh interpreter whose peak is that case's
    out = subprocess.run([sys.executable, __file__, "--case", job, json.dumps(p)], cwd=ROOT, env=env,
                         capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="only the small cases")
    parser.add_argument("--case", nargs=2, metavar=("JOB", "PARAMS_JSON"),
                        help="run one case and print its peak RSS in MB (what measure() runs)")
    args = parser.parse_args()
    if args.case:
        _case(args.case[0], json.loads(args.case[1]))
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        return
    rows = []
    for i, (job, p) in enumerate(CASES):
        if args.quick and i not in QUICK:
            continue
        peak = measure(job, p)
        rows.append({"job": job, **p, "max_rss_mb": round(peak, 1)})
        print(json.dumps(rows[-1]), flush=True)
    OUT.write_text(json.dumps({"machine": os.uname().machine, "cases": rows}, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
