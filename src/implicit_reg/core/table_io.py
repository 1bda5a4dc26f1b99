"""Writing and reading the parquet tables of both papers, with units and provenance.

Every table is written by :func:`write_parquet`, which stores its provenance in the
parquet schema metadata (keys ``implicit_reg.commit``, ``implicit_reg.config_hash``,
``implicit_reg.numerics_version``, ``implicit_reg.units``), so a table found on its
own still tells where it came from; :func:`read_table_provenance` reads it back.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

#: Units of the numeric columns of every table (Arora et al. and Razin & Cohen).
#: Matrix and tensor entries carry no physical unit, so most values are "1"
#: (dimensionless); the text after it says what the number is relative to.
COLUMN_UNITS: dict[str, str] = {
    # training and test losses
    # (one name per quantity in both papers' tables: train_loss, final_train_loss, ...)
    "final_train_loss": "1 (squared-error training loss over the observations, last iteration)",
    "train_loss": "1 (squared-error training loss over the observations)",
    "train_loss_at_cut": "1 (training loss at the cut iteration)",
    "marker_loss": "1 (loss threshold of the marker)",
    "test_mse": "1 (mean squared error over the test entries)",
    # errors and norms of the solution
    "recon_error_sq": "1 (relative squared error ||W-W*||_F^2 / ||W*||_F^2)",
    "recon_error": "1 (relative error ||W-W*||_F / ||W*||_F)",
    "recon_error_median": "1 (median relative error ||W-T*||_F / ||T*||_F)",
    "recon_error_p25": "1 (25th percentile of the relative error)",
    "recon_error_p75": "1 (75th percentile of the relative error)",
    "nuclear_norm": "1 (sum of singular values, in units of the matrix entries)",
    "effective_rank": "1 (effective rank, Roy & Vetterli 2007)",
    "effective_rank_final": "1 (effective rank of the final product)",
    "cp_rank": "count (estimated CP tensor rank)",
    "cp_rank_median": "count (median estimated CP rank)",
    "cp_rank_p25": "count (25th percentile of the estimated CP rank)",
    "cp_rank_p75": "count (75th percentile of the estimated CP rank)",
    "step_size": "1 (effective learning rate of the iteration)",
    "sv_": "1 (singular value of the product matrix, descending)",
    "grad_proj_": "1 (<grad loss(W), u_r v_r^T>, plain gradient of the training loss)",
    "align_diag_mean": "1 (mean diagonal |U^T G V|)",
    "align_diag_std": "1 (std of the diagonal |U^T G V|)",
    "align_offdiag_mean": "1 (mean off-diagonal |U^T G V|)",
    "align_offdiag_std": "1 (std of the off-diagonal |U^T G V|)",
    # the 2x2 problems of Razin & Cohen
    "b12": "1 (observed entry (1, 2))",
    "b21": "1 (observed entry (2, 1))",
    "b22": "1 (observed entry (2, 2))",
    "p11": "1 (entry (1, 1) of the product matrix: the unobserved entry)",
    "p12": "1 (entry (1, 2) of the product matrix)",
    "p21": "1 (entry (2, 1) of the product matrix)",
    "p22": "1 (entry (2, 2) of the product matrix)",
    "abs_unobserved": "1 (|P11|, absolute value of the unobserved entry)",
    "abs_unobserved_final": "1 (|P11| at the last iteration)",
    "abs_unobserved_at_cut": "1 (|P11| at the cut iteration)",
    "det_final": "1 (determinant of the final product)",
    "c_fit": "1 (fitted c of |P11| = c / sqrt(loss))",
    # parameters
    "init_scale": "1 (Arora et al.'s init scale: ||W(0)||_F ~ sqrt(n) init_scale, or W(0) = init_scale I)",
    "init_product_std": "1 (std of the product matrix's entries at initialization, Razin & Cohen's init X)",
    "init_std": "1 (standard deviation of the initialization)",
    "lr": "1 (learning rate)",
    "tol": "1 (stopping tolerance on the loss)",
    # counts and times
    "iterations": "steps (gradient steps run)",
    "iteration": "steps (gradient step of the logged row)",
    "cut_iteration": "steps (first logged step with loss below the cut)",
    "solver_iterations": "steps (SCS iterations, -1 when not applicable)",
    "n_obs": "count (observed entries or measurements)",
    "n_logged": "count (logged rows)",
    "n_runs": "count (runs)",
    "n_failed": "count (diverged runs)",
    "wall_seconds": "s (wall-clock time)",
    "rank_seconds": "s (wall-clock time of the CP-rank estimate)",
}
_INDEXED = re.compile(r"^(sv_|grad_proj_)\d+$")
_PROVENANCE_KEYS = ("commit", "config_hash", "numerics_version")


def column_units(columns: Iterable[str]) -> dict[str, str]:
    """Units of the value columns among ``columns`` (see :data:`COLUMN_UNITS`).

    Parameters
    ----------
    columns : iterable of str
        Column names of a table.

    Returns
    -------
    dict
        Column -> unit for every column with a known unit; ``sv_1``, ``sv_2``, ...
        and ``grad_proj_1``, ... share the unit of their prefix.
    """
    units = {}
    for col in columns:
        indexed = _INDEXED.match(col)
        key = indexed.group(1) if indexed else col
        if key in COLUMN_UNITS:
            units[col] = COLUMN_UNITS[key]
    return units


def write_parquet(df: pd.DataFrame, path: str | Path, provenance: Mapping[str, Any]) -> None:
    """Write ``df`` with its provenance in the schema metadata, atomically.

    Parameters
    ----------
    df : DataFrame
        The table; every floating-point column needs a unit in :data:`COLUMN_UNITS`.
    path : str or Path
        Destination; written to a temporary file first, then renamed, so a killed job
        leaves nothing half-written.
    provenance : mapping
        ``commit``, ``config_hash`` and ``numerics_version`` as returned by
        :func:`implicit_reg.results.provenance.table_provenance`.

    Raises
    ------
    ValueError
        When a provenance key is missing or a floating-point column has no unit: a
        table never leaves the pipeline with a value nobody can interpret.
    """
    missing = [k for k in _PROVENANCE_KEYS if k not in provenance]
    if missing:
        raise ValueError(f"{path}: provenance lacks {missing}")
    units = column_units(df.columns)
    no_unit = [c for c in df.columns if pd.api.types.is_float_dtype(df[c]) and c not in units]
    if no_unit:
        raise ValueError(f"{path}: no unit for column(s) {no_unit}; add them to table_io.COLUMN_UNITS")
    table = pa.Table.from_pandas(df, preserve_index=False)
    metadata = dict(table.schema.metadata or {})  # keeps pandas' own metadata
    for key in _PROVENANCE_KEYS:
        value = provenance[key]
        metadata[f"implicit_reg.{key}".encode()] = (value if isinstance(value, str) else json.dumps(value)).encode()
    metadata[b"implicit_reg.units"] = json.dumps(units).encode()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table.replace_schema_metadata(metadata), tmp)
    os.replace(tmp, path)


def read_table_provenance(path: str | Path) -> dict[str, Any]:
    """The provenance :func:`write_parquet` stored in a parquet file.

    Parameters
    ----------
    path : str or Path
        A parquet file.

    Returns
    -------
    dict
        ``commit``, ``config_hash``, ``numerics_version`` (engine -> version) and
        ``units`` (column -> unit); empty when the file carries none.
    """
    metadata = pq.read_schema(path).metadata or {}
    out: dict[str, Any] = {}
    for key in (*_PROVENANCE_KEYS, "units"):
        raw = metadata.get(f"implicit_reg.{key}".encode())
        if raw is not None:
            text = raw.decode()
            out[key] = text if key in ("commit", "config_hash") else json.loads(text)
    return out
