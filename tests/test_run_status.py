"""Capped and diverged runs on the figures (implicit_reg.figures.run_status): who is in the mean, how each is drawn."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from implicit_reg.figures import plotting as P  # noqa: E402
from implicit_reg.figures import run_status as RS  # noqa: E402

NOTEBOOKS = Path(__file__).resolve().parents[1] / "workflow" / "notebooks"


def runs() -> pd.DataFrame:
    return pd.DataFrame({
        "n_obs": [100, 100, 100, 100],
        "value": [1.0, 3.0, 8.0, np.nan],
        "status": ["converged", "converged", "max_iters", "diverged"],
    })


def test_capped_runs_are_in_the_mean_diverged_are_not():
    agg = P.mean_std_by(runs(), "n_obs", "value")
    row = agg.iloc[0]
    assert row["mean"] == 4.0 and row["n"] == 3 and row["n_runs"] == 4 and row["n_failed"] == 2
    assert row["std"] == np.std([1.0, 3.0, 8.0])
    assert row["failures"] == "1 diverged, 1 hit cap"
    # a diverged run with a finite value stays out too
    df = runs().assign(value=[1.0, 3.0, 8.0, 1e6])
    assert P.mean_std_by(df, "n_obs", "value").iloc[0]["mean"] == 4.0


def test_capped_and_diverged_runs_have_distinct_markers():
    fig, ax = plt.subplots()
    df = runs().assign(value=[1.0, 3.0, 8.0, 2.0])
    assert P.mark_failed_runs(ax, df, "n_obs", "value") == 2
    styles = {(line.get_marker(), line.get_markeredgecolor()): line.get_ydata().tolist() for line in ax.lines}
    assert styles == {("o", "red"): [2.0], ("s", "darkorange"): [8.0]}
    text = ax.texts[0].get_text()
    assert text.startswith("1 diverged, 1 hit cap") and "hit cap: in the mean" in text
    plt.close(fig)


def test_without_capped_runs_the_drawing_is_unchanged():
    fig, ax = plt.subplots()
    df = runs().iloc[[0, 3]].assign(value=[1.0, np.nan])
    P.mark_failed_runs(ax, df, "n_obs", "value", ylim=(0.1, 10))
    assert [(line.get_marker(), line.get_markeredgecolor()) for line in ax.lines] == [("^", "red")]
    assert ax.texts[0].get_text() == "1 diverged\n(▲: no value)"
    plt.close(fig)


def test_capped_run_off_the_axis_is_pinned_with_its_own_colour():
    fig, ax = plt.subplots()
    P.mark_failed_runs(ax, runs().iloc[[2]].assign(value=[50.0]), "n_obs", "value", ylim=(0.1, 10), annotate=False)
    (line,) = ax.lines
    assert line.get_marker() == "^" and line.get_markeredgecolor() == "darkorange"
    plt.close(fig)


def test_no_figure_notebook_leaves_capped_runs_out_of_its_mean():
    """The policy is the library's: a notebook passing max_iters to exclude_statuses would break it."""
    for path in NOTEBOOKS.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        for call in re.findall(r"exclude_statuses\s*=\s*([^)\n]*)", text):
            assert "max_iters" not in call, f"{path.name}: {call}"
    assert RS.EXCLUDED_FROM_MEAN == ("diverged",) and RS.CAPPED_STATUSES == {"max_iters"}
