"""Published values on our figures: read them from ``config/published.yaml`` and draw them.

A figure notebook calls :func:`published_points` once for its figure and
quantity, selects the points of a panel with :func:`select_points` and draws
them with :func:`draw_published` (a point at a given x) or
:func:`draw_published_level` (a value quoted for a whole panel, e.g. a median
over every init). All markers share one style and the legend label
``published``, so a reader sees at a glance where our curve meets the paper's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from implicit_reg.scorecard.published import load_published

__all__ = [
    "default_published_path",
    "PUBLISHED_LABEL",
    "PUBLISHED_STYLE",
    "draw_published",
    "draw_published_level",
    "draw_panel",
    "published_points",
    "select_points",
]

PUBLISHED_LABEL = "published"
# Black open stars: distinct from every series colour and from the red markers
# of failed runs.
PUBLISHED_STYLE: dict[str, Any] = {
    "marker": "*", "markersize": 13, "markerfacecolor": "none", "markeredgecolor": "black",
    "markeredgewidth": 1.3, "linestyle": "none", "zorder": 6,
}


def default_published_path() -> Path:
    """The repository's ``config/published.yaml`` (for notebooks run by hand, outside the workflow)."""
    return Path(__file__).resolve().parents[3] / "config" / "published.yaml"


def published_points(published_path: str | Path | None, figure: str, metric: str | None = None) -> pd.DataFrame:
    """The published entries of one figure as a table.

    Parameters
    ----------
    published_path
        ``config/published.yaml``; ``None``: :func:`default_published_path`. A
        missing file gives an empty table (the figure is drawn without markers).
    figure
        The figure name (``results/<figure>/``).
    metric
        Keep only entries of this metric (column of the result table).

    Returns
    -------
    pandas.DataFrame
        Columns ``id``, ``metric``, ``published``, ``description``, ``table``
        and ``where`` (the entry's filter, a dict).
    """
    cols = ["id", "metric", "published", "description", "table", "where"]
    published_path = default_published_path() if published_path is None else published_path
    if not Path(published_path).is_file():
        return pd.DataFrame(columns=cols)
    rows = [
        (e.id, e.metric, e.published, e.description, e.table, dict(e.where))
        for e in load_published(published_path, resolve=False)
        if e.figure == figure and (metric is None or e.metric == metric)
    ]
    return pd.DataFrame(rows, columns=cols)


def _matches(wanted: Any, value: Any) -> bool:
    options = wanted if isinstance(wanted, list) else [wanted]
    for w in options:
        if isinstance(w, (int, float)) and not isinstance(w, bool) and isinstance(value, (int, float)):
            if math.isclose(float(w), float(value), rel_tol=1e-9):
                return True
        elif w == value or str(w) == str(value):
            return True
    return False


def select_points(points: pd.DataFrame, **conditions: Any) -> pd.DataFrame:
    """Points whose filter agrees with a panel's ``conditions``.

    An entry that does not filter on a condition's column applies to every
    value of it (a value quoted for all learning rates shows in each lr panel);
    a list in the filter matches any of its values.
    """
    if points.empty:
        return points
    keep = [
        all(col not in where or _matches(where[col], val) for col, val in conditions.items())
        for where in points["where"]
    ]
    return points.loc[keep]


def _style(label: bool, **style: Any) -> dict[str, Any]:
    return {**PUBLISHED_STYLE, **style, "label": PUBLISHED_LABEL if label else "_nolegend_"}


def draw_published(ax: Any, x: Sequence[float], y: Sequence[float], label: bool = True, **style: Any) -> None:
    """Draw published values at positions ``(x, y)`` as open black stars labelled ``published``."""
    if len(x):
        ax.plot(list(x), list(y), **_style(label, **style))


def draw_published_level(ax: Any, y: float, label: bool = True, **style: Any) -> None:
    """A published value quoted for a whole panel: a dotted black line with a star at its right end."""
    ax.axhline(y, color="black", linestyle=":", linewidth=1.0, zorder=5)
    ax.plot([0.97], [y], transform=ax.get_yaxis_transform(), **_style(label, **style))


def draw_panel(
    ax: Any,
    points: pd.DataFrame,
    x_col: str | None = None,
    x_transform: Any = None,
    **conditions: Any,
) -> int:
    """Draw the published values that belong to one panel.

    Parameters
    ----------
    ax
        The panel.
    points
        :func:`published_points` of the figure and the panel's quantity.
    x_col
        The column on the panel's x axis; an entry that filters on it is drawn
        at that x (every listed value), any other as a level over the panel.
    x_transform
        Maps the column's values to x positions (e.g. ``10 * init_scale``).
    **conditions
        The panel's fixed columns, passed to :func:`select_points`.

    Returns
    -------
    int
        The number of published values drawn.
    """
    chosen = select_points(points, **conditions)
    for _, p in chosen.iterrows():
        where = p["where"]
        if x_col is not None and x_col in where and where[x_col] is not None:
            xs = where[x_col] if isinstance(where[x_col], list) else [where[x_col]]
            xs = [float(v) for v in xs]
            if x_transform is not None:
                xs = [float(x_transform(v)) for v in xs]
            draw_published(ax, xs, [p["published"]] * len(xs))
        else:
            draw_published_level(ax, float(p["published"]))
    return len(chosen)
