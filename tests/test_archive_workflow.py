"""The archive round trip through Snakemake, on the test preset.

Archive a run, delete the results, rebuild from the archive: no training or solver job
runs and the tables are identical. A corrupted entry is named and its results are
recomputed. A changed config value recomputes exactly the runs it affects.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from workflow_support import copy_repo, run_snakemake

# Every kind of archivable job: GroupRMSprop runs, convex solves, ground-truth rows
# (arora2019_n2), 2x2 panels (razin2020_fig1), tensor completion and CP ranks (razin2020_fig2).
FIGURES = ["arora2019_n2", "razin2020_fig1", "razin2020_fig2"]
TABLES = [f"results/{f}/{t}.parquet" for f in FIGURES for t in ("runs", "trajectories")]
COMPUTE_RULES = ("train_factorization_batch", "min_nuclear_norm", "razin2020_dmf_batch",
                 "razin2020_tc_train", "razin2020_tc_ground_truth", "razin2020_tc_linear")


def _snakemake(work: Path, *args: str, configfiles: tuple[str, ...] = ("config/test.yaml",)) -> subprocess.CompletedProcess:
    # targets first: --configfile and --config take every argument after them
    proc = run_snakemake(*args, "--cores", "2", "--configfile", *configfiles,
                         "--config", "archive={path: archive/test}", cwd=work, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def _job_counts(proc: subprocess.CompletedProcess) -> dict[str, int]:
    """Jobs per rule from Snakemake's 'Job stats' table (empty when nothing to do)."""
    text = proc.stdout + proc.stderr
    counts: dict[str, int] = {}
    block = text.split("Job stats:", 1)
    if len(block) < 2:
        return counts
    for line in block[1].splitlines()[3:]:
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if not m:
            break
        counts[m.group(1)] = int(m.group(2))
    return counts


def _archive_add(work: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "implicit_reg.pipeline.archive_command", "add", "archive/test"], cwd=work,
                          capture_output=True, text=True, env={"PYTHONPATH": str(work / "src"), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="module")
def archived(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, pd.DataFrame]]:
    work = copy_repo(tmp_path_factory.mktemp("archive") / "repo")
    (work / "archive" / "test").mkdir(parents=True)
    (work / "archive" / "test" / "manifest.json").write_text('{"format": "implicit-reg-archive/1", "entries": {}}')
    _snakemake(work, *TABLES)
    before = {t: pd.read_parquet(work / t) for t in TABLES}
    _archive_add(work)
    return work, before


def _fresh(work: Path) -> None:
    for d in ("results", "logs", "benchmarks", ".snakemake"):
        shutil.rmtree(work / d, ignore_errors=True)


def test_rebuild_from_archive_trains_nothing_and_gives_identical_tables(archived) -> None:
    work, before = archived
    _fresh(work)
    proc = _snakemake(work, *TABLES)
    counts = _job_counts(proc)
    assert counts, proc.stdout[-2000:]
    assert not set(counts) & set(COMPUTE_RULES), counts
    assert re.search(r"restored from the archive", proc.stdout + proc.stderr)
    for t in TABLES:
        pd.testing.assert_frame_equal(pd.read_parquet(work / t), before[t], check_exact=True)


def test_corrupt_entry_is_named_and_recomputed(archived) -> None:
    work, _ = archived
    entries = sorted((work / "archive" / "test" / "entries" / "razin2020.two_by_two").glob("*.parquet"))
    victim = entries[0]
    saved = victim.read_bytes()
    try:
        victim.write_bytes(saved[:-100] + bytes(100))
        _fresh(work)
        proc = _snakemake(work, "-n", *TABLES)
        out = proc.stdout + proc.stderr
        assert str(victim.relative_to(work)) in out and "corrupt" in out
        counts = _job_counts(proc)
        assert counts.get("razin2020_dmf_batch") == 1, counts  # exactly the corrupt job
        assert not {"train_factorization_batch", "min_nuclear_norm", "razin2020_tc_train"} & set(counts), counts
    finally:
        victim.write_bytes(saved)


def test_changed_config_recomputes_exactly_the_runs_it_affects(archived) -> None:
    work, _ = archived
    _fresh(work)
    # One more init scale in N2's sweep: only its new runs are trained (one batch per
    # data set and depth that gains runs), nothing else.
    extra = work / "config" / "one_more_init.yaml"
    cfg = __import__("yaml").safe_load((work / "config" / "test.yaml").read_text())
    sweep = cfg["arora2019"]["figures"]["arora2019_n2"]["sweeps"][0]
    scales = sweep["init_scale"] if isinstance(sweep["init_scale"], list) else [sweep["init_scale"]]
    sweep["init_scale"] = scales + [3.3e-5]
    extra.write_text(__import__("yaml").safe_dump({"arora2019": {"figures": {"arora2019_n2": cfg["arora2019"]["figures"]["arora2019_n2"]}}}))
    summary = r"arora2019: (\d+) runs: (\d+) restored from the archive, (\d+) already in results/, (\d+) to train"
    base = re.search(summary, (lambda p: p.stdout + p.stderr)(_snakemake(work, "-n", *TABLES)))
    proc = _snakemake(work, "-n", *TABLES, configfiles=("config/test.yaml", str(extra.relative_to(work))))
    out = proc.stdout + proc.stderr
    m = re.search(summary, out)
    assert m and base, out[-2000:]
    runs, restored, local, train = (a - b for a, b in zip(map(int, m.groups()), map(int, base.groups())))
    depths = sweep["depth"] if isinstance(sweep["depth"], list) else [sweep["depth"]]
    n_obs = sweep["n_obs"] if isinstance(sweep["n_obs"], list) else [sweep["n_obs"]]
    lrs = sweep["lr"] if isinstance(sweep["lr"], list) else [sweep["lr"]]
    new_runs = len(depths) * len(n_obs) * len(lrs) * int(sweep["seeds"])
    # the archive holds only FIGURES' runs: compare with the unchanged config's plan
    assert train == new_runs and runs == new_runs and restored == 0 and local == 0
    counts = _job_counts(proc)
    assert counts.get("train_factorization_batch") == len(depths) * len(n_obs), counts
    assert "min_nuclear_norm" not in counts and "razin2020_dmf_batch" not in counts


def test_missing_archive_path_fails_naming_the_key(archived) -> None:
    work, _ = archived
    proc = run_snakemake("-n", "--configfile", "config/test.yaml", "--config", "archive={path: archive/nowhere}",
                         cwd=work)  # no target: the default one
    assert proc.returncode != 0
    assert "archive.path" in proc.stdout + proc.stderr
