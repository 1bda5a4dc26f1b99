"""Instance spread of published values: where a published number lies among seeded instances.

For a figure listed in ``instance_figures`` of
:func:`implicit_reg.scorecard.verdict.evaluate` the table ``instances.parquet``
(for an entry on ``runs.parquet``; ``<stem>_instances.parquet`` for an entry on
``<stem>.parquet``) holds the same columns plus an integer ``instance`` (0 the
main instance, 1..K further seeded instances) and a string ``variant``:
``protocol`` marks the documented protocol, any other name a protocol variant
(``with_replacement``, ``redrawn_observed``, ...). Older tables carry a
``sampling`` column instead; its ``without_replacement`` rows are the protocol
and every other sampling is a variant of that name. A table with neither is all
protocol.

The statistic of an instance is the entry's own: its ``where`` filter and
``reduce`` applied to that instance's rows, so an instance with 5 repetitions
gives a median of 5 and one with 3 seeds a mean of 3 -- the same statistic as the
paper's, not single runs. :func:`percentile_of` places the published value among
the K+1 statistics of a variant (mid-rank); statistics within the reading
tolerance of the published value count as ties, so a value that agrees is never
at percentile 0 or 100.

Separate from :mod:`implicit_reg.scorecard.published` (file format, evaluation of each
entry on its result table), which calls :func:`instance_spread`; the verdict
built on it is :mod:`implicit_reg.scorecard.verdict`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from implicit_reg.scorecard.published import DEFAULT_TABLE, TRAJECTORY_REDUCERS, PublishedValue, reduce_rows, select_rows
from implicit_reg.scorecard.tolerance import Tolerance

__all__ = [
    "PROTOCOL",
    "SAMPLING_PROTOCOL",
    "Spread",
    "instance_spread",
    "instance_table_name",
    "instance_values",
    "percentile_of",
    "variant_column",
]

#: ``variant`` of the documented protocol.
PROTOCOL = "protocol"
#: ``sampling`` of the documented protocol in tables that predate the ``variant`` column.
SAMPLING_PROTOCOL = "without_replacement"


def instance_table_name(table: str) -> str:
    """Name of the instance-spread table that goes with a result table.

    ``runs.parquet`` -> ``instances.parquet``; ``markers.parquet`` ->
    ``markers_instances.parquet``.
    """
    return "instances.parquet" if table == DEFAULT_TABLE else table.removesuffix(".parquet") + "_instances.parquet"


def variant_column(table: pd.DataFrame) -> pd.Series:
    """Each row's variant: ``variant``, else ``sampling`` (without_replacement -> protocol), else protocol."""
    if "variant" in table.columns:
        return table["variant"].fillna(PROTOCOL).astype(str)
    if "sampling" in table.columns:
        sampling = table["sampling"].fillna(SAMPLING_PROTOCOL).astype(str)
        return sampling.where(sampling != SAMPLING_PROTOCOL, PROTOCOL)
    return pd.Series(PROTOCOL, index=table.index)


def _matched(entry: PublishedValue, table: pd.DataFrame) -> pd.DataFrame | None:
    needed = ["instance", *entry.where, entry.metric]
    if any(c not in table.columns for c in needed):
        return None
    sel = table.loc[select_rows(table, entry.where)].copy()
    sel["_variant"] = variant_column(sel)
    return sel


def instance_values(entry: PublishedValue, table: pd.DataFrame) -> pd.DataFrame:
    """The entry's statistic on each instance of each variant of an instance-spread table.

    Returns
    -------
    pandas.DataFrame
        Columns ``variant``, ``instance``, ``value`` and ``rows`` (the rows the
        statistic reduced); instances where the reducer gives NaN are dropped.
    """
    cols = ["variant", "instance", "value", "rows"]
    sel = _matched(entry, table)
    if sel is None or sel.empty:
        return pd.DataFrame(columns=cols)
    out = []
    for (variant, inst), group in sel.groupby(["_variant", sel["instance"].astype(int)], sort=True):
        value = reduce_rows(group[entry.metric], entry.reduce,
                        group["iteration"] if "iteration" in group.columns else None)
        if not math.isnan(value):
            out.append((str(variant), int(inst), value, int(len(group))))
    return pd.DataFrame(out, columns=cols)


def percentile_of(value: float, sample: Sequence[float] | np.ndarray, tolerance: Tolerance | None = None) -> float:
    """Mid-rank percentile (0-100) of ``value`` among ``sample``; NaN for an empty sample.

    Sample elements equal to ``value`` -- or, with ``tolerance``, within that
    tolerance of it -- are ties and count half, so a value inside a run of ties sits in
    its middle, a value beyond every element gives 0 or 100, and a value that some
    element agrees with is never at 0 or 100.
    """
    arr = np.asarray(sample, dtype=float)
    arr = arr[~np.isnan(arr)]
    if arr.size == 0:
        return math.nan
    if tolerance is None:
        tie = arr == value
    else:
        tie = np.array([tolerance.check(value, x) for x in arr], dtype=bool) | (arr == value)
    below = float(np.sum((arr < value) & ~tie))
    return 100.0 * (below + 0.5 * float(np.sum(tie))) / arr.size


@dataclass(frozen=True)
class Spread:
    """An entry's statistics over the instances of each variant.

    Attributes
    ----------
    statistics
        Variant -> the statistic of each instance (instance order).
    single_runs
        The metric of every matched row of the protocol variant, pooled over
        instances (one value per run for a runs table).
    runs_per_instance
        The number of rows one protocol instance's statistic reduces (the median over
        instances; 0 without protocol instances).
    """

    statistics: Mapping[str, np.ndarray] = field(default_factory=dict)
    single_runs: np.ndarray = field(default_factory=lambda: np.empty(0))
    runs_per_instance: int = 0

    def count(self, variant: str = PROTOCOL) -> int:
        return int(len(self.statistics.get(variant, ())))


def instance_spread(e: PublishedValue, table: pd.DataFrame | str) -> Spread:
    """The entry's :class:`Spread` on its instance-spread table (empty without a table or values).

    Parameters
    ----------
    e
        The published entry.
    table
        Its instance-spread table (:func:`instance_table_name`), or a note
        saying why that table is unavailable.
    """
    if isinstance(table, str):
        return Spread()
    values = instance_values(e, table)
    if values.empty:
        return Spread()
    stats = {str(v): g.sort_values("instance")["value"].to_numpy(dtype=float)
             for v, g in values.groupby("variant", sort=True)}
    single = np.empty(0)
    per_instance = 0
    protocol = values.loc[values["variant"] == PROTOCOL]
    if not protocol.empty and e.reduce not in TRAJECTORY_REDUCERS:
        sel = _matched(e, table)
        assert sel is not None  # instance_values found rows
        runs = pd.to_numeric(sel.loc[sel["_variant"] == PROTOCOL, e.metric], errors="coerce")
        single = runs.dropna().to_numpy(dtype=float)
        per_instance = int(np.median(protocol["rows"].to_numpy()))
    return Spread(stats, single, per_instance)


def by_variant_text(published: float, spread: Spread, tolerance: Tolerance | None) -> str:
    """``protocol: 45 (11); with_replacement: 73 (11)``: the percentile (and count) per variant."""
    order = sorted(spread.statistics, key=lambda v: (v != PROTOCOL, v))
    return "; ".join(f"{v}: {percentile_of(published, spread.statistics[v], tolerance):.1f}"
                     f" ({len(spread.statistics[v])})" for v in order)
