"""Parquet tables carry their provenance: commit, config hash, numerics versions, units."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from implicit_reg.arora2019 import tables
from implicit_reg.core import table_io  # noqa: E402
from implicit_reg.core.numerics import NUMERICS_VERSIONS
from implicit_reg.results.provenance import config_hash, table_provenance
from implicit_reg.razin2020 import tables as rt

REPO = Path(__file__).resolve().parents[1]
CONFIG = {"seed": 7, "arora2019": {"matrix_size": 20}}


def _runs() -> pd.DataFrame:
    spec = {
        "task": "completion", "rank": 2, "n_obs": 120, "depth": 2, "schedule": {"optimizer": "gd"},
        "runs": [{"run_id": "a", "init": "gaussian", "init_scale": 1e-3, "lr": 0.1, "seed": 1}],
    }
    final = {c: np.array([0.5]) for c in tables.VALUE_COLUMNS}
    return tables.batch_runs_table(spec, final, ["converged"])


def test_table_provenance_names_commit_config_and_engine_versions() -> None:
    prov = table_provenance(REPO, CONFIG, ["two_by_two", "cp_rank", "two_by_two"])
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short=7", "HEAD"],
                          capture_output=True, text=True).stdout.strip()
    assert prov["commit"].split(" ")[0] == (head or "unknown")
    assert prov["config_hash"] == config_hash(CONFIG)
    assert prov["numerics_version"] == {"cp_rank": NUMERICS_VERSIONS["cp_rank"],
                                        "two_by_two": NUMERICS_VERSIONS["two_by_two"]}


def test_table_provenance_refuses_an_unknown_engine() -> None:
    with pytest.raises(KeyError, match="unknown engine"):
        table_provenance(REPO, CONFIG, ["no_such_engine"])


def test_written_table_holds_its_provenance_and_units(tmp_path: Path) -> None:
    runs = _runs()
    path = tmp_path / "runs.parquet"
    prov = table_provenance(tmp_path, CONFIG, ["deep_factorization", "matrix_data"])
    table_io.write_parquet(runs, path, prov)
    # plain pyarrow sees it: a stray file explains itself without this library
    raw = pq.read_schema(path).metadata
    assert raw[b"implicit_reg.commit"] == b"unknown"  # tmp_path is no git work tree
    assert raw[b"implicit_reg.config_hash"] == config_hash(CONFIG).encode()
    back = table_io.read_table_provenance(path)
    assert back["numerics_version"] == {"deep_factorization": 1, "matrix_data": 1}
    assert back["units"]["wall_seconds"].startswith("s ")
    assert back["units"]["iterations"].startswith("steps")
    float_columns = [c for c in runs.columns if pd.api.types.is_float_dtype(runs[c])]
    assert float_columns and set(float_columns) <= set(back["units"])
    pd.testing.assert_frame_equal(pd.read_parquet(path), runs)
    assert not list(tmp_path.glob("*.tmp"))


def test_indexed_columns_share_their_prefix_unit() -> None:
    units = table_io.column_units(["sv_1", "sv_10", "grad_proj_3", "run_id", "svd"])
    assert set(units) == {"sv_1", "sv_10", "grad_proj_3"}
    assert units["sv_1"] == units["sv_10"] == table_io.COLUMN_UNITS["sv_"]


def test_a_float_column_without_unit_is_refused(tmp_path: Path) -> None:
    df = pd.DataFrame({"run_id": ["a"], "mystery": [1.5]})
    prov = {"commit": "x", "config_hash": "y", "numerics_version": {}}
    with pytest.raises(ValueError, match="mystery"):
        table_io.write_parquet(df, tmp_path / "t.parquet", prov)
    assert not (tmp_path / "t.parquet").exists()


def test_missing_provenance_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="config_hash"):
        table_io.write_parquet(_runs(), tmp_path / "t.parquet", {"commit": "x", "numerics_version": {}})


def test_every_razin_column_list_has_units_for_its_values() -> None:
    """The Razin & Cohen tables' declared columns that hold measurements all have a unit."""
    values = {
        "final_train_loss", "abs_unobserved_final", "train_loss_at_cut", "abs_unobserved_at_cut", "det_final",
        "effective_rank_final", "c_fit", "wall_seconds", "marker_loss", "train_loss", "abs_unobserved",
        "init_product_std", "recon_error", "cp_rank", "rank_seconds", "recon_error_median",
        "recon_error_p25", "recon_error_p75", "cp_rank_median", "cp_rank_p25", "cp_rank_p75",
    }
    declared = (set(rt.DMF_RUN_COLUMNS) | set(rt.DMF_MARKER_COLUMNS) | set(rt.DMF_TRAJECTORY_COLUMNS)
                | set(rt.TC_RUN_COLUMNS) | set(rt.TC_SUMMARY_COLUMNS))
    assert values <= declared
    assert values <= set(table_io.column_units(declared))
