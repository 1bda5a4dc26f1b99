"""Tidy result tables (pandas, written as parquet with pyarrow).

Column contracts are in docs/architecture.md. A run appears once per batch
table; figure tables are selections of batch tables plus the convex baseline
and ground-truth rows.

Every table is written by :func:`implicit_reg.core.table_io.write_parquet`, which stores its provenance in the
parquet schema metadata (keys ``implicit_reg.commit``, ``implicit_reg.config_hash``,
``implicit_reg.numerics_version``, ``implicit_reg.units``), so a table found on its
own still tells where it came from; :func:`read_table_provenance` reads it back.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np
import pandas as pd

from implicit_reg.core import metrics_numpy

KEY_COLUMNS = [
    "run_id", "paper", "figure", "method", "task", "rank", "n_obs", "depth",
    "init", "init_scale", "lr", "optimizer", "seed",
]
VALUE_COLUMNS = [
    "final_train_loss", "test_mse", "recon_error_sq", "recon_error", "nuclear_norm",
    "effective_rank", "iterations", "wall_seconds", "status", "solver_iterations",
]


def batch_runs_table(spec: dict[str, Any], final: dict[str, np.ndarray], status: list[str]) -> pd.DataFrame:
    """One row per run of a finished batch.

    Parameters
    ----------
    spec : dict
        The batch spec of the plan (task, rank, n_obs, depth, schedule, and per run
        ``run_id``, ``init``, ``init_scale``, ``lr``, ``seed``).
    final : dict of str to numpy.ndarray
        ``BatchResult.final`` (one value per run, in ``spec["runs"]`` order).
    status : list of str
        ``BatchResult.status``.

    Returns
    -------
    pandas.DataFrame
        :data:`KEY_COLUMNS` then :data:`VALUE_COLUMNS`, method ``deep_factorization``.
    """
    runs = spec["runs"]
    df = pd.DataFrame(
        {
            "run_id": [r["run_id"] for r in runs],
            "paper": "arora2019",
            "figure": "",
            "method": "deep_factorization",
            "task": spec["task"],
            "rank": int(spec["rank"]),
            "n_obs": int(spec["n_obs"]),
            "depth": int(spec["depth"]),
            "init": [r["init"] for r in runs],
            "init_scale": [float(r["init_scale"]) for r in runs],
            "lr": [float(r["lr"]) for r in runs],
            "optimizer": spec["schedule"]["optimizer"],
            "seed": [int(r["seed"]) for r in runs],
        }
    )
    for col in VALUE_COLUMNS:
        if col == "status":
            df[col] = status
        elif col == "solver_iterations":
            df[col] = -1
        else:
            df[col] = final[col]
    df["iterations"] = df["iterations"].astype("int64")
    return df[KEY_COLUMNS + VALUE_COLUMNS]


def batch_trajectories_table(spec: dict[str, Any], trajectories: dict[str, np.ndarray], runs: pd.DataFrame) -> pd.DataFrame:
    """Logged trajectories, keyed like the runs table.

    Parameters
    ----------
    spec : dict
        The batch spec (unused: the runs table carries the keys).
    trajectories : dict of str to numpy.ndarray
        ``BatchResult.trajectories`` (``run`` = position in the batch).
    runs : pandas.DataFrame
        :func:`batch_runs_table` of the same batch.

    Returns
    -------
    pandas.DataFrame
        :data:`KEY_COLUMNS` followed by ``iteration`` and the logged metrics.
    """
    traj = pd.DataFrame(trajectories)
    keys = runs[KEY_COLUMNS].reset_index(drop=True)
    keys["run"] = np.arange(len(keys))
    out = keys.merge(traj, on="run", how="right").drop(columns="run")
    return out


def convex_row(dataset: dict[str, Any], result: Any, ground_truth: np.ndarray, epsilon: float) -> pd.DataFrame:
    """The minimum-nuclear-norm solution as a runs-table row (spec §1.8–1.9).

    The solution is scored like a trained product: ``test_mse = mean((X − W*)²)``,
    ``recon_error_sq = ‖X − W*‖_F² / ‖W*‖_F²``, nuclear norm ``Σ σ_i`` and effective
    rank ``exp(H(p))``, ``p_i = σ_i / Σ_j σ_j`` (Roy & Vetterli 2007).

    Parameters
    ----------
    dataset : dict
        The data set record of the plan (name, task, rank, n_obs).
    result : ConvexResult
        The solve (:mod:`implicit_reg.arora2019.convex`).
    ground_truth : numpy.ndarray
        W*.
    epsilon : float
        The solve's ε (recorded by the caller; not part of the row).

    Returns
    -------
    pandas.DataFrame
        One row, method ``min_nuclear_norm``; NaN metrics when the solve failed.
    """
    sol = result.solution.astype(np.float64)
    gt = ground_truth.astype(np.float64)
    row = _key_row(dataset, "min_nuclear_norm", "scs")
    if np.all(np.isfinite(sol)):
        err_sq = float(np.sum((sol - gt) ** 2) / np.sum(gt**2))
        sv = np.linalg.svd(sol, compute_uv=False)
        row.update(
            final_train_loss=float("nan"),
            test_mse=float(np.mean((sol - gt) ** 2)),
            recon_error_sq=err_sq,
            recon_error=math.sqrt(err_sq),
            nuclear_norm=float(sv.sum()),
            effective_rank=metrics_numpy.effective_rank(sv),
        )
    else:
        row.update({k: float("nan") for k in ("final_train_loss", "test_mse", "recon_error_sq", "recon_error", "nuclear_norm", "effective_rank")})
    row.update(iterations=-1, wall_seconds=float(result.solve_seconds), status=result.status,
               solver_iterations=int(result.solver_iterations))
    return pd.DataFrame([row])[KEY_COLUMNS + VALUE_COLUMNS]


def ground_truth_rows(datasets: Iterable[dict[str, Any]], ground_truths: dict[str, np.ndarray]) -> pd.DataFrame:
    """Nuclear norm and effective rank of the ground truth, one row per data set.

    Parameters
    ----------
    datasets : iterable of dict
        Data set records of the plan (with ``ground_truth_name``).
    ground_truths : dict of str to numpy.ndarray
        W* by ground-truth name.

    Returns
    -------
    pandas.DataFrame
        Method ``ground_truth``, errors 0, status ``exact``.
    """
    rows = []
    for d in datasets:
        gt = ground_truths[d["ground_truth_name"]].astype(np.float64)
        sv = np.linalg.svd(gt, compute_uv=False)
        row = _key_row(d, "ground_truth", "none")
        row.update(final_train_loss=float("nan"), test_mse=0.0, recon_error_sq=0.0, recon_error=0.0,
                   nuclear_norm=float(sv.sum()), effective_rank=metrics_numpy.effective_rank(sv),
                   iterations=-1, wall_seconds=0.0, status="exact", solver_iterations=-1)
        rows.append(row)
    return pd.DataFrame(rows, columns=KEY_COLUMNS + VALUE_COLUMNS)


def _key_row(dataset: dict[str, Any], method: str, optimizer: str) -> dict[str, Any]:
    return {
        "run_id": f"{method}:{dataset['name']}",
        "paper": "arora2019",
        "figure": "",
        "method": method,
        "task": dataset["task"],
        "rank": int(dataset["rank"]),
        "n_obs": int(dataset["n_obs"]),
        "depth": 0,
        "init": "none",
        "init_scale": float("nan"),
        "lr": float("nan"),
        "optimizer": optimizer,
        "seed": -1,
    }


def figure_tables(
    figure: str,
    run_ids: list[str],
    batch_runs: list[pd.DataFrame],
    batch_trajectories: list[pd.DataFrame],
    extra_rows: list[pd.DataFrame],
    paper: str = "arora2019",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Select a figure's runs from batch tables and add baseline rows.

    Parameters
    ----------
    figure : str
        The figure's name (written into the ``figure`` column).
    run_ids : list of str
        The runs the figure needs.
    batch_runs, batch_trajectories : list of pandas.DataFrame
        Runs and trajectories tables of the batches that hold them.
    extra_rows : list of pandas.DataFrame
        Baseline rows (convex solutions, ground truths).
    paper : str
        Written into the ``paper`` column.

    Returns
    -------
    (pandas.DataFrame, pandas.DataFrame)
        The figure's runs (sorted by method, task, rank, n_obs, depth, init, init
        scale, lr, seed) and trajectories (by run id, iteration).

    Raises
    ------
    ValueError
        If a run the figure needs is missing: a figure never silently plots fewer
        runs than its config asks for.
    """
    wanted = set(run_ids)
    runs = pd.concat(batch_runs, ignore_index=True)
    runs = runs[runs["run_id"].isin(wanted)]
    missing = wanted - set(runs["run_id"])
    if missing:
        raise ValueError(f"{figure}: {len(missing)} runs missing from the batch tables, e.g. {sorted(missing)[:3]}")
    traj = pd.concat(batch_trajectories, ignore_index=True)
    traj = traj[traj["run_id"].isin(wanted)].copy()
    extras = [e for e in extra_rows if len(e)]
    if extras:
        runs = pd.concat([runs] + extras, ignore_index=True)
    for df in (runs, traj):
        df["figure"] = figure
        df["paper"] = paper
    runs = runs.sort_values(["method", "task", "rank", "n_obs", "depth", "init", "init_scale", "lr", "seed"], kind="stable")
    traj = traj.sort_values(["run_id", "iteration"], kind="stable")
    return runs.reset_index(drop=True), traj.reset_index(drop=True)


def with_instance_columns(df: pd.DataFrame, labels: dict[str, list]) -> pd.DataFrame:
    """Add ``instance`` (int, 0 = the figure's own), ``sampling`` and ``variant`` columns from run-id labels.

    Parameters
    ----------
    df : DataFrame
        A runs or trajectories table with ``run_id``.
    labels : dict
        run id -> [instance, sampling, variant], as the plan gives for instance-spread
        tables (``variant`` is ``protocol`` for the documented protocol).

    Returns
    -------
    DataFrame
        A copy with the three columns; raises if a row has no label.
    """
    missing = sorted(set(df["run_id"]) - set(labels))
    if missing:
        raise ValueError(f"{len(missing)} rows without an instance label, e.g. {missing[:3]}")
    out = df.copy()
    out["instance"] = out["run_id"].map(lambda r: int(labels[r][0])).astype("int64")
    out["sampling"] = out["run_id"].map(lambda r: str(labels[r][1]))
    out["variant"] = out["run_id"].map(lambda r: str(labels[r][2]))
    return out


def with_variant_copies(df: pd.DataFrame, variants: list[str]) -> pd.DataFrame:
    """Give each convex variant the protocol's other rows, so that every variant is a whole row.

    A convex variant re-solves the minimum-nuclear-norm problem of the protocol's data
    (:func:`implicit_reg.arora2019.plan.convex_section`); its trained runs and ground
    truths are the protocol's. Appending them under the variant's name lets a reader
    compare all quantities of one variant at once.

    Parameters
    ----------
    df : DataFrame
        An instance-spread table (:func:`with_instance_columns`).
    variants : list of str
        The convex variants' names.

    Returns
    -------
    DataFrame
        ``df`` followed by, per variant, the protocol rows other than ``min_nuclear_norm``.
    """
    if not variants:
        return df
    protocol = df.loc[(df["variant"] == "protocol") & (df["method"] != "min_nuclear_norm")]
    copies = [protocol.assign(variant=str(v)) for v in variants]
    return pd.concat([df, *copies], ignore_index=True)

