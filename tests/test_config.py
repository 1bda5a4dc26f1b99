"""Bad configuration fails before any job runs, naming the key."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from implicit_reg.arora2019.plan import ConfigError, build_plan
from implicit_reg.config import (
    ConfigValidationError,
    check_local_data,
    load_schema,
    validate_config,
)

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = load_schema(ROOT / "workflow" / "schemas" / "config.schema.yaml")


def _config(name: str = "test.yaml") -> dict:
    return yaml.safe_load((ROOT / "config" / name).read_text())


def _sweep(cfg: dict) -> dict:
    return cfg["arora2019"]["figures"]["arora2019_n1"]["sweeps"][0]


@pytest.mark.parametrize("preset", ["config.yaml", "quick.yaml", "test.yaml"])
def test_presets_are_valid_and_get_defaults(preset: str) -> None:
    cfg = validate_config(_config(preset), SCHEMA)
    assert cfg["engine"]["sync_every"] > 0
    assert cfg["convex"]["epsilon"] == 1e-3
    plan = build_plan(cfg)
    assert {"arora2019_fig1", "arora2019_fig2", "arora2019_n1", "arora2019_n2"} <= set(plan.figures)


@pytest.mark.parametrize(
    "mutate, key",
    [
        (lambda c: c["arora2019"].__setitem__("matrix_sise", 10), "matrix_sise"),
        (lambda c: _sweep(c).__setitem__("lr", -1.0e-3), "sweeps[0].lr"),
        (lambda c: _sweep(c).__setitem__("lr", 0), "sweeps[0].lr"),
        (lambda c: _sweep(c).__setitem__("depth", [2, 0]), "sweeps[0].depth[1]"),
        (lambda c: c["arora2019"].__setitem__("matrix_size", 0), "arora2019.matrix_size"),
        (lambda c: _sweep(c).__setitem__("init_scale", "1e-3"), "sweeps[0].init_scale"),
        (lambda c: _sweep(c).__setitem__("optimizer", "adam"), "sweeps[0].optimizer"),
        (lambda c: c["engine"].__setitem__("sync_every", -5), "engine.sync_every"),
    ],
)
def test_schema_errors_name_the_key(mutate, key: str) -> None:
    cfg = _config()
    mutate(cfg)
    with pytest.raises(ConfigValidationError, match=key.replace("[", r"\[").replace("]", r"\]")):
        validate_config(cfg, SCHEMA)


def test_yaml_float_pitfall_gets_a_hint() -> None:
    cfg = _config()
    _sweep(cfg)["lr"] = "1e-3"
    with pytest.raises(ConfigValidationError, match="write 1.0e-3"):
        validate_config(cfg, SCHEMA)


def test_more_observations_than_entries_is_refused() -> None:
    cfg = validate_config(_config(), SCHEMA)
    _sweep(cfg)["n_obs"] = [120, 401]  # the test preset's matrices are 20 x 20
    with pytest.raises(ConfigError, match=r"arora2019_n1\.sweeps\[0\]\.n_obs.*401"):
        build_plan(cfg)


def test_runs_shared_by_figures_are_planned_once() -> None:
    cfg = validate_config(_config("config.yaml"), SCHEMA)
    plan = build_plan(cfg)
    n1, n2 = plan.figures["arora2019_n1"], plan.figures["arora2019_n2"]
    assert len(n1.run_ids) == 2 * 3 * 4 * 2 * 3 == 144
    assert set(n2.run_ids) <= set(n1.run_ids)
    assert set(n2.batches) == set(n1.batches)
    all_runs = [r["run_id"] for b in plan.batches.values() for r in b.spec()["runs"]]
    assert len(all_runs) == len(set(all_runs))
    # Every run id a figure asks for is trained by one of its batches.
    for fig in plan.figures.values():
        trained = {r["run_id"] for b in fig.batches for r in plan.batches[b].spec()["runs"]}
        assert set(fig.run_ids) <= trained


def test_plan_is_deterministic() -> None:
    a = build_plan(validate_config(_config(), SCHEMA))
    b = build_plan(validate_config(copy.deepcopy(_config()), SCHEMA))
    assert [x.spec() for x in a.batches.values()] == [x.spec() for x in b.batches.values()]


def _data_config(movielens_path, razin_source="shared", data_dir="razin"):
    return {
        "data": {"movielens": {"path": movielens_path, "file_sha256": "0" * 64}},
        "arora2019": {"figures": {"f": {"sweeps": [{"task": "movielens"}]}}},
        "razin2020": {"data": {"source": razin_source, "data_dir": data_dir}, "figures": {"g": {}}},
    }


def test_missing_local_data_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigValidationError) as err:
        check_local_data(_data_config("ml/u.data"), tmp_path)
    assert "data.movielens.path" in str(err.value) and "'ml/u.data'" in str(err.value)
    assert "razin2020.data.data_dir" in str(err.value)


def test_present_or_unneeded_local_data_passes(tmp_path: Path) -> None:
    (tmp_path / "ml").mkdir()
    (tmp_path / "ml" / "u.data").write_text("1\t1\t5\t0\n")
    (tmp_path / "razin").mkdir()
    check_local_data(_data_config("ml/u.data"), tmp_path)
    # null path = download; generated tensors need no directory
    check_local_data(_data_config(None, razin_source="generated", data_dir="absent"), tmp_path)
    # no movielens sweep: the path is not needed
    cfg = _data_config("absent/u.data", razin_source="download")
    cfg["arora2019"]["figures"]["f"]["sweeps"] = [{"task": "completion"}]
    check_local_data(cfg, tmp_path)
