"""Tests of the Razin & Cohen table helpers and job plan (implicit_reg.razin2020.tables)."""

from __future__ import annotations

import copy
import io
import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from implicit_reg.core.hashing import sha256_file
from implicit_reg.pipeline.config import load_schema, validate_config
from implicit_reg.core import metrics_numpy as mnp
from implicit_reg.razin2020 import data_exports as dx
from implicit_reg.razin2020 import loss_markers as lm
from implicit_reg.razin2020 import plan as rp
from implicit_reg.razin2020 import tables as rt
from implicit_reg.razin2020 import two_by_two as tt
from implicit_reg.razin2020 import two_by_two_problem as tp

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("RAZIN2020_DATA", ROOT.parent / "shared" / "razin2020_data"))
SCHEMA = ROOT / "workflow" / "schemas" / "razin2020.schema.yaml"


def section(name: str = "config.yaml") -> dict:
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["razin2020"]
    if name != "config.yaml":
        over = yaml.safe_load((ROOT / "config" / name).read_text())["razin2020"]
        cfg = _merge(cfg, over)
    return validate_config(copy.deepcopy(cfg), load_schema(SCHEMA), "razin2020")


def _merge(base: dict, over: dict) -> dict:  # Snakemake's update_config: recursive for mappings
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


# ---------------------------------------------------------------- data sets


def test_generated_matrix_export_matches_authors_format():
    text = dx.generated_matrix_export_text(-2.0, 0.5, 0.01)
    raw = json.loads(text)
    assert raw["y"][2] == pytest.approx(0.009999999776482582, abs=0)  # float32-rounded like the authors'
    a = np.asarray(raw["A"])
    assert [tuple(np.argwhere(m)[0]) for m in a] == [(0, 1), (1, 0), (1, 1)]


@pytest.mark.parametrize("name,values", [
    ("completion_2x2_w_1_1_0", (1.0, 1.0, 0.0)),
    ("completion_2x2_perturbed_w_-2_05_005", (-2.0, 0.5, 0.05)),
])
def test_generated_matrix_export_is_byte_identical_to_shared(name, values):
    path = DATA / "dmf" / f"{name}.json"
    if not path.exists():
        pytest.skip("authors' data not available")
    assert dx.generated_matrix_export_text(*values).encode() == path.read_bytes()


def test_tensor_export_roundtrip():
    target = np.arange(8, dtype=np.float32).reshape(2, 2, 2)
    perm = np.random.default_rng(0).permutation(8)
    z = np.load(io.BytesIO(dx.tensor_export_bytes(target, perm, 2)))
    np.testing.assert_array_equal(z["target_tensor"], target)
    np.testing.assert_array_equal(z["train_indices_order"], perm)
    assert int(z["target_cp_rank"]) == 2 and z["train_indices_order"].dtype == np.int64


def test_export_from_pt_object_dispatches_and_rejects_unknown():
    suffix, data = dx.export_from_pt_object({"A": np.eye(2)[None], "y": [1.0], "target_matrix": np.eye(2)})
    assert suffix == ".json" and json.loads(data)["y"] == [1.0]
    suffix, _ = dx.export_from_pt_object({"target_tensor": np.zeros((2, 2)), "train_indices_order": [0, 1, 2, 3],
                                          "target_cp_rank": 1})
    assert suffix == ".npz"
    with pytest.raises(ValueError, match="unknown data set layout"):
        dx.export_from_pt_object({"x": 1})


def test_pt_conversion_reproduces_shared_exports():
    torch = pytest.importorskip("torch")
    pts = sorted(DATA.glob("*/*.pt"))
    if not pts:
        pytest.skip("authors' data not available")
    cfg = section()
    for pt in pts:
        suffix, data = dx.export_from_pt_object(torch.load(pt, weights_only=True))
        export = pt.with_suffix(suffix)
        assert data == export.read_bytes(), pt.name
        entry = cfg["data"]["datasets"][pt.stem]
        assert sha256_file(pt) == entry["pt_sha256"]
        assert sha256_file(export) == entry["sha256"]


def test_configured_pt_hashes_match_spec_prefixes():
    prefixes = {"tensor_rank_1_fro_1_order_3_dim_8": "d0ff8d47", "tensor_rank_1_fro_1_order_4_dim_8": "230d75b5",
                "tensor_rank_3_fro_1_order_3_dim_8": "ed3d0e4f", "tensor_rank_3_fro_1_order_4_dim_8": "9d8723a0",
                "completion_2x2_w_1_1_0": "64589a7c"}
    datasets = section()["data"]["datasets"]
    for name, prefix in prefixes.items():
        assert datasets[name]["pt_sha256"].startswith(prefix), name


def test_unique_by_content():
    a, b = np.zeros(3), np.ones(3)
    first, rep = dx.unique_by_content([a, b, a.copy(), b.astype(np.float32)])
    assert first == [0, 1, 3] and rep == [0, 1, 0, 3]


# ---------------------------------------------------------------- 2×2 helpers


def test_run_label_and_format():
    assert rt.dmf_run_label(3e-3, 1e-6, "balanced") == "lr 3e-3, init 1e-6 (b)"
    assert rt.dmf_run_label(1.5e-3, 1e-4, "gaussian") == "lr 1.5e-3, init 1e-4"
    assert rt.format_e(6e-3) == "6e-3"


def test_det_lower_bound():
    loss = np.array([1.0, 0.5, 0.125, 1e-4, 0.0])
    b = rt.det_lower_bound(loss)
    assert b[0] == 0 and b[1] == 0  # void for loss >= 1/2
    assert b[2] == pytest.approx((1 - 0.5) ** 2 / 0.5)
    assert b[3] == pytest.approx((1 - math.sqrt(2e-4)) ** 2 / math.sqrt(2e-4))
    assert b[3] * math.sqrt(1e-4) == pytest.approx(rt.THEORY_C, rel=0.03)
    assert np.isinf(b[4])


def test_fit_inverse_sqrt():
    loss = np.logspace(0, -4, 50)
    assert rt.fit_inverse_sqrt(loss, 0.7 / np.sqrt(loss)) == pytest.approx(0.7)
    assert math.isnan(rt.fit_inverse_sqrt(np.array([1.0]), np.array([1.0])))


def test_marker_rows_follow_authors_rule():
    loss = np.array([1.0, 0.2, 0.1, 0.005, 1e-3, 1e-4])
    # 0.005 crosses both 1.3e-2 and (not) 1.3e-3; 1e-3 crosses 1.3e-3; 1e-4 crosses 1.3e-4.
    assert rt.marker_rows(loss) == [2, 3, 4, 5]
    # one step crossing two thresholds: the later marker moves one row on
    assert rt.marker_rows(np.array([1.0, 0.001, 0.0009, 0.5])) == [1, 2, -1, -1]
    assert rt.marker_rows(np.array([1.0, 0.5])) == [-1, -1, -1, -1]
    # without a double crossing, each marker is the first crossing of its threshold
    smooth = np.array([1.0, 0.1, 0.01, 0.001, 1e-4])
    assert rt.marker_rows(smooth) == [lm.first_below(smooth, t) for t in lm.MARKER_LOSSES] == [1, 2, 3, 4]
    assert rt.MARKER_LOSSES is lm.MARKER_LOSSES and rt.first_below is lm.first_below


def _small_batch():
    problem = tp.make_completion_problem({(0, 1): 1.0, (1, 0): 1.0, (1, 1): 0.0})
    specs = [
        {"run_id": "f/d/depth2/run0/rep0", "dataset": "d", "depth": 2, "run_index": 0, "rep": 0, "lr": 0.05,
         "init_product_std": 1e-3, "init": "gaussian", "det_sign": 1, "seed": 3},
        {"run_id": "f/d/depth2/run1/rep0", "dataset": "d", "depth": 2, "run_index": 1, "rep": 0, "lr": 0.05,
         "init_product_std": 1e-3, "init": "balanced", "det_sign": 1, "seed": 4},
    ]
    configs = [tp.DMFRunConfig(s["depth"], s["lr"], s["init_product_std"], s["init"], s["det_sign"], s["seed"])
               for s in specs]
    batch = tt.init_batch(problem, configs, log_every=10, tol=1e-4, max_iters=20000)
    tt.run_batch(batch, backend="numba" if tt.HAVE_NUMBA else "python")
    res = tt.run_results(batch)
    settings = {"dtype": "float32", "log_every": 10, "tol": 1e-4, "max_iters": 20000}
    return rt.dmf_tables("f", specs, {"d": [1.0, 1.0, 0.0]}, [r.history for r in res], [r.status for r in res],
                         [r.final_iteration for r in res], [r.final_product for r in res], settings, 1.5)


def test_dmf_tables_and_markers():
    runs, traj = _small_batch()
    assert list(runs.columns) == rt.DMF_RUN_COLUMNS
    assert runs["status"].tolist() == ["converged", "converged"]
    assert runs["label"].tolist() == ["lr 5e-2, init 1e-3", "lr 5e-2, init 1e-3 (b)"]
    assert (runs["train_loss_at_cut"] < 1e-4).all() and (runs["wall_seconds"] == 1.5).all()
    for r in runs.itertuples():
        t = traj.loc[traj["run_id"] == r.run_id]
        assert t["iteration"].iloc[-1] == r.iterations
        assert r.abs_unobserved_at_cut == pytest.approx(t["abs_unobserved"].iloc[rt.first_below(t["train_loss"], 1e-4)])
    runs, traj = rt.sort_dmf(runs.iloc[::-1], traj)
    assert runs["run_index"].tolist() == [0, 1]
    markers = rt.dmf_markers_table(runs, traj)
    assert list(markers.columns) == rt.DMF_MARKER_COLUMNS
    assert len(markers) == 8 and markers["marker"].tolist() == [1, 2, 3, 4] * 2
    ok = markers.loc[markers["row"] >= 0]
    assert (ok["train_loss"] < ok["marker_loss"]).all()
    assert markers.loc[markers["row"] < 0, "abs_unobserved"].isna().all()


def test_marker_trajectories_keep_every_marker():
    """The instance spread stores only the rows its markers read: the markers do not change."""
    runs, traj = rt.sort_dmf(*_small_batch())
    thin = rt.marker_trajectories(traj)
    assert list(thin.columns) == list(traj.columns) and len(thin) < len(traj) / 4
    full, kept = rt.dmf_markers_table(runs, traj), rt.dmf_markers_table(runs, thin)
    # "row" indexes the stored rows; everything else is the same, reached or not.
    pd.testing.assert_frame_equal(full.drop(columns="row"), kept.drop(columns="row"))
    assert ((full["row"] >= 0) == (kept["row"] >= 0)).all()
    for run_id, t in traj.groupby("run_id"):
        k = thin.loc[thin["run_id"] == run_id]
        assert k["iteration"].iloc[0] == t["iteration"].iloc[0] and k["iteration"].iloc[-1] == t["iteration"].iloc[-1]
        assert k["iteration"].is_monotonic_increasing


# ---------------------------------------------------------------- tensor helpers


def _tc_runs() -> pd.DataFrame:
    ds = {"name": "t", "order": 3, "mode_size": 8, "rank": 1}
    tf = rt.tc_rows("fig", ds, 100, "tf", [
        {"run_id": f"r{i}", "init_std": s, "rep": i % 5, "seed": i, "rank_seed": i, "status": st,
         "iterations": 100, "recon_error": e, "cp_rank": k}
        for i, (s, e, k, st) in enumerate([(1e-2, 1.0, 1, "converged"), (1e-2, 3.0, 3, "converged"),
                                            (1e-2, 2.0, 2, "max_iters"), (1e-3, 0.1, 1, "converged"),
                                            (1e-3, np.nan, 9, "diverged")])])
    lin = rt.tc_rows("", ds, 100, "linear", [{"run_id": "lin", "recon_error": 0.9, "cp_rank": 12}])
    gt = rt.tc_rows("", ds, -1, "ground_truth", [{"run_id": "gt", "recon_error": 0.0, "cp_rank": 1}])
    return pd.concat([tf, lin, gt], ignore_index=True)


def test_tc_rows_and_series():
    runs = _tc_runs()
    assert list(runs.columns) == rt.TC_RUN_COLUMNS
    assert sorted(runs["series"].unique()) == ["ground truth", "linear", "tf, init 1e-2", "tf, init 1e-3"]
    lin = runs.loc[runs["method"] == "linear"].iloc[0]
    assert lin["seed"] == -1 and math.isnan(lin["init_std"]) and lin["status"] == "exact"
    assert runs["cp_rank"].dtype == np.int64


def test_tc_summary_median_and_percentiles():
    s = rt.tc_summary(_tc_runs())
    assert list(s.columns) == rt.TC_SUMMARY_COLUMNS
    assert "ground truth" not in set(s["series"])
    a = s.loc[s["series"] == "tf, init 1e-2"].iloc[0]
    assert a["recon_error_median"] == 2.0 and a["recon_error_p25"] == 1.5 and a["recon_error_p75"] == 2.5
    assert a["n_runs"] == 3 and a["n_failed"] == 1
    b = s.loc[s["series"] == "tf, init 1e-3"].iloc[0]  # the diverged run is counted, not used
    assert b["recon_error_median"] == pytest.approx(0.1) and b["cp_rank_median"] == 1 and b["n_failed"] == 1
    assert s.loc[s["series"] == "linear", "cp_rank_median"].iloc[0] == 12


def test_sort_tc_puts_ground_truth_and_linear_first():
    runs = rt.sort_tc(_tc_runs().iloc[::-1])
    assert runs["method"].tolist()[:2] == ["ground_truth", "linear"]


# ---------------------------------------------------------------- plan


def test_schema_fills_defaults_and_rejects_unknown_keys():
    from implicit_reg.pipeline.config import ConfigValidationError

    cfg = validate_config({}, load_schema(SCHEMA), "razin2020")
    assert cfg["dmf"]["max_iters"] == 5_000_000 and cfg["tc"]["lr"] == 0.01 and cfg["figures"] == {}
    assert cfg["data"]["source"] == "download" and cfg["data"]["data_dir"] is None
    with pytest.raises(ConfigValidationError, match="razin2020.dmf: unknown key"):
        validate_config({"dmf": {"max_iter": 3}}, load_schema(SCHEMA), "razin2020")


@pytest.mark.parametrize("preset", ["config.yaml", "quick.yaml", "test.yaml"])
def test_presets_validate_and_plan(preset):
    plan = rp.RazinPlan(section(preset), 7)
    assert plan.problems() == []
    assert plan.figure_names() == sorted(rp.DMF_FIGURES + rp.TC_FIGURES)
    for fig in rp.DMF_FIGURES:
        for p in plan.figures[fig]["panels"]:
            spec = plan.dmf_spec(fig, p["depth"])
            assert len({r["seed"] for r in spec["runs"]}) == len(spec["runs"])
    for fig in rp.TC_FIGURES:
        inputs = plan.tc_table_inputs(fig)
        assert len(inputs["train_runs"]) == len(inputs["linear"])


def test_paper_plan_matches_spec():
    plan = rp.RazinPlan(section(), 20191208)
    fig1 = [plan.dmf_spec("razin2020_fig1", d) for d in (2, 3, 4)]
    assert [len(s["runs"]) for s in fig1] == [4, 4, 4]
    labels = [rt.dmf_run_label(r["lr"], r["init_product_std"], r["init"]) for r in fig1[2]["runs"]]
    assert labels == ["lr 3e-3, init 1e-3", "lr 3e-3, init 1e-3 (b)", "lr 1.5e-3, init 1e-4",
                      "lr 1.5e-3, init 1e-4 (b)"]
    assert fig1[0]["max_iters"] == 5_000_000 and fig1[0]["log_every"] == 50 and fig1[0]["tol"] == 1e-4
    tc = plan.tc_spec("razin2020_fig2", "tensor_rank_1_fro_1_order_4_dim_8", 4095)
    assert len(tc["runs"]) == 10 and tc["dataset"]["order"] == 4
    assert len(plan.tc_table_inputs("razin2020_fig2")["train_runs"]) == 19
    assert plan.figure_regex("dmf") == "razin2020_fig1|razin2020_perturbed"
    # seeds depend on what is drawn, not on the figure's other settings
    again = rp.RazinPlan(section(), 20191208).dmf_spec("razin2020_fig1", 3)
    assert [r["seed"] for r in again["runs"]] == [r["seed"] for r in fig1[1]["runs"]]
    assert plan.reference_spec("tensor_rank_1_fro_1_order_3_dim_8")["n_obs"] == -1


def test_plan_reports_bad_dataset_references():
    cfg = section()
    cfg["figures"]["razin2020_fig1"]["datasets"] = ["tensor_rank_1_fro_1_order_3_dim_8", "nope"]
    problems = rp.RazinPlan(cfg, 0).problems()
    assert any("is a tensor" in p for p in problems) and any("'nope'" in p for p in problems)


def test_plan_data_sources():
    cfg = section()
    plan = rp.RazinPlan(cfg, 0)
    assert plan.dataset_input("completion_2x2_w_1_1_0") == {
        "source": "resources/razin2020/dmf/completion_2x2_w_1_1_0.json"}  # the default: download
    cfg["data"].update(source="shared", data_dir="team/razin2020_data")
    assert rp.RazinPlan(cfg, 0).dataset_input("completion_2x2_w_1_1_0") == {
        "source": "team/razin2020_data/dmf/completion_2x2_w_1_1_0.json"}
    assert plan.download_url("tc", "x").endswith("/c20e02c/data/tc/x.pt")
    cfg["data"]["source"] = "generated"
    assert rp.RazinPlan(cfg, 0).dataset_input("completion_2x2_w_1_1_0") == {}


# ---------------------------------------------------------------- column convention


def test_upgrade_columns_renames_an_old_style_table():
    runs, traj = _small_batch()
    markers = rt.dmf_markers_table(runs, traj)
    tc = _tc_runs()
    # The tables as written before the column convention (archived jobs keep them so).
    old = {name: t.rename(columns={new: old for old, new in rt.LEGACY_COLUMNS.items()})
           for name, t in {"runs": runs, "traj": traj, "markers": markers, "tc": tc}.items()}
    assert {"final_loss", "loss_at_cut", "init_scale"} <= set(old["runs"].columns)
    assert "loss" in old["traj"] and "loss" in old["markers"] and "target_rank" in old["tc"]
    for name, new in {"runs": runs, "traj": traj, "markers": markers, "tc": tc}.items():
        pd.testing.assert_frame_equal(rt.upgrade_columns(old[name]), new)
        assert rt.upgrade_columns(new) is new  # current tables pass through untouched
    # the upgraded old tables build the same markers and summary as the new ones
    pd.testing.assert_frame_equal(rt.dmf_markers_table(rt.upgrade_columns(old["runs"]),
                                                       rt.upgrade_columns(old["traj"])), markers)
    pd.testing.assert_frame_equal(rt.tc_summary(rt.upgrade_columns(old["tc"])), rt.tc_summary(tc))
    with pytest.raises(ValueError, match="train_loss"):
        rt.upgrade_columns(traj.assign(loss=traj["train_loss"]))


def test_tables_use_the_shared_column_names():
    runs, traj = _small_batch()
    assert {"final_train_loss", "train_loss_at_cut", "init_product_std"} <= set(runs.columns)
    assert "train_loss" in traj.columns and "rank" in _tc_runs().columns
    legacy = set(rt.LEGACY_COLUMNS)
    for columns in (rt.DMF_RUN_COLUMNS, rt.DMF_MARKER_COLUMNS, rt.DMF_TRAJECTORY_COLUMNS, rt.TC_RUN_COLUMNS,
                    rt.TC_SUMMARY_COLUMNS):
        assert not legacy & set(columns)


def test_effective_rank_final_is_the_exact_entropy_over_nonzero_singular_values():
    runs, _ = _small_batch()
    assert runs["effective_rank_final"].between(1.0, 2.0).all()
    # the pre-redesign formula, written out: exp(-sum p log p) over the nonzero singular values
    for prod in (np.array([[0.3, 1.0], [1.0, 0.0]]), np.outer([1.0, 2.0], [3.0, -1.0])):
        sv = np.linalg.svd(prod, compute_uv=False)
        p = sv[sv > 0] / sv.sum()
        assert mnp.effective_rank(mnp.singular_values(prod), log_guard=None) == float(np.exp(-np.sum(p * np.log(p))))


def test_provenance_hashes_init_product_std_under_its_legacy_name():
    plan = rp.RazinPlan(section(), 20191208)
    prov = plan.job_provenance("dmf", figure="razin2020_fig1", depth=3)
    # the key the code gave before the rename (commit 9367bdb), under which the job is archived
    assert prov["key"] == "fd3d408c815ce12c8e27bec896b12ea9e53205f87e4ccd6a6a8a7d9da78d14d5"
    _, payload, _ = plan._job("dmf", "razin2020_fig1", None, 3)
    assert all("init_scale" in r and "init_product_std" not in r for r in payload["spec"]["runs"])
    assert all("init_product_std" in r for r in plan.dmf_spec("razin2020_fig1", 3)["runs"])
