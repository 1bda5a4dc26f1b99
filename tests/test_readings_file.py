"""config/readings.yaml (digitization accuracy of the published plots) and the pure parts of
scripts/measure_digitization.py. The authors' images are not in the repository, so the image
analysis is tested on synthetic frames drawn here."""
from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
READINGS = ROOT / "config" / "readings.yaml"


def _load_script():
    spec = importlib.util.spec_from_file_location("measure_digitization", ROOT / "scripts" / "measure_digitization.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


md = _load_script()


@pytest.fixture(scope="module")
def readings() -> dict:
    return yaml.safe_load(READINGS.read_text())


def test_default_accuracy_is_a_positive_pixel_count(readings):
    assert isinstance(readings["accuracy_px"], (int, float)) and readings["accuracy_px"] > 0


def test_every_plot_has_its_keys_and_the_key_of_its_scale(readings):
    assert readings["plots"], "no plots"
    for pid, plot in readings["plots"].items():
        assert plot["axis"] in ("x", "y"), pid
        assert plot["scale"] in ("log", "linear"), pid
        assert isinstance(plot["source"], str) and plot["source"], pid
        assert isinstance(plot["how"], str) and "px" in plot["how"], pid
        key, other = ("px_per_decade", "px_per_unit") if plot["scale"] == "log" else ("px_per_unit", "px_per_decade")
        assert other not in plot, f"{pid}: {other} on a {plot['scale']} axis"
        assert isinstance(plot[key], (int, float)) and plot[key] > 0, pid
        if "accuracy_px" in plot:
            assert plot["accuracy_px"] > 0, pid
            assert isinstance(plot.get("why"), str) and plot["why"], f"{pid}: accuracy override without why"


def test_file_lists_the_plots_the_script_measures(readings):
    assert list(readings["plots"]) == [p.id for p in md.PLOTS]
    for p in md.PLOTS:
        entry = readings["plots"][p.id]
        assert (entry["axis"], entry["scale"]) == (p.axis, p.scale), p.id
        assert entry.get("accuracy_px") == p.accuracy_px, p.id


def test_published_readings_refer_to_measured_plots(readings):
    published = yaml.safe_load((ROOT / "config" / "published.yaml").read_text())
    for entry in published["entries"]:
        reading = entry.get("reading") or {}
        if "plot" in reading:
            assert reading["plot"] in readings["plots"], f"{entry['id']}: unknown plot {reading['plot']}"


def test_px_per_decade_and_unit():
    assert md.px_per_decade(156, 1e-7, 0.15) == pytest.approx(156 / math.log10(1.5e6))
    assert md.px_per_decade(300, 1e-3, 1.0) == pytest.approx(100.0)
    assert md.px_per_unit(156, 210, 223) == pytest.approx(12.0)
    with pytest.raises(ValueError):
        md.px_per_decade(100, 0.0, 1.0)
    with pytest.raises(ValueError):
        md.px_per_unit(100, 5.0, 5.0)


def test_reading_tolerance_follows_the_rule_and_caps_log_factors_at_two():
    assert md.reading_tolerance("log", 20.0, 2) == pytest.approx(10 ** 0.1)
    assert md.reading_tolerance("log", 2.0, 2) == 2.0  # 10 ** 1 capped
    assert md.reading_tolerance("linear", 12.0, 3) == pytest.approx(0.25)
    with pytest.raises(ValueError):
        md.reading_tolerance("symlog", 1.0, 1)


def test_tick_fit_recovers_the_spacing():
    slope, resid = md.tick_fit([27, 52, 78, 103], [1e-1, 1e-2, 1e-3, 1e-4], "log")
    assert slope == pytest.approx(25.3, abs=0.1) and resid < 0.5
    slope, resid = md.tick_fit([157, 275, 393, 511], [60, 40, 20, 0], "linear")
    assert slope == pytest.approx(5.9) and resid == pytest.approx(0.0, abs=1e-9)


def _synthetic_axes(spine: int, major_len: int, minor_len: int) -> np.ndarray:
    """A white RGBA image with one black frame (rows 40..240, columns 60..360) and left ticks."""
    img = np.full((300, 420, 4), 255, dtype=np.uint8)
    h = spine // 2
    img[40 - h:40 + h + 1, 60 - h:360 + h + 1, :3] = 0
    img[240 - h:240 + h + 1, 60 - h:360 + h + 1, :3] = 0
    img[40 - h:240 + h + 1, 60 - h:60 + h + 1, :3] = 0
    img[40 - h:240 + h + 1, 360 - h:360 + h + 1, :3] = 0
    for y in (40, 90, 140, 190, 240):  # major ticks every 50 px
        img[y - h:y + h + 1, 60 - h - major_len:60 - h, :3] = 0
    for y in (65, 115):  # minor ticks
        img[y - h:y + h + 1, 60 - h - minor_len:60 - h, :3] = 0
    img[100:104, 200:300, :3] = (214, 39, 40)  # a red series line is not ink
    return img


# Dark tick lengths as rendered in the authors' PNGs: at 72 dpi (notebook) a major tick has
# 2 dark pixels and a minor one 1 (0.8-pt lines, antialiased); at 250 dpi 12 and 7 pixels.
@pytest.mark.parametrize("spine,major_len,minor_len,dpi", [(1, 2, 1, 72.0), (3, 12, 7, 250.0)])
def test_frame_and_major_ticks_are_found(spine, major_len, minor_len, dpi):
    ink = md.ink_mask(_synthetic_axes(spine, major_len, minor_len))
    frames = md.find_frames(ink)
    assert len(frames) == 1
    f = frames[0]
    assert (f.left, f.right, f.top, f.bottom) == (60, 360, 40, 240)
    assert md.find_ticks(ink, f, "y", dpi) == [40.0, 90.0, 140.0, 190.0, 240.0]


def test_ink_mask_composites_transparent_pixels_on_white():
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)  # transparent black: white after compositing
    rgba[0, 0] = (0, 0, 0, 255)
    assert md.ink_mask(rgba).tolist() == [[True, False], [False, False]]
