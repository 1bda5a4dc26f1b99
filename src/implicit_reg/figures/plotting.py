"""Shared plot style and helpers for the figure notebooks (spec §1.10, §1.11).

The figure notebooks in ``workflow/notebooks/`` read only parquet tables and
use these helpers so that every figure shares

* the authors' notebook style: matplotlib defaults with
  ``axes.formatter.limits = (-4, 4)`` and the grid on (:data:`STYLE_RC`);
* one colour and marker per depth (:func:`depth_style`), a red line for the
  minimum-nuclear-norm solution and a purple one for the ground truth;
* mean ± *population* std over seeds (:func:`mean_std_by`, ``ddof=0`` as
  ``np.std`` in the authors' notebook);
* explicit marking of runs that did not finish normally
  (:mod:`implicit_reg.figures.run_status`, re-exported here): a diverged run is left out of
  the mean and drawn as a hollow red marker, a run stopped at the iteration cap is
  in the mean and drawn as a hollow orange square, both counted in a panel
  annotation, never silently dropped or averaged in;
* byte-stable saving (:func:`save_figure`): no wall-clock time in the PDF, the
  ``SOURCE_DATE_EPOCH`` convention honoured, a fixed SVG hash salt.

Nothing here imports Snakemake or reads files other than through arguments.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.transforms import blended_transform_factory

# Re-exported: the notebooks use them as P.<name>.
from implicit_reg.figures.run_status import (  # noqa: F401
    CAPPED_MARKER_STYLE,
    CAPPED_STATUSES,
    EXCLUDED_FROM_MEAN,
    FAILED_MARKER_STYLE,
    OK_STATUSES,
    STATUS_LABELS,
    capped_mask,
    describe_failures,
    failed_mask,
    failed_runs_report,
    mark_failed_runs,
    mean_std_by,
    status_counts,
)

# --------------------------------------------------------------------------
# Style
# --------------------------------------------------------------------------

#: Fixed salt for SVG element ids (otherwise random per process).
SVG_HASHSALT = "implicit-reg"

#: rcParams of the authors' notebook (spec §1.11) plus reproducibility settings.
STYLE_RC: dict[str, Any] = {
    "axes.formatter.limits": (-4, 4),
    "axes.grid": True,
    "svg.hashsalt": SVG_HASHSALT,
}

#: Series styles of spec §1.11, keyed by depth.
DEPTH_STYLES: dict[int, dict[str, str]] = {
    2: {"color": "C0", "marker": "x"},
    3: {"color": "C1", "marker": "o"},
    4: {"color": "C2", "marker": "^"},
}

#: Fallback styles for depths outside the spec (1, 5, ...); C3/C4 are reserved.
_EXTRA_DEPTH_STYLES: list[dict[str, str]] = [
    {"color": "C5", "marker": "s"},
    {"color": "C6", "marker": "D"},
    {"color": "C7", "marker": "v"},
    {"color": "C8", "marker": "P"},
    {"color": "C9", "marker": "*"},
]

#: Minimum-nuclear-norm solution: red horizontal line, linewidth 3.
MIN_NUCLEAR_NORM_STYLE: dict[str, Any] = {"color": "C3", "linewidth": 3}
#: Ground truth: purple horizontal line, linewidth 3.
GROUND_TRUTH_STYLE: dict[str, Any] = {"color": "C4", "linewidth": 3}

#: Learning-rate series of notebook Figure 1 (spec §2.N1).
LR_STYLES: dict[float, dict[str, str]] = {
    1e-3: {"color": "C0", "linestyle": "-", "marker": "o"},
    3e-4: {"color": "C3", "linestyle": ":", "marker": "^"},
}
_EXTRA_LR_STYLES: list[dict[str, str]] = [
    {"color": "C2", "linestyle": "--", "marker": "s"},
    {"color": "C1", "linestyle": "-.", "marker": "D"},
    {"color": "C5", "linestyle": (0, (5, 1)), "marker": "v"},
]

#: Line styles used to tell learning rates (or init scales) apart inside a colour.
LINESTYLE_CYCLE: tuple[Any, ...] = ("-", "--", ":", "-.", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)))

def apply_style(extra: Mapping[str, Any] | None = None) -> None:
    """Set the shared rcParams (:data:`STYLE_RC`), optionally with overrides.

    Call once at the top of a notebook, before creating figures.
    """
    mpl.rcParams.update(STYLE_RC)
    if extra:
        mpl.rcParams.update(dict(extra))


def depth_style(depth: int) -> dict[str, str]:
    """Colour and marker of the series for ``depth`` (spec §1.11).

    Depths 2, 3, 4 get C0 "x", C1 "o", C2 "^"; other depths get distinct
    fallback styles that avoid the reserved C3 (min nuclear norm) and C4
    (ground truth).
    """
    depth = int(depth)
    if depth in DEPTH_STYLES:
        return dict(DEPTH_STYLES[depth])
    return dict(_EXTRA_DEPTH_STYLES[depth % len(_EXTRA_DEPTH_STYLES)])


def lr_style(lr: float, others: Sequence[float] = ()) -> dict[str, str]:
    """Colour, line style and marker of a learning-rate series (spec §2.N1).

    lr = 1e-3 is C0 solid "o", lr = 3e-4 is C3 dotted "^" (matched with a
    relative tolerance). Other learning rates take fallback styles in the order
    they appear in ``others`` (a sorted list of all non-standard rates).
    """
    for key, style in LR_STYLES.items():
        if math.isclose(float(lr), key, rel_tol=1e-6):
            return dict(style)
    extra = [x for x in others if not any(math.isclose(x, k, rel_tol=1e-6) for k in LR_STYLES)]
    idx = next((i for i, x in enumerate(extra) if math.isclose(x, lr, rel_tol=1e-6)), len(extra))
    return dict(_EXTRA_LR_STYLES[idx % len(_EXTRA_LR_STYLES)])


def sequential_colors(n: int, cmap: str = "viridis", lo: float = 0.0, hi: float = 0.85) -> list[tuple[float, ...]]:
    """``n`` colours evenly spaced on ``cmap`` between ``lo`` and ``hi``."""
    if n <= 0:
        return []
    cm = mpl.colormaps[cmap]
    pos = [0.5 * (lo + hi)] if n == 1 else list(np.linspace(lo, hi, n))
    return [tuple(cm(float(p))) for p in pos]


# --------------------------------------------------------------------------
# Labels
# --------------------------------------------------------------------------


def format_count(n: float) -> str:
    """Short count label as in the authors' titles: 2000 → "2k", 2500 → "2.5k"."""
    n = float(n)
    if n >= 1000 and n % 100 == 0:
        return f"{n / 1000:g}k"
    return f"{n:g}"


def format_sci(x: float) -> str:
    """Compact scientific label: 1e-3 → "1e-3", 3e-4 → "3e-4", 2.5e-5 → "2.5e-5"."""
    if not np.isfinite(x):
        return str(x)
    if x == 0:
        return "0"
    mant, exp = f"{x:.3e}".split("e")
    mant = mant.rstrip("0").rstrip(".")
    return f"{mant}e{int(exp)}"


def init_ratio_label(init_scale: float, reference: float) -> str:
    """Label an init scale by its ratio to ``reference``: "init", "init/2", "init×2".

    Ratios that are not an integer or the inverse of one (up to 16) fall back
    to the scale itself, e.g. "init 3e-4".
    """
    if not (np.isfinite(init_scale) and np.isfinite(reference)) or init_scale <= 0 or reference <= 0:
        return f"init {format_sci(init_scale)}"
    ratio = Fraction(reference / init_scale).limit_denominator(16)
    if abs(float(ratio) - reference / init_scale) > 1e-6 * reference / init_scale:
        return f"init {format_sci(init_scale)}"
    if ratio == 1:
        return "init"
    if ratio.denominator == 1:
        return f"init/{ratio.numerator}"
    if ratio.numerator == 1:
        return f"init×{ratio.denominator}"
    return f"init {format_sci(init_scale)}"


# --------------------------------------------------------------------------
# Axis limits
# --------------------------------------------------------------------------


def auto_limits(
    values: Iterable[float],
    default: Sequence[float] | None = None,
    *,
    log: bool = False,
    margin: float = 0.05,
) -> tuple[float, float] | None:
    """Axis limits that contain the finite ``values``.

    With ``default`` the default is kept and only widened (by ``margin`` of the
    data span, or a factor in log space) when data falls outside. Without it the
    limits are the data range plus ``margin``. Returns ``None`` when there is no
    usable value and no default.
    """
    v = np.asarray([float(x) for x in values], dtype=float)
    v = v[np.isfinite(v)]
    if log:
        v = v[v > 0]
    if v.size == 0:
        return None if default is None else (float(default[0]), float(default[1]))
    lo, hi = float(v.min()), float(v.max())
    if log:
        llo, lhi = math.log10(lo), math.log10(hi)
        pad = max(margin * (lhi - llo), 0.1)
        dlo, dhi = 10 ** (llo - pad), 10 ** (lhi + pad)
    else:
        span = hi - lo
        pad = margin * span if span > 0 else max(abs(hi) * margin, 1e-12)
        dlo, dhi = lo - pad, hi + pad
    if default is None:
        return (dlo, dhi)
    a, b = float(default[0]), float(default[1])
    return (min(a, dlo) if lo < a else a, max(b, dhi) if hi > b else b)


# --------------------------------------------------------------------------
# Saving
# --------------------------------------------------------------------------


def _source_date() -> _dt.datetime | None:
    """The ``SOURCE_DATE_EPOCH`` time (UTC), or ``None`` when unset/invalid."""
    raw = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not raw:
        return None
    try:
        return _dt.datetime.fromtimestamp(int(raw), tz=_dt.timezone.utc)
    except (ValueError, OverflowError, OSError):
        return None


def pdf_metadata() -> dict[str, Any]:
    """PDF metadata free of wall-clock time.

    ``CreationDate`` is the ``SOURCE_DATE_EPOCH`` time when set and omitted
    otherwise, so two saves of the same figure are byte-identical either way.
    """
    return {
        "Creator": "implicit_reg.figures.plotting",
        "CreationDate": _source_date(),
    }


def png_metadata() -> dict[str, Any]:
    """PNG metadata without time stamps."""
    return {"Software": "implicit_reg.figures.plotting (matplotlib " + mpl.__version__ + ")"}


def save_figure(
    fig: Figure,
    pdf_path: str | os.PathLike[str],
    png_path: str | os.PathLike[str] | None = None,
    dpi: int = 150,
    *,
    svg_path: str | os.PathLike[str] | None = None,
) -> list[Path]:
    """Save ``fig`` as PDF (and PNG / SVG when given), byte-stably.

    Parent directories are created. The PDF carries no wall-clock time
    (:func:`pdf_metadata`), the PNG no time stamp, and SVG ids use the fixed
    :data:`SVG_HASHSALT`. Returns the written paths.
    """
    written: list[Path] = []
    targets: list[tuple[Path, dict[str, Any]]] = [(Path(pdf_path), {"metadata": pdf_metadata()})]
    if png_path is not None:
        targets.append((Path(png_path), {"metadata": png_metadata(), "dpi": dpi}))
    if svg_path is not None:
        targets.append((Path(svg_path), {"metadata": {"Date": None, "Creator": "implicit_reg.figures.plotting"}}))
    with mpl.rc_context({"svg.hashsalt": SVG_HASHSALT}):
        for path, kwargs in targets:
            path.parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(path, **kwargs)
            written.append(path)
    return written


# --------------------------------------------------------------------------
# Small helpers shared by the notebooks
# --------------------------------------------------------------------------


def format_mean_std(mean: float, std: float, digits: int = 3) -> str:
    """Text of a mean ± std: "1.234e-04 ± 5.6e-06", or "215.43 ± 0.039" for 0.1 ≤ |mean| < 1e5.

    ``nan`` when the mean is missing. ``digits`` is the number of decimals of
    the scientific form (the plain form keeps ``digits + 2`` significant digits).
    """
    if not np.isfinite(mean):
        return "nan"
    if 0.1 <= abs(mean) < 1e5:
        return f"{mean:.{digits + 2}g} ± {std:.2g}"
    return f"{mean:.{digits}e} ± {std:.1e}"


def n_obs_label(task: str) -> str:
    """x-axis label of an #observations sweep for ``task``."""
    return {
        "completion": "number of observed entries",
        "sensing": "number of measurements",
        "movielens": "number of observed ratings",
    }.get(task, "number of observations")


def closest_value(values: Iterable[float], wanted: float | None) -> float | None:
    """The element of ``values`` closest to ``wanted`` in log distance.

    ``wanted=None`` returns the largest value; an empty ``values`` returns None.
    """
    vals = sorted({float(v) for v in values if v is not None and np.isfinite(v)})
    if not vals:
        return None
    if wanted is None:
        return vals[-1]
    if wanted <= 0:
        return min(vals, key=lambda v: abs(v - wanted))
    return min(vals, key=lambda v: abs(math.log(v / wanted)) if v > 0 else math.inf)


def errorbar_series(
    ax: Axes,
    agg: pd.DataFrame,
    x: str,
    *,
    x_transform: Any = None,
    capsize: float = 3.0,
    **style: Any,
) -> Any:
    """Plot mean ± std of a :func:`mean_std_by` table along ``x`` with ``errorbar``.

    A group without a usable value (NaN mean, e.g. every seed diverged) leaves
    a gap in the line rather than being bridged; groups absent from ``agg`` are
    simply not drawn. Returns the errorbar container (None when no group has a
    value).
    """
    rows = agg.sort_values(x)
    means = rows["mean"].to_numpy(dtype=float)
    if not np.isfinite(means).any():
        return None
    xs = rows[x].to_numpy(dtype=float)
    if x_transform is not None:
        xs = np.asarray(x_transform(xs), dtype=float)
    stds = np.where(np.isfinite(means), rows["std"].to_numpy(dtype=float), 0.0)
    return ax.errorbar(xs, means, yerr=np.nan_to_num(stds), capsize=capsize, **style)


def pivot_mean_std(agg: pd.DataFrame, index: Sequence[str], columns: str, digits: int = 3) -> pd.DataFrame:
    """Wide table of "mean ± std" strings from a :func:`mean_std_by` table.

    A cell of a group with abnormal runs gets the suffix " [1 diverged]" etc.
    """
    cells = agg.copy()
    cells["cell"] = [
        format_mean_std(m, s, digits) + (f" [{f}]" if f else "")
        for m, s, f in zip(cells["mean"], cells["std"], cells["failures"])
    ]
    wide = cells.pivot_table(index=list(index), columns=columns, values="cell", aggfunc="first")
    wide = wide.fillna("")

    def fmt(v: Any) -> Any:
        if isinstance(v, (float, np.floating)) and np.isfinite(v) and float(v) != int(v):
            return format_sci(float(v))
        if isinstance(v, (float, np.floating)) and np.isfinite(v):
            return int(v)
        return v

    if isinstance(wide.index, pd.MultiIndex):
        wide.index = pd.MultiIndex.from_tuples([tuple(fmt(v) for v in t) for t in wide.index],
                                               names=wide.index.names)
    else:
        wide.index = pd.Index([fmt(v) for v in wide.index], name=wide.index.name)
    wide.columns = pd.Index([fmt(v) for v in wide.columns], name=wide.columns.name)
    return wide


def legend_entries(
    axes: Axes | Iterable[Axes], prefixes: Sequence[str] = ("depth",)
) -> tuple[list[Any], list[str]]:
    """Legend handles and labels of one or several axes, deduplicated and ordered.

    Entries are collected over all ``axes`` (first occurrence of a label wins),
    so a legend drawn in one panel also lists series present only elsewhere.
    Labels starting with ``prefixes[0]`` come first, then ``prefixes[1]``, ...,
    then the rest; the plotting order is kept inside each group. (Matplotlib
    otherwise lists plain lines such as ``axhline`` before errorbar series.)
    """
    axes_list = [axes] if isinstance(axes, Axes) else list(np.ravel(np.asarray(axes, dtype=object)))
    handles: list[Any] = []
    labels: list[str] = []
    for ax in axes_list:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)

    def rank(label: str) -> int:
        return next((i for i, p in enumerate(prefixes) if label.startswith(p)), len(prefixes))

    order = sorted(range(len(labels)), key=lambda i: (rank(labels[i]), i))
    return [handles[i] for i in order], [labels[i] for i in order]


def tint(color: Any, amount: float) -> tuple[float, float, float]:
    """``color`` mixed with white: ``amount`` 0 keeps it, 1 gives white."""
    r, g, b = mpl.colors.to_rgb(color)
    a = min(max(float(amount), 0.0), 1.0)
    return (r + (1 - r) * a, g + (1 - g) * a, b + (1 - b) * a)
