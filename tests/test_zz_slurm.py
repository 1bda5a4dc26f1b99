"""The Slurm profile, end to end, on a real single-node Slurm started by the test.

``test_test_preset_runs_through_slurm`` (marker ``slurm``):

1. The module fixture (helpers in ``tests/slurm_cluster.py``) installs Debian's
   slurm-wlm, slurmctld, slurmd, slurm-client and munge if missing, and
   ``requirements-slurm.txt`` into this interpreter's environment if the
   executor plugin is missing; writes ``/etc/slurm/slurm.conf`` (node =
   ``hostname -s``, CPUs and memory from ``slurmd -C``, one fake GPU GRES with
   ``File=/dev/null``), keeping any existing file to put back; starts munged,
   ``slurmctld -D`` and ``slurmd -D``, keeping their PIDs; waits for ``sinfo``
   to show the node idle and checks that ``srun --gpus=1`` gets
   ``CUDA_VISIBLE_DEVICES``. At teardown it cancels leftover jobs, stops
   slurmd, slurmctld and munged by their PIDs and restores ``/etc/slurm``.
   It skips (with the reason) when not root on Debian, when apt-get is
   needed but missing, when a Slurm daemon already listens on its ports, or
   when ``IMPLICIT_REG_SLURM_TEST=0``. A failure to install or start Slurm
   is an error, not a skip.
2. The test copies the repository to a temporary directory and runs
   ``python -m snakemake --workflow-profile profiles/slurm --configfile
   config/test.yaml --jobs 4 --verbose`` there, with this interpreter and its
   ``bin/`` first on PATH (jobs run ``<python> -m snakemake`` with
   ``--export=ALL``), then checks that every job went through Slurm (one
   ``<slurm job id>.log`` per submission under ``.snakemake/slurm_logs/``),
   that training jobs were submitted with ``--gpus=1`` and saw the fake GPU
   (``CUDA_VISIBLE_DEVICES`` set by Slurm; torch finds no CUDA and the rule's
   log says it ran on the CPU), and that ``paper/build/report.pdf`` was built.

Cost on the 2-core CI machine: ~15 s for apt-get (first time), ~1 s to start
the daemons, then the test preset's ~55 jobs as Slurm jobs (each job starts
snakemake twice, and the plugin polls with back-off): several minutes; the
wall time is printed. The file is named ``test_zz_*`` so that pytest runs it
after every other test module. After it, nothing is running and ``/etc/slurm``
is as before; the packages and the plugin stay installed, which costs later
snakemake commands nothing measurable as long as there is no ``slurm.conf``
(see ``profiles/slurm/README.md``).

``test_slurm_profiles_agree`` (no marker, no Slurm needed) checks that
``profiles/slurm-cpu`` is ``profiles/slurm`` without the GPU request.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import slurm_cluster as sc

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
COPY_IGNORE = shutil.ignore_patterns(
    ".venv", ".git", ".snakemake", "results", "logs", "benchmarks", "build", "generated",
    "__pycache__", ".pytest_cache", "*.pdf", "*.png", "resources",
)
TIMEOUT = int(os.environ.get("IMPLICIT_REG_SLURM_TIMEOUT", "2700"))  # seconds for the whole run
GPU_RULE = "train_factorization_batch"
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


@pytest.fixture(scope="module")
def local_slurm(tmp_path_factory: pytest.TempPathFactory):
    """A running single-node Slurm with one fake GPU (see tests/slurm_cluster.py)."""
    reason = sc.skip_reason()
    if reason:
        pytest.skip(reason)
    apt_s = sc.ensure_packages()
    pip_s = sc.ensure_plugin(sys.executable)
    cluster = sc.LocalSlurm(tmp_path_factory.mktemp("slurm"))
    try:
        start_s = cluster.start()
        cvd = cluster.smoke()
        if not re.fullmatch(r"\d+", cvd):
            raise sc.SlurmSetupError(f"srun --gpus=1 saw CUDA_VISIBLE_DEVICES={cvd!r}, expected a device index")
        print(f"[slurm] apt-get {apt_s:.0f} s, pip {pip_s:.0f} s, daemons up in {start_s:.1f} s; "
              f"node {cluster.node}: {cluster.cpus} CPUs, {cluster.real_memory} MB, gpu:1 (fake)")
        yield cluster
    finally:
        cluster.stop()


@pytest.mark.slurm
def test_test_preset_runs_through_slurm(local_slurm: sc.LocalSlurm, tmp_path_factory: pytest.TempPathFactory,
                                        capsys: pytest.CaptureFixture) -> None:
    work = tmp_path_factory.mktemp("slurm-pipeline") / "repo"
    shutil.copytree(ROOT, work, ignore=COPY_IGNORE)
    env = local_slurm.env
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    # No job context, partition, account or GPU from the caller's environment:
    # the partition must come from the profile's default (the cluster default),
    # and CUDA_VISIBLE_DEVICES in a job from Slurm's GPU allocation alone.
    for var in list(env):
        if var.startswith(("SLURM_", "SBATCH_", "SRUN_")) or var == "CUDA_VISIBLE_DEVICES":
            del env[var]
    cmd = [sys.executable, "-m", "snakemake", "--workflow-profile", "profiles/slurm",
           "--configfile", "config/test.yaml", "--jobs", "4", "--verbose"]
    t0 = time.monotonic()
    out = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    wall = time.monotonic() - t0
    log = out.stdout + out.stderr
    (work.parent / "snakemake-slurm.log").write_text(log)  # full --verbose output, for post-mortems

    submissions = SUBMITTED.findall(log)
    with capsys.disabled():
        print(f"\n[slurm] test preset through profiles/slurm: {len(submissions)} Slurm jobs, "
              f"wall time {wall:.0f} s (rc {out.returncode}); log: {work.parent / 'snakemake-slurm.log'}")
    assert out.returncode == 0, (log[-6000:] + "\n" + local_slurm.log_tail("slurmctld")
                                 + local_slurm.log_tail("slurmd"))

    # Every job except the local `all` went through Slurm: one log per job,
    # named after its Slurm job id.
    planned = dict(re.findall(r"^(\w+)\s+(\d+)$", log.split("Job stats:", 1)[1].split("\n\n", 1)[0], flags=re.M))
    planned.pop("all", None)
    planned.pop("total", None)
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
