"""Tables of a tensor figure's instance spreads (Razin & Cohen 2020, Figure 2).

A spread reruns some (data set, n) settings of a figure on instances 0..K. Each
configured spread is a named *variant*: ``protocol`` observes, on every instance,
the first n entries of the authors' stored permutation and varies only the
initialization seeds (spec §2.2, §9.7: "repetitions differ only in the GD
initialization"); a variant such as ``redrawn_observed`` also redraws the observed
set per instance. The report compares a published median of 5 runs with the
distribution, over instances, of the same median of 5 runs
(:mod:`implicit_reg.scorecard.spread`).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from implicit_reg.razin2020.tables import TC_RUN_COLUMNS, sort_tc, tc_summary

__all__ = ["spread_runs", "spread_summary"]


def spread_runs(parts: Sequence[pd.DataFrame], variants: Sequence[str] | None = None,
                linear: Sequence[pd.DataFrame] = (), linear_instances: Sequence[int] = ()) -> pd.DataFrame:
    """The runs of a tensor figure's instance spreads, with ``instance`` and ``variant``.

    Run ids of a spread read ``<figure>/instances/[<variant>/]i<k>/...``.

    Parameters
    ----------
    parts : sequence of pandas.DataFrame
        The runs tables of the spreads' jobs.
    variants : sequence of str, optional
        The variant name of each part (same order); default ``protocol`` for all.
    linear, linear_instances : sequences
        The linear baseline's rows of its rank-seed spread and the instance of each
        (the protocol: the same linear tensor, its rank estimated with another ALS seed).

    Returns
    -------
    pandas.DataFrame
        :data:`TC_RUN_COLUMNS` plus ``instance`` (int) and ``variant``, sorted by
        variant, then as :func:`~implicit_reg.razin2020.tables.sort_tc`.
    """
    if variants is None:
        variants = ["protocol"] * len(parts)
    if len(variants) != len(parts):
        raise ValueError(f"{len(parts)} runs tables but {len(variants)} variant names")
    if len(linear) != len(linear_instances):
        raise ValueError(f"{len(linear)} linear rows but {len(linear_instances)} instances")
    tagged = []
    for part, variant in zip(parts, variants):
        runs = part[TC_RUN_COLUMNS].copy()
        runs["instance"] = runs["run_id"].str.extract(r"/i(\d+)/", expand=False).astype("int64")
        runs["variant"] = str(variant)
        tagged.append(runs)
    for row, instance in zip(linear, linear_instances):
        tagged.append(row[TC_RUN_COLUMNS].assign(instance=int(instance), variant="protocol"))
    runs = pd.concat(tagged, ignore_index=True)
    return pd.concat([sort_tc(g) for _, g in runs.groupby("variant", sort=True)], ignore_index=True)


def spread_summary(runs: pd.DataFrame) -> pd.DataFrame:
    """:func:`~implicit_reg.razin2020.tables.tc_summary` per variant and instance.

    Parameters
    ----------
    runs : pandas.DataFrame
        What :func:`spread_runs` returned.

    Returns
    -------
    pandas.DataFrame
        The summary columns plus ``instance`` and ``variant``.
    """
    parts = []
    for (variant, instance), g in runs.groupby(["variant", "instance"], sort=True):
        s = tc_summary(g.drop(columns=["instance", "variant"]))
        s["instance"] = int(instance)
        s["variant"] = str(variant)
        parts.append(s)
    return pd.concat(parts, ignore_index=True)
