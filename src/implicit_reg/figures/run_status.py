"""Run statuses on the figures: which runs enter a figure's mean, and how the others are drawn.

The policy, the same for every figure of both papers:

* a run that **diverged** (non-finite loss, or above ``engine.divergence_loss``) has no
  meaningful final value: it is left out of the mean and drawn on its own as a hollow
  red circle (a red triangle at the panel's top edge when it has no value);
* a run **stopped at the iteration cap** (status ``max_iters``) still reached a value:
  it *enters* the mean, as in the papers, whose authors plot whatever their runs
  reached (their code has no other stopping rule than the cap and the loss
  tolerance). It is also drawn on its own as a hollow orange square
  (:data:`CAPPED_MARKER_STYLE`), and the panel says how many hit the cap, so a mean
  that includes unfinished runs is never silent;
* minimum-nuclear-norm rows whose solver did not report ``optimal`` are drawn like
  diverged runs.

:mod:`implicit_reg.figures.plotting` re-exports everything here (``P.mean_std_by`` in the
notebooks).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.transforms import blended_transform_factory

#: Statuses of a run that finished normally (GD, CVXPY, ground-truth rows).
OK_STATUSES: frozenset[str] = frozenset({"converged", "optimal", "exact"})

#: Human wording of abnormal statuses in annotations and summaries.
STATUS_LABELS: dict[str, str] = {
    "diverged": "diverged",
    "max_iters": "hit cap",
    "optimal_inaccurate": "inaccurate",
    "infeasible": "infeasible",
    "solver_error": "solver error",
}

#: Statuses of a run stopped at the iteration cap: in the mean, drawn with their own marker.
CAPPED_STATUSES: frozenset[str] = frozenset({"max_iters"})

#: Statuses left out of a figure's mean by default: runs without a meaningful final value.
EXCLUDED_FROM_MEAN: tuple[str, ...] = ("diverged",)

#: Marker of a run that did not finish normally and is not in the mean.
FAILED_MARKER_STYLE: dict[str, Any] = {
    "marker": "o",
    "markersize": 9,
    "markerfacecolor": "none",
    "markeredgecolor": "red",
    "markeredgewidth": 1.5,
    "linestyle": "none",
}


#: Marker of a run stopped at the iteration cap (it is in the mean).
CAPPED_MARKER_STYLE: dict[str, Any] = {
    "marker": "s",
    "markersize": 8,
    "markerfacecolor": "none",
    "markeredgecolor": "darkorange",
    "markeredgewidth": 1.5,
    "linestyle": "none",
}


def failed_mask(df: pd.DataFrame, status_col: str = "status") -> pd.Series:
    """Boolean mask of rows whose status is not a normal finish (:data:`OK_STATUSES`).

    Rows without a status column are considered fine.
    """
    if status_col not in df.columns:
        return pd.Series(False, index=df.index)
    return ~df[status_col].astype("string").fillna("missing").isin(sorted(OK_STATUSES))


def capped_mask(df: pd.DataFrame, status_col: str = "status") -> pd.Series:
    """Boolean mask of rows stopped at the iteration cap (:data:`CAPPED_STATUSES`)."""
    if status_col not in df.columns:
        return pd.Series(False, index=df.index)
    return df[status_col].astype("string").isin(sorted(CAPPED_STATUSES)).fillna(False).astype(bool)


def status_counts(df: pd.DataFrame, status_col: str = "status") -> dict[str, int]:
    """Counts of abnormal statuses, e.g. ``{"diverged": 1, "max_iters": 2}`` (sorted keys)."""
    bad = df.loc[failed_mask(df, status_col)]
    if bad.empty:
        return {}
    counts = bad[status_col].astype("string").fillna("missing").value_counts()
    return {str(k): int(counts[k]) for k in sorted(counts.index)}


def describe_failures(counts: Mapping[str, int] | pd.DataFrame, status_col: str = "status") -> str:
    """Human summary such as "1 diverged, 2 hit cap" ("" when all runs are fine)."""
    if isinstance(counts, pd.DataFrame):
        counts = status_counts(counts, status_col)
    return ", ".join(f"{n} {STATUS_LABELS.get(s, s)}" for s, n in sorted(counts.items()) if n)


def mean_std_by(
    df: pd.DataFrame,
    keys: Sequence[str] | str,
    value: str,
    *,
    exclude_statuses: Iterable[str] = EXCLUDED_FROM_MEAN,
    status_col: str = "status",
) -> pd.DataFrame:
    """Mean and population std (``ddof=0``, as ``np.std``) of ``value`` per group.

    Values that are not finite, and values of runs whose status is in
    ``exclude_statuses`` (diverged runs by default), do not enter the mean; they
    are still counted. Returns one row per group (sorted by ``keys``) with the
    key columns and

    ``mean``, ``std``
        over the used values (NaN when none is usable; std 0 for one value);
    ``n``
        number of values used;
    ``n_runs``
        number of rows in the group;
    ``n_failed``
        number of rows whose status is not a normal finish;
    ``failures``
        a summary such as "1 diverged" ("" when none).
    """
    keys = [keys] if isinstance(keys, str) else list(keys)
    if value not in df.columns:
        raise KeyError(f"column {value!r} not in table (columns: {list(df.columns)})")
    exclude = set(exclude_statuses)
    work = df.copy()
    vals = pd.to_numeric(work[value], errors="coerce").astype(float)
    usable = np.isfinite(vals.to_numpy())
    if status_col in work.columns and exclude:
        usable &= ~work[status_col].astype("string").isin(sorted(exclude)).fillna(False).to_numpy()
    work["_v"] = vals.where(usable)
    work["_failed"] = failed_mask(work, status_col).to_numpy()

    rows = []
    if keys:
        groups = work.groupby(keys, sort=True, dropna=False)
    else:
        groups = [((), work)]
    for key, grp in groups:
        key = key if isinstance(key, tuple) else (key,)
        v = grp["_v"].dropna().to_numpy(dtype=float)
        row = dict(zip(keys, key))
        row["mean"] = float(np.mean(v)) if v.size else float("nan")
        row["std"] = float(np.std(v, ddof=0)) if v.size else float("nan")
        row["n"] = int(v.size)
        row["n_runs"] = len(grp)
        row["n_failed"] = int(grp["_failed"].sum())
        row["failures"] = describe_failures(grp, status_col)
        rows.append(row)
    out = pd.DataFrame(rows, columns=[*keys, "mean", "std", "n", "n_runs", "n_failed", "failures"])
    return out.reset_index(drop=True)


def _draw_points(ax: Axes, xs: np.ndarray, ys: np.ndarray, style: Mapping[str, Any],
                 ylim: Sequence[float] | None, label: str | None) -> tuple[bool, bool]:
    """Draw points with ``style``; off-axis and valueless ones pinned to the panel edge.

    Returns whether any point had no value and whether any was off the axis.
    """
    finite = np.isfinite(ys)
    inside = finite.copy()
    trans = blended_transform_factory(ax.transData, ax.transAxes)
    if ylim is not None:
        above, below = finite & (ys > ylim[1]), finite & (ys < ylim[0])
        inside &= ~above & ~below
        for mask, y_axes, marker in ((above, 0.96, "^"), (below, 0.04, "v")):
            if mask.any():
                ax.plot(xs[mask], np.full(mask.sum(), y_axes), transform=trans, label=label, zorder=5,
                        clip_on=False, **dict(style, marker=marker))
                label = None
    if inside.any():
        ax.plot(xs[inside], ys[inside], label=label, zorder=5, **style)
        label = None
    if (~finite).any():
        ax.plot(xs[~finite], np.full((~finite).sum(), 0.96), transform=trans, label=label, zorder=5,
                clip_on=False, **dict(style, marker="^"))
    return bool((~finite).any()), bool((finite & ~inside).any())


def mark_failed_runs(
    ax: Axes,
    df: pd.DataFrame,
    x: str,
    y: str,
    *,
    x_transform: Any = None,
    status_col: str = "status",
    annotate: bool = True,
    label: str | None = None,
    text_loc: tuple[float, float] = (0.98, 0.97),
    ylim: Sequence[float] | None = None,
) -> int:
    """Draw every abnormal run of ``df`` on ``ax`` and return how many were drawn.

    A run stopped at the iteration cap (:data:`CAPPED_STATUSES`; it is in the mean) is
    drawn at (x, y) as a hollow orange square (:data:`CAPPED_MARKER_STYLE`); any other
    abnormal run (diverged, solver trouble; not in the mean) as a hollow red circle
    (:data:`FAILED_MARKER_STYLE`). A run whose ``y`` is NaN/inf (typical for a diverged
    run) is drawn as a triangle pinned to the top of the panel at its x. With
    ``annotate`` a text like "1 diverged, 2 hit cap" is written in the panel corner
    ``text_loc`` (axes coordinates, right/top aligned when the point is in the
    right/top half, else left/bottom aligned), with a line saying that capped runs are
    in the mean. ``x_transform`` maps the x column (e.g. ``lambda s: 10 * s``). With
    ``ylim``, a run whose value lies outside the limits is pinned to the panel edge it
    left by (a triangle pointing that way), so one stalled run does not stretch the axis.
    """
    bad = df.loc[failed_mask(df, status_col)]
    if bad.empty:
        return 0
    xs = pd.to_numeric(bad[x], errors="coerce").to_numpy(dtype=float)
    if x_transform is not None:
        xs = np.asarray(x_transform(xs), dtype=float)
    ys = pd.to_numeric(bad[y], errors="coerce").to_numpy(dtype=float) if y in bad.columns else np.full(len(bad), np.nan)
    capped = capped_mask(bad, status_col).to_numpy()
    no_value = off_axis = False
    for mask, style in ((~capped, FAILED_MARKER_STYLE), (capped, CAPPED_MARKER_STYLE)):
        if mask.any():
            none, off = _draw_points(ax, xs[mask], ys[mask], style, ylim, label)
            no_value, off_axis, label = no_value or none, off_axis or off, None
    if annotate:
        text = describe_failures(bad, status_col)
        if capped.any():
            text += "\n(□ hit cap: in the mean)"
        if no_value:
            text += "\n(▲: no value)"
        if off_axis:
            text += "\n(▲▼: off the axis)"
        ha = "right" if text_loc[0] > 0.5 else "left"
        va = "top" if text_loc[1] > 0.5 else "bottom"
        if va == "top" and no_value:  # keep the box below the row of ▲ markers
            text_loc = (text_loc[0], min(text_loc[1], 0.90))
        ax.text(*text_loc, text, transform=ax.transAxes, ha=ha, va=va, color="red", fontsize=8,
                bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "red", "alpha": 0.85},
                zorder=6)
    return int(len(bad))


def failed_runs_report(df: pd.DataFrame, columns: Sequence[str] = (), status_col: str = "status") -> str:
    """Text listing the runs that did not finish normally.

    "Non-converged runs: none" when every run is fine; otherwise a header with
    the counts ("Non-converged runs: 1 diverged, 2 hit cap") followed by the
    ``columns`` of those runs.
    """
    bad = df.loc[failed_mask(df, status_col)]
    if bad.empty:
        return "Non-converged runs: none"
    cols = [c for c in [*columns, status_col] if c in bad.columns]
    return f"Non-converged runs: {describe_failures(bad, status_col)}\n" + bad[cols].to_string(index=False)


