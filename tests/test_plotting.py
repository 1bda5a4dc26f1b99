"""Unit tests of the shared plot helpers (``implicit_reg.figures.plotting``)."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from implicit_reg.figures import plotting as P  # noqa: E402

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _runs() -> pd.DataFrame:
    """Nine runs in three groups; one diverged (NaN), one capped, one NaN value."""
    return pd.DataFrame({
        "depth": [2, 2, 2, 3, 3, 3, 4, 4, 4],
        "n_obs": [2000, 2000, 2000, 2000, 2000, 2000, 5000, 5000, 5000],
        "err": [0.10, 0.12, np.nan, 3e-5, 2e-5, 4e-5, 1e-6, 2e-6, 1e-6],
        "status": ["converged", "converged", "diverged", "converged", "max_iters", "converged",
                   "converged", "converged", "converged"],
    })


# --------------------------------------------------------------------------
# mean_std_by
# --------------------------------------------------------------------------


def test_mean_std_by_matches_numpy_population_std() -> None:
    df = _runs()
    agg = P.mean_std_by(df, "depth", "err")
    assert list(agg["depth"]) == [2, 3, 4]
    d2 = np.array([0.10, 0.12])  # the diverged run (NaN) is excluded
    d3 = np.array([3e-5, 2e-5, 4e-5])  # the capped run (finite) is included
    d4 = np.array([1e-6, 2e-6, 1e-6])
    for row, ref in zip(agg.itertuples(), (d2, d3, d4)):
        assert row.mean == pytest.approx(np.mean(ref), rel=1e-12)
        assert row.std == pytest.approx(np.std(ref), rel=1e-12)  # ddof = 0
        assert row.std != pytest.approx(np.std(ref, ddof=1), rel=1e-6)
    assert list(agg["n"]) == [2, 3, 3]
    assert list(agg["n_runs"]) == [3, 3, 3]
    assert list(agg["n_failed"]) == [1, 1, 0]
    assert list(agg["failures"]) == ["1 diverged", "1 hit cap", ""]


def test_mean_std_by_multiple_keys_and_single_seed() -> None:
    df = pd.DataFrame({"a": [1, 1, 2], "b": [0.1, 0.2, 0.1], "v": [5.0, 7.0, 3.0],
                       "status": ["converged"] * 3})
    agg = P.mean_std_by(df, ["a", "b"], "v")
    assert len(agg) == 3
    assert agg["std"].tolist() == [0.0, 0.0, 0.0]  # one run per group: std 0, not NaN
    assert agg["mean"].tolist() == [5.0, 7.0, 3.0]


def test_mean_std_by_excludes_finite_diverged_values_and_all_nan_group() -> None:
    df = pd.DataFrame({"k": [1, 1, 2], "v": [1.0, 1e30, np.nan],
                       "status": ["converged", "diverged", "diverged"]})
    agg = P.mean_std_by(df, "k", "v")
    assert agg.loc[0, "mean"] == 1.0 and agg.loc[0, "n"] == 1
    assert math.isnan(agg.loc[1, "mean"]) and math.isnan(agg.loc[1, "std"])
    assert agg.loc[1, "n"] == 0 and agg.loc[1, "n_failed"] == 1
    kept = P.mean_std_by(df, "k", "v", exclude_statuses=())
    assert kept.loc[0, "mean"] == pytest.approx(np.mean([1.0, 1e30]))


def test_mean_std_by_without_status_column_and_unknown_value() -> None:
    df = pd.DataFrame({"k": [1, 1], "v": [1.0, 3.0]})
    agg = P.mean_std_by(df, "k", "v")
    assert agg.loc[0, "mean"] == 2.0 and agg.loc[0, "std"] == 1.0 and agg.loc[0, "n_failed"] == 0
    with pytest.raises(KeyError):
        P.mean_std_by(df, "k", "missing")


# --------------------------------------------------------------------------
# Status handling and marking
# --------------------------------------------------------------------------


def test_failed_mask_and_counts() -> None:
    df = pd.DataFrame({"status": ["converged", "optimal", "exact", "diverged", "max_iters",
                                  "optimal_inaccurate", None]})
    assert P.failed_mask(df).tolist() == [False, False, False, True, True, True, True]
    assert P.status_counts(df) == {"diverged": 1, "max_iters": 1, "missing": 1,
                                   "optimal_inaccurate": 1}
    assert P.describe_failures(df) == "1 diverged, 1 hit cap, 1 missing, 1 inaccurate"
    assert P.describe_failures(df.iloc[:3]) == ""
    assert P.failed_runs_report(df.iloc[:3]) == "Non-converged runs: none"
    report = P.failed_runs_report(df, ["status"])
    assert report.startswith("Non-converged runs: 1 diverged") and "max_iters" in report


def test_mark_failed_runs_draws_every_failed_run() -> None:
    df = _runs()
    fig, ax = plt.subplots()
    n_lines = len(ax.lines)
    n = P.mark_failed_runs(ax, df, "n_obs", "err")
    assert n == 2
    new = ax.lines[n_lines:]
    # one artist for the finite (capped) run, one for the NaN (diverged) run
    assert len(new) == 2
    assert sum(len(line.get_xdata()) for line in new) == 2
    for line in new:
        assert line.get_markerfacecolor() == "none"
    # the capped run (in the mean) is an orange square, the diverged one a red triangle at the top
    finite = next(line for line in new if line.get_marker() == "s")
    assert finite.get_markeredgecolor() == "darkorange"
    assert finite.get_ydata()[0] == pytest.approx(2e-5)
    assert next(line for line in new if line.get_marker() == "^").get_markeredgecolor() == "red"
    texts = [t.get_text() for t in ax.texts]
    assert any("1 diverged" in t and "1 hit cap" in t for t in texts)


def test_mark_failed_runs_nothing_to_mark() -> None:
    fig, ax = plt.subplots()
    ok = _runs().assign(status="converged")
    assert P.mark_failed_runs(ax, ok, "n_obs", "err") == 0
    assert not ax.lines and not ax.texts


def test_mark_failed_runs_x_transform() -> None:
    df = pd.DataFrame({"s": [1e-3], "v": [0.1], "status": ["max_iters"]})
    fig, ax = plt.subplots()
    P.mark_failed_runs(ax, df, "s", "v", x_transform=lambda x: 10 * x, annotate=False)
    assert ax.lines[0].get_xdata()[0] == pytest.approx(1e-2)
    assert not ax.texts


# --------------------------------------------------------------------------
# Styles and labels
# --------------------------------------------------------------------------


def test_series_styles_follow_spec() -> None:
    assert P.depth_style(2) == {"color": "C0", "marker": "x"}
    assert P.depth_style(3) == {"color": "C1", "marker": "o"}
    assert P.depth_style(4) == {"color": "C2", "marker": "^"}
    assert P.depth_style(1)["color"] not in {"C3", "C4"}
    assert P.MIN_NUCLEAR_NORM_STYLE == {"color": "C3", "linewidth": 3}
    assert P.GROUND_TRUTH_STYLE == {"color": "C4", "linewidth": 3}
    assert P.lr_style(1e-3) == {"color": "C0", "linestyle": "-", "marker": "o"}
    assert P.lr_style(3e-4) == {"color": "C3", "linestyle": ":", "marker": "^"}
    others = [3e-5, 1e-4, 3e-4, 1e-3]  # two non-standard rates get distinct fallback styles
    assert P.lr_style(1e-4, others) != P.lr_style(3e-5, others)
    assert P.lr_style(1e-4, others)["color"] not in {"C0", "C3"}


def test_apply_style_sets_rcparams() -> None:
    with matplotlib.rc_context():
        P.apply_style()
        assert tuple(matplotlib.rcParams["axes.formatter.limits"]) == (-4, 4)
        assert matplotlib.rcParams["axes.grid"] is True
        assert matplotlib.rcParams["svg.hashsalt"] == P.SVG_HASHSALT


def test_labels() -> None:
    assert P.init_ratio_label(1e-3, 1e-3) == "init"
    assert P.init_ratio_label(5e-4, 1e-3) == "init/2"
    assert P.init_ratio_label(2.5e-4, 1e-3) == "init/4"
    assert P.init_ratio_label(2e-3, 1e-3) == "init×2"
    assert P.init_ratio_label(3e-4, 1e-3) == "init 3e-4"
    assert P.format_count(2000) == "2k" and P.format_count(2500) == "2.5k"
    assert P.format_count(975) == "975"
    assert P.format_sci(1e-3) == "1e-3" and P.format_sci(2.5e-5) == "2.5e-5"
    assert P.closest_value([1e-3, 3e-4], 2.9e-4) == 3e-4
    assert P.closest_value([1e-3, 3e-4], None) == 1e-3
    assert P.closest_value([], 1.0) is None
    assert P.format_mean_std(215.4321, 0.0391) == "215.43 ± 0.039"
    assert P.format_mean_std(2.5e-5, 3e-6) == "2.500e-05 ± 3.0e-06"
    assert P.format_mean_std(float("nan"), float("nan")) == "nan"


def test_auto_limits() -> None:
    assert P.auto_limits([5.0, 6.0], (4, 11)) == (4.0, 11.0)  # default kept when data fits
    lo, hi = P.auto_limits([5.0, 12.0], (4, 11))
    assert lo == 4.0 and hi > 12.0  # widened only where needed
    lo, hi = P.auto_limits([210.0, 220.0])
    assert lo < 210.0 and 220.0 < hi < 221.0
    lo, hi = P.auto_limits([1e-8, 1e-2], (1e-7, 0.15), log=True)
    assert lo < 1e-8 and hi == 0.15
    assert P.auto_limits([np.nan]) is None
    assert P.auto_limits([np.nan], (1, 2)) == (1.0, 2.0)


def test_pivot_mean_std_formats_keys_and_failures() -> None:
    agg = P.mean_std_by(_runs().assign(lr=1e-3), ["depth", "lr"], "err")
    wide = P.pivot_mean_std(agg, ["lr"], "depth")
    assert list(wide.columns) == [2, 3, 4]
    assert list(wide.index) == ["1e-3"]
    assert wide.loc["1e-3", 2].endswith("[1 diverged]")
    assert wide.loc["1e-3", 4].startswith("1.333e-06 ± ")


# --------------------------------------------------------------------------
# Saving
# --------------------------------------------------------------------------


def _figure() -> plt.Figure:
    P.apply_style()
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.errorbar([1, 2, 3], [0.1, 0.01, 0.001], yerr=[0.01, 0.002, 1e-4], label="depth 2",
                **P.depth_style(2))
    ax.set_yscale("log")
    ax.legend()
    return fig


def test_save_figure_writes_files(tmp_path: Path) -> None:
    fig = _figure()
    pdf, png = tmp_path / "sub" / "f.pdf", tmp_path / "sub" / "f.png"
    written = P.save_figure(fig, pdf, png, dpi=50, svg_path=tmp_path / "f.svg")
    assert written == [pdf, png, tmp_path / "f.svg"]
    assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 1000
    assert png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size > 1000
    assert b"<svg" in (tmp_path / "f.svg").read_bytes()
    # 4 x 3 inches at 50 dpi
    assert plt.imread(png).shape[:2] == (150, 200)


def test_save_figure_is_byte_stable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    fig = _figure()
    a = P.save_figure(fig, tmp_path / "a.pdf", tmp_path / "a.png", svg_path=tmp_path / "a.svg")
    b = P.save_figure(fig, tmp_path / "b.pdf", tmp_path / "b.png", svg_path=tmp_path / "b.svg")
    for x, y in zip(a, b):
        assert x.read_bytes() == y.read_bytes(), x.suffix
    assert b"D:20231114" in (tmp_path / "a.pdf").read_bytes()  # SOURCE_DATE_EPOCH honoured


def test_save_figure_without_epoch_has_no_creation_date(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    P.save_figure(_figure(), tmp_path / "a.pdf")
    assert b"CreationDate" not in (tmp_path / "a.pdf").read_bytes()


def test_save_figure_byte_identical_across_processes(tmp_path: Path) -> None:
    """Two fresh interpreters (different SVG salt/hash seeds) write identical files."""
    script = (
        "import sys, matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt;"
        "from implicit_reg.figures import plotting as P; P.apply_style();"
        "fig, ax = plt.subplots(figsize=(3, 2)); ax.plot([1, 2], [3, 1], **P.depth_style(3));"
        "d = sys.argv[1]; P.save_figure(fig, d + '/f.pdf', d + '/f.png', svg_path=d + '/f.svg')"
    )
    env = {**os.environ, "SOURCE_DATE_EPOCH": "0", "PYTHONPATH": str(SRC)}
    outs = []
    for name, seed in (("one", "1"), ("two", "2")):
        d = tmp_path / name
        d.mkdir()
        subprocess.run([sys.executable, "-c", script, str(d)], check=True,
                       env={**env, "PYTHONHASHSEED": seed})
        outs.append(d)
    for suffix in ("pdf", "png", "svg"):
        assert (outs[0] / f"f.{suffix}").read_bytes() == (outs[1] / f"f.{suffix}").read_bytes(), suffix


def test_mark_failed_runs_pins_off_axis_values_to_the_edge() -> None:
    df = pd.DataFrame({"s": [1.0, 2.0, 3.0], "v": [500.0, 215.0, 100.0],
                       "status": ["max_iters", "max_iters", "max_iters"]})
    fig, ax = plt.subplots()
    assert P.mark_failed_runs(ax, df, "s", "v", ylim=(210.0, 223.0)) == 3
    by_marker = {line.get_marker(): line for line in ax.lines}
    assert set(by_marker) == {"^", "v", "s"}  # capped runs: squares, triangles when pinned
    assert list(by_marker["^"].get_xdata()) == [1.0] and list(by_marker["^"].get_ydata()) == [0.96]
    assert list(by_marker["v"].get_xdata()) == [3.0] and list(by_marker["v"].get_ydata()) == [0.04]
    assert list(by_marker["s"].get_ydata()) == [215.0]  # inside the limits: drawn at its value
    assert any("off the axis" in t.get_text() for t in ax.texts)
