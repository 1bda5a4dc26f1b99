"""A coarse estimate of the CPU time of the jobs a run will execute, printed before they start.

The model is deliberately simple: a job's CPU time is a start-up cost plus, for training
jobs, *iterations × cost per run-iteration*: an Arora et al. run's from
:mod:`implicit_reg.arora2019.costs`, the 2x2 and CP engines' from the timings below
(measured on the project's 2-core machine, ``bench/results.md``, one thread), with the
specifications' iteration counts (the same ones ``bench/bench_pipeline.py`` uses). Expect
the truth within a factor of a few: it is an estimate, and the message says so.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Iterable, Mapping

from implicit_reg.arora2019.costs import run_iteration_seconds, run_iterations
from implicit_reg.arora2019.plan import Batch, Plan

__all__ = ["JOB_START_SECONDS", "CONVEX_SECONDS", "batch_seconds", "job_seconds", "format_seconds", "summary"]

#: CPU seconds of a job besides its numerical work (interpreter, imports, files).
JOB_START_SECONDS = 4.0
#: Minimum-nuclear-norm solves at n = 100. Completion: 5-30 s measured (archive). Sensing
#: (slack form, MKL Pardiso): the m = 1000 solve took 32 s to "optimal" (425 SCS
#: iterations); at m = 4000 the factorization took 95 s and an iteration 0.1 s
#: (2026-12-02, beside two trainings): 300 s until the archive times each solve.
CONVEX_SECONDS = {"completion": 30.0, "sensing": 300.0}
#: Razin & Cohen: 2x2 engine per run-iteration; iterations per run by figure and depth.
RAZIN_DMF_PER_RUN = 240e-9
RAZIN_DMF_ITERS = {"razin2020_fig1": {2: 1.65e4, 3: 2.45e6, 4: 2.95e6},
                   "razin2020_perturbed": {2: 2.2e4, 3: 1.5e6}}
#: CP tensor completion: seconds per run-step by tensor order; iterations by (rank, order).
#: Order 4: the workspace step, 10 runs stacked (bench_tensor.py, 2026-12-02: 0.26 ms; the
#: allocating step before it 1.5-2.3x that, in page faults). Order 3: batches shrink as runs
#: converge (per run 0.019 ms at B = 10, 0.12 ms alone): the earlier 0.1 ms over the
#: measured 1.1x. Rank-3 order-4 runs stop at the iteration cap (razin2020.tc.max_iters).
RAZIN_TC_PER_RUN = {3: 0.09e-3, 4: 0.26e-3}
RAZIN_TC_ITERS = {(1, 3): 950, (1, 4): 1.5e4, (3, 3): 8.4e3, (3, 4): 1e6}
#: CP-rank estimates: of a trained model, and of a linear baseline or ground truth, by order.
RAZIN_MODEL_RANK_SECONDS = {3: 0.5, 4: 2.0}
RAZIN_REFERENCE_RANK_SECONDS = {3: 2.0, 4: 40.0}


def batch_seconds(batch: Batch) -> float:
    """Estimated CPU seconds of a training job: every run's iterations × the per-run cost."""
    return JOB_START_SECONDS + sum(run_iterations(batch, r.lr, r.init_scale, r.depth)
                                   * run_iteration_seconds(batch, r.depth) for r in batch.runs)


def job_seconds(rule: str, wildcards: Mapping[str, str], plan: Plan, razin: Any = None) -> float:
    """Estimated CPU seconds of one job.

    Parameters
    ----------
    rule
        The rule's name.
    wildcards
        The job's wildcard values.
    plan
        The Arora et al. plan (training batches, data sets).
    razin
        The :class:`~implicit_reg.razin2020.plan.RazinPlan`, or None without Razin & Cohen jobs.

    Returns
    -------
    float
        Seconds; :data:`JOB_START_SECONDS` for jobs the model has no numerical cost for.
    """
    if rule == "train_factorization_batch" and wildcards.get("batch") in plan.batches:
        return batch_seconds(plan.batches[wildcards["batch"]])
    if rule == "min_nuclear_norm":
        job = plan.convex_jobs.get(wildcards.get("job", ""))  # the rule's wildcard: <data set>-<key>
        if job is not None:
            dataset = job.dataset
            n = max(dataset.shape)
            return JOB_START_SECONDS + CONVEX_SECONDS[dataset.task] * (n / 100) ** 3
    if razin is not None and rule == "razin2020_dmf_batch":
        spec = razin.dmf_spec(wildcards["figure"], wildcards["depth"])
        iters = RAZIN_DMF_ITERS.get(spec["figure"], {}).get(int(spec["depth"]), spec["max_iters"])
        return JOB_START_SECONDS + len(spec["runs"]) * min(iters, spec["max_iters"]) * RAZIN_DMF_PER_RUN
    if razin is not None and rule == "razin2020_tc_train":
        spec = razin.tc_spec(wildcards["figure"], wildcards["name"], wildcards["n_obs"])
        order, rank = int(spec["dataset"].get("order", 3)), int(spec["dataset"].get("rank", 1))
        iters = min(RAZIN_TC_ITERS.get((rank, order), 1.5e4), spec["tc"]["max_iters"])
        per_run = iters * RAZIN_TC_PER_RUN.get(order, 0.32e-3) + RAZIN_MODEL_RANK_SECONDS.get(order, 2.0)
        return JOB_START_SECONDS + len(spec["runs"]) * per_run
    if razin is not None and rule in ("razin2020_tc_linear", "razin2020_tc_ground_truth"):
        order = int(razin.datasets.get(wildcards.get("name"), {}).get("order", 3))
        return JOB_START_SECONDS + RAZIN_REFERENCE_RANK_SECONDS.get(order, 40.0)
    return JOB_START_SECONDS


def format_seconds(seconds: float) -> str:
    """``seconds`` rounded for a reader: 45 s, 12 min, 3.4 h."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def summary(jobs: Iterable[tuple[str, Mapping[str, str]]], plan: Plan, razin: Any = None) -> str:
    """One paragraph: how many jobs will run, by rule, and their estimated CPU time.

    Parameters
    ----------
    jobs
        ``(rule, wildcards)`` of every job about to run.
    plan, razin
        As for :func:`job_seconds`.

    Returns
    -------
    str
        The text printed before the first job starts.
    """
    jobs = list(jobs)
    by_rule = Counter(rule for rule, _ in jobs)
    total = sum(job_seconds(rule, dict(wc), plan, razin) for rule, wc in jobs)
    training = sum(n for rule, n in by_rule.items() if rule in ("train_factorization_batch", "razin2020_dmf_batch",
                                                                "razin2020_tc_train"))
    rules = ", ".join(f"{rule} {n}" for rule, n in sorted(by_rule.items()))
    return (f"This run will execute {len(jobs)} jobs ({training} training jobs; {rules}).\n"
            f"Estimated CPU time: about {format_seconds(total)} (an estimate from the engine costs measured "
            "in bench/results.md and the specs' iteration counts, good to a factor of a few; "
            "divide by the cores for the wall time).")
