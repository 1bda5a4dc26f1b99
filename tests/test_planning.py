"""implicit_reg.pipeline.planning: one planner interface for both papers, and the workflow's start."""

from __future__ import annotations

import copy
import importlib.util
import json
import logging
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from implicit_reg.pipeline import planning
from implicit_reg.results.archive import ResultStore
from implicit_reg.arora2019.plan import Plan
from implicit_reg.pipeline.config import merge_config
from implicit_reg.razin2020 import jobs
from implicit_reg.razin2020.plan import RazinPlan

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = ROOT / "workflow" / "schemas"


def _test_preset() -> dict:
    config: dict = {}
    for name in ("config.yaml", "test.yaml"):
        merge_config(config, yaml.safe_load((ROOT / "config" / name).read_text()))
    return config


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> planning.Prepared:
    """The test preset planned against an empty results directory (no archive: everything to compute)."""
    results = tmp_path_factory.mktemp("plan") / "out"
    config = _test_preset() | {"use_archive": False}
    return planning.prepare(config, SCHEMAS, results, warn=print)


def _paths(value) -> list[str]:
    """Every string in a nested structure that looks like a file path."""
    if isinstance(value, dict):
        return [p for v in value.values() for p in _paths(v)]
    if isinstance(value, (list, tuple)):
        return [p for v in value for p in _paths(v)]
    return [value] if isinstance(value, str) and value.endswith((".parquet", ".npz", ".json")) else []


def test_both_planners_implement_the_interface(prepared: planning.Prepared) -> None:
    assert list(prepared.plans) == ["arora2019", "razin2020"]
    assert isinstance(prepared.plans["arora2019"], Plan) and isinstance(prepared.plans["razin2020"], RazinPlan)
    for paper, plan in prepared.plans.items():
        assert isinstance(plan, planning.FigurePlanner)
        assert plan.paper == paper and paper in planning.PAPER_CATEGORIES
        assert plan.figure_names() and all(f.startswith(f"{paper}_") for f in plan.figure_names())


def test_a_figure_selection_names_the_preset_figures_it_leaves_out(prepared, tmp_path) -> None:
    """The report of a ``figures`` selection says which of the preset's figures it does not hold."""
    assert prepared.omitted_figures == {}
    config = _test_preset() | {"use_archive": False, "figures": ["arora2019_fig3", "razin2020_fig1"]}
    subset = planning.prepare(config, SCHEMAS, tmp_path / "out", warn=print)
    assert subset.figure_names() == ["arora2019_fig3", "razin2020_fig1"]
    everything = _test_preset()
    expected = [f for f in list(everything["arora2019"]["figures"]) + list(everything["razin2020"]["figures"])
                if f not in ("arora2019_fig3", "razin2020_fig1")]
    assert subset.omitted_figures == dict.fromkeys(expected, planning.NOT_SELECTED) and len(expected) >= 10


def test_restored_only_leaves_out_the_figures_with_jobs_to_compute(tmp_path, monkeypatch) -> None:
    """Nothing is restored here, so every figure has jobs: the build refuses, naming the key."""
    config = _test_preset() | {"use_archive": False, "restored_only": True}
    with pytest.raises(planning.PlanningError, match="restored_only: no figure"):
        planning.prepare(config, SCHEMAS, tmp_path / "out", warn=print)
    with pytest.raises(planning.PlanningError, match="restored_only and recompute"):
        planning.prepare(_test_preset() | {"restored_only": True, "recompute": ["all"]}, SCHEMAS, tmp_path / "out")
    # With two figures still to compute (as an incomplete archive leaves them), the
    # rest are built and those two are named with their reason.
    computing = ["arora2019_fig3", "razin2020_fig1"]
    real = planning.figures_to_compute
    monkeypatch.setattr(planning, "figures_to_compute",
                        lambda plans: [f for f in real(plans) if f in computing])
    config = _test_preset() | {"use_archive": False, "restored_only": True, "figures": ["arora2019_fig3",
                                                                                          "arora2019_fig1",
                                                                                          "razin2020_fig1"]}
    built = planning.prepare(config, SCHEMAS, tmp_path / "out", warn=print)
    assert built.figure_names() == ["arora2019_fig1"]
    assert built.omitted_figures["arora2019_fig3"] == planning.NOT_RESTORED
    assert built.omitted_figures["razin2020_fig1"] == planning.NOT_RESTORED
    assert built.omitted_figures["arora2019_fig2"] == planning.NOT_SELECTED
    assert any(line.startswith("restored_only: 2 figure(s) left out") for line in built.log_lines)


def test_figures_name_notebook_tables_and_parameters(prepared: planning.Prepared) -> None:
    config = _test_preset()
    names = prepared.figure_names()
    assert names == sorted(config["arora2019"]["figures"]) + sorted(config["razin2020"]["figures"])
    for figure in names:
        planner = prepared.planner(figure)
        notebook = planner.figure_notebook(figure)
        assert (ROOT / "workflow" / "notebooks" / f"{notebook}.py").is_file()
        tables = planner.figure_tables(figure)
        assert {"runs", "trajectories"} <= set(tables)
        assert all(Path(p).parent.name == figure for p in tables.values())
        json.dumps(planner.figure_notebook_params(figure))  # papermill parameters travel as JSON
    assert prepared.planner("razin2020_fig1").figure_notebook_params("razin2020_fig1")["figure"] == "razin2020_fig1"
    assert set(prepared.planner("razin2020_fig1").figure_tables("razin2020_fig1")) == {"runs", "trajectories",
                                                                                       "markers"}
    assert "summary" in prepared.planner("razin2020_fig2").figure_tables("razin2020_fig2")
    assert prepared.figure_paper()["arora2019_n1"] == "arora2019"


def test_every_planned_path_is_under_the_results_dir(prepared: planning.Prepared) -> None:
    """The planners hold no results/ of their own: the workflow's directory is passed in."""
    results = str(prepared.store.results_dir)
    arora, razin = prepared.plans["arora2019"], prepared.plans["razin2020"]
    paths = [p for f in arora.figures.values() for p in _paths([f.sources, f.convex_sources])]
    for figure in razin.figure_names():
        paths += _paths(razin.figure_tables(figure))
        if figure in ("razin2020_fig2", "razin2020_rank3"):
            paths += _paths(razin.tc_table_inputs(figure))
        else:
            paths += razin.dmf_batches(figure, "runs.parquet") + razin.dmf_problems(figure)
    paths += [p for f in arora.figure_names() for p in arora.figure_tables(f).values()]
    assert len(paths) > 30
    assert all(p.startswith(results + "/") for p in paths), [p for p in paths if not p.startswith(results)][:5]


def test_jobs_for_figures_cover_the_missing_jobs(prepared: planning.Prepared) -> None:
    arora, razin = prepared.plans["arora2019"], prepared.plans["razin2020"]
    arora_jobs = {j for f in arora.figure_names() for j in arora.jobs_for_figure(f)}
    assert arora_jobs == set(arora.batches) | set(arora.convex_jobs)
    for name, batch in arora.batches.items():  # a batch is listed for exactly the figures it serves
        served = {f for f in arora.figure_names() if name in arora.jobs_for_figure(f)}
        assert served == set(batch.figures)
    razin_jobs = {j for f in razin.figure_names() for j in razin.jobs_for_figure(f)}
    assert razin_jobs == {j.job for j in razin.planned_jobs()}
    assert "razin2020_fig1/depth2" in razin.jobs_for_figure("razin2020_fig1")
    lines = razin.missing_jobs(limit=1000)
    assert len(lines) == len(razin.planned_jobs())
    assert any(line.startswith("to run: razin2020_tc_train razin2020_fig2/") for line in lines)
    assert razin.summary().startswith(f"razin2020: {len(lines)} jobs: 0 restored from the archive")


def test_prepare_logs_both_summaries(prepared: planning.Prepared) -> None:
    lines = prepared.log_lines
    heads = [line for line in lines if not line.startswith("  ")]
    assert [h.split(":")[0] for h in heads] == ["arora2019", "razin2020"]
    assert any(line.startswith("  to train: ") for line in lines)
    assert any(line.startswith("  to run: razin2020_") for line in lines)


def test_finished_razin_jobs_are_not_to_run(tmp_path: Path) -> None:
    """A job whose record is in the results directory is found there, not planned again."""
    config = _test_preset() | {"use_archive": False}
    before = planning.prepare(copy.deepcopy(config), SCHEMAS, tmp_path / "out")
    razin = before.plans["razin2020"]
    job = next(j for j in razin.planned_jobs() if j.rule == "razin2020_dmf_batch")
    out = tmp_path / "out" / "razin2020" / "dmf" / job.job  # <figure>/depth<d>, as the rule writes it
    out.mkdir(parents=True)
    for table in ("runs", "trajectories"):
        (out / f"{table}.parquet").write_bytes(b"")
    from implicit_reg.results import archive

    figure, depth = job.job.split("/depth")
    prov = razin.job_provenance("dmf", figure=figure, depth=int(depth))
    archive.write_job_record(out / "provenance.json",
                             archive.job_record(prov, {"runs": "runs.parquet", "trajectories": "trajectories.parquet"}))
    after = planning.prepare(copy.deepcopy(config), SCHEMAS, tmp_path / "out").plans["razin2020"]
    assert job.job in razin.jobs_for_figure(job.figures[0])
    assert job.job not in after.jobs_for_figure(job.figures[0])
    assert "1 already in" in after.summary()


def test_a_bad_config_is_one_planning_error_naming_the_key(tmp_path: Path) -> None:
    config = _test_preset()
    config["arora2019"]["matrix_sise"] = 10
    with pytest.raises(planning.PlanningError, match="matrix_sise"):
        planning.prepare(config, SCHEMAS, tmp_path)
    config = _test_preset()
    config["recompute"] = ["arora2019_nope"]
    with pytest.raises(planning.PlanningError, match="arora2019_nope"):
        planning.prepare(config, SCHEMAS, tmp_path)
    config = _test_preset()
    config["razin2020"]["figures"]["razin2020_fig1"]["datasets"] = ["no_such_problem"]
    with pytest.raises(planning.PlanningError, match="no_such_problem"):
        planning.prepare(config, SCHEMAS, tmp_path)


def test_prepare_selects_figures(tmp_path: Path) -> None:
    config = _test_preset() | {"figures": ["arora2019_fig6", "razin2020_fig2"], "use_archive": False}
    prepared = planning.prepare(config, SCHEMAS, tmp_path)
    assert prepared.figure_names() == ["arora2019_fig6", "razin2020_fig2"]


def test_estimate_reads_both_plans(prepared: planning.Prepared) -> None:
    batch = sorted(prepared.plans["arora2019"].batches)[0]
    jobs_ = [("train_factorization_batch", {"batch": batch}),
             ("razin2020_dmf_batch", {"figure": "razin2020_fig1", "depth": "2"}),
             ("render_figure", {"figure": "razin2020_fig1"})]
    text = prepared.estimate(jobs_)
    assert "execute 3 jobs (2 training jobs;" in text and "render_figure 1" in text


# ---------------------------------------------------------------- razin2020.jobs


def test_job_fingerprint_follows_spec_and_data_not_paths(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (a / "x.npz").write_bytes(b"one")
    (b / "x.npz").write_bytes(b"one")
    spec = {"runs": [{"seed": 1}]}
    assert jobs.job_fingerprint(spec, [a / "x.npz"]) == jobs.job_fingerprint(spec, [b / "x.npz"])
    assert jobs.job_fingerprint(spec, [a / "x.npz"]) != jobs.job_fingerprint({"runs": [{"seed": 2}]}, [a / "x.npz"])
    (b / "x.npz").write_bytes(b"two")
    assert jobs.job_fingerprint(spec, [a / "x.npz"]) != jobs.job_fingerprint(spec, [b / "x.npz"])


def test_instance_data_draws_its_own_observation_order() -> None:
    from implicit_reg.razin2020 import tensor_data as td

    data = td.generate_tensor_data(3, 1, 5, 4)
    assert jobs.instance_data(data, {"permutation_seed": None}) is data
    other = jobs.instance_data(data, {"permutation_seed": 11})
    again = jobs.instance_data(data, {"permutation_seed": 11})
    np.testing.assert_array_equal(other.target, data.target)
    np.testing.assert_array_equal(other.permutation, again.permutation)
    assert not np.array_equal(other.permutation, data.permutation)
    assert sorted(other.permutation.tolist()) == list(range(data.target.size))


def test_model_cp_ranks_estimate_each_distinct_tensor_once() -> None:
    rng = np.random.default_rng(0)
    u = [rng.standard_normal(3) for _ in range(3)]
    rank_one = np.einsum("i,j,k->ijk", *u).astype(np.float32)
    runs = [{"rank_seed": 1}, {"rank_seed": 2}, {"rank_seed": 3}]
    ranks, seconds, rep_of = jobs.model_cp_ranks([rank_one, rank_one.copy(), 2 * rank_one], runs,
                                                  {"tol": 1e-6, "max_sweeps": 200})
    assert rep_of == [0, 0, 2] and set(ranks) == set(seconds) == {0, 2}
    assert ranks[0] == ranks[2] == 1


def test_tc_run_records_share_the_representatives_rank() -> None:
    class Result:
        status, final_iteration, final_train_loss, reconstruction_error = "converged", 10, 1e-9, 1e-3

    spec = {"tc": {"lr": 0.01}, "runs": [
        {"run_id": f"r{i}", "init_std": 1e-3, "rep": i, "seed": 10 + i, "rank_seed": 20 + i} for i in range(2)]}
    rows = jobs.tc_run_records(spec, [Result(), Result()], 7, {0: 1}, {0: 0.5}, [0, 0], 3.0)
    assert [r["rank_seed"] for r in rows] == [20, 20] and [r["cp_rank"] for r in rows] == [1, 1]
    assert [r["rank_seconds"] for r in rows] == [0.5, 0.0]
    assert rows[1]["num_components"] == 7 and rows[1]["lr"] == 0.01 and rows[1]["wall_seconds"] == 3.0


# ---------------------------------------------------------------- adapters and notebooks


def test_figure_notebook_import_applies_the_style() -> None:
    import matplotlib as mpl
    import pandas as pd

    from implicit_reg.figures import notebook_prelude as figure_notebook, plotting

    mpl.rcParams.update(mpl.rcParamsDefault)
    pd.reset_option("display.max_columns")
    figure_notebook.apply_notebook_style()
    for key, value in plotting.STYLE_RC.items():
        assert mpl.rcParams[key] == mpl.rcParams.validate[key](value), key
    assert pd.get_option("display.max_columns") == figure_notebook.PANDAS_DISPLAY["display.max_columns"]
    mpl.rcParams.update(mpl.rcParamsDefault)


def test_notebook_preamble_is_one_import() -> None:
    for path in sorted((ROOT / "workflow" / "notebooks").glob("*.py")):
        text = path.read_text()
        assert text.count("from implicit_reg.figures.notebook_prelude import ") == 1, path.name
        assert "sys.path" not in text and "apply_style()" not in text, path.name


def test_a_training_log_starts_with_the_figures_it_serves(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("_bootstrap", ROOT / "workflow" / "scripts" / "_bootstrap.py")
    bootstrap = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bootstrap)

    class Job:
        log = [str(tmp_path / "logs" / "job.log")]
        threads = 1
        rule = "train_factorization_batch"

    stderr = sys.stderr
    try:
        log = bootstrap.start(Job(), serves=["arora2019_fig1", "arora2019_n1"])
        log.info("training")
    finally:
        sys.stderr.close()
        sys.stderr = stderr
        logging.basicConfig(force=True, handlers=[logging.StreamHandler(stderr)])
    lines = (tmp_path / "logs" / "job.log").read_text().splitlines()
    assert lines[0].endswith("serves: arora2019_fig1, arora2019_n1") and "training" in lines[1]


def test_result_store_is_the_workflows(tmp_path: Path) -> None:
    prepared = planning.prepare(_test_preset() | {"use_archive": False}, SCHEMAS, tmp_path / "r")
    assert isinstance(prepared.store, ResultStore) and prepared.store.results_dir == tmp_path / "r"
