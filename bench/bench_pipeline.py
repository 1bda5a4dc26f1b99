"""The whole pipeline at paper scale: CPU time per figure, measured where a real run exists.

Reads, from a results archive (default ``archive/paper/manifest.json``):

* every entry's ``cpu_seconds`` (``wall_seconds`` when the CPU time is missing):
  a planned job whose provenance key an entry holds is **measured** by it (a
  training entry's time is split over its runs by iterations, see
  :func:`archive_run_costs`);

and from a run directory (default: this repository):

* ``benchmarks/*/*.tsv`` — Snakemake ``benchmark:`` files (columns s,
  cpu_time, …): a job with one is **measured**;
* ``results/runs/<batch>/runs.parquet`` and ``results/<figure>/runs.parquet`` —
  the iteration count of every finished run.

The plan is ``implicit_reg.arora2019.plan.build_plan`` of ``config/config.yaml``
(validated, defaults filled), plus the ``razin2020`` section. A job without a
benchmark file is an **estimate**: its runs' iteration counts (finished runs
when present; else the same settings at the nearest number of observations
among finished runs; else the spec's [timing] tables, arora2019 §1.7 and
razin2020 §8) times the per-iteration cost measured by the benchmarks of this
run (``bench_deep_factorization``, ``bench_sensing``, ``bench_two_by_two``,
``bench_tensor``) or, for the dynamics (plain GD, alignment logged every 100
steps) and MovieLens (1682×943) jobs, by short engine runs made here.

Beside it, the cost of the authors' way: every run one after another at the
authors-style per-step cost of those benchmarks, every run recomputed for each
figure that uses it, convex baselines solved per figure, and the CP rank of
the linear baseline re-estimated in every tensor run. In the pipeline a run
(or convex solve) used by k figures is computed once and each figure is
charged 1/k of it; an estimated batch's time follows its batch size as runs
stop (step time b + a·B fitted to the B = 1 and B = 24 measurements).

Sensing batches hold every depth of a data set (the plan's shared-operator
batches): their step cost follows the measured per-run cost at B = 1, 24 and
the paper's whole row (``bench_sensing``), plus each run's depth's factor
products.

The instance spread (Arora ``instance_sweeps`` runs and their convex solves,
Razin & Cohen ``instance_panels`` and ``instance_datasets`` jobs, config
``instances`` = K) is charged to pseudo-figures ``<figure> (instance spread)``
and summed on its own line.

Times are CPU seconds of single-threaded jobs; the wall time on this 2-core
machine is the jobs packed longest first on two slots (dependencies ignored).
The totals say which share of the CPU time is measured; they are labelled
"measured" from :data:`MEASURED_LABEL_SHARE` on.

Usage::

    .venv/bin/python bench/bench_pipeline.py [--quick] [--run-dir DIR] [--archive MANIFEST]
                                             [--costs bench/results.json] [--json OUT]

With ``--costs`` of a run that has this program's own ``cost used:`` lines (a
previous ``run_all.py``), nothing is timed: the estimate takes seconds.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _common import ROOT, entry, load_config, print_entries, run_engine_steps, validated, write_json  # noqa: F401 - re-exported

from implicit_reg.arora2019 import data as matrix_data  # noqa: E402
from implicit_reg.arora2019.initialization import initial_factors  # noqa: E402
from implicit_reg.arora2019.plan import build_plan  # noqa: E402
from implicit_reg.arora2019.schedule import Schedule  # noqa: E402
from implicit_reg.arora2019.trainer import BatchTrainer  # noqa: E402
from implicit_reg.pipeline.estimate import CONVEX_SECONDS  # noqa: E402  (the pipeline's convex-solve costs)
from implicit_reg.razin2020.plan import RazinPlan  # noqa: E402

# ------------------------------------------------------------- spec [timing] tables
# Arora §1.7: iterations to train loss 1e-6 (rank 5, n = 100, GroupRMSprop, gaussian init),
# m = 2000, lr = 1e-3, at init_scale 1e-3 and 1e-6. Iterations scale as 1/lr.
ARORA_ITERS_INIT_1E3 = {2: 31e3, 3: 29e3, 4: 31e3}
ARORA_ITERS_INIT_1E6 = {2: 37e3, 3: 48e3, 4: 107e3}
# Arora §6 / §2.3 (inferred): dynamics runs (plain GD, lr 0.1): depth 1 ≈ 7e4, depths 2–3 5e4–2e5.
DYNAMICS_ITERS = {1: 7e4, 2: 1.25e5, 3: 1.25e5}
# Razin §8, midpoints of the measured ranges.
RAZIN_DMF_ITERS = {  # figure -> depth -> iterations per run
    "razin2020_fig1": {2: 1.65e4, 3: 2.45e6, 4: 2.95e6},
    "razin2020_perturbed": {2: 2.2e4, 3: 1.5e6},
}
RAZIN_TC_ITERS = {  # (rank, order, init_std) -> iterations per run
    (1, 3, 1e-2): 950, (1, 3, 1e-3): 950,
    (1, 4, 1e-2): 4.3e3, (1, 4, 1e-3): 2.65e4,
    (3, 3, 1e-2): 8.4e3, (3, 3, 1e-3): 8.4e3,
    # Rank 3, order 4: the runs hit the iteration cap (razin2020.tc.max_iters, 1e6), filled in from the config.
}
RAZIN_LINEAR_RANK_SECONDS = {3: 2.0, 4: 40.0}  # spec §8: ≤ 3 s (order 3), 13–70 s (order 4)
RAZIN_MODEL_RANK_SECONDS = {3: 0.5, 4: 2.0}  # spec §8: 0.1–4 s
SMALL_JOB_SECONDS = 5.0  # data generation, tables, rendering when not measured
#: the totals are labelled "measured" when at least this share of their CPU time is
MEASURED_LABEL_SHARE = 0.9
DEEP_FACTORIZATION = "arora2019.deep_factorization"
SPREAD = " (instance spread)"  # suffix of the instance spread's pseudo-figures


# ------------------------------------------------------------------- inputs
def read_benchmarks(run_dir: Path) -> dict[str, dict[str, float]]:
    """``rule/wildcards`` -> {s, cpu_time} of every Snakemake benchmark file."""
    out = {}
    for path in sorted((run_dir / "benchmarks").glob("*/*.tsv")):
        with path.open() as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        if rows:
            row = rows[-1]
            out[f"{path.parent.name}/{path.stem}"] = {"s": float(row["s"]), "cpu_time": float(row["cpu_time"])}
    return out


def read_archive(manifest: Path) -> list[dict]:
    """The timed entries of an archive manifest: ``{kind, job, keys, seconds}`` each.

    ``seconds`` is the job's CPU time, or its wall time when the benchmark file had no CPU
    time (a single-threaded job's wall time is at least its CPU time, so this errs high).
    Entries without either are left out; a missing manifest gives none.
    """
    if not manifest.is_file():
        return []
    out = []
    for e in json.loads(manifest.read_text()).get("entries", {}).values():
        seconds = e.get("cpu_seconds", e.get("wall_seconds"))
        if seconds is not None:
            out.append({"kind": e["kind"], "job": e["job"], "keys": dict(e["keys"]), "seconds": float(seconds)})
    return out


def archive_run_costs(entries: list[dict], run_keys: dict[str, str],
                      run_iters: dict[str, float]) -> dict[str, tuple[float, str]]:
    """run id -> (CPU seconds, archive job) of every planned run a training entry holds.

    The entry's seconds are split over its runs in proportion to their iterations: a batch
    steps its active runs together at a per-run cost that hardly depends on the run, so a
    run costs its share of the job's run-iterations (an equal split would charge a
    figure of short runs as much as one of runs 3× longer). The split moves time between
    figures only: the entry's total is kept. A run of the entry that this plan does not
    hold (another config) weighs the mean of the planned ones, and its share is not counted.
    """
    rid_of = {key: rid for rid, key in run_keys.items()}
    out: dict[str, tuple[float, str]] = {}
    for e in entries:
        if e["kind"] != DEEP_FACTORIZATION:
            continue
        planned = [rid_of[k] for k in e["keys"].values() if k in rid_of]
        if not planned:
            continue
        its = {rid: run_iters[rid] for rid in planned}
        mean = sum(its.values()) / len(its)
        total = sum(its.values()) + mean * (len(e["keys"]) - len(planned))
        for rid in planned:
            out[rid] = (e["seconds"] * its[rid] / total if total > 0 else e["seconds"] / len(e["keys"]), e["job"])
    return out


def archive_job_costs(entries: list[dict]) -> dict[str, tuple[float, str]]:
    """provenance key -> (CPU seconds, job) of the single-result entries (convex solves, Razin jobs)."""
    return {key: (e["seconds"], e["job"]) for e in entries if e["kind"] != DEEP_FACTORIZATION
            for key in e["keys"].values()}


def read_iterations(run_dir: Path) -> tuple[dict[str, int], list[dict]]:
    """run_id -> iterations, and the finished runs' settings (for nearest-m estimates)."""
    import pandas as pd

    by_id: dict[str, int] = {}
    rows: list[dict] = []
    paths = list((run_dir / "results" / "runs").glob("*/runs.parquet"))
    paths += [p for p in (run_dir / "results").glob("*/runs.parquet") if p.parent.name != "runs"]
    for path in paths:
        try:
            df = pd.read_parquet(path)
        except Exception:  # noqa: BLE001 - a half-written table is skipped
            continue
        _add_iterations(df, by_id, rows)
    return by_id, rows


def _add_iterations(df, by_id: dict[str, int], rows: list[dict]) -> None:
    """The finished runs of a runs table into ``by_id`` (run id -> iterations) and ``rows``."""
    if "iterations" not in df or "run_id" not in df:
        return
    for rec in df[df["iterations"] > 0].to_dict("records"):
        by_id[rec["run_id"]] = int(rec["iterations"])
        rows.append(rec)


def read_archive_iterations(manifest: Path) -> tuple[dict[str, int], list[dict]]:
    """:func:`read_iterations` of the training entries of an archive (their ``runs`` tables).

    A run the archive holds was run to its end at paper scale, so its iteration count is a
    measurement; runs of another plan help the nearest-m estimates as finished runs do.
    """
    from implicit_reg.results.archive import read_entry

    by_id: dict[str, int] = {}
    rows: list[dict] = []
    if not manifest.is_file():
        return by_id, rows
    for name, e in json.loads(manifest.read_text()).get("entries", {}).items():
        if e.get("kind") != DEEP_FACTORIZATION or not (manifest.parent / name).is_file():
            continue
        _add_iterations(read_entry(manifest.parent / name, ["runs"])["runs"].to_pandas(), by_id, rows)
    return by_id, rows


# ------------------------------------------------------------- iteration model
def arora_iterations(run, finished: dict[str, int], rows: list[dict]) -> tuple[float, str]:
    """Iterations of one planned run and where the number comes from."""
    if run.run_id in finished:
        return finished[run.run_id], "measured"
    cap = run.schedule.max_iters
    if run.schedule.optimizer == "gd":
        if run.dataset.task == "movielens":
            return cap, "estimate (cap)"
        return min(cap, DYNAMICS_ITERS.get(run.depth, 1.25e5)), "estimate (spec)"
    same = [r for r in rows if r.get("task") == run.dataset.task and int(r.get("depth", -1)) == run.depth
            and math.isclose(float(r.get("lr", 0)), run.lr) and math.isclose(float(r.get("init_scale", 0)),
                                                                             run.init_scale)]
    if same:
        nearest = min(abs(int(r["n_obs"]) - run.dataset.n_obs) for r in same)
        its = [r["iterations"] for r in same if abs(int(r["n_obs"]) - run.dataset.n_obs) == nearest]
        return min(cap, float(np.mean(its))), "estimate (finished runs, nearest m)"
    a, b = ARORA_ITERS_INIT_1E3.get(run.depth, 31e3), ARORA_ITERS_INIT_1E6.get(run.depth, 107e3)
    x = max(0.0, (-math.log10(run.init_scale) - 3.0) / 3.0)  # 0 at 1e-3, 1 at 1e-6
    return min(cap, a * (b / a) ** x * (1e-3 / run.lr)), "estimate (spec)"


# ------------------------------------------------------------- per-iteration costs
def costs_from_entries(entries: list[dict]) -> dict[str, float]:
    """Per-iteration CPU seconds from the other benchmarks' entries (by name)."""
    c: dict[str, float] = {}
    unit = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
    for e in entries:
        name, v = e["name"], e["value"] * unit.get(e["unit"], float("nan"))
        if name.startswith("completion d") and "engine time per run-iteration" in name:
            d, b = name.split(":")[0].replace("completion d", "").split(" B=")
            c[f"completion engine d{d} B{b}"] = v
        elif name.startswith("completion d") and "authors-style loop" in name:
            c[f"completion authors d{name.split(':')[0][len('completion d'):]}"] = v
        elif name.startswith("sensing m=") and "engine time per run-iteration" in name:
            head = name.split(":")[0].split()
            c[f"sensing engine m{head[1][2:]} B{head[3][2:]}"] = v
        elif name.startswith("sensing m=") and "shared-operator batch vs per-depth B=24 batch" in name:
            m = name.split()[1][2:].rstrip(":")
            c[f"sensing row m{m}"] = v
            c[f"sensing row m{m} size"] = float(name.split(", B=")[1].split()[0])
        elif name.startswith("sensing m=") and "authors-style loop" in name:
            c[f"sensing authors m{name.split()[1][2:]}"] = v
        elif name == "fast batch, time per run-iteration":
            c["2x2 engine"] = v
        elif name == "eager torch loop, time per iteration (mean of depths)":
            c["2x2 authors"] = v
        elif name.startswith("order 3 autograd step"):
            c["tc authors o3"] = v
        elif name.startswith("order 3 hand-written step, 10 runs stacked (per run)"):
            c["tc engine o3"] = v
        elif name.startswith("order 4 R=512 autograd step"):
            c["tc authors o4"] = v
        elif name.startswith("order 4 R=512 hand-written step, 10 runs stacked (per run)"):
            c["tc engine o4"] = v
        elif name.startswith("cp rank estimate, order 4 linear tensor"):
            c["rank linear o4"] = v
        elif name.startswith("cp rank estimate, order 4 model-like"):
            c["rank model o4"] = v
        elif name.startswith("SGEMM 1024x1024 oneDNN prepacked"):
            # The fastest square float32 product this CPU runs on one core: the sensing floor's rate.
            c["sgemm onednn flops"] = max(c.get("sgemm onednn flops", 0.0), e["value"] * 1e9)
        elif name.startswith("cost used: ") and name.endswith(", per iteration"):
            # This program's own costs from an earlier run: no need to time them again.
            c[name[len("cost used: "):-len(", per iteration")]] = v
    return c


def _engine_seconds_per_iteration(problem, depth: int, schedule_kw: dict, iters: int, batch: int = 1,
                                  init: str = "identity", lr: float = 0.1) -> float:
    """CPU seconds per engine step, iteration 0 (setup and its log) excluded."""
    import time as _t

    init_f = [initial_factors(problem.shape, depth, init, 1e-3, np.random.default_rng(s)) for s in range(batch)]
    sched = Schedule(max_iters=10**9, train_loss_tol=-1.0, checkpoint_seconds=0, **schedule_kw)
    trainer = BatchTrainer(problem, init_f, [lr] * batch, sched)
    start = {"t": 0.0}
    run_engine_steps(trainer, iters, lambda: start.update(t=_t.process_time()))
    return (_t.process_time() - start["t"]) / iters


def measure_gd_jobs(quick: bool) -> dict[str, float]:
    """Per-iteration costs of the dynamics jobs as configured (GD, log + alignment every 100) and MovieLens."""
    from implicit_reg.arora2019.observations import build_problem

    out: dict[str, float] = {}
    rng = np.random.default_rng(0)
    gt = matrix_data.low_rank_ground_truth(100, 100, 5, rng)
    dyn = {"optimizer": "gd", "log_every": 100, "log_alignment": True, "n_singular_values": 10}
    comp = build_problem("completion", matrix_data.completion_arrays(gt, 2000, rng), gt)
    sens = build_problem("sensing", matrix_data.sensing_arrays(gt, 2000, rng), gt)
    for depth in (1, 2, 3):
        out[f"dynamics completion d{depth}"] = _engine_seconds_per_iteration(comp, depth, dyn, 200 if quick else 1000)
        out[f"dynamics sensing d{depth}"] = _engine_seconds_per_iteration(sens, depth, dyn, 10 if quick else 40)
    # MovieLens-sized completion (1682×943, 10,000 ratings), GD, log every 100 (SVD of the product).
    ml_rng = np.random.default_rng(1)
    idx = ml_rng.choice(1682 * 943, size=10_000 + 2_000, replace=False)
    obs = {"shape": np.array([1682, 943]), "train_rows": idx[:10_000] // 943, "train_cols": idx[:10_000] % 943,
           "train_values": ml_rng.integers(1, 6, 10_000).astype(np.float32),
           "test_rows": idx[10_000:] // 943, "test_cols": idx[10_000:] % 943,
           "test_values": ml_rng.integers(1, 6, 2_000).astype(np.float32)}
    fraction = load_config()["engine"]["sampled_gradient_max_fraction"]
    sampled = build_problem("movielens", obs, None, sampled_max_fraction=fraction)
    dense = build_problem("movielens", obs, None)  # the authors' way: dense products
    svd_t = __import__("time").process_time()
    for _ in range(2):
        torch.linalg.svd(torch.randn(1682, 943, dtype=torch.float64), full_matrices=False)
    log_cost = (__import__("time").process_time() - svd_t) / 2 / 100  # one log (≈ one SVD) per 100 steps
    gd = {"optimizer": "gd", "log_every": 10**9, "sync_every": 10**9}
    for depth in (1, 2, 3):
        steps = (20 if depth == 1 else 2) if quick else (50 if depth == 1 else 4)
        out[f"dynamics movielens d{depth}"] = _engine_seconds_per_iteration(
            sampled, depth, gd, steps * (1 if depth == 3 else 10)) + log_cost
        out[f"dynamics movielens dense d{depth}"] = _engine_seconds_per_iteration(dense, depth, gd, steps) + log_cost
    return out


def measure_authors_depth1(quick: bool) -> float:
    """The authors-style loop at depth 1 (the dynamics' 'no factorization' runs)."""
    import time as _t

    from bench_deep_factorization import AuthorsStyleCompletion, completion_problem

    _, obs, _ = completion_problem()
    run = AuthorsStyleCompletion(obs, 1)
    run.steps(5)
    n = 200 if quick else 1000
    t0 = _t.process_time()
    run.steps(n)
    return (_t.process_time() - t0) / n


# ----------------------------------------------------------------- the estimate
class Tally:
    """CPU seconds per figure, split into measured and estimated."""

    def __init__(self) -> None:
        self.measured: dict[str, float] = defaultdict(float)
        self.estimated: dict[str, float] = defaultdict(float)
        self.authors: dict[str, float] = defaultdict(float)

    def add(self, figure: str, seconds: float, measured: bool) -> None:
        (self.measured if measured else self.estimated)[figure] += seconds


def arora_estimate(config: dict, bench: dict, finished: dict, rows: list[dict], c: dict,
                   tally: Tally, jobs: list[tuple[str, float]], archived: list[dict] = ()) -> dict[str, int]:
    """CPU seconds of the Arora et al. figures into ``tally``; every job's seconds appended to ``jobs``.

    Parameters
    ----------
    config : dict
        Validated config (defaults filled).
    bench : dict
        Benchmark files of a run directory (:func:`read_benchmarks`).
    finished, rows : dict, list
        Iteration counts of finished runs (:func:`read_iterations`).
    c : dict
        Per-iteration costs (:func:`costs_from_entries` and the engine runs here).
    tally, jobs : Tally, list
        Filled in: seconds per figure (and per instance spread), and per job.
    archived : list of dict
        Timed archive entries (:func:`read_archive`): their runs and solves are measured.
    """
    # The whole paper scale: every run, archived or not, is in a batch of the plan
    # (no store), so a batch holds the runs a fresh run would train together.
    plan = build_plan(config)
    counts = {"measured batches": 0, "estimated batches": 0, "measured runs": 0, "planned runs": 0,
              "sensing flops": 0.0}

    def depth_extra(depth: int) -> float:
        """Per run-iteration cost of a depth's factor products beyond depth 3's (completion engine, B = 24)."""
        return c[f"completion engine d{depth} B24"] - c["completion engine d3 B24"]

    def sensing_per_run(m: int, n: int) -> float:
        """Per run-iteration cost of a depth-3 sensing run at m in a batch of n runs.

        Piecewise linear in log n through the measured batch sizes (1 and 24 per depth,
        the paper's shared-operator row); linear in m through m = 2000 and 5000.
        """
        def at(mm: int) -> float:
            pts = sorted({1: c[f"sensing engine m{mm} B1"], 24: c[f"sensing engine m{mm} B24"],
                          int(c.get(f"sensing row m{mm} size", 24)): c.get(f"sensing row m{mm}",
                                                                           c[f"sensing engine m{mm} B24"])}.items())
            xs, ys = np.log([b for b, _ in pts]), [v for _, v in pts]
            return float(np.interp(math.log(max(n, 1)), xs, ys))
        c2 = at(2000)
        if "sensing engine m5000 B1" not in c:
            return c2
        # m sets the products' share (4·m·n² flops); the rest of a step does not depend on m.
        return max(c2 + (at(5000) - c2) * (m - 2000) / 3000, 0.1 * c2)

    def step_time(batch):
        """Seconds per engine step as a function of the active batch size B (depth 3 for sensing,
        the batch's depth otherwise; :func:`batch_seconds` adds the other depths' factor products).

        Completion: fitted as b + a·B through the measured per-run costs at B = 1 and B = 24
        (a: the per-run work, b: the per-step work that batching shares).
        """
        task, depth = batch.dataset.task, batch.depth
        if batch.schedule.optimizer == "gd":
            per = {d: c[f"dynamics {task} d{d}"] for d in (1, 2, 3)}
            mean = float(np.mean([per.get(r.depth, per[3]) for r in batch.runs]))
            return lambda n: n * mean
        if task == "sensing":
            return lambda n: n * sensing_per_run(batch.dataset.n_obs, n)
        pts = {key: c[f"completion engine d{depth} B{key}"] for key in (1, 24)}
        a = (24 * pts[24] - pts[1]) / 23
        b = pts[1] - a
        if a <= 0 or b <= 0:
            return lambda n: n * pts[24 if n >= 8 else 1]
        return lambda n: b + a * n

    def batch_seconds(batch, iters: dict[str, float]) -> float:
        """Runs leave the batch when they stop: integrate the step time over the shrinking batch.

        In a sensing (shared-operator, depth 0) batch each run adds its depth's factor products.
        """
        step = step_time(batch)
        total, prev, ordered = 0.0, 0.0, sorted(iters.values())
        for k, its in enumerate(ordered):
            total += (its - prev) * step(len(ordered) - k)
            prev = its
        if batch.depth == 0 and batch.schedule.optimizer != "gd":
            total += sum(iters[r.run_id] * depth_extra(r.depth) for r in batch.runs)
        return max(total, 0.0)

    def authors_cost(run) -> float:
        task, depth = run.dataset.task, run.depth
        if run.schedule.optimizer == "gd":
            if task == "movielens":
                return c[f"dynamics movielens dense d{depth}"]
            extra = c[f"dynamics {task} d{depth}"] - (c["completion engine d1 B1"] if depth == 1 else
                                                      c[f"completion engine d{depth} B1"])
            own = c["completion authors d1"] if depth == 1 else c[f"completion authors d{depth}"]
            if task == "sensing":
                own += c["sensing authors m2000"] - c["completion authors d3"]
            return own + max(extra, 0.0)
        if task == "completion":
            return c[f"completion authors d{depth}"]
        m = run.dataset.n_obs
        a2, a5 = c["sensing authors m2000"], c.get("sensing authors m5000")
        base = a2 if a5 is None else a2 + (a5 - a2) * (m - 2000) / 3000
        return base + c[f"completion authors d{depth}"] - c["completion authors d3"]

    c.setdefault("completion engine d1 B1", c["dynamics completion d1"])
    run_iters: dict[str, float] = {}
    for batch in plan.batches.values():
        for run in batch.runs:
            its, src = arora_iterations(run, finished, rows)
            run_iters[run.run_id] = its
            counts["planned runs"] += 1
            counts["measured runs"] += src == "measured"
            if run.dataset.task == "sensing":
                # The two products with A: 2·m·n² multiply-adds each, per run-iteration.
                rows_, cols_ = run.dataset.shape
                counts["sensing flops"] += its * 4.0 * run.dataset.n_obs * rows_ * cols_
    # Cost of every run in the pipeline: an archive entry's time split over its runs; else,
    # for a batch with a benchmark file, the measured CPU time split by iterations; else its
    # iterations × the engine's per-run cost for its batch (the runs the archive lacks).
    from_archive = archive_run_costs(list(archived), plan.run_keys, run_iters)
    run_cost: dict[str, tuple[float, bool]] = {rid: (secs, True) for rid, (secs, _) in from_archive.items()}
    archive_jobs: dict[str, float] = defaultdict(float)
    for secs, job in from_archive.values():
        archive_jobs[job] += secs
    jobs.extend(archive_jobs.items())
    for name, batch in plan.batches.items():
        rest = [r for r in batch.runs if r.run_id not in from_archive]
        if not rest:
            counts["measured batches"] += 1
            continue
        iters = {r.run_id: run_iters[r.run_id] for r in rest}
        total_its = sum(iters.values())
        key = f"train_factorization_batch/{name}"
        # A benchmark file is this batch's cost only if the run trained every planned run of it
        # (a batch of the same name from a smaller grid would undercount).
        if len(rest) == len(batch.runs) and key in bench and all(r.run_id in finished for r in batch.runs):
            counts["measured batches"] += 1
            secs, measured = bench[key]["cpu_time"], True
        else:
            counts["estimated batches"] += 1
            secs, measured = batch_seconds(replace(batch, runs=rest), iters), False
        jobs.append((name, secs))
        for rid, its in iters.items():
            run_cost[rid] = (secs * its / total_its, measured)
    runs_by_id = {r.run_id: r for b in plan.batches.values() for r in b.runs}
    # Each figure, and each figure's instance spread as a pseudo-figure of its own.
    units = [(name, fig, f"collect_figure_results/{name}") for name, fig in plan.figures.items()]
    units += [(name + SPREAD, fig.instances, f"collect_instance_results/{name}")
              for name, fig in plan.figures.items() if fig.instances is not None]
    users: dict[str, int] = defaultdict(int)
    convex_users: dict[str, int] = defaultdict(int)
    for _, fig, _ in units:
        for rid in fig.run_ids:
            users[rid] += 1
        for d in fig.convex_datasets:
            convex_users[d.name] += 1
    single = archive_job_costs(list(archived))
    convex_job = {job.dataset.name: job for job in plan.convex_jobs.values()}
    for fig_name, fig, collect in units:
        # A run used by k figures is computed once; each of them is charged 1/k of it.
        for rid in fig.run_ids:
            secs, measured = run_cost[rid]
            tally.add(fig_name, secs / users[rid], measured)
            tally.authors[fig_name] += run_iters[rid] * authors_cost(runs_by_id[rid])
        for d in fig.convex_datasets:
            job = convex_job[d.name]
            key = f"min_nuclear_norm/{job.name}"  # benchmark files are named by the convex job
            if job.key in single:
                (secs, key), measured = single[job.key], True
            else:
                secs, measured = (bench[key]["cpu_time"], True) if key in bench else (CONVEX_SECONDS[d.task], False)
            tally.add(fig_name, secs / convex_users[d.name], measured)
            tally.authors[fig_name] += secs
            if (key, secs) not in jobs:
                jobs.append((key, secs))
        render = [] if fig_name.endswith(SPREAD) else [f"render_figure/{fig_name}"]
        for key in render + [collect]:
            secs = bench[key]["cpu_time"] if key in bench else SMALL_JOB_SECONDS
            tally.add(fig_name, secs, key in bench)
            tally.authors[fig_name] += secs
            jobs.append((key, secs))
    # Data sets (ground truths, observations, MovieLens split): charged to a pseudo-figure.
    for key, v in bench.items():
        if key.split("/")[0] in ("ground_truth", "observations", "movielens_split", "download_movielens"):
            tally.add("(data sets)", v["cpu_time"], True)
            tally.authors["(data sets)"] += v["cpu_time"]
    n_data = len(plan.datasets) + len({d.ground_truth_name for d in plan.datasets.values()})
    n_measured = sum(1 for k in bench if k.split("/")[0] in ("ground_truth", "observations", "movielens_split"))
    rest = max(0, n_data - n_measured) * SMALL_JOB_SECONDS
    tally.add("(data sets)", rest, False)
    tally.authors["(data sets)"] += rest
    jobs.append(("(data sets)", tally.measured["(data sets)"] + tally.estimated["(data sets)"]))
    return counts


def two_core_wall(jobs: list[tuple[str, float]], cores: int = 2) -> tuple[float, str, float]:
    """Wall seconds of the jobs on ``cores`` single-threaded slots, longest job first (LPT).

    Dependencies are ignored (data sets and convex solves are short beside training), so this
    is what the job sizes allow: at least max(total / cores, the longest job). Returns the
    makespan, the longest job and its seconds.
    """
    slots = [0.0] * cores
    for _, secs in sorted(jobs, key=lambda j: -j[1]):
        i = int(np.argmin(slots))
        slots[i] += secs
    name, longest = max(jobs, key=lambda j: j[1])
    return max(slots), name, longest


def razin_estimate(config: dict, bench: dict, c: dict, tally: Tally, jobs: list[tuple[str, float]],
                   archived: list[dict] = ()) -> None:
    """CPU seconds of the Razin & Cohen figures and their instance spread into ``tally`` and ``jobs``.

    A job's time is the archive entry's holding its provenance key
    (``RazinPlan.job_provenance``), else its benchmark file's, else the estimate.
    """
    section = config.get("razin2020", {})
    plan = RazinPlan(section, config["seed"], config.get("instances", 0))
    single = archive_job_costs(list(archived))
    tc_cap = float(section.get("training", section).get("tc", {}).get("max_iters", 1e6))
    for init in (1e-2, 1e-3):
        RAZIN_TC_ITERS.setdefault((3, 4, init), tc_cap)

    def job(fig: str, kind: str, bench_key: str, estimate: float, shared: bool = False, **where) -> None:
        """Charge one job to ``fig`` (a job shared by figures enters ``jobs`` once)."""
        prov = plan.job_provenance(kind, **where)["key"]
        if prov in single:
            secs, measured = single[prov][0], True
        elif bench_key in bench:
            secs, measured = bench[bench_key]["cpu_time"], True
        else:
            secs, measured = estimate, False
        tally.add(fig, secs, measured)
        if not (shared and (bench_key, secs) in jobs):
            jobs.append((bench_key, secs))

    def dmf_iters(fig: str, depth: int) -> float:
        return RAZIN_DMF_ITERS.get(fig, RAZIN_DMF_ITERS["razin2020_fig1"]).get(depth, 1e6)

    def order_rank(name: str) -> tuple[int, int]:
        meta = section["data"]["datasets"].get(name, {})
        return int(meta.get("order", 3)), int(meta.get("rank", 1))

    for fig, spec in section.get("figures", {}).items():
        if "panels" in spec:  # 2×2 deep matrix factorization
            for panel in spec["panels"]:
                depth = int(panel["depth"])
                n_runs = len(panel["runs"]) * len(spec["datasets"])
                job(fig, "dmf", f"razin2020_dmf_batch/{fig}-depth{depth}",
                    n_runs * dmf_iters(fig, depth) * c["2x2 engine"], figure=fig, depth=depth)
                tally.authors[fig] += n_runs * dmf_iters(fig, depth) * c["2x2 authors"]
            # The spread: instance_panels again with seeds 0..K.
            for depth in plan.spread_depths(fig) if fig in plan.spread_figures() else []:
                panel = next(p for p in spec["instance_panels"] if int(p["depth"]) == depth)
                n_runs = len(panel["runs"]) * len(spec["datasets"]) * (plan.instances + 1)
                job(fig + SPREAD, "dmf_spread", f"razin2020_dmf_spread_batch/{fig}-depth{depth}",
                    n_runs * dmf_iters(fig, depth) * c["2x2 engine"], figure=fig, depth=depth)
                tally.authors[fig + SPREAD] += n_runs * dmf_iters(fig, depth) * c["2x2 authors"]
            continue
        inits, reps = spec.get("init_stds", [1e-2, 1e-3]), int(spec.get("repetitions", 5))
        for ds in spec.get("datasets", []):
            name = ds["name"]
            order, rank = order_rank(name)
            lin = c.get(f"rank linear o{order}", RAZIN_LINEAR_RANK_SECONDS[order])
            model = c.get(f"rank model o{order}", RAZIN_MODEL_RANK_SECONDS[order])
            for n_obs in ds["n_obs"]:
                train = sum(RAZIN_TC_ITERS[(rank, order, s)] for s in inits) * reps
                job(fig, "tc_train", f"razin2020_tc_train/{fig}-{name}-n{n_obs}",
                    train * c[f"tc engine o{order}"] + len(inits) * reps * model, figure=fig, name=name, n_obs=n_obs)
                job(fig, "tc_reference", f"razin2020_tc_linear/{name}-n{n_obs}", lin, shared=True,
                    name=name, n_obs=n_obs)
                # The authors: one run at a time, autograd, and the linear tensor's rank in every run.
                tally.authors[fig] += train * c[f"tc authors o{order}"] + len(inits) * reps * (model + lin)
        # The spreads: each instance_datasets item on its instances 0..K, with its init stds.
        for ds in plan.tc_spread_items(fig) if fig in plan.tc_spread_figures() else []:
            name, spread_inits = ds["name"], ds["init_stds"]
            order, rank = order_rank(name)
            model = c.get(f"rank model o{order}", RAZIN_MODEL_RANK_SECONDS[order])
            train = sum(RAZIN_TC_ITERS[(rank, order, s)] for s in spread_inits) * reps
            for n_obs in ds["n_obs"]:
                for i in range(ds["instances"] + 1):
                    job(fig + SPREAD, "tc_spread",
                        f"razin2020_tc_spread_train/{fig}-{ds['variant']}-{name}-n{n_obs}-i{i}",
                        train * c[f"tc engine o{order}"] + len(spread_inits) * reps * model,
                        figure=fig, name=name, n_obs=n_obs, depth=i, variant=ds["variant"])
                    tally.authors[fig + SPREAD] += train * c[f"tc authors o{order}"] + len(spread_inits) * reps * model
        for key, v in bench.items():
            if key.startswith(("razin2020_render/" + fig, "razin2020_tc_tables/" + fig,
                               "razin2020_dmf_tables/" + fig)):
                tally.add(fig, v["cpu_time"], True)
                tally.authors[fig] += v["cpu_time"]


def estimate(config: dict, c: dict, bench: dict | None = None, finished: dict | None = None,
             rows: list[dict] | None = None, archived: list[dict] = ()) -> tuple[Tally, list, dict]:
    """Both papers' figures: (tally, jobs, Arora counts); see :func:`arora_estimate`."""
    tally, jobs = Tally(), []
    counts = arora_estimate(config, bench or {}, finished or {}, rows or [], c, tally, jobs, archived)
    razin_estimate(config, bench or {}, c, tally, jobs, archived)
    return tally, jobs, counts


def measured_share(tally: Tally, figures=None) -> tuple[float, float, str]:
    """(CPU seconds, measured share, label) of ``figures`` (default all): "measured" from 90 % on."""
    figures = set(tally.measured) | set(tally.estimated) if figures is None else figures
    measured = sum(tally.measured[f] for f in figures)
    total = measured + sum(tally.estimated[f] for f in figures)
    share = measured / total if total else 0.0
    return total, share, "measured" if share >= MEASURED_LABEL_SHARE else "estimated"


def is_sensing_training(job: str) -> bool:
    """A sensing training batch (the plan's and the archive's jobs are named by their batch)."""
    return job.startswith("sensing-")


def summary_entries(tally: Tally, jobs: list[tuple[str, float]], counts: dict[str, int]) -> list[dict]:
    """Per-figure lines, the totals (with their measured share), the instance spread and the wall time."""
    wall, longest_name, longest = two_core_wall(jobs)
    sensing_jobs = [j for j in jobs if is_sensing_training(j[0]) or "min_nuclear_norm/sensing" in j[0]]
    sensing_cpu = sum(secs for _, secs in sensing_jobs)
    sensing_wall = two_core_wall(sensing_jobs)[0] if sensing_jobs else 0.0

    entries: list[dict] = []
    figures = sorted(set(tally.measured) | set(tally.estimated) | set(tally.authors))
    for fig in figures:
        ours, share, _ = measured_share(tally, [fig])
        basis = "measured" if share > 0.999 else "estimate" if share < 1e-3 else f"{100 * share:.0f}% measured"
        entries.append(entry(f"pipeline {fig}: CPU time (ratio: authors' way / pipeline)", ours / 3600, "h",
                             tally.authors[fig] / ours if ours else None, basis=basis,
                             authors_h=tally.authors[fig] / 3600))
    total, share, label = measured_share(tally)
    total_authors = sum(tally.authors.values())
    basis = dict(basis=f"{100 * share:.1f}% measured", measured_fraction=share,
                 measured_h=share * total / 3600, estimated_h=(1 - share) * total / 3600)
    spread = [f for f in figures if f.endswith(SPREAD)]
    spread_cpu, spread_share, spread_label = measured_share(tally, spread)
    entries += [
        entry(f"pipeline total ({label}): CPU time, every job once (ratio: authors' way / pipeline)", total / 3600,
              "h", total_authors / total, authors_h=total_authors / 3600, **basis),
        entry(f"pipeline total ({label}): wall time on this 2-core machine, 2 jobs at a time, longest first "
              "(ratio: over total / 2)", wall / 3600, "h", wall / (total / 2), **basis),
        entry(f"pipeline instance spread ({spread_label}; Arora instance_sweeps runs and their convex solves, "
              "Razin & Cohen spread jobs): CPU time, included in the total (ratio: share of the total)",
              spread_cpu / 3600, "h", spread_cpu / total, basis=f"{100 * spread_share:.1f}% measured",
              measured_fraction=spread_share),
        entry(f"pipeline: longest job ({longest_name})", longest / 3600, "h"),
        entry("pipeline sensing (Arora Figs 4-6, NA1, NA2, sensing dynamics): CPU time of its jobs, and "
              "their wall time alone on 2 cores (ratio: wall / CPU)", sensing_cpu / 3600, "h",
              sensing_wall / sensing_cpu if sensing_cpu else None, wall_h=sensing_wall / 3600),
        entry("authors' way total: CPU time, one run after another", total_authors / 3600, "h", basis="estimate"),
        entry("pipeline: measured / planned Arora runs (iteration counts)", counts["measured runs"], "runs",
              counts["measured runs"] / max(1, counts["planned runs"])),
        entry("pipeline: measured / planned Arora training batches (archive or benchmark files)",
              counts["measured batches"], "jobs",
              counts["measured batches"] / max(1, counts["measured batches"] + counts["estimated batches"])),
    ]
    return entries


def floor_entries(jobs: list[tuple[str, float]], sensing_flops: float, rate: float | None) -> list[dict]:
    """The sensing training at the square-SGEMM roofline, and the whole pipeline with it.

    A sensing run-iteration needs 4·m·n² flops in its two products with A whatever the
    engine does; at the fastest square float32 product measured on this CPU (``rate``,
    flop/s, oneDNN 1024³) they take ``flops / rate`` seconds. That is a lower bound on
    the sensing training no float32 engine on this core beats, so the whole pipeline
    cannot fall below the other jobs' time plus it.
    """
    if not rate or not sensing_flops:
        return []
    training = sum(secs for name, secs in jobs if is_sensing_training(name))
    total = sum(secs for _, secs in jobs)
    floor = sensing_flops / rate
    return [
        entry("pipeline sensing training at the square-SGEMM roofline: its products alone at the oneDNN "
              "1024³ rate, a lower bound (ratio: the sensing training's CPU time / this)", floor / 3600, "h",
              training / floor if floor else None, sensing_training_h=training / 3600, rate_gflops=rate / 1e9),
        entry("pipeline total with the sensing training at that roofline: the least CPU time any float32 "
              "engine on this core needs (ratio: pipeline total / this)", (total - training + floor) / 3600, "h",
              total / (total - training + floor)),
    ]


def benchmark(costs_entries: list[dict] | None = None, quick: bool = False, run_dir: Path = ROOT,
              archive: Path = ROOT / "archive" / "paper" / "manifest.json") -> list[dict]:
    """Every entry of this program (see the module docstring)."""
    if costs_entries is None:
        # Standalone: measure what is needed, quickly.
        import bench_deep_factorization
        import bench_sensing
        import bench_tensor
        import bench_two_by_two

        costs_entries = bench_deep_factorization.benchmark(quick=True) + bench_sensing.benchmark(quick=True)
        costs_entries += bench_two_by_two.benchmark(bench_two_by_two.load_problem(None), 20_000, 500, 1)
        costs_entries += bench_tensor.benchmark(None, 20, quick=True, orders=(3, 4))
    c = costs_from_entries(costs_entries)
    if "dynamics movielens dense d3" not in c:  # not given by an earlier run of this program
        c.update(measure_gd_jobs(quick))
    if "completion authors d1" not in c:
        c["completion authors d1"] = measure_authors_depth1(quick)
    config = load_config()
    bench = read_benchmarks(run_dir)
    finished, rows = read_archive_iterations(Path(archive))
    local, local_rows = read_iterations(run_dir)
    finished.update(local)
    rows += local_rows
    tally, jobs, counts = estimate(config, c, bench, finished, rows, read_archive(Path(archive)))
    entries = summary_entries(tally, jobs, counts)
    entries += floor_entries(jobs, counts["sensing flops"], c.get("sgemm onednn flops"))
    # Model check: measured batches' CPU time per run-iteration vs this run's engine figure.
    plan = build_plan(config)
    for name, batch in plan.batches.items():
        key = f"train_factorization_batch/{name}"
        its = [finished.get(r.run_id) for r in batch.runs]
        if key in bench and all(its) and batch.schedule.optimizer == "grouprmsprop" \
                and batch.dataset.task == "completion":
            real = bench[key]["cpu_time"] / sum(its)
            model = c[f"completion engine d{batch.depth} B24"]
            entries.append(entry(f"check {name}: measured CPU per run-iteration (ratio: measured job / "
                                 f"this run's engine figure)", real * 1e6, "us", real / model, basis="measured"))
    for depth in (1, 2, 3):
        sampled, dense = c[f"dynamics movielens d{depth}"], c[f"dynamics movielens dense d{depth}"]
        entries.append(entry(f"movielens d{depth}: sampled-gradient step incl. log share (ratio: dense step / this)",
                             sampled * 1e3, "ms", dense / sampled))
    for k in sorted(c):
        if k.startswith("dynamics") or k == "completion authors d1":
            entries.append(entry(f"cost used: {k}, per iteration", c[k] * 1e3, "ms"))
    return entries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--run-dir", default=str(ROOT), help="where benchmarks/ and results/ of a real run live")
    parser.add_argument("--archive", default=str(ROOT / "archive" / "paper" / "manifest.json"),
                        help="archive manifest whose entries' CPU times measure the jobs they hold")
    parser.add_argument("--costs", help="results.json of run_all.py to take the per-iteration costs from")
    parser.add_argument("--json")
    args = parser.parse_args()
    costs = json.loads(Path(args.costs).read_text()) if args.costs else None
    entries = benchmark(costs, args.quick, Path(args.run_dir), Path(args.archive))
    print_entries(entries, "whole pipeline")
    if args.json:
        write_json(entries, args.json)


if __name__ == "__main__":
    main()
