"""Whether one protocol variant reproduces several published values of a row at once.

A verdict (:mod:`implicit_reg.scorecard.verdict`) judges one value at a time, and a
variant that explains one value of a row may leave another of the same row far off. The
notebook's N2 row at 2000 observations, for instance, has four quantities that an
explanation must reproduce together: the minimum-nuclear-norm error and nuclear norm, and
the depth-2 errors and nuclear norms. ``config/published.yaml`` names such rows::

    rows:
      - id: n2_2k
        description: "N2, 2000 observations"
        entries: [n2_2k_cvx_error, n2_2k_cvx_nuclear_norm, ...]

For each row and each variant of the instance spread, :func:`row_table` places every
published value of the row among that variant's instance statistics (the percentile of
:func:`~implicit_reg.scorecard.spread.percentile_of`, ties within the reading tolerance)
and says whether all of them lie in the 5-95 % band
(:data:`~implicit_reg.scorecard.verdict.SPREAD_BAND`) with at least
:data:`~implicit_reg.scorecard.verdict.MIN_INSTANCES` instances;
:func:`row_sentence` states it for the report.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from implicit_reg.core.latex_text import latex_escape
from implicit_reg.scorecard.published import PublishedSpecError, PublishedValue, read_results_table
from implicit_reg.scorecard.spread import PROTOCOL, instance_spread, instance_table_name, percentile_of
from implicit_reg.scorecard.verdict import MIN_INSTANCES, SPREAD_BAND

__all__ = ["ROW_COLUMNS", "PublishedRow", "load_rows", "parse_rows", "reproducing_variants", "row_sentence",
           "row_table"]

#: Columns of :func:`row_table`: one line per (row, variant, entry).
ROW_COLUMNS = ["row", "variant", "entry", "published", "instances", "median", "percentile", "inside"]


@dataclass(frozen=True)
class PublishedRow:
    """Published values that one explanation must reproduce together."""

    id: str
    description: str
    entries: tuple[str, ...]


def parse_rows(data: Any, known_ids: Sequence[str], origin: str = "<published>") -> list[PublishedRow]:
    """Validate the ``rows`` list of a published-values file.

    Parameters
    ----------
    data
        The parsed YAML document (a mapping; a list of entries has no rows).
    known_ids
        The ids of the file's entries: a row may only name those.
    origin
        The file name, for error messages.
    """
    if not isinstance(data, Mapping) or not data.get("rows"):
        return []
    rows, known = [], set(known_ids)
    for i, raw in enumerate(data["rows"]):
        label = f"{origin}: rows[{i}]"
        if not isinstance(raw, Mapping) or set(raw) != {"id", "description", "entries"}:
            raise PublishedSpecError(f"{label}: needs exactly the keys id, description, entries")
        entries = raw["entries"]
        if not isinstance(entries, list) or len(entries) < 2:
            raise PublishedSpecError(f"{label}: 'entries' must list at least two entry ids")
        unknown = [e for e in entries if e not in known]
        if unknown:
            raise PublishedSpecError(f"{label}: unknown entry id {unknown[0]!r}")
        rows.append(PublishedRow(str(raw["id"]), str(raw["description"]), tuple(entries)))
    return rows


def load_rows(path: str | Path, entries: Sequence[PublishedValue]) -> list[PublishedRow]:
    """The ``rows`` of a published-values YAML file (entries already loaded from it)."""
    with Path(path).open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    return parse_rows(data, [e.id for e in entries], str(path))


def row_table(rows: Sequence[PublishedRow], entries: Sequence[PublishedValue],
              results_dir: str | Path, min_instances: int = MIN_INSTANCES) -> pd.DataFrame:
    """Each row's values placed among each variant's instance statistics.

    Parameters
    ----------
    rows
        The rows (:func:`load_rows`).
    entries
        The published entries, with resolved tolerances.
    results_dir
        Where ``<figure>/<instance table>`` lives.
    min_instances
        Fewest instance statistics a variant needs for a value to count as inside.

    Returns
    -------
    pandas.DataFrame
        :data:`ROW_COLUMNS`: for every row, variant of any of its entries' spreads and
        entry, the number of instance statistics, their median, the published value's
        percentile (NaN without statistics) and ``inside`` (in the band with enough
        instances).
    """
    by_id = {e.id: e for e in entries}
    cache: dict[Path, pd.DataFrame | str] = {}
    out = []
    for row in rows:
        spreads = {}
        for eid in row.entries:
            e = by_id[eid]
            spreads[eid] = instance_spread(e, read_results_table(
                Path(results_dir) / e.figure / instance_table_name(e.table), cache))
        variants = sorted({v for s in spreads.values() for v in s.statistics}, key=lambda v: (v != PROTOCOL, v))
        for variant in variants:
            for eid in row.entries:
                e, stats = by_id[eid], spreads[eid].statistics.get(variant)
                n = 0 if stats is None else len(stats)
                pct = percentile_of(e.published, stats, e.tolerance) if n else math.nan
                inside = n >= min_instances and SPREAD_BAND[0] <= pct <= SPREAD_BAND[1]
                median = float(pd.Series(stats).median()) if n else math.nan
                out.append((row.id, variant, eid, e.published, n, median, pct, bool(inside)))
    return pd.DataFrame(out, columns=ROW_COLUMNS)


def reproducing_variants(row: PublishedRow, table: pd.DataFrame) -> list[str]:
    """The variants that put every value of ``row`` inside their spread (:func:`row_table`'s order)."""
    mine = table.loc[table["row"] == row.id]
    return [str(v) for v, g in mine.groupby("variant", sort=False) if bool(g["inside"].all())]


def _g(x: float) -> str:
    return f"{x:.3g}"


def row_sentence(row: PublishedRow, table: pd.DataFrame) -> str:
    """One LaTeX paragraph: which variant, if any, puts every value of ``row`` inside its spread.

    Each variant is given with the number of values inside its 5-95 % band and, for the
    others, the published value's percentile and the variant's median statistic.
    """
    mine = table.loc[table["row"] == row.id]
    head = f"\\textbf{{{latex_escape(row.description)}}} ({len(row.entries)} values at once): "
    if mine.empty:
        return head + "no instance spread holds these values."
    whole = reproducing_variants(row, table)
    if whole:
        head += ("variant" + ("s " if len(whole) > 1 else " ")
                 + ", ".join(f"\\texttt{{{latex_escape(v)}}}" for v in whole)
                 + " reproduce" + ("" if len(whole) > 1 else "s") + " all of them. ")
    else:
        head += "no variant reproduces all of them. "
    parts = []
    for variant, g in mine.groupby("variant", sort=False):
        outside = g.loc[~g["inside"]]
        detail = "; ".join(
            f"{latex_escape(r.entry)} {_g(r.published)} at percentile "
            + ("--" if math.isnan(r.percentile) else f"{r.percentile:.0f}")
            + (f" (median {_g(r.median)}, {r.instances} instances)" if r.instances else " (no instances)")
            for r in outside.itertuples())
        parts.append(f"\\texttt{{{latex_escape(variant)}}}: {int(g['inside'].sum())} of {len(g)} inside"
                     + (f", outside: {detail}" if detail else ""))
    return head + "; ".join(parts) + "."
