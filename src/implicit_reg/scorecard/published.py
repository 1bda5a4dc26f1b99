"""Compare published numbers with reproduced ones.

``config/published.yaml`` lists numbers reported by the two papers (or read off
their plots, notebooks, blog posts or code).  Each entry says where the
reproduced counterpart lives in the result tables and how close it has to be.
:func:`load_published` reads and validates the file and
:func:`implicit_reg.scorecard.verdict.evaluate` looks the numbers up (with
:func:`evaluate_entry` on each) in ``results/<figure>/<table>`` (and, through
:mod:`implicit_reg.scorecard.spread`, in the instance-spread tables);
:mod:`implicit_reg.scorecard.text` renders the comparison for the report.

File format
-----------
The YAML file is either a list of entries or a mapping with the key
``entries`` holding that list.  An entry is a mapping with these keys::

    - id: arora_n2_depth3_recon          # unique, letters/digits/._- only
      paper: arora2019                   # arora2019 | razin2020
      figure: arora2019_n2               # results/<figure>/ holds the table
      table: runs.parquet                # optional, default runs.parquet
      where:                             # optional row filter, default {}
        method: deep_factorization       #   column: value
        depth: [3, 4]                    #   column: [value, ...]  (any of)
        init_scale: 1.0e-3               #   floats: relative tolerance 1e-9
        lr: null                         #   null matches missing values (NaN)
      metric: recon_error_sq             # column to reduce
      reduce: median                     # mean|median|min|max|first|count|last|
                                         #   half_rise_iteration
      published: 1.2e-4                  # the published number (float)
      source: paper                      # paper|nb|blog|plot|code
      reading: {kind: log_axis, plot: nb_n2_error}   # how the number was obtained:
                                         #   {kind: printed, text: "210.15"}
                                         #   {kind: log_axis|linear_axis|approx_text, plot: ID}
                                         #   (ID: a plot of config/readings.yaml)
      tolerance_exception:               # optional, only with a written reason:
        tolerance: {factor: 3}           #   {factor: F} | {abs: A} | {rel: R} | {range: [lo, hi]}
        reason: "why the reading rule does not fit this value"
      description: "Depth-3 reconstruction error, 2000 observations"
      instance_dependent: false          # optional: the value depends on the random
                                         #   instance (ground truth, observations, seeds)

The tolerance is not written in the file: :func:`implicit_reg.scorecard.tolerance.rule_tolerance`
derives it from ``reading`` (printed digits: half a unit of the last digit; a
plot: its measured digitization accuracy). A hand-set ``tolerance`` key is
rejected; ``tolerance_exception`` replaces the rule's tolerance and the report
lists it with its reason.

Matching rules for ``where``: booleans match exactly; numbers are compared
numerically (``math.isclose`` with ``rel_tol=1e-9``, so integers and exact
floats match exactly) and the column is converted to numbers first; strings
are compared with the column converted to strings; ``null`` matches missing
values.  A list matches any of its elements.

``reduce`` skips missing values (pandas semantics); ``count`` counts the
non-missing values of ``metric`` among the matched rows. Two reducers read a
trajectory (a table with an ``iteration`` column; the matched rows are one run's
logged rows): ``last`` is the metric at the last logged iteration, and
``half_rise_iteration`` the first logged iteration at which the metric reaches
half of that last value, the midpoint of a sigmoidal jump of a singular value
(Arora et al. 2019, Figure 3: "jumps" of the singular values).

Instance spread
---------------
For the figures in ``instance_figures`` the evaluation also places each
published value among the entry's values on further seeded instances of the
documented protocol and of named protocol variants
(:mod:`implicit_reg.scorecard.spread`), and gives each value one verdict of
:mod:`implicit_reg.scorecard.verdict`.

Evaluation never fails because a result is absent: a missing table, a
missing column or an empty selection gives ``verdict == "missing"`` and
``within is None`` with an explanation in ``note``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from implicit_reg.core.latex_text import format_number, latex_escape
from implicit_reg.core.metrics_numpy import half_rise_step
from implicit_reg.scorecard.tolerance import (
    Reading,
    Readings,
    ReadingsError,
    Tolerance,
    ToleranceException,
    load_readings,
    parse_reading,
    parse_tolerance,
    rule_tolerance,
)

__all__ = [
    "PAPERS",
    "REDUCERS",
    "SOURCES",
    "PublishedSpecError",
    "PublishedValue",
    "Reading",
    "Tolerance",
    "ToleranceException",
    "evaluate_entry",
    "format_number",
    "latex_escape",
    "load_published",
    "parse_entries",
    "read_results_table",
    "reduce_rows",
    "select_rows",
]

PAPERS = ("arora2019", "razin2020")
PAPER_TITLES = {"arora2019": "Arora et al. (2019)", "razin2020": "Razin \\& Cohen (2020)"}
REDUCERS = ("mean", "median", "min", "max", "first", "count", "last", "half_rise_iteration")
#: Reducers over a trajectory: they order the matched rows by their ``iteration`` column.
TRAJECTORY_REDUCERS = ("last", "half_rise_iteration")
SOURCES = ("paper", "nb", "blog", "plot", "code")
TOLERANCE_KINDS = ("factor", "abs", "rel", "range")
DEFAULT_TABLE = "runs.parquet"
WHERE_REL_TOL = 1e-9

_REQUIRED = ("id", "paper", "figure", "metric", "reduce", "published", "source", "reading", "description")
_OPTIONAL = ("table", "where", "instance_dependent", "tolerance_exception")
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")

# columns of the frame returned by implicit_reg.scorecard.verdict.evaluate()
RESULT_COLUMNS = [
    "id",
    "paper",
    "figure",
    "description",
    "source",
    "reading",
    "metric",
    "reduce",
    "published",
    "reproduced",
    "n_rows",
    "tolerance",
    "exception",
    "within",
    "verdict",
    "evidence",
    "note",
    "instance_dependent",
    "scale",
    "instances",
    "published_percentile",
    "percentile_by_variant",
]


class PublishedSpecError(ValueError):
    """An entry of the published-values file is malformed."""


# --------------------------------------------------------------------------
# data model
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class PublishedValue:
    """One validated entry of ``config/published.yaml``."""

    id: str
    paper: str
    figure: str
    metric: str
    reduce: str
    published: float
    source: str
    reading: Reading
    description: str
    table: str = DEFAULT_TABLE
    where: Mapping[str, Any] = field(default_factory=dict)
    instance_dependent: bool = False
    tolerance_exception: ToleranceException | None = None
    #: The tolerance in force (the rule's, or the exception's); ``None`` until
    #: resolved against ``config/readings.yaml`` (:func:`resolve_tolerances`).
    tolerance: Tolerance | None = None
    #: What the reading rule gives, also for an entry with an exception.
    rule: Tolerance | None = None

    def table_path(self, results_dir: str | Path) -> Path:
        return Path(results_dir) / self.figure / self.table


# --------------------------------------------------------------------------
# loading and validation
# --------------------------------------------------------------------------
def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _where_scalar_ok(v: Any) -> bool:
    return v is None or isinstance(v, (str, bool)) or (_is_number(v) and not (isinstance(v, float) and math.isinf(v)))


def _entry(raw: Any, index: int, origin: str) -> PublishedValue:
    label = f"{origin}: entry #{index + 1}"
    if not isinstance(raw, Mapping):
        raise PublishedSpecError(f"{label}: expected a mapping, got {type(raw).__name__}")
    eid = raw.get("id")
    if isinstance(eid, str) and eid:
        label = f"{origin}: entry {eid!r} (#{index + 1})"

    def err(key: str, msg: str) -> PublishedSpecError:
        return PublishedSpecError(f"{label}: key {key!r}: {msg}")

    if "tolerance" in raw:
        raise err("tolerance", "a tolerance is not set by hand: it follows from 'reading' (docs/scorecard.md);"
                  " an exception needs tolerance_exception: {tolerance: ..., reason: ...}")
    unknown = sorted(set(raw) - set(_REQUIRED) - set(_OPTIONAL), key=str)
    if unknown:
        raise err(str(unknown[0]), f"unknown key (allowed: {', '.join(_REQUIRED + _OPTIONAL)})")
    for key in _REQUIRED:
        if key not in raw or raw[key] is None:
            raise err(key, "required key is missing")

    if not isinstance(eid, str) or not _ID_RE.match(eid):
        raise err("id", f"must be a non-empty string of letters, digits, '_', '.', '-' (got {eid!r})")
    paper = raw["paper"]
    if paper not in PAPERS:
        raise err("paper", f"must be one of {', '.join(PAPERS)} (got {paper!r})")
    figure = raw["figure"]
    if not isinstance(figure, str) or not _NAME_RE.match(figure):
        raise err("figure", f"must be a figure name such as 'arora2019_n2' (got {figure!r})")
    table = raw.get("table", DEFAULT_TABLE)
    if table is None:
        table = DEFAULT_TABLE
    if not isinstance(table, str) or not _NAME_RE.match(table) or not table.endswith(".parquet"):
        raise err("table", f"must be a parquet file name inside results/<figure>/ (got {table!r})")
    where = raw.get("where") or {}
    if not isinstance(where, Mapping):
        raise err("where", f"must be a mapping column -> value or list of values (got {type(where).__name__})")
    clean_where: dict[str, Any] = {}
    for col, val in where.items():
        if not isinstance(col, str) or not col:
            raise err("where", f"column names must be strings (got {col!r})")
        if isinstance(val, list):
            if not val:
                raise err("where", f"column {col!r}: empty list matches nothing")
            bad = [v for v in val if not _where_scalar_ok(v)]
            if bad:
                raise err("where", f"column {col!r}: values must be strings, numbers, booleans or null (got {bad[0]!r})")
            clean_where[col] = list(val)
        elif _where_scalar_ok(val):
            clean_where[col] = val
        else:
            raise err("where", f"column {col!r}: value must be a string, number, boolean, null or a list of them (got {val!r})")
    metric = raw["metric"]
    if not isinstance(metric, str) or not metric:
        raise err("metric", f"must be a column name (got {metric!r})")
    reduce = raw["reduce"]
    if reduce not in REDUCERS:
        raise err("reduce", f"must be one of {', '.join(REDUCERS)} (got {reduce!r})")
    published = raw["published"]
    if isinstance(published, str):  # YAML 1.1 reads "1e-4" (no dot) as a string
        try:
            published = float(published)
        except ValueError:
            raise err("published", f"must be a number (got {published!r})") from None
    if not _is_number(published) or not math.isfinite(published):
        raise err("published", f"must be a finite number (got {published!r})")
    source = raw["source"]
    if source not in SOURCES:
        raise err("source", f"must be one of {', '.join(SOURCES)} (got {source!r})")
    reading = parse_reading(raw["reading"], float(published), err)
    exception = None
    if raw.get("tolerance_exception") is not None:
        exc = raw["tolerance_exception"]
        if not isinstance(exc, Mapping) or set(exc) != {"tolerance", "reason"}:
            raise err("tolerance_exception", "must be {tolerance: {...}, reason: \"...\"}")
        if not isinstance(exc["reason"], str) or len(exc["reason"].strip()) < 10:
            raise err("tolerance_exception", "needs a written reason (a sentence)")
        exception = ToleranceException(parse_tolerance(exc["tolerance"], err, "tolerance_exception"),
                                       exc["reason"].strip())
    description = raw["description"]
    if not isinstance(description, str) or not description.strip():
        raise err("description", "must be a non-empty string")
    instance_dependent = raw.get("instance_dependent", False)
    if not isinstance(instance_dependent, bool):
        raise err("instance_dependent", f"must be true or false (got {instance_dependent!r})")
    return PublishedValue(
        id=eid,
        instance_dependent=instance_dependent,
        paper=paper,
        figure=figure,
        table=table,
        where=clean_where,
        metric=metric,
        reduce=reduce,
        published=float(published),
        source=source,
        reading=reading,
        tolerance_exception=exception,
        description=description.strip(),
    )


def parse_entries(data: Any, origin: str = "<published>") -> list[PublishedValue]:
    """Validate already-parsed YAML data (a list or ``{entries: [...]}``)."""
    if data is None:
        return []
    if isinstance(data, Mapping):
        # rows: implicit_reg.scorecard.rows; informative_variants: load_informative_variants
        extra = set(data) - {"entries", "rows", "informative_variants"}
        if extra:
            raise PublishedSpecError(f"{origin}: top-level mapping may only contain 'entries' (found {sorted(map(str, extra))})")
        data = data.get("entries") or []
    if not isinstance(data, list):
        raise PublishedSpecError(f"{origin}: expected a list of entries (or a mapping with 'entries')")
    entries = [_entry(raw, i, origin) for i, raw in enumerate(data)]
    seen: dict[str, int] = {}
    for i, e in enumerate(entries):
        if e.id in seen:
            raise PublishedSpecError(
                f"{origin}: entry {e.id!r} (#{i + 1}): key 'id': duplicate of entry #{seen[e.id] + 1}"
            )
        seen[e.id] = i
    return entries


def resolve_tolerances(entries: Sequence[PublishedValue], readings: Readings | None) -> list[PublishedValue]:
    """The entries with ``rule`` (the reading rule's tolerance) and ``tolerance`` (in force) set.

    Raises
    ------
    PublishedSpecError
        An entry whose reading cannot be turned into a tolerance (a plot missing
        from ``readings``, an axis of the wrong scale, ...), naming the entry.
    """
    out = []
    for e in entries:
        try:
            rule = rule_tolerance(e.reading, e.metric, e.published, readings)
        except ReadingsError as exc:
            raise PublishedSpecError(f"entry {e.id!r}: key 'reading': {exc}") from None
        tolerance = e.tolerance_exception.tolerance if e.tolerance_exception else rule
        out.append(replace(e, rule=rule, tolerance=tolerance))
    return out


def default_readings_path(published_path: str | Path) -> Path:
    """``readings.yaml`` beside the published-values file (``config/readings.yaml``)."""
    return Path(published_path).with_name("readings.yaml")


def load_published(path: str | Path, readings: str | Path | Readings | None = None,
                   resolve: bool = True) -> list[PublishedValue]:
    """Read and validate a published-values YAML file (see the module docstring).

    Parameters
    ----------
    path
        The YAML file.
    readings
        The digitization accuracies (a :class:`Readings` or the path of
        ``readings.yaml``); default :func:`default_readings_path`.
    resolve
        Derive each entry's tolerance (:func:`resolve_tolerances`). ``False`` leaves
        ``tolerance`` unset, for readers that only draw the published values.
    """
    path = Path(path)
    with path.open(encoding="utf-8") as fh:
        try:
            data = yaml.safe_load(fh)
        except yaml.YAMLError as exc:
            raise PublishedSpecError(f"{path}: not valid YAML: {exc}") from exc
    entries = parse_entries(data, origin=str(path))
    if not resolve:
        return entries
    if not isinstance(readings, Readings):
        readings_path = Path(readings) if readings is not None else default_readings_path(path)
        needs_plots = any(e.reading.kind != "printed" for e in entries)
        if not readings_path.is_file() and needs_plots:
            raise PublishedSpecError(f"{path}: the plot readings need {readings_path} (not found)")
        readings = load_readings(readings_path) if readings_path.is_file() else None
    return resolve_tolerances(entries, readings)


def load_informative_variants(path: str | Path) -> dict[str, str]:
    """The file's ``informative_variants``: spread variants that cannot explain a value.

    A variant contradicted by what is known of the authors' protocol (e.g. a redrawn
    observed set where their stored permutation fixes it) is still measured and
    reported, but a verdict never calls a value explained by it. Each name maps to the
    reason, which the evidence quotes.
    """
    path = Path(path)
    with path.open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    raw = data.get("informative_variants", {}) if isinstance(data, Mapping) else {}
    if not isinstance(raw, Mapping) or not all(isinstance(v, str) and v.strip() for v in raw.values()):
        raise PublishedSpecError(f"{path}: informative_variants must map each variant name to its reason")
    return {str(k): str(v).strip() for k, v in raw.items()}


# --------------------------------------------------------------------------
# evaluation
# --------------------------------------------------------------------------
def _match_value(col: pd.Series, value: Any) -> pd.Series:
    if value is None:
        return col.isna()
    if isinstance(value, bool):
        if pd.api.types.is_bool_dtype(col):
            return col.fillna(not value).astype(bool) == value
        return col.map(lambda v: isinstance(v, (bool, np.bool_)) and bool(v) == value).astype(bool)
    if _is_number(value):
        nums = pd.to_numeric(col, errors="coerce").astype(float).to_numpy()
        target = float(value)
        ok = np.isclose(nums, target, rtol=WHERE_REL_TOL, atol=0.0) | (nums == target)
        return pd.Series(ok & ~np.isnan(nums), index=col.index)
    # string
    return (col.notna() & (col.astype(str) == str(value))).astype(bool)


def select_rows(df: pd.DataFrame, where: Mapping[str, Any]) -> pd.Series:
    mask = pd.Series(True, index=df.index)
    for colname, val in where.items():
        col = df[colname]
        values = val if isinstance(val, list) else [val]
        m = pd.Series(False, index=df.index)
        for v in values:
            m |= _match_value(col, v)
        mask &= m
    return mask


def reduce_rows(values: pd.Series, how: str, iterations: pd.Series | None = None) -> float:
    """Reduce the matched values of an entry's metric to one number.

    Parameters
    ----------
    values
        The metric over the matched rows.
    how
        One of :data:`REDUCERS`.
    iterations
        The matched rows' ``iteration`` column, needed by :data:`TRAJECTORY_REDUCERS`.

    Returns
    -------
    float
        NaN when nothing is left to reduce.
    """
    if how in TRAJECTORY_REDUCERS:
        if iterations is None:
            return math.nan
        return _trajectory_reduce(values, iterations, how)
    if how == "count":
        return float(values.count())
    numeric = pd.to_numeric(values, errors="coerce").astype(float)
    if how == "first":
        return float(numeric.iloc[0]) if len(numeric) else math.nan
    return float(getattr(numeric, how)())


def _trajectory_reduce(values: pd.Series, iterations: pd.Series, how: str) -> float:
    """``last`` or ``half_rise_iteration`` of one logged trajectory (see the module docstring).

    With ``v(t)`` the metric at logged iteration ``t`` and ``T`` the last one,
    ``last = v(T)`` and ``half_rise_iteration = min {t : v(t) >= v(T) / 2}``.
    Rows sharing an iteration are averaged.
    """
    numeric = pd.to_numeric(values, errors="coerce").astype(float)
    series = numeric.groupby(pd.to_numeric(iterations, errors="coerce").to_numpy()).mean().dropna().sort_index()
    if series.empty:
        return math.nan
    final = float(series.iloc[-1])
    if how == "last":
        return final
    return half_rise_step(series.index.to_numpy(), series.to_numpy())


def read_results_table(path: Path, cache: dict[Path, pd.DataFrame | str]) -> pd.DataFrame | str:
    """The parquet table at ``path``, or a note saying why it is unavailable (cached)."""
    if path not in cache:
        if not path.is_file():
            cache[path] = f"table not found: {path}"
        else:
            try:
                cache[path] = pd.read_parquet(path)
            except Exception as exc:  # noqa: BLE001 - report, never crash
                cache[path] = f"cannot read {path}: {type(exc).__name__}: {exc}"
    return cache[path]


def evaluate_entry(e: PublishedValue, table: pd.DataFrame | str, path: Path) -> tuple[float, int, bool | None, str]:
    """(reproduced, n_rows, within, note) of one entry on one table."""
    if isinstance(table, str):
        return math.nan, 0, None, table
    needed = [*e.where, e.metric] + (["iteration"] if e.reduce in TRAJECTORY_REDUCERS else [])
    absent = [c for c in needed if c not in table.columns]
    if absent:
        return math.nan, 0, None, f"column(s) not in {path.name}: {', '.join(absent)}"
    mask = select_rows(table, e.where)
    sel = table.loc[mask, e.metric]
    n_rows = int(len(sel))
    if n_rows == 0:
        return math.nan, 0, None, "no rows match 'where'"
    reproduced = reduce_rows(sel, e.reduce, table.loc[mask, "iteration"] if "iteration" in table.columns else None)
    if math.isnan(reproduced):
        return reproduced, n_rows, None, f"{e.metric} is missing (NaN) in all {n_rows} matched rows"
    if e.tolerance is None:
        raise ValueError(f"entry {e.id!r}: tolerance not resolved (load_published(..., resolve=True))")
    return reproduced, n_rows, bool(e.tolerance.check(e.published, reproduced)), ""
