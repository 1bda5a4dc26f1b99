"""Result tables of the Razin & Cohen (2020) figures (pure functions, no I/O but exports).

Spec: ``shared/spec/razin2020.md``. The engines live in :mod:`two_by_two`
(Figure 1, perturbed 2×2 problems) and :mod:`tensor_completion` (with
:mod:`cp_gradients` and :mod:`tensor_data`) / :mod:`cp_rank` (Figure 2,
rank-3 appendix); this module turns their results into the tidy tables the
figure notebooks and ``config/published.yaml`` read.
``docs/architecture.md`` documents every column.

Column convention (shared with Arora et al.'s tables): the same quantity has the
same name in every table, e.g. ``train_loss`` / ``final_train_loss`` for the
training loss and ``rank`` for the ground truth's rank. The 2×2 runs' initial
scale is ``init_product_std`` (the std of the product's entries, spec §2.1),
not Arora et al.'s ``init_scale`` (a different quantity). Tables archived before this
convention are read through :func:`upgrade_columns` (:data:`LEGACY_COLUMNS`).

Deep matrix factorization (2×2) figures
    ``runs`` (one row per GD run), ``trajectories`` (one row per logged
    iteration) and ``markers`` (one row per run and marker loss 1.3e-1 …
    1.3e-4: the unobserved entry where the paper puts its grey markers).

Tensor completion figures
    ``runs`` (one row per trained model, per linear-baseline tensor and per
    ground truth; ``method`` is ``tf``, ``linear`` or ``ground_truth``),
    ``trajectories`` (the training histories) and ``summary`` (median and
    25th/75th percentiles per series and number of observations).

The data-set exports and content digests are :mod:`implicit_reg.razin2020.data_exports`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from implicit_reg.core.metrics_numpy import effective_rank, singular_values
from implicit_reg.razin2020.loss_markers import (  # also used by the notebooks as rt.first_below, ...)
    CURVE_CUT_LOSS,
    MARKER_LOSSES,
    first_below,
    marker_rows,
)

PAPER = "razin2020"

#: Theory constant: with det(P) > 0, |P11| ≥ (1 − √(2ℓ))² / √(2ℓ) → c/√ℓ with c = 1/√2.
THEORY_C = 1.0 / math.sqrt(2.0)

DMF_RUN_COLUMNS = [
    "run_id", "paper", "figure", "dataset", "b12", "b21", "b22", "depth", "run_index", "rep",
    "label", "init", "balanced", "init_product_std", "lr", "det_sign", "seed", "dtype", "log_every",
    "tol", "max_iters", "status", "iterations", "final_train_loss", "abs_unobserved_final",
    "cut_iteration", "train_loss_at_cut", "abs_unobserved_at_cut", "det_final", "effective_rank_final",
    "c_fit", "n_logged", "wall_seconds",
]
DMF_MARKER_COLUMNS = [
    "run_id", "figure", "dataset", "b22", "depth", "run_index", "rep", "label", "init", "balanced",
    "init_product_std", "lr", "det_sign", "seed", "marker", "marker_loss", "row", "iteration",
    "train_loss", "abs_unobserved",
]
DMF_TRAJECTORY_COLUMNS = ["run_id", "iteration", "train_loss", "p11", "p12", "p21", "p22", "abs_unobserved"]
TC_RUN_COLUMNS = [
    "run_id", "paper", "figure", "dataset", "order", "mode_size", "rank", "n_obs",
    "method", "series", "init_std", "rep", "seed", "rank_seed", "lr", "num_components",
    "status", "iterations", "final_train_loss", "recon_error", "cp_rank", "wall_seconds",
    "rank_seconds",
]
TC_SUMMARY_COLUMNS = [
    "figure", "dataset", "order", "rank", "series", "n_obs", "n_runs", "n_failed",
    "recon_error_median", "recon_error_p25", "recon_error_p75",
    "cp_rank_median", "cp_rank_p25", "cp_rank_p75",
]

#: Old column name -> current name, for Razin & Cohen tables written before the
#: column convention (archived jobs keep their tables as written).
LEGACY_COLUMNS: dict[str, str] = {
    "final_loss": "final_train_loss",
    "loss": "train_loss",
    "loss_at_cut": "train_loss_at_cut",
    "init_scale": "init_product_std",
    "target_rank": "rank",
}


def upgrade_columns(table: pd.DataFrame) -> pd.DataFrame:
    """A Razin & Cohen table with its legacy column names replaced by the current ones.

    Every Razin & Cohen table read back from ``results/`` or the archive goes
    through this, so tables written before the column convention read like new
    ones; values are untouched.

    Parameters
    ----------
    table : pandas.DataFrame
        Any Razin & Cohen table (2×2 runs, trajectories or markers; tensor runs,
        trajectories or reference rows), old or new.

    Returns
    -------
    pandas.DataFrame
        The same table (a renamed copy when a column was renamed).

    Raises
    ------
    ValueError
        If a table has both a legacy column and its current name.
    """
    renames = {old: new for old, new in LEGACY_COLUMNS.items() if old in table.columns}
    clash = sorted(new for new in renames.values() if new in table.columns)
    if clash:
        raise ValueError(f"table has both legacy and current columns for {clash}")
    return table.rename(columns=renames) if renames else table


# --------------------------------------------------------------------------
# 2×2 deep matrix factorization
# --------------------------------------------------------------------------


def format_e(x: float) -> str:
    """A number as the paper's legends write it: 3e-3, 1.5e-3, 1e-6 (no '+', no leading zeros).

    Parameters
    ----------
    x : float

    Returns
    -------
    str
    """
    mant, exp = f"{float(x):.2e}".split("e")
    mant = mant.rstrip("0").rstrip(".")
    return f"{mant}e{int(exp)}"


def dmf_run_label(lr: float, init_product_std: float, init: str) -> str:
    """The paper's legend label of a 2×2 run (Figure 1, spec §3).

    Parameters
    ----------
    lr : float
        Learning rate.
    init_product_std : float
        The paper's "init X" (std of the product's entries at initialization).
    init : str
        ``gaussian``, ``balanced`` (adds " (b)") or ``identity`` (adds " (id)").

    Returns
    -------
    str
        E.g. ``"lr 3e-3, init 1e-6 (b)"``.
    """
    suffix = {"balanced": " (b)", "identity": " (id)"}.get(init, "")
    return f"lr {format_e(lr)}, init {format_e(init_product_std)}{suffix}"


def det_lower_bound(loss: np.ndarray | float) -> np.ndarray:
    """Lower bound on |P11| for [[*,1],[1,0]] while det(P) > 0: (1 − √(2ℓ))² / √(2ℓ).

    With ℓ = ½ Σ_Ω (P − b)², every observed residual is at most √(2ℓ), so
    P12, P21 ≥ 1 − √(2ℓ) and |P22| ≤ √(2ℓ); det > 0 needs P11·P22 > P12·P21.
    Zero where the bound is void (ℓ ≥ ½). Tends to ``THEORY_C / √ℓ``.

    Parameters
    ----------
    loss : array_like or float
        ℓ.

    Returns
    -------
    numpy.ndarray
        The bound at each ℓ (inf at ℓ = 0).
    """
    loss = np.asarray(loss, dtype=np.float64)
    r = np.sqrt(2.0 * np.clip(loss, 0.0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        bound = np.where((r > 0) & (r < 1), (1 - r) ** 2 / r, 0.0)
    return np.where(loss <= 0, np.inf, bound)


def fit_inverse_sqrt(loss: np.ndarray, value: np.ndarray, max_loss: float = 1.3e-2) -> float:
    """``c`` of ``|value| ≈ c/√loss``: median of ``|value|·√loss`` over points with loss ≤ ``max_loss``.

    Parameters
    ----------
    loss : array_like
        Logged losses ℓ.
    value : array_like
        The logged values (|P11| in Figure 1).
    max_loss : float
        Only points with ``0 < ℓ ≤ max_loss`` (the asymptotic regime) count.

    Returns
    -------
    float
        The median; NaN when no finite point qualifies.
    """
    loss = np.asarray(loss, dtype=np.float64)
    value = np.abs(np.asarray(value, dtype=np.float64))
    ok = np.isfinite(loss) & np.isfinite(value) & (loss > 0) & (loss <= max_loss)
    if not ok.any():
        return math.nan
    return float(np.median(value[ok] * np.sqrt(loss[ok])))


def dmf_tables(
    figure: str,
    runs: Sequence[Mapping[str, Any]],
    observed: Mapping[str, Sequence[float]],
    histories: Sequence[Mapping[str, np.ndarray]],
    statuses: Sequence[str],
    iterations: Sequence[int],
    final_products: Sequence[np.ndarray],
    settings: Mapping[str, Any],
    wall_seconds: float,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Runs and trajectories tables of one batch of 2×2 runs (Figure 1, perturbed; spec §3, §6.2).

    The unobserved entry is P11. Per run: the training loss
    ``ℓ = ½ Σ_Ω (P − b)²`` at the last logged row and at the cut (the first
    logged loss below 1e-4, :data:`CURVE_CUT_LOSS`), |P11| there, ``det(P)`` and
    the effective rank (over the nonzero singular values, spec §2.1) of the final
    product, and ``c_fit`` of ``|P11| ≈ c/√ℓ`` over the drawn curve.

    Parameters
    ----------
    figure : str
    runs : sequence of mapping
        Each run's spec: ``run_id``, ``dataset``, ``depth``, ``run_index``,
        ``rep``, ``init``, ``init_product_std``, ``lr``, ``det_sign``, ``seed``.
    observed : mapping
        ``observed[dataset]`` = the observed values (b12, b21, b22).
    histories : sequence of mapping
        ``iteration``, ``loss``, ``p11`` … ``p22`` arrays per run (as
        :func:`two_by_two.run_results` gives).
    statuses, iterations, final_products : sequences
        Each run's status name, stopping iteration and final product ``[2, 2]``.
    settings : mapping
        ``dtype``, ``log_every``, ``tol``, ``max_iters``.
    wall_seconds : float
        The batch's wall time (recorded on every row).

    Returns
    -------
    runs : pandas.DataFrame
        :data:`DMF_RUN_COLUMNS`, one row per run.
    trajectories : pandas.DataFrame
        :data:`DMF_TRAJECTORY_COLUMNS`, one row per logged iteration.
    """
    rows, traj = [], []
    for spec, hist, status, its, prod in zip(runs, histories, statuses, iterations, final_products):
        b12, b21, b22 = (float(v) for v in observed[spec["dataset"]])
        loss = np.asarray(hist["loss"], dtype=np.float64)
        p11 = np.asarray(hist["p11"], dtype=np.float64)
        cut = first_below(loss, CURVE_CUT_LOSS)
        last = len(loss) - 1
        cut_row = cut if cut >= 0 else last
        prod = np.asarray(prod, dtype=np.float64)
        with np.errstate(all="ignore"):
            det = float(np.linalg.det(prod)) if np.all(np.isfinite(prod)) else math.nan
        keep = slice(0, cut_row + 1) if last >= 0 else slice(0, 0)
        rows.append({
            "run_id": spec["run_id"], "paper": PAPER, "figure": figure, "dataset": spec["dataset"],
            "b12": b12, "b21": b21, "b22": b22, "depth": int(spec["depth"]),
            "run_index": int(spec["run_index"]), "rep": int(spec["rep"]),
            "label": dmf_run_label(spec["lr"], spec["init_product_std"], spec["init"]),
            "init": spec["init"], "balanced": spec["init"] == "balanced",
            "init_product_std": float(spec["init_product_std"]), "lr": float(spec["lr"]),
            "det_sign": int(spec["det_sign"]), "seed": int(spec["seed"]),
            "dtype": str(settings["dtype"]), "log_every": int(settings["log_every"]),
            "tol": float(settings["tol"]), "max_iters": int(settings["max_iters"]),
            "status": str(status), "iterations": int(its),
            "final_train_loss": float(loss[-1]) if last >= 0 else math.nan,
            "abs_unobserved_final": abs(float(prod[0, 0])),
            "cut_iteration": int(hist["iteration"][cut_row]) if last >= 0 else -1,
            "train_loss_at_cut": float(loss[cut_row]) if last >= 0 else math.nan,
            "abs_unobserved_at_cut": abs(float(p11[cut_row])) if last >= 0 else math.nan,
            "det_final": det,
            "effective_rank_final": effective_rank(singular_values(prod), log_guard=None)
            if np.isfinite(det) else math.nan,
            "c_fit": fit_inverse_sqrt(loss[keep], p11[keep]),
            "n_logged": int(len(loss)), "wall_seconds": float(wall_seconds),
        })
        frame = {"run_id": spec["run_id"], "iteration": np.asarray(hist["iteration"], dtype=np.int64),
                 "train_loss": loss}
        for name in ("p11", "p12", "p21", "p22"):
            frame[name] = np.asarray(hist[name], dtype=np.float64)
        frame["abs_unobserved"] = np.abs(p11)
        traj.append(pd.DataFrame(frame))
    runs_df = pd.DataFrame(rows, columns=DMF_RUN_COLUMNS)
    traj_df = pd.concat(traj, ignore_index=True) if traj else pd.DataFrame(columns=DMF_TRAJECTORY_COLUMNS)
    return runs_df, traj_df


def dmf_markers_table(
    runs: pd.DataFrame, trajectories: pd.DataFrame, thresholds: Sequence[float] = MARKER_LOSSES
) -> pd.DataFrame:
    """One row per (run, marker): |P11| at Figure 1's grey markers (spec §3).

    Marker k sits at the row :func:`marker_rows` gives (first logged loss below
    1.3e-1, …, 1.3e-4, the authors' rule). Markers never reached keep a row with
    ``row``/``iteration`` −1 and NaN values, so a missing marker is visible
    rather than silently absent.

    Parameters
    ----------
    runs : pandas.DataFrame
        A 2×2 runs table (:data:`DMF_RUN_COLUMNS`).
    trajectories : pandas.DataFrame
        Its trajectories table (:data:`DMF_TRAJECTORY_COLUMNS`).
    thresholds : sequence of float
        The marker losses.

    Returns
    -------
    pandas.DataFrame
        :data:`DMF_MARKER_COLUMNS`, ``len(runs) × len(thresholds)`` rows.
    """
    out = []
    by_run = {k: g for k, g in trajectories.groupby("run_id", sort=False)}
    for run in runs.itertuples(index=False):
        t = by_run.get(run.run_id)
        loss = t["train_loss"].to_numpy() if t is not None else np.array([])
        idx = marker_rows(loss, thresholds)
        for k, (thr, i) in enumerate(zip(thresholds, idx), start=1):
            ok = i >= 0
            out.append({
                "run_id": run.run_id, "figure": run.figure, "dataset": run.dataset, "b22": run.b22,
                "depth": run.depth, "run_index": run.run_index, "rep": run.rep, "label": run.label,
                "init": run.init, "balanced": run.balanced, "init_product_std": run.init_product_std,
                "lr": run.lr,
                "det_sign": run.det_sign, "seed": run.seed, "marker": k, "marker_loss": float(thr),
                "row": int(i),
                "iteration": int(t["iteration"].iloc[i]) if ok else -1,
                "train_loss": float(t["train_loss"].iloc[i]) if ok else math.nan,
                "abs_unobserved": float(t["abs_unobserved"].iloc[i]) if ok else math.nan,
            })
    return pd.DataFrame(out, columns=DMF_MARKER_COLUMNS)


def marker_trajectories(trajectories: pd.DataFrame, thresholds: Sequence[float] = MARKER_LOSSES) -> pd.DataFrame:
    """The rows of a 2×2 trajectories table that :func:`dmf_markers_table` reads, and each run's ends.

    Marker k of a run is its first logged row with loss below ``thresholds[k]``. A
    subset that keeps those rows keeps every marker: the subset's first row below a
    threshold is still the full table's, because every earlier row is above it. An
    instance-spread job needs only its markers, so it stores this subset (the
    spread of Figure 1 at depths 3-4 logs 10^4-10^5 rows per run, 81 MB in all).

    Parameters
    ----------
    trajectories : pandas.DataFrame
        :data:`DMF_TRAJECTORY_COLUMNS`, each run's rows in iteration order.
    thresholds : sequence of float
        The marker losses.

    Returns
    -------
    pandas.DataFrame
        The same columns: per run, the first row, the marker rows and the last row.
    """
    keep = np.zeros(len(trajectories), dtype=bool)
    losses = trajectories["train_loss"].to_numpy()
    for rows in trajectories.groupby("run_id", sort=False).indices.values():
        loss = losses[rows]
        chosen = [0, len(rows) - 1] + [i for i in marker_rows(loss, thresholds) if i >= 0]
        keep[rows[chosen]] = True
    return trajectories.loc[keep].reset_index(drop=True)


def sort_dmf(runs: pd.DataFrame, trajectories: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The 2×2 tables in a stable order: runs by depth, data set, run index, repetition;
    trajectories by run (in that order) then iteration.

    Parameters
    ----------
    runs, trajectories : pandas.DataFrame
        A 2×2 figure's runs and trajectories (any order).

    Returns
    -------
    runs, trajectories : pandas.DataFrame
        Sorted, with fresh indices.
    """
    runs = runs.sort_values(["depth", "dataset", "run_index", "rep"], kind="stable").reset_index(drop=True)
    order = {r: i for i, r in enumerate(runs["run_id"])}
    trajectories = trajectories.assign(_o=trajectories["run_id"].map(order)).sort_values(
        ["_o", "iteration"], kind="stable").drop(columns="_o").reset_index(drop=True)
    return runs, trajectories


# --------------------------------------------------------------------------
# Tensor completion
# --------------------------------------------------------------------------


def tc_series(method: str, init_std: float | None = None) -> str:
    """Series name of Figure 2's legend (spec §4).

    Parameters
    ----------
    method : str
        ``tf``, ``linear`` or ``ground_truth``.
    init_std : float or None
        σ_init of a ``tf`` series.

    Returns
    -------
    str
        ``"tf, init 1e-2"``, ``"linear"`` or ``"ground truth"``.
    """
    if method == "tf":
        return f"tf, init {format_e(init_std)}"
    return {"linear": "linear", "ground_truth": "ground truth"}.get(method, method)


def tc_rows(
    figure: str,
    dataset: Mapping[str, Any],
    n_obs: int,
    method: str,
    runs: Sequence[Mapping[str, Any]],
) -> pd.DataFrame:
    """Runs-table rows for one (data set, n) and one method.

    ``dataset`` holds ``name``, ``order``, ``mode_size``, ``rank``; each
    element of ``runs`` the per-row values (any of ``TC_RUN_COLUMNS``;
    ``run_id``, ``cp_rank``, ``recon_error`` at least). Missing columns get
    their "not applicable" value (NaN, −1, "").

    Parameters
    ----------
    figure : str
    dataset : mapping
        ``name``, ``order``, ``mode_size`` and ``rank`` (the ground truth's CP rank).
    n_obs : int
        Observed entries.
    method : str
        ``tf``, ``linear`` or ``ground_truth``.
    runs : sequence of mapping
        Per-row values.

    Returns
    -------
    pandas.DataFrame
        :data:`TC_RUN_COLUMNS`, integer columns as int64.
    """
    rows = []
    for r in runs:
        row = {c: math.nan for c in TC_RUN_COLUMNS}
        row.update(rep=-1, seed=-1, rank_seed=-1, iterations=-1, num_components=-1, status="exact")
        row.update({
            "paper": PAPER, "figure": figure, "dataset": dataset["name"], "order": int(dataset["order"]),
            "mode_size": int(dataset["mode_size"]), "rank": int(dataset["rank"]),
            "n_obs": int(n_obs), "method": method,
        })
        row.update(r)
        row["series"] = tc_series(method, row.get("init_std"))
        rows.append(row)
    df = pd.DataFrame(rows, columns=TC_RUN_COLUMNS)
    for col in ("order", "mode_size", "rank", "n_obs", "rep", "seed", "rank_seed",
                "num_components", "iterations", "cp_rank"):
        df[col] = df[col].astype("int64")
    return df


def _q(values: np.ndarray, q: float) -> float:
    v = values[np.isfinite(values)]
    return float(np.percentile(v, q)) if v.size else math.nan


def tc_summary(runs: pd.DataFrame) -> pd.DataFrame:
    """Median and 25th/75th percentiles (numpy's linear interpolation) per series and n.

    Ground-truth rows are left out (they are one value per data set). Failed
    runs (status ``diverged``) enter the counts but not the statistics. These are
    Figure 2's markers (median) and bars (25th–75th percentiles), spec §4.

    Parameters
    ----------
    runs : pandas.DataFrame
        A tensor figure's runs table.

    Returns
    -------
    pandas.DataFrame
        :data:`TC_SUMMARY_COLUMNS`, one row per (data set, series, n).
    """
    work = runs.loc[runs["method"] != "ground_truth"]
    out = []
    keys = ["figure", "dataset", "order", "rank", "series", "n_obs"]
    for key, g in work.groupby(keys, sort=True):
        ok = g.loc[g["status"] != "diverged"]
        err = ok["recon_error"].to_numpy(dtype=float)
        rank = ok["cp_rank"].to_numpy(dtype=float)
        row = dict(zip(keys, key))
        row.update(
            n_runs=int(len(g)),
            n_failed=int((~g["status"].isin(["converged", "exact"])).sum()),
            recon_error_median=_q(err, 50), recon_error_p25=_q(err, 25), recon_error_p75=_q(err, 75),
            cp_rank_median=_q(rank, 50), cp_rank_p25=_q(rank, 25), cp_rank_p75=_q(rank, 75),
        )
        out.append(row)
    return pd.DataFrame(out, columns=TC_SUMMARY_COLUMNS)


def tc_trajectories(figure: str, dataset: str, n_obs: int, run_ids: Sequence[str],
                    histories: Sequence[Mapping[str, np.ndarray]]) -> pd.DataFrame:
    """The trajectories table of one tensor training job.

    Parameters
    ----------
    figure, dataset : str
    n_obs : int
    run_ids : sequence of str
    histories : sequence of mapping
        Per run, ``iteration``, ``train_loss`` (MSE over the observed entries)
        and ``reconstruction_error`` arrays, as the engine logs them (spec §2.2).

    Returns
    -------
    pandas.DataFrame
        ``run_id, figure, dataset, n_obs, iteration, train_loss, recon_error``.
    """
    frames = []
    for run_id, h in zip(run_ids, histories):
        frames.append(pd.DataFrame({
            "run_id": run_id, "figure": figure, "dataset": dataset, "n_obs": int(n_obs),
            "iteration": np.asarray(h["iteration"], dtype=np.int64),
            "train_loss": np.asarray(h["train_loss"], dtype=np.float64),
            "recon_error": np.asarray(h["reconstruction_error"], dtype=np.float64),
        }))
    cols = ["run_id", "figure", "dataset", "n_obs", "iteration", "train_loss", "recon_error"]
    return pd.concat(frames, ignore_index=True)[cols] if frames else pd.DataFrame(columns=cols)


def sort_tc(runs: pd.DataFrame) -> pd.DataFrame:
    """A tensor runs table in a stable order: order, rank, data set, method (ground
    truth, linear, tf), n, init, repetition.

    Parameters
    ----------
    runs : pandas.DataFrame

    Returns
    -------
    pandas.DataFrame
        Sorted, with a fresh index.
    """
    rank = {"ground_truth": 0, "linear": 1, "tf": 2}
    return (runs.assign(_m=runs["method"].map(rank))
            .sort_values(["order", "rank", "dataset", "_m", "n_obs", "init_std", "rep"],
                         kind="stable", na_position="first")
            .drop(columns="_m").reset_index(drop=True))

