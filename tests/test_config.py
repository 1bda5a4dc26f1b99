"""Bad configuration fails before any job runs, naming the key."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from implicit_reg.arora2019.plan import ConfigError, build_plan
from implicit_reg.core.data_files import DataFileError
from implicit_reg.pipeline.config import (
    ConfigValidationError,
    MOVIELENS_DOWNLOADS,
    check_local_data,
    load_schema,
    movielens_file,
    use_shared_data,
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


def test_absent_local_data_is_no_config_error(tmp_path: Path) -> None:
    """A build restored from the archive reads no data: absent files are named only when a job reads them."""
    check_local_data(_data_config("ml/u.data", data_dir="absent"), tmp_path)
    check_local_data(_data_config(None, razin_source="download"), tmp_path)


def test_a_job_reading_an_absent_local_file_names_the_key(tmp_path: Path) -> None:
    config = {"data": {"movielens": {"path": "ml/u.data", "source": "authors"}}}
    with pytest.raises(DataFileError) as err:
        movielens_file(config, tmp_path)
    assert str(err.value).startswith("data.movielens.path: file 'ml/u.data' does not exist")
    (tmp_path / "ml").mkdir()
    (tmp_path / "ml" / "u.data").write_text("1\t1\t5\t0\n")
    assert movielens_file(config, tmp_path) == "ml/u.data"
    # null path: the download rule's output for the source
    assert movielens_file({"data": {"movielens": {"path": None, "source": "authors"}}}) == MOVIELENS_DOWNLOADS["authors"]
    assert movielens_file({"data": {"movielens": {"path": None, "source": "grouplens"}}}) == \
        MOVIELENS_DOWNLOADS["grouplens"]


def test_shared_data_replaces_downloads_only(tmp_path: Path) -> None:
    (tmp_path / "data" / "ml-100k").mkdir(parents=True)
    (tmp_path / "data" / "ml-100k" / "u.data").write_text("1\t1\t5\t0\n")
    (tmp_path / "razin2020_data").mkdir()
    config = _data_config(None, razin_source="download", data_dir=None)
    assert len(use_shared_data(config, tmp_path)) == 2
    assert config["data"]["movielens"]["path"] == str(tmp_path / "data" / "ml-100k" / "u.data")
    assert config["razin2020"]["data"] == {"source": "shared", "data_dir": str(tmp_path / "razin2020_data")}
    # a local file, generated tensors, GroupLens, no directory and absent copies are left alone
    kept = _data_config("mine/u.data", razin_source="generated", data_dir=None)
    assert use_shared_data(kept, tmp_path) == [] and kept["data"]["movielens"]["path"] == "mine/u.data"
    grouplens = _data_config(None, razin_source="download")
    grouplens["data"]["movielens"]["source"] = "grouplens"
    assert use_shared_data(grouplens, tmp_path) == [f"razin2020.data.source=shared, data_dir={tmp_path / 'razin2020_data'}"]
    assert use_shared_data(_data_config(None, razin_source="download"), None) == []
    assert use_shared_data(_data_config(None, razin_source="download"), tmp_path / "absent") == []
