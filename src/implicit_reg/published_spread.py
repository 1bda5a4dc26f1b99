"""Instance spread of published values: where a published number lies among seeded instances.

For a figure listed in ``instance_figures`` of
:func:`implicit_reg.published.evaluate` the table ``instances.parquet``
(for an entry on ``runs.parquet``; ``<stem>_instances.parquet`` for an entry on
``<stem>.parquet``) holds the same columns plus an integer ``instance`` (0 the
main instance, 1..K further seeded instances) and optionally ``sampling``.  The
entry's filter and reducer are applied per instance; ``instances`` is the number
of instance values and ``published_percentile`` where the published value lies
among them (mid-rank percentile, 0-100).  With a ``sampling`` column the
percentile is that of the ``without_replacement`` rows (the documented
protocol; all rows if absent) and ``percentile_by_sampling`` lists each.

Separate from :mod:`implicit_reg.published`, which holds the published-values
file format, its validation and the evaluation of each entry on its result
table: the spread reads other tables (one value per instance rather than one
number) and is only computed for the figures that have one. It reuses that
module's row filter and reducers; :func:`~implicit_reg.published.evaluate`
calls :func:`instance_spread`, and the report rules use
:func:`instance_table_name` to declare the spread tables as inputs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from implicit_reg.published import DEFAULT_TABLE, PublishedValue, _reduce, _select

__all__ = [
    "DEFAULT_SAMPLING",
    "instance_spread",
    "instance_table_name",
    "instance_values",
    "percentile_of",
]

#: ``sampling`` of the documented protocol: its rows give ``published_percentile``.
DEFAULT_SAMPLING = "without_replacement"


def instance_table_name(table: str) -> str:
    """Name of the instance-spread table that goes with a result table.

    ``runs.parquet`` -> ``instances.parquet``; ``markers.parquet`` ->
    ``markers_instances.parquet``.
    """
    return "instances.parquet" if table == DEFAULT_TABLE else table.removesuffix(".parquet") + "_instances.parquet"


def instance_values(entry: PublishedValue, table: pd.DataFrame) -> pd.DataFrame:
    """The entry's metric evaluated on each instance of an instance-spread table.

    Parameters
    ----------
    entry
        The published entry; its ``where`` filter and reducer are applied per
        instance (and per ``sampling`` value when the table has that column).
    table
        Same columns as the entry's result table plus an int ``instance``.

    Returns
    -------
    pandas.DataFrame
        Columns ``sampling`` (``""`` without a sampling column), ``instance``
        and ``value``; instances where the reducer gives NaN are dropped.
    """
    cols = ["sampling", "instance", "value"]
    needed = ["instance", *entry.where, entry.metric]
    if any(c not in table.columns for c in needed):
        return pd.DataFrame(columns=cols)
    sel = table.loc[_select(table, entry.where)]
    sampling = sel["sampling"].astype(str) if "sampling" in sel.columns else pd.Series("", index=sel.index)
    rows = []
    for (samp, inst), group in sel.groupby([sampling, sel["instance"].astype(int)], sort=True):
        value = _reduce(group[entry.metric], entry.reduce,
                        group["iteration"] if "iteration" in group.columns else None)
        if not math.isnan(value):
            rows.append((samp, int(inst), value))
    return pd.DataFrame(rows, columns=cols)


def percentile_of(value: float, sample: Sequence[float] | np.ndarray) -> float:
    """Mid-rank percentile (0-100) of ``value`` among ``sample``; NaN for an empty sample.

    Values equal to ``value`` count half, so a value inside a run of ties sits in
    its middle and a value beyond every sample element gives 0 or 100.
    """
    arr = np.asarray(sample, dtype=float)
    arr = arr[~np.isnan(arr)]
    if arr.size == 0:
        return math.nan
    below = float(np.sum(arr < value))
    ties = float(np.sum(arr == value))
    return 100.0 * (below + 0.5 * ties) / arr.size


def instance_spread(e: PublishedValue, table: pd.DataFrame | str) -> tuple[int, float, str]:
    """Where the published value of one entry lies among its instance values.

    Parameters
    ----------
    e
        The published entry.
    table
        Its instance-spread table (:func:`instance_table_name`), or a note
        saying why that table is unavailable.

    Returns
    -------
    tuple of (int, float, str)
        The :func:`~implicit_reg.published.evaluate` columns ``instances``,
        ``published_percentile`` and ``percentile_by_sampling``: ``(0, nan, "")``
        without a table or without any instance value.
    """
    if isinstance(table, str):
        return 0, math.nan, ""
    values = instance_values(e, table)
    if values.empty:
        return 0, math.nan, ""
    by_sampling = {s: g["value"].to_numpy() for s, g in values.groupby("sampling", sort=True)}
    # the documented protocol samples without replacement; other samplings are hypotheses
    main = by_sampling.get(DEFAULT_SAMPLING, values["value"].to_numpy())
    text = "; ".join(
        f"{s}: {percentile_of(e.published, v):.0f} ({len(v)})" for s, v in by_sampling.items() if s
    )
    return int(len(main)), percentile_of(e.published, main), text
