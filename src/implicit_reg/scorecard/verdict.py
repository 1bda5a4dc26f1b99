"""One verdict per published value, from four classes, each with its evidence.

:func:`decide` classifies a published value ``p`` and our main value ``x``
(instance 0 of the documented protocol) with the entry's tolerance ``T``
(:mod:`implicit_reg.scorecard.tolerance`) and its instance spread ``S``
(:mod:`implicit_reg.scorecard.spread`):

``agrees``
    ``x`` is within ``T`` of ``p``.
``within_spread``
    Otherwise, when the documented protocol has at least ``min_instances``
    instance statistics (default :data:`MIN_INSTANCES`) and ``p`` lies at
    percentile 5-95 among them (:data:`SPREAD_BAND`; statistics within ``T`` of
    ``p`` are ties). The statistic is the paper's own: a published median of 5
    runs is compared with the medians of 5 runs of each instance, never with single
    runs.
``disagrees_explained``
    Otherwise, when a named protocol variant with at least ``min_instances``
    statistics puts ``p`` at percentile 5-95: that variant reproduces the value
    (the evidence names it, with its median statistic, the percentile and K).
``disagrees_unexplained``
    Otherwise; the evidence says what was tried (the protocol's percentile and each
    variant's) or that no instance spread was run.

A value without a reproduced number is ``missing``, which is not one of the four
classes: a preset that does not compute a figure has it, the paper preset must not.

For an entry with ``reduce: median`` the evidence also gives, from the pooled
single runs of the protocol, the share of runs inside the tolerance interval and
the probability that a median of ``r`` runs lands in it
(:func:`median_of_r_probability`): what tells "a lucky median of 5" from "a value
our runs do not reach".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from implicit_reg.scorecard.published import (
    DEFAULT_TABLE,
    RESULT_COLUMNS,
    PublishedValue,
    evaluate_entry,
    load_published,
    read_results_table,
)
from implicit_reg.scorecard.spread import (
    PROTOCOL,
    Spread,
    by_variant_text,
    instance_spread,
    instance_table_name,
    percentile_of,
)
from implicit_reg.scorecard.tolerance import Tolerance

__all__ = [
    "MIN_INSTANCES",
    "MISSING",
    "SPREAD_BAND",
    "VERDICTS",
    "VERDICT_LABELS",
    "Verdict",
    "decide",
    "evaluate",
    "evaluate_file",
    "median_of_r_probability",
]

VERDICTS = ("agrees", "within_spread", "disagrees_explained", "disagrees_unexplained")
MISSING = "missing"
#: How the report names each verdict.
VERDICT_LABELS = {
    "agrees": "agrees",
    "within_spread": "within the instance spread",
    "disagrees_explained": "disagrees, explained",
    "disagrees_unexplained": "disagrees, unexplained",
    MISSING: "not computed",
}
#: Fewest instance statistics of a variant that can speak for a spread (K + 1 >= 10).
MIN_INSTANCES = 10
#: Percentile band of the instance statistics that counts as "inside the spread".
SPREAD_BAND = (5.0, 95.0)


@dataclass(frozen=True)
class Verdict:
    """The verdict of one published value and the evidence for it (plain text)."""

    verdict: str
    evidence: str
    within: bool | None
    instances: int = 0
    percentile: float = math.nan
    by_variant: str = ""


def _g(x: float) -> str:
    return f"{x:.3g}"


def pct_text(pct: float) -> str:
    """A percentile with one decimal where it is not whole (95.5 must not read as 95)."""
    return f"{pct:.1f}".removesuffix(".0")


def median_of_r_probability(single_runs: Sequence[float] | np.ndarray, lo: float, hi: float, r: int) -> float:
    """Probability that the median of ``r`` runs drawn from the runs' empirical law lies in ``[lo, hi]``.

    For odd ``r = 2k - 1`` the median is the k-th order statistic, so with the
    empirical CDF ``F``: ``P(med <= t) = sum_{j >= k} C(r, j) F(t)^j (1 - F(t))^(r-j)``
    and ``P(lo <= med <= hi) = P(med <= hi) - P(med < lo)``, ``P(med < lo)`` using
    ``F(lo-)``, the share of runs strictly below ``lo``. For even ``r`` the median
    averages the two middle order statistics; it is computed exactly over the
    empirical law's pairs of order statistics.
    """
    x = np.sort(np.asarray(single_runs, dtype=float))
    x = x[~np.isnan(x)]
    if x.size == 0 or r < 1:
        return math.nan
    if r % 2 == 1:
        k = (r + 1) // 2

        def at_most(f: float) -> float:
            return float(sum(math.comb(r, j) * f**j * (1 - f) ** (r - j) for j in range(k, r + 1)))

        f_hi = float(np.mean(x <= hi))
        f_lo = float(np.mean(x < lo))
        return at_most(f_hi) - at_most(f_lo)
    return _even_median_probability(x, lo, hi, r)


def _even_median_probability(x: np.ndarray, lo: float, hi: float, r: int) -> float:
    """Exact probability for an even number of draws: sum over the (k, k+1)-th order statistics' values."""
    values, counts = np.unique(x, return_counts=True)
    p = counts / counts.sum()
    cdf = np.concatenate([[0.0], np.cumsum(p)])
    k = r // 2
    total = 0.0
    # P(X_(k) = a, X_(k+1) = b): the k-th and (k+1)-th smallest of r draws take values a <= b
    for i, a in enumerate(values):
        for j in range(i, len(values)):
            mid = 0.5 * (a + values[j])
            if not lo <= mid <= hi:
                continue
            total += _pair_probability(cdf, p, i, j, k, r)
    return float(total)


def _pair_probability(cdf: np.ndarray, p: np.ndarray, i: int, j: int, k: int, r: int) -> float:
    """P(X_(k) = v_i and X_(k+1) = v_j) for r i.i.d. draws from a discrete law (``cdf[m] = P(X < v_m)``)."""
    if i == j:
        # n1 draws below v_i (at most k - 1), n2 at v_i (n1 + n2 >= k + 1), the rest above
        prob = 0.0
        for n1 in range(0, k):
            for n2 in range(k + 1 - n1, r - n1 + 1):
                rest = r - n1 - n2
                prob += (math.factorial(r) / (math.factorial(n1) * math.factorial(n2) * math.factorial(rest))
                         * cdf[i] ** n1 * p[i] ** n2 * (1 - cdf[i + 1]) ** rest)
        return prob
    # v_i < v_j: exactly k draws <= v_i, not all below v_i; the other r - k draws >= v_j, not all above v_j
    k_part = cdf[i + 1] ** k - cdf[i] ** k
    rest_part = (1 - cdf[j]) ** (r - k) - (1 - cdf[j + 1]) ** (r - k)
    return float(math.comb(r, k) * k_part * rest_part)


def decide(published: float, reproduced: float, tolerance: Tolerance, spread: Spread | None = None,
           reduce: str = "", min_instances: int = MIN_INSTANCES,
           informative: Mapping[str, str] | None = None) -> Verdict:
    """The verdict of one published value (module docstring) with its evidence.

    Parameters
    ----------
    published, reproduced
        The published value and our main value (NaN: not computed).
    tolerance
        The tolerance in force for the entry.
    spread
        Its instance statistics per variant (``None`` or empty: no spread was run).
    reduce
        The entry's reducer; ``median`` adds the single-run evidence.
    min_instances
        Fewest instance statistics of a variant that count.
    informative
        Variants that are measured but cannot explain a value (name -> why): they are
        reported among what was tried, never as an explanation.
    """
    spread = spread or Spread()
    informative = informative or {}
    k = spread.count(PROTOCOL)
    protocol = spread.statistics.get(PROTOCOL, np.empty(0))
    pct = percentile_of(published, protocol, tolerance) if k else math.nan
    variants_text = by_variant_text(published, spread, tolerance)
    if reproduced is None or math.isnan(float(reproduced)):
        return Verdict(MISSING, "no reproduced value", None, k, pct, variants_text)
    within = bool(tolerance.check(published, reproduced))
    lo, hi = tolerance.interval(published)
    runs = _runs_evidence(published, tolerance, spread, reduce)
    if within:
        text = f"ours {_g(reproduced)} in [{_g(lo)}, {_g(hi)}] ({tolerance.text()})"
        return Verdict("agrees", text + runs, True, k, pct, variants_text)
    head = f"ours {_g(reproduced)} outside [{_g(lo)}, {_g(hi)}] ({tolerance.text()})"
    band_lo, band_hi = SPREAD_BAND
    if k >= min_instances and band_lo <= pct <= band_hi:
        q5, q95 = np.percentile(protocol, [5, 95])
        text = (f"{head}; published at percentile {pct_text(pct)} of {k} protocol instances"
                f" (their 5-95 % range [{_g(q5)}, {_g(q95)}])")
        return Verdict("within_spread", text + runs, False, k, pct, variants_text)
    tried = _tried(published, spread, tolerance, min_instances, informative)
    for variant, stats in sorted(spread.statistics.items()):
        if variant == PROTOCOL or variant in informative or len(stats) < min_instances:
            continue
        v_pct = percentile_of(published, stats, tolerance)
        if band_lo <= v_pct <= band_hi:
            text = (f"{head}; {tried}; variant {variant} reproduces it: percentile {pct_text(v_pct)} of"
                    f" {len(stats)} instances, median statistic {_g(float(np.median(stats)))}")
            return Verdict("disagrees_explained", text + runs, False, k, pct, variants_text)
    return Verdict("disagrees_unexplained", f"{head}; {tried}" + runs, False, k, pct, variants_text)


def _tried(published: float, spread: Spread, tolerance: Tolerance, min_instances: int,
           informative: Mapping[str, str] | None = None) -> str:
    """What the spread ruled out: each variant's percentile and count, or that none was run."""
    if not spread.statistics:
        return "no instance spread was run"
    informative = informative or {}
    parts = []
    for variant in sorted(spread.statistics, key=lambda v: (v != PROTOCOL, v)):
        stats = spread.statistics[variant]
        note = "" if len(stats) >= min_instances else f", fewer than {min_instances}: not counted"
        if variant in informative:
            note += f", not an explanation: {informative[variant]}"
        parts.append(f"{variant} percentile {pct_text(percentile_of(published, stats, tolerance))}"
                     f" of {len(stats)}{note}")
    return "tried: " + ", ".join(parts)


def _runs_evidence(published: float, tolerance: Tolerance, spread: Spread, reduce: str) -> str:
    """For a median: the share of single protocol runs in the tolerance interval and P(median of r in it)."""
    runs = spread.single_runs
    r = spread.runs_per_instance
    if reduce != "median" or runs.size == 0 or r < 2:
        return ""
    lo, hi = tolerance.interval(published)
    inside = int(np.sum((runs >= lo) & (runs <= hi)))
    prob = median_of_r_probability(runs, lo, hi, r)
    return (f"; single protocol runs in the interval: {inside} of {runs.size}"
            f" ({100 * inside / runs.size:.0f} %), P(median of {r} in it) = {prob:.2g}")


def evaluate(
    entries: Sequence[PublishedValue],
    results_dir: str | Path,
    scale: str = "paper",
    instance_figures: Sequence[str] = (),
    min_instances: int = MIN_INSTANCES,
    informative: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Evaluate every entry against ``results_dir/<figure>/<table>`` and give it its verdict.

    Parameters
    ----------
    entries
        Entries with resolved tolerances (:func:`implicit_reg.scorecard.published.load_published`).
    results_dir
        Directory holding ``<figure>/<table>``.
    scale
        The preset that produced the result tables (the ``scale`` column).
    instance_figures
        Figures whose instance-spread tables are read (:mod:`implicit_reg.scorecard.spread`).
    min_instances
        Fewest instance statistics of a variant that count for a verdict.
    informative
        Variants that cannot explain a value, with the reason
        (:func:`implicit_reg.scorecard.published.load_informative_variants`).

    Returns
    -------
    pandas.DataFrame
        One row per entry with the columns :data:`~implicit_reg.scorecard.published.RESULT_COLUMNS`:
        ``reading`` (how the value was read), ``reproduced`` (NaN if unavailable),
        ``n_rows`` (rows matched by ``where``), ``tolerance`` (text), ``exception``
        (the reason of a tolerance exception, else empty), ``within`` (True/False,
        None when nothing was computed), ``verdict`` (:data:`VERDICTS` or ``missing``),
        ``evidence``, ``note`` (why a value is missing), ``scale``, ``instances``
        (protocol instance statistics, 0 without a spread), ``published_percentile``
        (among them, NaN without) and ``percentile_by_variant`` (text).
    """
    results_dir = Path(results_dir)
    spread_figures = set(instance_figures)
    cache: dict[Path, pd.DataFrame | str] = {}
    rows = []
    for e in entries:
        path = e.table_path(results_dir)
        reproduced, n_rows, _, note = evaluate_entry(e, read_results_table(path, cache), path)
        spread = Spread()
        if e.figure in spread_figures:
            spread_path = results_dir / e.figure / instance_table_name(e.table)
            spread = instance_spread(e, read_results_table(spread_path, cache))
        assert e.tolerance is not None  # evaluate_entry raised otherwise
        # the single-run evidence speaks of runs: a median over another table's rows (e.g. the
        # per-n medians of a summary table) is not a median of runs
        runs_reduce = e.reduce if e.table == DEFAULT_TABLE else ""
        v = decide(e.published, reproduced, e.tolerance, spread, runs_reduce, min_instances, informative)
        rows.append({
            "id": e.id, "paper": e.paper, "figure": e.figure, "description": e.description,
            "source": e.source, "reading": e.reading.label(), "metric": e.metric, "reduce": e.reduce,
            "published": e.published, "reproduced": reproduced, "n_rows": n_rows,
            "tolerance": e.tolerance.text(),
            "exception": e.tolerance_exception.reason if e.tolerance_exception else "",
            "within": v.within, "verdict": v.verdict, "evidence": v.evidence, "note": note,
            "instance_dependent": e.instance_dependent, "scale": scale, "instances": v.instances,
            "published_percentile": v.percentile, "percentile_by_variant": v.by_variant,
        })
    df = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    df["within"] = df["within"].astype(object)
    return df


def evaluate_file(published_yaml: str | Path, results_dir: str | Path, **kwargs: Any) -> pd.DataFrame:
    """Convenience: :func:`~implicit_reg.scorecard.published.load_published` then :func:`evaluate` (keyword arguments passed on)."""
    return evaluate(load_published(published_yaml), results_dir, **kwargs)
