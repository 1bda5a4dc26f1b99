"""The reading rule (implicit_reg.scorecard.tolerance) and the four verdicts (implicit_reg.scorecard.verdict)."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from implicit_reg.scorecard.published import PublishedSpecError, load_published, parse_entries, resolve_tolerances
from implicit_reg.scorecard.spread import Spread, instance_spread, percentile_of
from implicit_reg.scorecard.tolerance import (
    COMPUTATIONAL_FLOORS,
    PlotAccuracy,
    Reading,
    Readings,
    ReadingsError,
    Tolerance,
    parse_readings,
    printed_half_unit,
    rule_tolerance,
)
from implicit_reg.scorecard.verdict import decide, median_of_r_probability

REPO = Path(__file__).resolve().parents[1]
READINGS = Readings({
    "log_plot": PlotAccuracy("log_plot", "log", 2.0, px_per_decade=40.0),
    "coarse_log": PlotAccuracy("coarse_log", "log", 3.0, px_per_decade=5.0),
    "lin_plot": PlotAccuracy("lin_plot", "linear", 2.0, px_per_unit=8.0),
})


# ---------------------------------------------------------------- the rule, one reading kind at a time
@pytest.mark.parametrize(("text", "half"), [
    ("210.15", 0.005), ("220.10", 0.005), ("8.19e-01", 5e-4), ("2.58e-05", 5e-8), ("3.1e4", 500.0),
    ("13.728", 5e-4), ("17", 0.5),
])
def test_printed_half_unit(text, half):
    assert printed_half_unit(text) == pytest.approx(half, rel=1e-12)


def test_printed_rule_is_half_a_unit_and_never_below_the_computational_floor():
    tol = rule_tolerance(Reading("printed", text="210.15"), "nuclear_norm", 210.15, None)
    assert tol == Tolerance("abs", pytest.approx(0.005))
    # a metric whose floor (1e-6 relative) exceeds half a unit: the floor wins
    tol = rule_tolerance(Reading("printed", text="123456789.0"), "recon_error_sq", 123456789.0, None)
    assert tol.kind == "abs" and tol.value == pytest.approx(123.456789)
    with pytest.raises(ReadingsError, match="computational floor"):
        rule_tolerance(Reading("printed", text="1.5"), "some_new_metric", 1.5, None)
    assert all(reason for _, reason in COMPUTATIONAL_FLOORS.values())


def test_log_axis_rule_is_the_pixel_factor_capped_at_2():
    tol = rule_tolerance(Reading("log_axis", plot="log_plot"), "recon_error_sq", 1e-3, READINGS)
    assert tol.kind == "factor" and tol.value == pytest.approx(10 ** (2 / 40))
    # 3 px at 5 px per decade would be a factor 4: a reading never gets looser than 2
    assert rule_tolerance(Reading("log_axis", plot="coarse_log"), "x", 1.0, READINGS) == Tolerance("factor", 2.0)


def test_linear_axis_rule_is_pixels_over_pixels_per_unit():
    tol = rule_tolerance(Reading("linear_axis", plot="lin_plot"), "nuclear_norm", 217.2, READINGS)
    assert tol == Tolerance("abs", 0.25)


def test_approx_text_follows_the_rule_of_its_plot():
    for plot in ("log_plot", "lin_plot"):
        kind = "log_axis" if plot == "log_plot" else "linear_axis"
        assert (rule_tolerance(Reading("approx_text", plot=plot), "m", 5.0, READINGS)
                == rule_tolerance(Reading(kind, plot=plot), "m", 5.0, READINGS))


def test_rule_refuses_an_unknown_plot_or_the_wrong_axis():
    with pytest.raises(ReadingsError, match="not in"):
        rule_tolerance(Reading("log_axis", plot="nowhere"), "m", 1.0, READINGS)
    with pytest.raises(ReadingsError, match="whose axis is linear"):
        rule_tolerance(Reading("log_axis", plot="lin_plot"), "m", 1.0, READINGS)


def test_parse_readings_uses_the_default_accuracy_and_checks_densities():
    r = parse_readings({"accuracy_px": 2, "plots": {"a": {"scale": "log", "px_per_decade": 20},
                                                     "b": {"scale": "linear", "px_per_unit": 4, "accuracy_px": 3}}})
    assert r.plots["a"].accuracy_px == 2 and r.plots["b"].accuracy_px == 3
    with pytest.raises(ReadingsError, match="px_per_decade"):
        parse_readings({"accuracy_px": 2, "plots": {"a": {"scale": "log", "px_per_unit": 20}}})


def _entry(**over):
    e = {"id": "e", "paper": "arora2019", "figure": "arora2019_n2", "metric": "nuclear_norm", "reduce": "first",
         "published": 210.15, "source": "nb", "reading": {"kind": "printed", "text": "210.15"}, "description": "d"}
    e.update(over)
    return e


def test_a_hand_set_tolerance_is_refused_and_an_exception_needs_a_reason():
    with pytest.raises(PublishedSpecError, match="not set by hand"):
        parse_entries([_entry(tolerance={"rel": 0.04})])
    with pytest.raises(PublishedSpecError, match="written reason"):
        parse_entries([_entry(tolerance_exception={"tolerance": {"rel": 0.04}, "reason": ""})])
    with pytest.raises(PublishedSpecError, match="is not the published value"):
        parse_entries([_entry(reading={"kind": "printed", "text": "210.16"})])
    (e,) = resolve_tolerances(parse_entries([_entry(tolerance_exception={
        "tolerance": {"rel": 0.04}, "reason": "a reason long enough"})]), None)
    assert e.tolerance == Tolerance("rel", 0.04) and e.rule == Tolerance("abs", pytest.approx(0.005))


def _repo_readings() -> Path:
    path = REPO / "config" / "readings.yaml"
    return path if path.exists() else REPO / "tests" / "data" / "readings_provisional.yaml"


def test_every_repo_tolerance_is_the_rules_unless_it_carries_a_reason():
    """config/published.yaml + config/readings.yaml: each entry's tolerance is what its reading gives."""
    readings_path = _repo_readings()
    from implicit_reg.scorecard.tolerance import load_readings

    readings = load_readings(readings_path)
    raw = yaml.safe_load((REPO / "config" / "published.yaml").read_text(encoding="utf-8"))["entries"]
    assert len(raw) == 148  # no value is dropped
    for item, e in zip(raw, load_published(REPO / "config" / "published.yaml", readings=readings_path)):
        assert "tolerance" not in item, e.id
        rule = rule_tolerance(e.reading, e.metric, e.published, readings)
        if e.tolerance_exception is None:
            assert e.tolerance == rule, e.id
        else:
            assert len(e.tolerance_exception.reason) > 40, e.id  # a written reason, not a label


# ---------------------------------------------------------------- percentiles and the ties rule
def test_values_within_the_tolerance_are_ties():
    tol = Tolerance("factor", 1.1)
    # 1.0 below all of [1.05, 2, 3] without ties; 1.05 agrees with 1.0 at factor 1.1: a tie
    assert percentile_of(1.0, [1.05, 2.0, 3.0]) == 0.0
    assert percentile_of(1.0, [1.05, 2.0, 3.0], tol) == pytest.approx(100 / 6)
    assert percentile_of(5.0, [1.0, 2.0, 4.8], tol) == pytest.approx(100 * 2.5 / 3)


# ---------------------------------------------------------------- verdicts
def _spread(protocol, **variants):
    stats = {"protocol": np.asarray(protocol, dtype=float)}
    stats.update({k: np.asarray(v, dtype=float) for k, v in variants.items()})
    return Spread(stats)


def test_the_four_verdicts():
    tol = Tolerance("factor", 1.2)
    assert decide(1.0, 1.1, tol).verdict == "agrees"
    grid = np.linspace(0.5, 2.0, 11)
    v = decide(1.0, 2.0, tol, _spread(grid))
    assert v.verdict == "within_spread" and 5 <= v.percentile <= 95 and "of 11 protocol instances" in v.evidence
    v = decide(1.0, 2.0, tol, _spread(grid + 5, redrawn_observed=grid))
    assert v.verdict == "disagrees_explained"
    assert "variant redrawn_observed reproduces it" in v.evidence and "of 11 instances" in v.evidence
    v = decide(1.0, 2.0, tol, _spread(grid + 5, redrawn_observed=grid + 5))
    assert v.verdict == "disagrees_unexplained"
    assert "protocol percentile 0 of 11" in v.evidence and "redrawn_observed percentile 0 of 11" in v.evidence
    assert "no instance spread was run" in decide(1.0, 2.0, tol).evidence
    assert decide(1.0, math.nan, tol).verdict == "missing"


def test_too_few_instances_do_not_count_and_a_pass_is_never_at_0_or_100():
    tol = Tolerance("abs", 0.1)
    v = decide(1.0, 3.0, tol, _spread(np.linspace(0.5, 1.5, 9)))  # 9 < 10
    assert v.verdict == "disagrees_unexplained" and "fewer than 10: not counted" in v.evidence
    # our main value agrees, so it is a tie: the published value cannot sit at percentile 0 or 100
    v = decide(1.0, 1.05, tol, _spread([1.05] + [2.0 + k for k in range(10)]))
    assert v.verdict == "agrees" and 0 < v.percentile < 100


def test_median_of_5_is_compared_with_medians_of_5(tmp_path):
    """A published median of 5 runs is judged against each instance's median of 5, not single runs."""
    rng = np.random.default_rng(0)
    rows = []
    for instance in range(11):
        # each instance: 2 runs in a low basin (~1e-3) and 3 in a high one (~1.0): every median of 5 is high
        for rep, value in enumerate([1e-3, 1.05e-3, 0.9, 1.0, 1.1]):
            rows.append({"series": "tf", "n_obs": 50, "instance": instance, "rep": rep,
                         "variant": "protocol", "recon_error": value * (1 + 0.01 * rng.standard_normal())})
    table = pd.DataFrame(rows)
    (e,) = resolve_tolerances(parse_entries([_entry(
        id="n50", figure="razin2020_fig2", metric="recon_error", reduce="median", published=1e-3,
        where={"series": "tf", "n_obs": 50}, reading={"kind": "log_axis", "plot": "log_plot"})]), READINGS)
    spread = instance_spread(e, table)
    assert spread.count() == 11 and spread.runs_per_instance == 5 and spread.single_runs.size == 55
    # medians of 5 are all ~0.9-1.1: the published 1e-3 is at percentile 0 of them ...
    v = decide(e.published, float(np.median(table.loc[table.instance == 0, "recon_error"])), e.tolerance,
               spread, "median")
    assert v.verdict == "disagrees_unexplained" and v.percentile == 0.0
    # ... although 40 % of the single runs are in the low basin, which the evidence states
    assert "single protocol runs in the interval: 22 of 55 (40 %)" in v.evidence
    p = median_of_r_probability(spread.single_runs, *e.tolerance.interval(e.published), 5)
    # P(at least 3 of 5 draws in the low basin) = sum_{j>=3} C(5,j) 0.4^j 0.6^(5-j) = 0.317
    assert f"P(median of 5 in it) = {p:.2g}" in v.evidence and p == pytest.approx(0.31744)


@pytest.mark.parametrize("r", [1, 2, 3, 4, 5])
def test_median_of_r_probability_is_exact(r):
    """Against enumerating every r-tuple of draws from a small empirical law."""
    runs = np.array([0.1, 0.2, 0.2, 0.5, 0.9])
    lo, hi = 0.15, 0.6
    hits = sum(lo <= np.median(t) <= hi for t in itertools.product(runs, repeat=r))
    assert median_of_r_probability(runs, lo, hi, r) == pytest.approx(hits / len(runs) ** r, abs=1e-12)
