"""The Slurm profile, end to end, on a real single-node Slurm started by the test.

``test_test_preset_runs_through_slurm`` (marker ``slurm``):

1. The module fixture (helpers in ``tests/slurm_cluster.py``) installs Debian's
   slurm-wlm, slurmctld, slurmd, slurm-client and munge if missing, and
   ``requirements-slurm.txt`` into this interpreter's environment if the
   executor plugin is missing; writes ``/etc/slurm/slurm.conf`` (node =
   ``hostname -s``, CPUs and memory from ``slurmd -C``, a GPU GRES of two fake
   GPUs, ``File=/dev/null`` and ``/dev/zero``), keeping any existing file to
   put back; starts munged, ``slurmctld -D`` and ``slurmd -D``, keeping their
   PIDs; waits for ``sinfo`` to show the node idle and checks that
   ``srun --gpus=1`` gets ``CUDA_VISIBLE_DEVICES``. At teardown it cancels leftover jobs, stops
   slurmd, slurmctld and munged by their PIDs and restores ``/etc/slurm``.
   It runs only when ``IMPLICIT_REG_SLURM_TEST=1`` (``.ci/run`` sets it; a
   developer's plain ``pytest`` never installs packages or touches
   ``/etc/slurm``), and skips (with the reason) when not root on Debian, when
   apt-get is needed but missing, or when a Slurm daemon already listens on its
   ports. A failure to install or start Slurm is an error, not a skip.
2. The test copies the repository to a temporary directory and runs
   ``python -m snakemake --workflow-profile profiles/slurm --configfile
   config/test.yaml --jobs 4 --verbose`` there, with this interpreter and its
   ``bin/`` first on PATH (jobs run ``<python> -m snakemake`` with
   ``--export=ALL``), then checks that every job but the local rules' (the
   figures and the report: :data:`LOCAL_RULES`) went through Slurm (one
   ``<slurm job id>.log`` per submission under ``.snakemake/slurm_logs/``),
   that training jobs were submitted with ``--gpus=1`` and saw the fake GPU
   (``CUDA_VISIBLE_DEVICES`` set by Slurm; torch finds no CUDA and the rule's
   log says it ran on the CPU), and that ``paper/build/report.pdf`` was built.

Cost: ~15 s for apt-get (first time only), ~3 s for pip, ~1 s to start the
daemons, then the test preset's jobs as Slurm jobs (59 of its 77; the rest local).
Each Slurm job starts snakemake twice (sbatch, then srun) before its script runs,
two jobs at a time (one when a job has 2 threads): 578 s measured on the quiet
2-core machine (2026-12-07; 702 s when the figures and the report were Slurm jobs
too, 26 min on a loaded machine before the cluster setting). The wall time is printed.
With the cluster setting of ``profiles/slurm/cluster.yaml`` at test size
(:data:`CLUSTER_SETTING`: two groups of runs split in two jobs each, the three
MovieLens runs and three sensing groups on 2 threads, ``--cpus-per-task=2``),
its figure tables and scorecard equal the local run's
(``tests/preset_reference.py``): the numbers depend neither on the groups nor
on the threads.
``IMPLICIT_REG_SLURM_TIMEOUT`` (seconds, default 2700) bounds the run. The
file is named ``test_zz_*`` so that pytest runs it after every other test
module. Afterwards no daemon runs, ``/etc/slurm`` is as before, the plugin is
uninstalled if the fixture installed it, and the Debian packages stay (they
cost nothing without a ``slurm.conf``; see ``tests/slurm_cluster.py``).

Quick checks need no Slurm and run everywhere: ``profiles/slurm-cpu`` is
``profiles/slurm`` without the GPU request; the profile's per-rule resources
name existing rules and never lower a rule's own mem_mb/runtime; the cluster
setting adds ``job_overhead_mb`` to the training jobs' memory estimates; and
the test's cluster setting does split groups and thread jobs.
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import slurm_cluster as sc
import yaml
from workflow_support import BIN, ROOT, copy_repo

TIMEOUT = int(os.environ.get("IMPLICIT_REG_SLURM_TIMEOUT", "2700"))  # seconds for the whole run
CLUSTER_FILE = "profiles/slurm/cluster.yaml"
CLUSTER_SETTING = {"cores": 8, "threads": 2, "threads_min_entries": 1000, "threads_min_seconds": 0}
GPU_RULE = "train_factorization_batch"
#: Rules that run where Snakemake runs, not as Slurm jobs (``localrules:`` of the workflow).
LOCAL_RULES = ("all", "render_figure", "report_fragments", "report_pdf")
SUBMITTED = re.compile(r"Job (\d+) has been submitted with SLURM jobid (\d+) \(log: (\S+)\)\.")


def _profile(name: str) -> dict:
    return yaml.safe_load((ROOT / "profiles" / name / "config.yaml").read_text())


def test_slurm_profiles_agree() -> None:
    """profiles/slurm-cpu is profiles/slurm without the GPU request; neither uses slurm_extra."""
    gpu, cpu = _profile("slurm"), _profile("slurm-cpu")
    assert gpu["executor"] == "slurm"
    assert gpu["slurm-status-command"] == "squeue"  # sacct hangs without accounting
    assert "resources" not in gpu  # a global gpu cap would serialise GPU submissions
    assert gpu["set-resources"][GPU_RULE]["gpu"] == 1
    for text in ((ROOT / "profiles" / p / "config.yaml").read_text() for p in ("slurm", "slurm-cpu")):
        assert "slurm_extra" not in re.sub(r"#.*", "", text)
    stripped = copy.deepcopy(gpu)
    del stripped["set-resources"][GPU_RULE]["gpu"]
    del stripped["set-resources"][GPU_RULE]["slurm_partition"]
    assert stripped == cpu


def _rule_resources() -> dict[str, dict[str, int]]:
    """Integer resources declared by each rule in workflow/rules/*.smk (``mem_mb=...`` lines)."""
    rules: dict[str, dict[str, int]] = {}
    for smk in sorted((ROOT / "workflow" / "rules").glob("*.smk")):
        for name, body in re.findall(r"^rule (\w+):\n((?:[ \t]+.*\n|[ \t]*\n)*)", smk.read_text(), flags=re.M):
            block = re.search(r"^    resources:\n((?:        .*\n)*)", body, flags=re.M)
            values = re.findall(r"^        (\w+)=(\d+),?\s*$", block.group(1), flags=re.M) if block else []
            rules[name] = {key: int(value) for key, value in values}
    return rules


def test_slurm_profile_names_real_rules_and_never_lowers_their_limits() -> None:
    """set-resources replaces a rule's mem_mb/runtime: a stale, smaller value would kill jobs at the limit."""
    rules = _rule_resources()
    assert GPU_RULE in rules and rules[GPU_RULE].get("runtime"), "could not parse workflow/rules/*.smk"
    for rule, resources in _profile("slurm")["set-resources"].items():
        assert rule in rules, f"profiles/slurm sets resources of {rule!r}, which is not a rule"
        for key in ("mem_mb", "runtime"):
            if key in resources and key in rules[rule]:
                value = eval(str(resources[key]), {"__builtins__": {}}, {"attempt": 1})  # e.g. "4000 * attempt"
                assert value >= rules[rule][key], (rule, key, value, rules[rule][key])


def _cluster_plan() -> tuple[list[str], list[str]]:
    """Groups of runs the test's cluster setting splits, and its threaded jobs (the plan of config/test.yaml)."""
    from implicit_reg.arora2019.plan import build_plan
    from implicit_reg.pipeline.config import load_schema, validate_config

    def plan(engine: dict):
        config = yaml.safe_load((ROOT / "config" / "test.yaml").read_text())
        config["engine"].update(engine)
        return build_plan(validate_config(config, load_schema(ROOT / "workflow" / "schemas" / "config.schema.yaml")))

    groups: dict[tuple, int] = {}
    cluster = plan(CLUSTER_SETTING)
    for batch in cluster.batches.values():
        key = (batch.dataset.name, batch.depth, batch.schedule)
        groups[key] = groups.get(key, 0) + 1
    split = [f"{k[0]}-d{k[1]}" for k, n in groups.items() if n > 1
             and n > sum(1 for b in plan({}).batches.values() if (b.dataset.name, b.depth, b.schedule) == k)]
    return split, sorted(name for name, b in cluster.batches.items() if b.threads > 1)


def test_the_slurm_test_splits_groups_and_threads_jobs() -> None:
    """The cluster setting the Slurm test runs with splits groups and threads jobs (no Slurm needed)."""
    split, threaded = _cluster_plan()
    assert len(split) >= 2 and len(threaded) >= 1, (split, threaded)


def _training_mem_mb(*config: str) -> dict[str, int]:
    """Each training job's declared mem_mb in a dry run of the test preset (``--config`` values)."""
    out = subprocess.run([str(BIN / "snakemake"), "-n", "--nolock", "--forceall", "--configfile", "config/test.yaml",
                          "--config", "use_archive=False", *config], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    jobs = {}
    for block in out.stdout.split("\nrule ")[1:]:
        if block.startswith("train_factorization_batch:"):
            batch = re.search(r"wildcards: batch=(\S+)", block).group(1)
            jobs[batch] = int(re.search(r"mem_mb=(\d+)", block).group(1))
    return jobs


def test_the_cluster_setting_adds_the_job_overhead_to_the_memory_estimates() -> None:
    """profiles/slurm/cluster.yaml's job_overhead_mb (two Snakemake processes per Slurm job) is added to
    the estimate-based mem_mb of the training jobs, which the profile no longer overrides."""
    overhead = yaml.safe_load((ROOT / "profiles" / "slurm" / "cluster.yaml").read_text())["job_overhead_mb"]
    assert overhead >= 300
    plain, cluster = _training_mem_mb(), _training_mem_mb(f"job_overhead_mb={overhead}")
    assert plain and plain.keys() == cluster.keys()
    assert all(cluster[b] == plain[b] + overhead for b in plain), (plain, cluster)


@pytest.fixture(scope="module")
def local_slurm(tmp_path_factory: pytest.TempPathFactory):
    """A running single-node Slurm with one fake GPU (see tests/slurm_cluster.py)."""
    reason = sc.skip_reason()
    if reason:
        pytest.skip(reason)
    t0 = time.monotonic()
    sc.ensure_packages()
    apt_s = time.monotonic() - t0
    t0 = time.monotonic()
    added = sc.ensure_plugin(sys.executable)
    pip_s = time.monotonic() - t0
    # Two fake GPUs, as many as the CI machine has CPUs: training jobs then run
    # two at a time instead of queueing for one GPU.
    cluster = sc.LocalSlurm(tmp_path_factory.mktemp("slurm"), gpus=2)
    try:
        start_s = cluster.start()
        cvd = cluster.smoke()
        if not re.fullmatch(r"\d+", cvd):
            raise sc.SlurmSetupError(f"srun --gpus=1 saw CUDA_VISIBLE_DEVICES={cvd!r}, expected a device index")
        cluster.setup_summary = (f"apt-get {apt_s:.0f} s, pip {pip_s:.0f} s, daemons up in {start_s:.1f} s; "
                                 f"node {cluster.node}: {cluster.cpus} CPUs, {cluster.real_memory} MB, "
                                 f"gpu:{cluster.gpus} (fake)")
        yield cluster
    finally:
        try:
            cluster.stop()
        finally:
            sc.remove_plugin(added, sys.executable)


@pytest.mark.slurm
def test_test_preset_runs_through_slurm(local_slurm: sc.LocalSlurm, tmp_path_factory: pytest.TempPathFactory,
                                        capsys: pytest.CaptureFixture) -> None:
    work = tmp_path_factory.mktemp("slurm-pipeline") / "repo"
    copy_repo(work)
    env = local_slurm.env
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    # No job context, partition, account or GPU from the caller's environment:
    # the partition must come from the profile's default (the cluster default),
    # and CUDA_VISIBLE_DEVICES in a job from Slurm's GPU allocation alone.
    for var in list(env):
        if var.startswith(("SLURM_", "SBATCH_", "SRUN_")) or var == "CUDA_VISIBLE_DEVICES":
            del env[var]
    # The profile's cluster setting at test size: 8 cores split the two longest groups of
    # runs in two, and the MovieLens runs (40 x 30) and the sensing groups count as large
    # and get 2 threads.
    (work / CLUSTER_FILE).write_text(yaml.safe_dump({"engine": CLUSTER_SETTING}))
    cmd = [sys.executable, "-m", "snakemake", "--workflow-profile", "profiles/slurm",
           "--configfile", "config/test.yaml", CLUSTER_FILE, "--jobs", "4", "--verbose"]
    t0 = time.monotonic()
    out = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    wall = time.monotonic() - t0
    log = out.stdout + out.stderr
    (work.parent / "snakemake-slurm.log").write_text(log)  # full --verbose output, for post-mortems

    submissions = SUBMITTED.findall(log)
    with capsys.disabled():
        print(f"\n[slurm] {local_slurm.setup_summary}")
        print(f"[slurm] test preset through profiles/slurm: {len(submissions)} Slurm jobs, "
              f"wall time {wall:.0f} s (rc {out.returncode}); log: {work.parent / 'snakemake-slurm.log'}")
    assert out.returncode == 0, (log[-6000:] + "\n" + local_slurm.log_tail("slurmctld")
                                 + local_slurm.log_tail("slurmd"))

    # Every job but the local rules' went through Slurm: one log per job, named
    # after its Slurm job id; the local rules ran where Snakemake runs.
    planned = dict(re.findall(r"^(\w+)\s+(\d+)$", log.split("Job stats:", 1)[1].split("\n\n", 1)[0], flags=re.M))
    planned.pop("total", None)
    for rule in LOCAL_RULES:
        assert planned.pop(rule, None) is not None and f"localrule {rule}:" in log, rule
    assert submissions, "no job was submitted to Slurm"
    ids = [slurm_id for _, slurm_id, _ in submissions]
    assert len(set(ids)) == len(ids), "a Slurm job id was reported twice"
    by_rule: dict[str, list[Path]] = {}
    for _, slurm_id, path in submissions:
        slurm_log = Path(path)
        assert slurm_log.name == f"{slurm_id}.log", slurm_log
        assert slurm_log.is_file(), f"missing Slurm log {slurm_log}"
        rule = slurm_log.relative_to(work / ".snakemake" / "slurm_logs").parts[0].removeprefix("rule_")
        assert f"rule {rule}:" in slurm_log.read_text(errors="replace"), slurm_log
        by_rule.setdefault(rule, []).append(slurm_log)
    assert set(by_rule) == set(planned), (sorted(by_rule), sorted(planned))
    for rule, count in planned.items():  # more if `retries: 1` resubmitted a failed job
        assert len(by_rule[rule]) >= int(count), (rule, len(by_rule[rule]), count)
    on_disk = {p.name for p in (work / ".snakemake" / "slurm_logs").rglob("*.log")}
    assert on_disk == {f"{i}.log" for i in ids}
    assert all(re.fullmatch(r"\d+\.log", name) for name in on_disk)

    # The GPU request path: --gpus=1 on every training submission and only
    # there; inside the job Slurm exposed the (fake) GPU, torch found no CUDA.
    calls = re.findall(r"^sbatch call: (sbatch .*)$", log, flags=re.M)
    assert len(calls) >= len(submissions)
    for call in calls:
        is_training = f"--comment rule_{GPU_RULE}" in call
        assert ("--gpus=1" in call) == is_training, call
    assert by_rule.get(GPU_RULE), "no training job was submitted"
    train_logs = sorted((work / "logs" / GPU_RULE).glob("*.log"))
    assert len(train_logs) == len(by_rule[GPU_RULE])
    for train_log in train_logs:
        text = train_log.read_text(errors="replace")
        assert re.search(r"no GPU visible \(CUDA_VISIBLE_DEVICES=\d+\): running on CPU", text), train_log

    pdf = work / "paper" / "build" / "report.pdf"
    assert pdf.is_file() and pdf.stat().st_size > 10_000, pdf

    # The cluster plan: groups split in several jobs, threaded jobs asking Slurm for their
    # threads, and the same tables as the local, unsplit, single-thread run (the reference).
    split, threaded = _cluster_plan()
    assert split and threaded
    train_calls = [c for c in calls if f"--comment rule_{GPU_RULE}" in c]
    assert sum("--cpus-per-task=2" in c for c in train_calls) >= len(threaded), train_calls
    threaded_logs = [work / "logs" / GPU_RULE / f"{name}.log" for name in threaded]
    assert all(p.is_file() for p in threaded_logs), threaded_logs
    from preset_reference import compare

    assert compare(work) == []
