"""Makespan of ``--recompute all`` on N cores, simulated from the archive's measured job times.

The DAG is the workflow's own: ``snakemake -n --forceall --config recompute=[all]`` of the
configured preset, parsed job by job (rule, wildcards, inputs, outputs, threads); a job
depends on the jobs whose outputs it reads. Each job's CPU seconds:

* a **training batch**: the planner's own cost model (``implicit_reg.arora2019.job_costs``):
  its runs' iteration counts from the archive's runs tables, their CPU seconds per iteration
  from the measured ``cpu_seconds`` of the archived jobs that trained them, integrated over
  the shrinking batch along the measured per-group-size curve (``batching.group_seconds``),
  so that every archived job's own batching gets exactly its measured time and another
  batching of the same runs its modelled one. A run the archive lacks: the median of its
  kind, else the spec's estimates (counted as estimated). A job on ``t`` threads
  takes its time over the measured speed-up of ``t`` threads for its task (``batching.task_speedup``).
* a **convex solve** or **Razin & Cohen job**: the archive entry of its provenance key or
  job name, else the median of the archived jobs of its rule (estimated);
* data sets, tables, figures, the report: :data:`SMALL_JOB_SECONDS` each.

The jobs run on N cores, one job per core (a threaded job takes its threads), started in
the order they become ready (a Slurm queue fed by Snakemake), longest first among jobs
ready at once. The makespan, the longest job and the critical path (the DAG's longest
path, by job seconds) are reported for the plan as it is (``engine.cores`` unset) and as
planned for N cores (``engine.cores = N``, ``engine.threads`` = :data:`NODE_THREADS`).

Usage::

    .venv/bin/python bench/bench_makespan.py [--json OUT] [--plot bench/makespan.png]
"""

from __future__ import annotations

import argparse
import heapq
import json
import re
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from _common import ROOT, entry, print_entries, validated, write_json

from implicit_reg.results.archive import ResultStore, recompute_figures
from implicit_reg.arora2019 import job_costs
from implicit_reg.arora2019.plan import build_plan, group_run_costs

CORES = (2, 16, 64, 256)
#: threads of a single-run job on a cluster node (profiles/slurm*/cluster.yaml)
NODE_THREADS = 8
SMALL_JOB_SECONDS = 5.0
DEEP_FACTORIZATION = "arora2019.deep_factorization"


@dataclass
class Job:
    """One job of the DAG."""

    jobid: int
    rule: str
    wildcards: dict[str, str]
    inputs: list[str]
    outputs: list[str]
    threads: int = 1
    deps: set[int] = field(default_factory=set)
    seconds: float = 0.0
    measured: bool = True

    @property
    def label(self) -> str:
        return f"{self.rule}/" + ",".join(self.wildcards.values()) if self.wildcards else self.rule


# --------------------------------------------------------------------------- the DAG
def parse_dry_run(text: str) -> list[Job]:
    """The jobs of a ``snakemake -n`` printout, with their dependencies."""
    jobs: list[Job] = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", text):
        head = re.match(r"(?:local)?rule (\w+):", block)
        if not head:
            continue
        fields = dict(re.findall(r"^\s{4}(\w+): (.*)$", block, flags=re.M))
        if "jobid" not in fields:
            continue
        wildcards = dict(kv.split("=", 1) for kv in fields.get("wildcards", "").split(", ") if "=" in kv)
        def split(v: str) -> list[str]:
            return [p for p in v.split(", ") if p]

        jobs.append(Job(int(fields["jobid"]), head.group(1), wildcards, split(fields.get("input", "")),
                        split(fields.get("output", "")), int(fields.get("threads", 1))))
    producer = {out: j.jobid for j in jobs for out in j.outputs}
    for j in jobs:
        j.deps = {producer[i] for i in j.inputs if i in producer and producer[i] != j.jobid}
    return jobs


def dry_run(config_file: Path, engine: dict, cores: int) -> str:
    """``snakemake -n --forceall`` of ``config_file``, ``engine`` keys on top (no job runs).

    The keys go in a second config file, as the Slurm profiles' ``cluster.yaml`` does (nested
    ``--config`` values arrive as strings).
    """
    with tempfile.TemporaryDirectory() as tmp:
        extra = Path(tmp) / "engine.yaml"
        extra.write_text(yaml.safe_dump({"engine": engine}))
        cmd = [sys.executable, "-m", "snakemake", "-n", "--nolock", "--forceall", "--cores", str(cores), "--configfile",
               str(config_file), str(extra), "--config", "recompute=[all]"]
        return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True).stdout


# --------------------------------------------------------------------------- costs
def archive_entries(manifest: Path) -> dict[str, dict]:
    return json.loads(manifest.read_text())["entries"] if manifest.is_file() else {}


class Costs:
    """Seconds of every job from the archive (see the module docstring)."""

    def __init__(self, manifest: Path) -> None:
        self.archive_dir = manifest.parent if manifest.is_file() else None
        self.entries = [e for e in archive_entries(manifest).values() if e.get("cpu_seconds") is not None]
        self.measured = job_costs.read_archived_runs(manifest.parent)
        self.estimated_runs = 0
        self.by_job = {e["job"]: e["cpu_seconds"] for e in self.entries}
        self.by_key = {k: e["cpu_seconds"] for e in self.entries for k in e["keys"].values()}

    def training(self, batches: list) -> dict[str, tuple[float, float, bool]]:
        """Run id -> (iterations, CPU seconds per iteration alone, measured?), as the planner has them.

        Costed per group of runs sharing data set, depth and schedule, in the planner's order,
        so that an estimated run gets the planner's estimate.
        """
        groups: dict[tuple, list] = defaultdict(list)
        keys: dict[str, str] = {}
        for b in batches:
            groups[(b.dataset, b.depth, b.schedule)].extend(b.runs)
            keys.update(b.keys)
        out = {}
        for key, runs in groups.items():
            runs.sort(key=lambda r: r.order)
            its, secs, flags = group_run_costs(key, runs, keys, self.measured)
            out.update({r.run_id: (i, c, f) for r, i, c, f in zip(runs, its, secs, flags)})
        self.estimated_runs = sum(1 for c in out.values() if not c[2])
        return out

    def batch(self, batch, runs: dict[str, tuple[float, float, bool]], threads: int) -> tuple[float, bool]:
        costs = [runs[r.run_id] for r in batch.runs]
        curve = job_costs.group_curve(batch.dataset.task, batch.schedule.optimizer)
        return (job_costs.job_seconds([c[0] for c in costs], [c[1] for c in costs], curve, batch.dataset.task, threads),
                all(c[2] for c in costs))

    def other(self, job: Job, razin_jobs, convex_keys: dict[str, str]) -> tuple[float, bool]:
        if job.rule == "min_nuclear_norm":
            name = job.wildcards.get("job", "")
            if name in self.by_job:
                return self.by_job[name], True
            if convex_keys.get(name) in self.by_key:
                return self.by_key[convex_keys[name]], True
            same = [e["cpu_seconds"] for e in self.entries if e["kind"] == "arora2019.min_nuclear_norm"
                    and e["job"].split("-m")[0] == name.split("-m")[0]]
            return (statistics.median(same) if same else 300.0), False
        if job.rule.startswith("razin2020_") and job.rule in razin_jobs:
            values = set(job.wildcards.values())
            best, score = None, -1
            for rj in razin_jobs[job.rule]:
                segs = set(rj.job.replace("-", "/").split("/"))
                s = sum(1 for v in values if v in segs or f"n{v}" in segs or f"i{v}" in segs
                        or f"depth{v}" in segs)
                if s > score:
                    best, score = rj, s
            if best is not None and score == len(values) and best.key in self.by_key:
                return self.by_key[best.key], True
            same = [self.by_key[rj.key] for rj in razin_jobs[job.rule] if rj.key in self.by_key]
            return (statistics.median(same) if same else SMALL_JOB_SECONDS), False
        return SMALL_JOB_SECONDS, True


def cost_dag(jobs: list[Job], config: dict, costs: Costs) -> None:
    """Fill in every job's seconds (and whether measured) for the plan of ``config``."""
    from implicit_reg.razin2020.plan import RazinPlan

    with tempfile.TemporaryDirectory() as nothing_finished:  # the plan snakemake makes with the archive
        plan = build_plan(config, ResultStore(nothing_finished, costs.archive_dir), recompute=recompute_figures(config),
                          results_dir="results")
    runs = costs.training(list(plan.batches.values()))
    razin = RazinPlan(config["razin2020"], config["seed"], config.get("instances", 0))
    razin_jobs: dict[str, list] = defaultdict(list)
    for rj in razin.planned_jobs():
        razin_jobs[rj.rule].append(rj)
    convex_keys = {name: job.key for name, job in plan.convex_jobs.items()}
    for job in jobs:
        if job.rule == "train_factorization_batch":
            batch = plan.batches[job.wildcards["batch"]]
            assert batch.threads == job.threads, (batch.name, batch.threads, job.threads)
            job.seconds, job.measured = costs.batch(batch, runs, job.threads)
        else:
            job.seconds, job.measured = costs.other(job, razin_jobs, convex_keys)


# --------------------------------------------------------------------------- the schedule
def simulate(jobs: list[Job], cores: int) -> float:
    """Makespan of list scheduling on ``cores``: ready jobs start as cores free, longest first."""
    by_id = {j.jobid: j for j in jobs}
    waiting = {j.jobid: len(j.deps) for j in jobs}
    children: dict[int, list[int]] = defaultdict(list)
    for j in jobs:
        for d in j.deps:
            children[d].append(j.jobid)
    ready = [(-j.seconds, j.jobid) for j in jobs if not j.deps]
    heapq.heapify(ready)
    running: list[tuple[float, int]] = []
    now, free = 0.0, cores
    while ready or running:
        started = True
        while ready and started:
            started = False
            _, jid = ready[0]
            need = min(by_id[jid].threads, cores)
            if need <= free:
                heapq.heappop(ready)
                free -= need
                heapq.heappush(running, (now + by_id[jid].seconds, jid))
                started = True
        now, jid = heapq.heappop(running)
        free += min(by_id[jid].threads, cores)
        for c in children[jid]:
            waiting[c] -= 1
            if not waiting[c]:
                heapq.heappush(ready, (-by_id[c].seconds, c))
    return now


def critical_path(jobs: list[Job]) -> tuple[float, list[Job]]:
    """The DAG's longest path by job seconds, and its jobs in order."""
    by_id = {j.jobid: j for j in jobs}
    best: dict[int, tuple[float, int | None]] = {}

    def length(jid: int) -> float:
        if jid not in best:
            j = by_id[jid]
            prev = max(((length(d), d) for d in j.deps), default=(0.0, None))
            best[jid] = (prev[0] + j.seconds, prev[1])
        return best[jid][0]

    end = max(by_id, key=length)
    path, cur = [], end
    while cur is not None:
        path.append(by_id[cur])
        cur = best[cur][1]
    return best[end][0], path[::-1]


def describe_path(path: list[Job]) -> str:
    heavy = max(path, key=lambda j: j.seconds)
    return f"{heavy.label} ({heavy.seconds / 3600:.2f} h of {sum(j.seconds for j in path) / 3600:.2f} h; " \
           + " -> ".join(j.rule for j in path) + ")"


# --------------------------------------------------------------------------- main
def scenario(config_file: Path, base: dict, overrides: dict, costs: Costs, cores: int = 1) -> list[Job]:
    """The DAG of ``config_file`` with engine ``overrides``, costed."""
    jobs = parse_dry_run(dry_run(config_file, overrides, cores))
    config = validated(json.loads(json.dumps(base)))
    config["engine"].update(overrides)
    config["recompute"] = ["all"]
    cost_dag(jobs, config, costs)
    return jobs


def benchmark(config_file: Path = ROOT / "config" / "config.yaml",
              manifest: Path = ROOT / "archive" / "paper" / "manifest.json", cores=CORES,
              plot: Path | None = None) -> list[dict]:
    base = yaml.safe_load(config_file.read_text())
    costs = Costs(manifest)
    before = scenario(config_file, base, {}, costs)
    total = sum(j.seconds for j in before)
    measured = sum(j.seconds for j in before if j.measured)
    estimated_jobs = sum(1 for j in before if not j.measured)
    out = [entry("pipeline (configured DAG, --recompute all): CPU time of every job (ratio: measured share)",
                 total / 3600, "h", measured / total, jobs=len(before), estimated_jobs=estimated_jobs,
                 estimated_runs=costs.estimated_runs, basis=f"{100 * measured / total:.1f}% measured")]
    curves = {"before": {}, "after": {}}
    for n in cores:
        after = scenario(config_file, base, {"cores": n, "threads": min(NODE_THREADS, n)}, costs, n)
        for name, jobs in (("before", before), ("after", after)):
            span = simulate(jobs, n)
            length, path = critical_path(jobs)
            longest = max(jobs, key=lambda j: j.seconds)
            cpu = sum(j.seconds * j.threads for j in jobs) if name == "after" else total
            curves[name][n] = span
            out.append(entry(f"pipeline makespan on {n} cores (simulated, {name}: "
                             + ("engine.cores unset" if name == "before" else
                                f"engine.cores {n}, threads {min(NODE_THREADS, n)}")
                             + "; ratio: over CPU time / cores)", span / 3600, "h", span / (cpu / n),
                             critical_path=describe_path(path), critical_path_h=length / 3600,
                             longest_job=longest.label, longest_job_h=longest.seconds / 3600,
                             cpu_h=cpu / 3600, jobs=len(jobs), cores=n, plan=name))
    if plot is not None:
        draw(curves, total, plot)
    return out


def draw(curves: dict, total: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    ns = sorted(curves["before"])
    ax.plot(ns, [curves["before"][n] / 3600 for n in ns], "o-", label="plan for 2 cores (engine.cores unset)")
    ax.plot(ns, [curves["after"][n] / 3600 for n in ns], "s-", label="plan for N cores (engine.cores = N)")
    ax.plot(ns, [total / n / 3600 for n in ns], "k--", label=f"ideal: {total / 3600:.1f} CPU-h / N")
    ax.axhline(1.0, color="grey", lw=0.8, ls=":")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(ns, [str(n) for n in ns])
    ax.set_xlabel("cores N")
    ax.set_ylabel("makespan (h, simulated)")
    ax.set_title("--recompute all, from the archive's job times")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configfile", default=str(ROOT / "config" / "config.yaml"))
    parser.add_argument("--archive", default=str(ROOT / "archive" / "paper" / "manifest.json"))
    parser.add_argument("--json")
    parser.add_argument("--plot", default=str(ROOT / "bench" / "makespan.png"))
    args = parser.parse_args()
    entries = benchmark(Path(args.configfile), Path(args.archive), plot=Path(args.plot))
    print_entries(entries, "makespan")
    for e in entries:
        if "critical_path" in e:
            print(f"  {e['cores']:>4} {e['plan']:<6} longest {e['longest_job']} {e['longest_job_h']:.2f} h; "
                  f"critical path {e['critical_path']}")
    if args.json:
        write_json(entries, args.json)


if __name__ == "__main__":
    main()
