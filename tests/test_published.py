"""Tests for implicit_reg.scorecard.published, published_spread and published_report (synthetic parquet tables in tmp_path)."""

from __future__ import annotations

import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from implicit_reg.scorecard.published import (
    PublishedSpecError,
    Tolerance,
    format_number,
    latex_escape,
    load_published,
    resolve_tolerances,
)
from implicit_reg.scorecard.published import parse_entries as parse_raw
from implicit_reg.scorecard.verdict import evaluate
from implicit_reg.scorecard.tolerance import PlotAccuracy, Readings
from implicit_reg.scorecard.text import (
    NOTE_MAX_CHARS,
    figure_note,
    numbers_tex,
    plain_length,
    short_quantity,
    summary_text,
    to_latex_table,
)
from implicit_reg.scorecard.spread import (
    instance_table_name,
    instance_values,
    percentile_of,
)

REPO = Path(__file__).resolve().parents[1]
#: One log-axis plot (factor 10**(2/20) = 1.26) for the entries of these tests.
READINGS = Readings({"p_log": PlotAccuracy("p_log", "log", 2.0, px_per_decade=20.0)})


def parse_entries(data, origin="<published>"):
    """Parse and resolve the tolerances against :data:`READINGS` (what load_published does)."""
    return resolve_tolerances(parse_raw(data, origin), READINGS)


def base_entry(**over):
    """An entry read off the log axis ``p_log``; ``tolerance=`` becomes a tolerance exception."""
    e = {
        "id": "e1",
        "paper": "arora2019",
        "figure": "arora2019_n2",
        "metric": "recon_error_sq",
        "reduce": "median",
        "published": 1e-4,
        "source": "paper",
        "reading": {"kind": "log_axis", "plot": "p_log"},
        "description": "depth-3 reconstruction error",
    }
    tolerance = over.pop("tolerance", {"factor": 3})
    if tolerance is not None:
        e["tolerance_exception"] = {"tolerance": tolerance, "reason": "a fixed tolerance for this test"}
    e.update(over)
    return e


@pytest.fixture
def results(tmp_path):
    runs = pd.DataFrame(
        {
            "run_id": [f"r{i}" for i in range(6)],
            "method": ["deep_factorization"] * 4 + ["min_nuclear_norm", "ground_truth"],
            "depth": [2, 2, 3, 3, 0, 0],
            "init_scale": [1e-3, 1e-3, 1e-3, 1e-2, np.nan, np.nan],
            "n_obs": [2000, 2000, 2000, 2000, 2000, 2000],
            "recon_error_sq": [2e-4, 4e-4, 1e-4, 3e-4, 5e-2, 0.0],
            "converged": [True, False, True, True, True, True],
            "status": ["converged", "max_iters", "converged", "converged", "optimal", "exact"],
        }
    )
    d = tmp_path / "results" / "arora2019_n2"
    d.mkdir(parents=True)
    runs.to_parquet(d / "runs.parquet", index=False)
    traj = pd.DataFrame({"run_id": ["r0"] * 3, "iteration": [0, 10, 20], "train_loss": [1.0, 0.1, 0.01]})
    traj.to_parquet(d / "trajectories.parquet", index=False)
    return tmp_path / "results"


def write_yaml(tmp_path, data) -> Path:
    p = tmp_path / "published.yaml"
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    return p


# ---------------------------------------------------------------- loading
def test_load_list_and_entries_mapping(tmp_path):
    p = write_yaml(tmp_path, [base_entry()])
    (e,) = load_published(p, readings=READINGS)
    assert e.table == "runs.parquet" and e.where == {} and e.published == 1e-4
    assert e.tolerance == Tolerance("factor", 3.0)
    p2 = write_yaml(tmp_path, {"entries": [base_entry(table="trajectories.parquet", where={"depth": [2, 3]})]})
    (e2,) = load_published(p2, readings=READINGS)
    assert e2.table == "trajectories.parquet" and e2.where == {"depth": [2, 3]}


def test_empty_file_gives_no_entries(tmp_path):
    p = tmp_path / "published.yaml"
    p.write_text("# nothing yet\n")
    assert load_published(p, readings=READINGS) == []


def test_yaml11_exponent_without_dot_is_accepted(tmp_path):
    p = tmp_path / "published.yaml"
    p.write_text(yaml.safe_dump([base_entry()]).replace("0.0001", "1e-4"))
    assert "1e-4" in p.read_text()
    assert load_published(p, readings=READINGS)[0].published == pytest.approx(1e-4)


@pytest.mark.parametrize(
    ("over", "key"),
    [
        ({"paper": "arora2020"}, "paper"),
        ({"reduce": "sum"}, "reduce"),
        ({"source": "twitter"}, "source"),
        ({"published": "lots"}, "published"),
        ({"published": float("nan")}, "published"),
        ({"tolerance": {"factor": 0.5}}, "tolerance_exception"),
        ({"tolerance": {"abs": -1}}, "tolerance_exception"),
        ({"tolerance": {"rel": 0.1, "abs": 1}}, "tolerance_exception"),
        ({"tolerance": {"range": [2, 1]}}, "tolerance_exception"),
        ({"tolerance": {"percent": 3}}, "tolerance_exception"),
        ({"tolerance": 3}, "tolerance_exception"),
        ({"where": {"depth": []}}, "where"),
        ({"where": {"depth": {"a": 1}}}, "where"),
        ({"where": [1, 2]}, "where"),
        ({"figure": "../etc"}, "figure"),
        ({"table": "runs.csv"}, "table"),
        ({"description": "  "}, "description"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_schema_errors_name_entry_and_key(over, key):
    with pytest.raises(PublishedSpecError) as info:
        parse_entries([base_entry(id="bad_one", **over)], origin="pub.yaml")
    msg = str(info.value)
    assert "pub.yaml" in msg and "'bad_one'" in msg and f"key '{key}'" in msg


def test_missing_key_and_bad_id():
    e = base_entry()
    del e["metric"]
    with pytest.raises(PublishedSpecError, match="key 'metric': required"):
        parse_entries([e])
    with pytest.raises(PublishedSpecError, match="key 'id'"):
        parse_entries([base_entry(id="has space")])
    with pytest.raises(PublishedSpecError, match="entry #1: expected a mapping"):
        parse_entries(["just a string"])


def test_duplicate_ids_rejected():
    with pytest.raises(PublishedSpecError, match="'e1' \\(#2\\): key 'id': duplicate of entry #1"):
        parse_entries([base_entry(), base_entry()])


def test_invalid_yaml(tmp_path):
    p = tmp_path / "published.yaml"
    p.write_text("- id: [unclosed\n")
    with pytest.raises(PublishedSpecError, match="not valid YAML"):
        load_published(p, readings=READINGS)


# ---------------------------------------------------------------- tolerances
@pytest.mark.parametrize(
    ("tol", "published", "reproduced", "ok"),
    [
        (Tolerance("factor", 3.0), 1e-4, 3e-4, True),
        (Tolerance("factor", 3.0), 1e-4, 3.01e-4, False),
        (Tolerance("factor", 3.0), 1e-4, 1e-4 / 3, True),
        (Tolerance("factor", 3.0), 1e-4, 3.2e-5, False),
        (Tolerance("factor", 3.0), 1e-4, -1e-4, False),
        (Tolerance("factor", 3.0), 1e-4, 0.0, False),
        (Tolerance("abs", 0.1), 1.0, 1.1, True),
        (Tolerance("abs", 0.1), 1.0, 0.85, False),
        (Tolerance("rel", 0.1), -2.0, -2.2, True),
        (Tolerance("rel", 0.1), -2.0, -2.3, False),
        (Tolerance("range", (0.5, 2.0)), 1.0, 2.0, True),
        (Tolerance("range", (0.5, 2.0)), 1.0, 2.1, False),
    ],
)
def test_tolerance_check(tol, published, reproduced, ok):
    assert tol.check(published, reproduced) is ok


def test_tolerance_text():
    assert Tolerance("factor", 3.0).text() == "factor 3"
    assert Tolerance("rel", 0.1).text() == "rel 10%"
    assert Tolerance("abs", 0.05).text() == "abs 0.05"
    assert Tolerance("range", (0.1, 2.0)).text() == "range [0.1, 2]"


# ---------------------------------------------------------------- evaluation
def test_evaluate_filters_and_reducers(results):
    entries = parse_entries(
        [
            base_entry(id="median_d2", where={"method": "deep_factorization", "depth": 2}, published=3e-4),
            base_entry(id="mean_d2", reduce="mean", where={"depth": 2}, published=3e-4, tolerance={"rel": 1e-12}),
            base_entry(id="min", reduce="min", where={"depth": [2, 3]}, published=1e-4),
            base_entry(id="max_float", reduce="max", where={"init_scale": 0.001}, published=4e-4),
            base_entry(id="count_nan", reduce="count", where={"init_scale": None}, published=2,
                       tolerance={"abs": 0}),
            base_entry(id="first", reduce="first", where={"status": ["optimal", "exact"]}, published=5e-2),
            base_entry(id="bool", reduce="count", where={"converged": False}, published=1, tolerance={"abs": 0}),
            base_entry(id="fail", where={"method": "min_nuclear_norm"}, published=1e-4),
            base_entry(id="traj", table="trajectories.parquet", metric="train_loss", reduce="min",
                       published=0.01, tolerance={"range": [0.005, 0.02]}),
        ]
    )
    df = evaluate(entries, results).set_index("id")
    assert df.loc["median_d2", "reproduced"] == pytest.approx(3e-4)
    assert df.loc["median_d2", "n_rows"] == 2
    assert df.loc["mean_d2", "within"] is True
    assert df.loc["min", "reproduced"] == pytest.approx(1e-4)
    assert df.loc["max_float", "n_rows"] == 3  # 1e-3 matched with relative tolerance
    assert df.loc["max_float", "reproduced"] == pytest.approx(4e-4)
    assert df.loc["count_nan", "reproduced"] == 2 and df.loc["count_nan", "verdict"] == "agrees"
    assert df.loc["first", "reproduced"] == pytest.approx(5e-2)
    assert df.loc["bool", "reproduced"] == 1
    assert df.loc["fail", "within"] is False and df.loc["fail", "verdict"] == "disagrees_unexplained"
    assert df.loc["traj", "verdict"] == "agrees"
    assert set(df.loc[df["verdict"] != "disagrees_unexplained", "within"]) == {True}


def test_where_float_relative_tolerance(results):
    (ok,) = parse_entries([base_entry(where={"init_scale": 1e-3 * (1 + 1e-12)}, reduce="count", published=3,
                                      tolerance={"abs": 0})])
    (off,) = parse_entries([base_entry(where={"init_scale": 1e-3 * (1 + 1e-6)}, reduce="count", published=0,
                                       tolerance={"abs": 0})])
    df = evaluate([ok, off], results)
    assert list(df["n_rows"]) == [3, 0]


def test_evaluate_missing_never_crashes(results):
    entries = parse_entries(
        [
            base_entry(id="no_table", figure="razin2020_fig1", paper="razin2020"),
            base_entry(id="no_rows", where={"depth": 7}),
            base_entry(id="no_col", where={"optimizer": "gd"}),
            base_entry(id="no_metric", metric="nope"),
            base_entry(id="all_nan", metric="init_scale", where={"method": "ground_truth"}),
        ]
    )
    df = evaluate(entries, results).set_index("id")
    assert (df["verdict"] == "missing").all()
    assert df["within"].map(lambda v: v is None).all()
    assert "table not found" in df.loc["no_table", "note"]
    assert df.loc["no_rows", "note"] == "no rows match 'where'"
    assert "optimizer" in df.loc["no_col", "note"]
    assert "nope" in df.loc["no_metric", "note"]
    assert df.loc["all_nan", "n_rows"] == 1 and "NaN" in df.loc["all_nan", "note"]
    assert math.isnan(df.loc["no_table", "reproduced"])


def test_evaluate_unreadable_table(tmp_path):
    d = tmp_path / "arora2019_n2"
    d.mkdir()
    (d / "runs.parquet").write_text("not parquet")
    df = evaluate(parse_entries([base_entry()]), tmp_path)
    assert df.loc[0, "verdict"] == "missing" and "cannot read" in df.loc[0, "note"]


def test_evaluate_columns(results):
    df = evaluate(parse_entries([base_entry()]), results)
    for col in ["id", "paper", "figure", "description", "source", "published", "reproduced", "n_rows",
                "reading", "tolerance", "exception", "within", "verdict", "evidence"]:
        assert col in df.columns
    assert evaluate([], results).empty


# ---------------------------------------------------------------- LaTeX
@pytest.mark.parametrize(
    ("x", "text"),
    [
        (None, "--"),
        (float("nan"), "--"),
        (0.0, "0"),
        (3.0, "3"),
        (0.0123, "0.0123"),
        (45.678, "45.7"),
        (1.234e-4, r"$1.23\times10^{-4}$"),
        (1e-5, r"$10^{-5}$"),
        (-2.5e6, r"$-2.5\times10^{6}$"),
        (123456.7, r"$1.23\times10^{5}$"),
        (-0.5, "$-0.5$"),
    ],
)
def test_format_number(x, text):
    assert format_number(x) == text


def test_latex_escape():
    assert latex_escape("a_b & 50% #1 $x$ {y} ~^\\") == (
        r"a\_b \& 50\% \#1 \$x\$ \{y\} \textasciitilde{}\textasciicircum{}\textbackslash{}"
    )
    assert latex_escape("‖W−W*‖² ≈ ε, café ☃") == r"$\|$W$-$W*$\|$$^2$ $\approx$ $\varepsilon$, café ?"


def test_to_latex_table(results):
    entries = parse_entries(
        [
            base_entry(id="a", description="recon_error_sq & 50%"),
            base_entry(id="b", paper="razin2020", figure="razin2020_fig1", description="missing one"),
            base_entry(id="c", where={"method": "min_nuclear_norm"}, tolerance={"rel": 0.1}),
        ]
    )
    df = evaluate(entries, results)
    tex = to_latex_table(df)
    # one longtable, whatever the number of rows, so that it breaks across pages
    assert tex.count(r"\begin{longtable}") == 1 and r"\endhead" in tex and r"\bottomrule" in tex
    assert r"recon\_error\_sq \& 50\%" in tex
    assert r"\texttt{arora2019\_n2}" in tex
    assert "agrees" in tex and r"\textbf{unexpl.}" in tex and r"\textit{missing}" in tex
    # the tolerances are exceptions here (base_entry), so each is marked and its reason printed
    assert r"${\times}/{\div}\,3$$^{*}$" in tex and r"$\pm\,10\%$$^{*}$" in tex
    assert "tolerance exception: a fixed tolerance for this test" in tex
    # the disagreement's evidence line: its interval and that no spread was run
    assert "no instance spread was run" in tex
    # Arora rows come before the Razin group heading
    assert tex.index("Arora") < tex.index("Razin") and tex.index("Razin") > tex.rindex("arora2019\\_n2")
    assert summary_text(df).startswith(
        "Of 3 published values at paper scale: 1 agrees, 0 within the instance spread, 0 disagree (explained),"
        " 1 disagrees (unexplained); 1 not computed (an error at paper scale")
    assert "reduced sizes" not in summary_text(df)
    test_scale = summary_text(df, "test")
    assert test_scale.startswith("Of 3 published values at test scale: 1 agrees,") and "reduced sizes" in test_scale
    assert "1 not computed at test scale" in test_scale
    many = pd.concat([df] * 30, ignore_index=True)
    assert to_latex_table(many).count(r"\begin{longtable}") == 1
    assert "No published values" in to_latex_table(df.iloc[0:0])


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed")
def test_latex_table_compiles(results, tmp_path):
    entries = parse_entries(
        [
            base_entry(id="a", description="‖W−W*‖²_F / ‖W*‖²_F, 50% & #obs ~ 2000 {x}"),
            base_entry(id="b", paper="razin2020", figure="razin2020_fig1", tolerance={"range": [1e-6, 2.5e3]}),
            base_entry(id="c", where={"method": "min_nuclear_norm"}, tolerance={"abs": 1e-7}),
        ]
    )
    df = evaluate(entries, results)
    doc = tmp_path / "t.tex"
    doc.write_text(
        "\\documentclass{article}\\usepackage[T1]{fontenc}\\usepackage{lmodern}\\usepackage{booktabs}\\usepackage{longtable}\n"
        "\\begin{document}\n" + summary_text(df) + "\n" + to_latex_table(df) + "\\end{document}\n",
        encoding="utf-8",
    )
    proc = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", doc.name],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert (tmp_path / "t.pdf").stat().st_size > 1000


def test_repo_published_yaml_is_valid():
    path = REPO / "config" / "published.yaml"
    if not path.exists():
        pytest.skip("config/published.yaml not written yet")
    readings = REPO / "config" / "readings.yaml"
    if not readings.exists():  # until the digitization step writes it: the provisional fixture
        readings = REPO / "tests" / "data" / "readings_provisional.yaml"
    entries = load_published(path, readings=readings)
    assert len({e.id for e in entries}) == len(entries) == 148


# ---------------------------------------------------------------- instance spread
@pytest.mark.parametrize(
    ("value", "sample", "pct"),
    [
        (0.5, [1, 2, 3, 4], 0.0),
        (5.0, [1, 2, 3, 4], 100.0),
        (2.5, [1, 2, 3, 4], 50.0),
        (2.0, [1, 2, 3, 4], 37.5),  # a tie counts half
        (1.0, [], float("nan")),
        (1.0, [np.nan, 3.0], 0.0),
    ],
)
def test_percentile_of(value, sample, pct):
    got = percentile_of(value, sample)
    assert (math.isnan(got) and math.isnan(pct)) or got == pytest.approx(pct)


def test_instance_table_name():
    assert instance_table_name("runs.parquet") == "instances.parquet"
    assert instance_table_name("markers.parquet") == "markers_instances.parquet"


def _instances(results: Path, sampling: bool) -> None:
    """Instances 0..9 of arora2019_n2: depth-2 errors 1e-3 * (k + 1) (seeds 2 per instance)."""
    rows = []
    for samp in (["without_replacement", "with_replacement"] if sampling else [None]):
        shift = 10.0 if samp == "with_replacement" else 1.0
        for k in range(10):
            for seed in range(2):
                row = {"method": "deep_factorization", "depth": 2, "n_obs": 2000, "instance": k, "seed": seed,
                       "recon_error_sq": shift * 1e-3 * (k + 1) * (1 + 0.1 * seed)}
                if samp:
                    row["sampling"] = samp
                rows.append(row)
    pd.DataFrame(rows).to_parquet(results / "arora2019_n2" / "instances.parquet", index=False)


def test_instance_values_per_instance(results):
    _instances(results, sampling=False)
    (e,) = parse_entries([base_entry(where={"depth": 2}, reduce="mean")])
    vals = instance_values(e, pd.read_parquet(results / "arora2019_n2" / "instances.parquet"))
    assert list(vals["instance"]) == list(range(10)) and set(vals["variant"]) == {"protocol"}
    # the reducer runs per instance: mean over the two seeds
    assert vals["value"].iloc[3] == pytest.approx(4e-3 * 1.05)
    missing_col = instance_values(e, pd.DataFrame({"depth": [2], "recon_error_sq": [1.0]}))
    assert missing_col.empty


def test_evaluate_reports_instances_and_percentile(results):
    _instances(results, sampling=False)
    entries = parse_entries([
        base_entry(id="inside", where={"depth": 2}, reduce="mean", published=5.5e-3, instance_dependent=True),
        base_entry(id="beyond", where={"depth": 2}, reduce="mean", published=1.0),
    ])
    off = evaluate(entries, results, scale="quick").set_index("id")
    assert (off["instances"] == 0).all() and off["published_percentile"].isna().all()
    assert (off["scale"] == "quick").all() and bool(off.loc["inside", "instance_dependent"])
    on = evaluate(entries, results, instance_figures=["arora2019_n2"]).set_index("id")
    assert on.loc["inside", "instances"] == 10
    # the means are 1.05e-3 (k + 1); within factor 3 of 5.5e-3 ([1.83e-3, 1.65e-2]) lie
    # instances 1..9: ties (count half), instance 0 below: (1 + 9 / 2) / 10
    assert on.loc["inside", "published_percentile"] == pytest.approx(55.0)
    assert on.loc["beyond", "published_percentile"] == pytest.approx(100.0)
    assert on.loc["inside", "percentile_by_variant"] == "protocol: 55.0 (10)"
    assert on.loc["inside", "verdict"] == "within_spread" and on.loc["beyond", "verdict"] == "disagrees_unexplained"


def test_evaluate_percentile_by_sampling(results):
    _instances(results, sampling=True)
    entries = parse_entries([base_entry(where={"depth": 2}, reduce="mean", published=2.05e-2)])
    row = evaluate(entries, results, instance_figures=["arora2019_n2"]).iloc[0]
    # a table with `sampling` (no `variant`): without_replacement is the protocol. Within
    # factor 3 of 2.05e-2 ([6.83e-3, 6.15e-2]): protocol instances 6..9 (ties), 0..5 below:
    # (6 + 4 / 2) / 10; with_replacement (10x) instances 0..4 tie, none below: (5 / 2) / 10
    assert row["instances"] == 10 and row["published_percentile"] == pytest.approx(80.0)
    assert row["percentile_by_variant"] == "protocol: 80.0 (10); with_replacement: 25.0 (10)"
    # our main value (3e-4) is outside the tolerance; the protocol's spread holds the published one
    assert row["verdict"] == "within_spread" and row["within"] is False


def test_instance_dependent_must_be_bool():
    with pytest.raises(PublishedSpecError, match="instance_dependent"):
        parse_entries([base_entry(instance_dependent="yes")])


# ---------------------------------------------------------------- generated text
def test_short_quantity():
    assert short_quantity("2k obs, depth 2, init 1e-6: error stays >= 1e-2 (instance-dependent)") == (
        "2k obs, depth 2, init 1e-6: error stays >= 1e-2")
    assert short_quantity("Fig. 1 depth 3 (b): |P11| at loss < 0.13; wide: jumps") == "Fig. 1 depth 3 (b): |P11| at loss < 0.13"
    assert short_quantity("order 3, linear rank, peak over n (random ALS estimate; seeded)") == (
        "order 3, linear rank, peak over n")


def _note_frame(results, **kwargs):
    entries = parse_entries([
        base_entry(id="ok", where={"depth": 3}, published=1.5e-4),
        base_entry(id="low", where={"depth": 2}, reduce="mean", published=3e-3, tolerance={"factor": 2},
                   instance_dependent=True, description="depth 2 error (instance-dependent)"),
        base_entry(id="gone", where={"depth": 9}),
    ])
    return evaluate(entries, results, **kwargs)


def test_figure_note_counts_and_lists_every_disagreement(results):
    note = figure_note(_note_frame(results), "paper")
    assert ("of 3 published values at paper scale, 1 agrees, 0 within the instance spread,"
            " 0 disagree (explained), 1 disagrees (unexplained).") in note
    assert "1 not computed at paper scale" in note
    # the disagreement comes first, with its ratio and what was tried
    assert note.index("depth 2 error") < note.index("depth-3")
    assert r"ours 10$\times$ lower; no instance spread was run" in note
    _instances(results, sampling=True)
    spread = figure_note(_note_frame(results, instance_figures=["arora2019_n2"]), "paper")
    # 3e-3 at factor 2 ([1.5e-3, 6e-3]): protocol instances 1..4 tie, instance 0 below: (1 + 2) / 10
    assert "1 within the instance spread" in spread and "percentile 30 of 10 instances" in spread
    far = parse_entries([base_entry(id="far", where={"depth": 2}, reduce="mean", published=1.0)])
    outside = figure_note(evaluate(far, results, instance_figures=["arora2019_n2"]), "paper")
    assert "percentiles of 10 instances: protocol 100, with replacement 100" in outside
    assert "1 disagrees (unexplained)" in outside


def test_figure_note_never_drops_a_disagreement(results):
    """Items are dropped for length only among agreements and values within the spread."""
    df = _note_frame(results)
    long = df.assign(description="a very long description of the quantity " * 4)
    many = pd.concat([long] * 6, ignore_index=True)
    note = figure_note(many, "paper")
    assert note.count("Disagreements:") == 1
    assert note.count("no instance spread was run") == int((many["verdict"] == "disagrees_unexplained").sum()) == 6
    assert plain_length(note) > NOTE_MAX_CHARS  # longer than the budget rather than silent
    # agreements fill only what the budget leaves
    short = figure_note(df.loc[df["verdict"] == "agrees"], "paper")
    assert "(agrees)" in short and plain_length(short) <= NOTE_MAX_CHARS


def test_figure_note_ratio_never_in_exponent_notation(results):
    far = parse_entries([base_entry(id="far", where={"depth": 2}, reduce="mean", published=1.6e-6)])
    assert r"ours 188$\times$ higher" in figure_note(evaluate(far, results), "paper")


def test_figure_note_without_values_names_every_status(results):
    empty = figure_note(_note_frame(results).iloc[0:0], "test", {"converged": 3, "max_iters": 1})
    assert "quote no number" in empty and r"4 results by status: 3 converged, 1 max\_iters." in empty


def test_numbers_tex_defines_every_macro(results):
    df = _note_frame(results)
    tex = numbers_tex(df, "test", ["arora2019_n2", "arora2019_fig4"])
    assert r"\renewcommand{\ReportPreset}{test}" in tex
    assert r"\renewcommand{\ReportSummary}{Of 3 published values at test scale: 1 agrees," in tex
    # Section 4's paragraph: the same counts and every exception with its reason
    assert r"\renewcommand{\ScorecardText}{Of 3 published values at test scale: 1 agrees," in tex
    assert "3 tolerances are set against the reading rule" in tex
    assert r"\item \texttt{low} (${\times}/{\div}\,2$): a fixed tolerance for this test" in tex
    assert r"\resultdef{low}{published}{$3\times10^{-3}$}" in tex
    assert r"\resultdef{gone}{verdict}{not computed}" in tex
    assert r"\resultdef{ok}{verdict}{agrees}" in tex
    assert tex.count(r"\figurenotedef{") == 2 and r"\figurenotedef{arora2019_fig4}" in tex
    assert "leaves out" not in tex
    # A build of a subset of the preset's figures names the ones it leaves out.
    subset = numbers_tex(df, "paper", ["arora2019_n2"], omitted_figures=["arora2019_fig4", "arora2019_na1"])
    assert r"This build leaves out 2 figures of the preset: arora2019\_fig4, arora2019\_na1.}" in subset
    assert summary_text(df.iloc[0:0], omitted_figures=["razin2020_fig1"]).endswith(
        "This build leaves out 1 figure of the preset: razin2020\\_fig1.")
    # With reasons, the figures are grouped by reason.
    assert summary_text(df.iloc[0:0], omitted_figures={"a_1": "not restored", "b_2": "not selected",
                                                       "a_3": "not restored"}).endswith(
        "This build leaves out 3 figures of the preset: a\\_1, a\\_3 (not restored); b\\_2 (not selected).")


def test_trajectory_reducers_read_the_logged_iterations(tmp_path):
    """``last`` is the value at the last logged iteration whatever the row order, and
    ``half_rise_iteration`` the first iteration reaching half of it (a jump's midpoint)."""
    d = tmp_path / "results" / "arora2019_fig3"
    d.mkdir(parents=True)
    # a sigmoidal jump of sv_1 from ~0 to 40 between iterations 300 and 500, rows shuffled
    iterations = np.arange(0, 1000, 100)
    sv = 40.0 / (1.0 + np.exp(-(iterations - 400) / 30.0))
    order = np.random.default_rng(0).permutation(len(iterations))
    pd.DataFrame({"run_id": "r0", "depth": 3, "iteration": iterations[order], "sv_1": sv[order]}).to_parquet(
        d / "trajectories.parquet", index=False)
    pd.DataFrame({"run_id": ["r0"], "depth": [3], "sv_1": [40.0]}).to_parquet(d / "runs.parquet", index=False)
    common = dict(figure="arora2019_fig3", table="trajectories.parquet", metric="sv_1", where={"depth": 3})
    entries = parse_entries([
        base_entry(id="top", reduce="last", published=40.0, tolerance={"rel": 0.01}, **common),
        base_entry(id="jump", reduce="half_rise_iteration", published=400.0, tolerance={"abs": 0}, **common),
        base_entry(id="no_iteration", reduce="last", published=40.0, tolerance={"rel": 0.01},
                   **{**common, "table": "runs.parquet"}),
    ])
    df = evaluate(entries, tmp_path / "results").set_index("id")
    assert df.loc["top", "reproduced"] == pytest.approx(sv[-1])
    assert df.loc["jump", "reproduced"] == 400.0  # sv(300) = 1.4 < 20 <= sv(400) = 20
    assert df.loc["jump", "verdict"] == "agrees"
    assert df.loc["no_iteration", "verdict"] == "missing" and "iteration" in df.loc["no_iteration", "note"]
