"""Tests for implicit_reg.figures.markers (published values drawn on figures)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402

from implicit_reg.figures import markers as PM  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _entry(eid: str, where: dict, published: float, metric: str = "recon_error_sq", figure: str = "arora2019_n1"):
    return {"id": eid, "paper": "arora2019", "figure": figure, "where": where, "metric": metric,
            "reduce": "mean", "published": published, "source": "nb", "reading": {"kind": "log_axis", "plot": "nb_n1_error"},
            "description": eid}


@pytest.fixture
def published(tmp_path: Path) -> Path:
    entries = [
        _entry("d2_init", {"n_obs": 2000, "depth": 2, "init_scale": 1e-6}, 2.5e-2),
        _entry("d34_all", {"n_obs": 2000, "depth": [3, 4]}, 3e-5),
        _entry("d2_lr", {"n_obs": 5000, "depth": 2, "lr": 3e-4, "init_scale": [1e-3, 1e-4]}, 9e-5),
        _entry("norm", {"n_obs": 2000, "depth": 2}, 217.2, metric="nuclear_norm"),
        _entry("other_fig", {"n_obs": 2000}, 1.0, figure="arora2019_n2"),
    ]
    path = tmp_path / "published.yaml"
    path.write_text(yaml.safe_dump({"entries": entries}, sort_keys=False))
    return path


def test_published_points_filters_figure_and_metric(published: Path, tmp_path: Path) -> None:
    points = PM.published_points(published, "arora2019_n1", "recon_error_sq")
    assert list(points["id"]) == ["d2_init", "d34_all", "d2_lr"]
    assert points.loc[points["id"] == "d34_all", "where"].iloc[0] == {"n_obs": 2000, "depth": [3, 4]}
    assert PM.published_points(tmp_path / "absent.yaml", "arora2019_n1").empty


def test_default_published_path_is_the_repositorys() -> None:
    assert PM.default_published_path() == REPO / "config" / "published.yaml"
    assert not PM.published_points(None, "arora2019_fig3").empty


def test_select_points_semantics(published: Path) -> None:
    points = PM.published_points(published, "arora2019_n1", "recon_error_sq")
    # a list matches any of its values; a column the entry does not filter on matches all
    assert list(PM.select_points(points, n_obs=2000, depth=4)["id"]) == ["d34_all"]
    assert list(PM.select_points(points, n_obs=2000, depth=2, lr=1e-3)["id"]) == ["d2_init"]
    assert list(PM.select_points(points, n_obs=5000, depth=2, lr=1e-3)["id"]) == []
    assert list(PM.select_points(points, n_obs=5000.0, depth=2, lr=3.0e-4)["id"]) == ["d2_lr"]


def _stars(ax) -> list[tuple[float, float]]:
    out = []
    for line in ax.get_lines():
        if line.get_marker() == "*":
            x, y = line.get_data()
            out += list(zip(np.asarray(x, float), np.asarray(y, float)))
    return out


def test_draw_panel_points_and_levels(published: Path) -> None:
    points = PM.published_points(published, "arora2019_n1", "recon_error_sq")
    fig, (a, b, c) = plt.subplots(1, 3)
    try:
        assert PM.draw_panel(a, points, "init_scale", lambda s: 10 * s, n_obs=2000, depth=2) == 1
        assert _stars(a) == [(pytest.approx(1e-5), pytest.approx(2.5e-2))]
        # a value quoted for every init is a level line (dotted) with one star at the right
        assert PM.draw_panel(b, points, "init_scale", n_obs=2000, depth=3) == 1
        levels = [ln for ln in b.get_lines() if ln.get_linestyle() == ":"]
        assert len(levels) == 1 and levels[0].get_ydata()[0] == pytest.approx(3e-5)
        assert PM.draw_panel(c, points, "init_scale", n_obs=5000, depth=2) == 1
        assert sorted(x for x, _ in _stars(c)) == [pytest.approx(1e-4), pytest.approx(1e-3)]
        labels = [ln.get_label() for ax in (a, b, c) for ln in ax.get_lines() if ln.get_marker() == "*"]
        assert set(labels) == {PM.PUBLISHED_LABEL}
    finally:
        plt.close(fig)
