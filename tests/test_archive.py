"""The results archive: provenance keys, exact entry round trips, per-run restore, bad archives."""

from __future__ import annotations

import copy
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from implicit_reg.results import archive, archive_admin
from implicit_reg.pipeline import archive_command, planning
from implicit_reg.arora2019.plan import build_plan
from implicit_reg.pipeline.config import load_schema, validate_config
from implicit_reg.core import numerics
from implicit_reg.core.hashing import sha256_file

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = load_schema(ROOT / "workflow" / "schemas" / "config.schema.yaml")


def _config() -> dict:
    return validate_config(yaml.safe_load((ROOT / "config" / "test.yaml").read_text()), SCHEMA)


# ---------------------------------------------------------------------------- keys


def test_key_ignores_key_order_and_float_spelling() -> None:
    a = archive.provenance_key({"lr": 1e-3, "depth": 3, "nested": {"x": [1, 2], "y": None}})
    b = archive.provenance_key({"nested": {"y": None, "x": [1, 2]}, "depth": 3, "lr": 0.001})
    assert a == b and len(a) == 64
    assert archive.provenance_key({"lr": 1e-3}) != archive.provenance_key({"lr": 1.0001e-3})
    assert archive.provenance_key({"v": float("nan")}) == archive.provenance_key({"v": math.nan})


def _keys(cfg: dict) -> dict[str, str]:
    return build_plan(cfg).run_keys


def test_run_keys_follow_numbers_not_layout(monkeypatch: pytest.MonkeyPatch) -> None:
    base = _config()
    keys = _keys(base)
    # settings that change no number keep every key
    same = copy.deepcopy(base)
    same["engine"]["sync_every"] = 7
    same["engine"]["checkpoint_seconds"] = 1
    same["engine"]["max_batch_runs"] = 2
    same["device"] = "cpu"
    assert _keys(same) == keys
    # the optimizer's constants change every GroupRMSprop run, and only those
    rms = copy.deepcopy(base)
    rms["arora2019"]["group_rmsprop"]["eps"] = 2e-4
    changed = {r for r, k in _keys(rms).items() if keys[r] != k}
    plan = build_plan(base)
    grms = {r.run_id for b in plan.batches.values() for r in b.runs if r.schedule.optimizer == "grouprmsprop"}
    assert changed == grms
    # the data seed changes everything; so does an engine's numerics version
    seeded = copy.deepcopy(base)
    seeded["seed"] += 1
    assert not set(_keys(seeded).values()) & set(keys.values())
    monkeypatch.setitem(numerics.NUMERICS_VERSIONS, "deep_factorization", 999)
    assert not set(_keys(base).values()) & set(keys.values())


# ---------------------------------------------------------------------------- entries


def _frame(n: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "run_id": [f"r{i}" for i in range(n)],
        "iteration": np.arange(n, dtype=np.int64),
        "as_float32": rng.standard_normal(n).astype(np.float32).astype(np.float64),
        "needs_float64": rng.standard_normal(n),
        "with_nan": [np.nan, 1.0, np.inf, 2.5, -0.0][:n],
        "status": ["converged", "diverged", "max_iters", "converged", "converged"][:n],
    })


def test_entry_round_trip_is_exact(tmp_path: Path) -> None:
    runs = _frame()
    traj = _frame(3).rename(columns={"status": "phase"})
    traj["sv_1"] = [1.0, 2.0, 3.0]
    (tmp_path / "job").mkdir()
    runs.to_parquet(tmp_path / "job" / "runs.parquet", index=False)
    traj.to_parquet(tmp_path / "job" / "trajectories.parquet", index=False)
    tables = {t: pq.read_table(tmp_path / "job" / f"{t}.parquet") for t in ("runs", "trajectories")}
    entry = tmp_path / f"x{archive.ENTRY_SUFFIX}"
    archive.write_entry(tables, entry, {"job": "x"})
    stored = pq.read_schema(entry)
    assert str(stored.field("as_float32").type) == "float"  # narrowed where exact
    assert str(stored.field("needs_float64").type) == "double"
    assert pq.ParquetFile(entry).metadata.row_group(0).column(0).compression == "ZSTD"
    for name in tables:
        back = archive.read_table(entry, name)
        pd.testing.assert_frame_equal(back, pd.read_parquet(tmp_path / "job" / f"{name}.parquet"))
    assert archive.entry_record(entry) == {"job": "x"}


def _fake_job(results: Path, job: str, keys: dict[str, str], kind: str = "arora2019.deep_factorization") -> None:
    d = results / "runs" / job
    d.mkdir(parents=True)
    runs = pd.DataFrame({"run_id": list(keys), "value": np.arange(len(keys), dtype=float)})
    runs.to_parquet(d / "runs.parquet", index=False)
    traj = pd.DataFrame({"run_id": [r for r in keys for _ in range(3)], "iteration": list(range(3)) * len(keys)})
    traj.to_parquet(d / "trajectories.parquet", index=False)
    archive.write_job_record(d / "provenance.json", archive.JobRecord(
        kind, job, keys, {"runs": "runs.parquet", "trajectories": "trajectories.parquet"}, ["fig"]))


def test_add_find_and_skip_known_jobs(tmp_path: Path) -> None:
    results, arch = tmp_path / "results", tmp_path / "archive"
    _fake_job(results, "b1", {"r1": "k1", "r2": "k2"})
    assert len(archive_admin.add_jobs(results, arch, commit="abc1234", log=lambda _: None)) == 1
    assert archive_admin.add_jobs(results, arch, log=lambda _: None) == []  # nothing new
    manifest = archive.load_manifest(arch)
    (name, entry), = manifest["entries"].items()
    assert entry["keys"] == {"r1": "k1", "r2": "k2"} and entry["commit"] == "abc1234"
    assert entry["sha256"] == sha256_file(arch / name) and entry["size"] == (arch / name).stat().st_size
    assert entry["numerics"] == numerics.NUMERICS_VERSIONS
    # one manifest line per entry keeps git diffs additive
    assert sum(1 for line in (arch / "manifest.json").read_text().splitlines() if '"sha256"' in line) == 1
    shutil.rmtree(results)
    store = archive.ResultStore(results, arch)
    src = store.find("k2")
    assert src is not None and src.origin == "archive" and src.commit == "abc1234"
    runs = archive.read_table(archive.entry_table_path(src, "runs"), "runs")
    assert list(runs["run_id"]) == ["r1", "r2"]
    assert store.find("k3") is None
    assert store.find("k1", use_archive=False) is None
    assert store.is_stale("r1", "k-other") and not store.is_stale("r1", "k1") and not store.is_stale("r9", "k")
    assert store.restored_summary() == f"archive {arch}: 1 entry restored, computed at commit abc1234 (1)"
    assert archive.ResultStore(results, arch).restored_summary() == ""  # nothing restored yet


def test_entries_carry_the_jobs_measured_times(tmp_path: Path) -> None:
    results, arch, bench = tmp_path / "results", tmp_path / "archive", tmp_path / "benchmarks"
    _fake_job(results, "b1", {"r1": "k1"})
    (bench / "train_factorization_batch").mkdir(parents=True)
    (bench / "train_factorization_batch" / "b1.tsv").write_text(
        "s\th:m:s\tmax_rss\tcpu_time\n119.09\t0:01:59\t311.96\t116.5\n")
    archive_admin.add_jobs(results, arch, benchmarks_dir=bench, log=lambda _: None)
    (entry,) = archive.load_manifest(arch)["entries"].values()
    assert entry["wall_seconds"] == 119.09 and entry["cpu_seconds"] == 116.5
    rank_job = archive.JobRecord("razin2020.cp_rank", "tensor_x/linear-n50", {}, {})
    (bench / "razin2020_tc_linear").mkdir()
    (bench / "razin2020_tc_linear" / "tensor_x-n50.tsv").write_text("s\tcpu_time\n3.5\t3.4\n")
    assert archive_admin.job_benchmark(bench, rank_job) == {"wall_seconds": 3.5, "cpu_seconds": 3.4}
    spread_job = archive.JobRecord("razin2020.tensor_completion", "razin2020_fig2/instances/t/n50/i3", {}, {})
    (bench / "razin2020_tc_spread_train").mkdir()
    (bench / "razin2020_tc_spread_train" / "razin2020_fig2-t-n50-i3.tsv").write_text("s\tcpu_time\n9.0\t8.5\n")
    assert archive_admin.job_benchmark(bench, spread_job) == {"wall_seconds": 9.0, "cpu_seconds": 8.5}


def test_a_resumed_job_counts_its_earlier_attempts(tmp_path: Path) -> None:
    """The benchmark file times the last attempt; the record adds what the checkpoint kept."""
    bench = tmp_path / "benchmarks"
    (bench / "train_factorization_batch").mkdir(parents=True)
    (bench / "train_factorization_batch" / "b1.tsv").write_text("s\tcpu_time\n100.0\t98.0\n")
    record = archive.JobRecord("arora2019.deep_factorization", "b1", {"r1": "k1"}, {}, resumed_seconds=3600.0,
                               resumed_cpu_seconds=3000.0)
    assert archive_admin.job_seconds(bench, record) == {"wall_seconds": 3700.0, "cpu_seconds": 3098.0,
                                                       "resumed_seconds": 3600.0, "resumed_cpu_seconds": 3000.0}
    once = archive.JobRecord("arora2019.deep_factorization", "b1", {"r1": "k1"}, {})
    assert archive_admin.job_seconds(bench, once) == {"wall_seconds": 100.0, "cpu_seconds": 98.0}
    assert "resumed_seconds" not in once.to_json()  # records of one-go jobs are as before
    archive.write_job_record(tmp_path / "provenance.json", record)
    assert archive.read_job_record(tmp_path / "provenance.json") == record
    # A record written before CPU time was carried: the wall time stands in for it.
    old = {k: v for k, v in record.to_json().items() if k != "resumed_cpu_seconds"}
    (tmp_path / "provenance.json").write_text(json.dumps(old))
    assert archive.read_job_record(tmp_path / "provenance.json").resumed_cpu_seconds == 3600.0


def test_retime_counts_earlier_attempts_of_old_entries(tmp_path: Path) -> None:
    """An entry archived before records carried resumed_seconds: its runs' wall_seconds tell."""
    results, arch, bench = tmp_path / "results", tmp_path / "archive", tmp_path / "benchmarks"
    _fake_job(results, "b1", {"r1": "k1", "r2": "k2"})
    runs_path = results / "runs" / "b1" / "runs.parquet"
    pd.read_parquet(runs_path).assign(wall_seconds=[300.0, 950.0]).to_parquet(runs_path, index=False)
    record_path = runs_path.with_name("provenance.json")  # the job as if it had written these times
    archive.write_job_record(record_path, archive.read_job_record(record_path))
    (bench / "train_factorization_batch").mkdir(parents=True)
    (bench / "train_factorization_batch" / "b1.tsv").write_text("s\tcpu_time\n400.0\t390.0\n")
    archive_admin.add_jobs(results, arch, benchmarks_dir=bench, log=lambda _: None)
    assert archive_admin.retime_resumed(arch, log=lambda _: None) == list(archive.load_manifest(arch)["entries"])
    (entry,) = archive.load_manifest(arch)["entries"].values()
    assert entry["resumed_seconds"] == 550.0 and entry["wall_seconds"] == 950.0 and entry["cpu_seconds"] == 940.0
    assert archive_admin.retime_resumed(arch, log=lambda _: None) == []  # idempotent
    assert archive_admin.verify(arch) == []


def test_local_jobs_come_first_and_unfinished_jobs_do_not_count(tmp_path: Path) -> None:
    results = tmp_path / "results"
    _fake_job(results, "b1", {"r1": "k1"})
    (results / "runs" / "b2").mkdir(parents=True)  # killed job: tables but no record
    pd.DataFrame({"run_id": ["r2"]}).to_parquet(results / "runs" / "b2" / "runs.parquet")
    store = archive.ResultStore(results, None)
    assert store.find("k1").origin == "local"
    assert store.find("k1").tables["runs"].endswith("b1/runs.parquet")
    assert store.find("k2") is None


def test_corrupt_entry_is_named_and_never_used(tmp_path: Path) -> None:
    results, arch = tmp_path / "results", tmp_path / "archive"
    _fake_job(results, "b1", {"r1": "k1"})
    archive_admin.add_jobs(results, arch, log=lambda _: None)
    shutil.rmtree(results)
    (entry,) = (arch / "entries").rglob(f"*{archive.ENTRY_SUFFIX}")
    data = bytearray(entry.read_bytes())
    data[len(data) // 2] ^= 0xFF
    entry.write_bytes(bytes(data))
    warnings: list[str] = []
    store = archive.ResultStore(results, arch, warn=warnings.append)
    assert store.find("k1") is None
    assert len(warnings) == 1 and str(entry) in warnings[0] and "corrupt" in warnings[0]
    assert archive_admin.verify(arch) == [str(entry.relative_to(arch))]


# ---------------------------------------------------------------------------- planning


class _Store:
    """A store holding some keys locally (the planner only calls find and is_stale)."""

    def __init__(self, keys: dict[str, str]) -> None:
        self.keys = keys

    def find(self, key: str, use_archive: bool = True):
        if key in self.keys:
            return archive.Source("local", self.keys[key], {"runs": f"results/runs/{self.keys[key]}/runs.parquet",
                                                             "trajectories": f"results/runs/{self.keys[key]}/trajectories.parquet"})
        return None

    def is_stale(self, identity: str, key: str) -> bool:
        return False


def test_adding_an_init_scale_trains_exactly_the_new_runs() -> None:
    cfg = _config()
    first = build_plan(cfg)
    store = _Store({k: "old" for k in first.run_keys.values()})
    assert build_plan(cfg, store).batches == {}
    more = copy.deepcopy(cfg)
    sweep = more["arora2019"]["figures"]["arora2019_n1"]["sweeps"][0]
    scales = sweep["init_scale"] if isinstance(sweep["init_scale"], list) else [sweep["init_scale"]]
    sweep["init_scale"] = scales + [3.3e-5]
    plan = build_plan(more, store)
    new = set(plan.run_keys) - set(first.run_keys)
    trained = {r.run_id for b in plan.batches.values() for r in b.runs}
    assert new and trained == new
    assert all(math.isclose(r.init_scale, 3.3e-5) for b in plan.batches.values() for r in b.runs)
    n1 = plan.figures["arora2019_n1"]
    assert {rid for s in n1.sources for rid in s["run_ids"]} == set(n1.run_ids)
    assert plan.counts["local"] == len(first.run_keys) and plan.counts["train"] == len(new)


def test_batch_names_follow_their_runs_and_respect_the_size_cap() -> None:
    cfg = _config()
    cfg["engine"]["max_batch_runs"] = 2
    plan = build_plan(cfg)
    assert all(len(b.runs) <= 2 for b in plan.batches.values())
    trained = [x["run_id"] for b in plan.batches.values() for x in b.spec()["runs"]]
    assert sorted(trained) == sorted(plan.run_keys)  # every run once
    spec = next(iter(plan.batches.values())).spec()
    assert spec["figures"] and all(len(r["provenance_key"]) == 64 for r in spec["runs"])


def test_recompute_ignores_the_archive_for_named_figures(tmp_path: Path) -> None:
    cfg = _config()
    keys = build_plan(cfg).run_keys

    class ArchiveOnly(_Store):
        def find(self, key: str, use_archive: bool = True):
            return super().find(key) if use_archive else None

    plan = build_plan(cfg, ArchiveOnly({k: "old" for k in keys.values()}), recompute=["arora2019_fig1"])
    trained = {r.run_id for b in plan.batches.values() for r in b.runs}
    assert trained == set(plan.figures["arora2019_fig1"].run_ids)


# ---------------------------------------------------------------------------- archive location


def test_missing_explicit_archive_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(archive.ArchiveError, match="archive.path"):
        archive.resolve_archive({"archive": {"path": str(tmp_path / "nowhere")}})
    assert archive.resolve_archive({"use_archive": False}) is None


def test_archive_from_a_file_url_is_checked(tmp_path: Path) -> None:
    results, arch = tmp_path / "results", tmp_path / "paper"
    _fake_job(results, "b1", {"r1": "k1"})
    archive_admin.add_jobs(results, arch, log=lambda _: None)
    tarball = tmp_path / "paper.tar.gz"
    sha = archive_admin.pack_archive(arch, tarball)
    dest = tmp_path / "fetched"
    root = archive.resolve_archive({"archive": {"url": tarball.as_uri(), "sha256": sha}}, resources=dest)
    assert archive.ResultStore(tmp_path / "none", root).find("k1").origin == "archive"
    with pytest.raises(archive.ArchiveError, match="archive.sha256"):
        archive.resolve_archive({"archive": {"url": tarball.as_uri(), "sha256": "0" * 64}}, resources=tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_command_line_add_list_verify(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    results, arch = tmp_path / "results", tmp_path / "paper"
    _fake_job(results, "b1", {"r1": "k1", "r2": "k2"})
    assert archive_command.main(["add", str(arch), "--results", str(results)]) == 0
    assert archive_command.main(["verify", str(arch)]) == 0
    assert archive_command.main(["list", str(arch)]) == 0
    out = capsys.readouterr().out
    assert "1 entries added" in out and "OK" in out and "2 results" in out
    json.loads((arch / "manifest.json").read_text())  # valid JSON


def test_module_command_line_is_the_administration_one(tmp_path: Path) -> None:
    """``python -m implicit_reg.pipeline.archive_command`` (what scripts/archive.sh and the README run) reaches archive_command.main."""
    results, arch = tmp_path / "results", tmp_path / "paper"
    _fake_job(results, "b1", {"r1": "k1"})
    archive_admin.add_jobs(results, arch, log=lambda _: None)
    proc = subprocess.run([sys.executable, "-m", "implicit_reg.pipeline.archive_command", "verify", str(arch)],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and f"{arch}: OK" in proc.stdout, proc.stderr
    (arch / next(iter(archive.load_manifest(arch)["entries"]))).write_bytes(b"damaged")
    proc = subprocess.run([sys.executable, "-m", "implicit_reg.pipeline.archive_command", "verify", str(arch)],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and "1 bad entries" in proc.stdout


def test_only_the_jobs_a_config_needs_are_added(tmp_path: Path) -> None:
    results, arch = tmp_path / "results", tmp_path / "archive"
    _fake_job(results, "mine", {"r1": "k1"})
    _fake_job(results, "other_preset", {"r9": "k9"})
    added = archive_admin.add_jobs(results, arch, only_keys={"k1"}, log=lambda _: None)
    assert len(added) == 1 and "mine" in added[0]


def test_config_keys_cover_both_papers_and_differ_between_presets() -> None:
    paper = planning.config_keys([str(ROOT / "config" / "config.yaml")], root=ROOT)
    test = planning.config_keys([str(ROOT / "config" / "test.yaml")], root=ROOT)
    plan_keys = set(build_plan(_config()).run_keys.values())
    assert plan_keys <= test and len(test) > len(plan_keys)  # Razin & Cohen jobs and solves too
    assert not paper & test


def test_archive_first_when_asked(tmp_path: Path) -> None:
    results, arch = tmp_path / "results", tmp_path / "archive"
    _fake_job(results, "b1", {"r1": "k1"})
    archive_admin.add_jobs(results, arch, log=lambda _: None)
    store = archive.ResultStore(results, arch)
    assert store.find("k1").origin == "local"
    assert store.find("k1", local_first=False).origin == "archive"
    assert store.find("k1", use_archive=False, local_first=False).origin == "local"


def test_the_committed_paper_archive_reads_back() -> None:
    """Every table of a committed entry reads back: the entry format's metadata keys
    (e.g. ``implicit_reg.tables``) are part of the format, not module paths to rename."""
    root = Path(__file__).resolve().parents[1] / "archive" / "paper"
    manifest = archive.load_manifest(root)
    assert manifest["entries"], "archive/paper is committed with the repository"
    path, record = min(manifest["entries"].items(), key=lambda kv: kv[1]["size"])
    tables = archive.read_entry(root / path)
    assert tables and all(t.num_rows >= 0 for t in tables.values())
    assert archive_admin.verify(root) == []
