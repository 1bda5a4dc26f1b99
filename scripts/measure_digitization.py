#!/usr/bin/env python3
"""Measure how precisely each published plot can be read, from the authors' own images.

Prints the YAML of ``config/readings.yaml`` (docs/digitization.md explains the method).
It reads the authors' published images from the git mirrors that the ``fetch`` tool
returns (or from a folder of already extracted PNGs) and needs no network. It is not part
of the pipeline: the images are not in this repository, and nothing here may be committed
from them.

    .venv/bin/python scripts/measure_digitization.py \
        --arora-mirror /work/.mirror/roosephu+deep_matrix_factorization/repo \
        --razin-mirror /work/.mirror/noamrazin+imp_reg_dl_not_norms/repo > config/readings.yaml

    .venv/bin/python scripts/measure_digitization.py --images DIR   # DIR holds the PNGs below

Per plot it finds the axes frame (the four spines: long runs of near-black pixels that
close a rectangle), the major tick marks on the read axis (short dark runs just outside
the spine, longer than a minor tick), and the axis limits: from the authors' plotting code
where it sets them (``ylim``), otherwise from the tick labels (read by eye from the image
and written in PLOTS below). From these: pixels per decade (log axis) or per unit (linear).
"""
from __future__ import annotations

import argparse
import base64
import io
import json
import math
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ARORA_COMMIT = "3ad61e3"
RAZIN_COMMIT = "c20e02c"

#: Notebook cells (by their markdown title) whose PNG output is measured.
NOTEBOOK_CELLS = {
    "Figure 1": "nb_fig1.png",
    "Figure 2": "nb_fig2.png",
    "Figure 3": "nb_fig3.png",
    "Appendix Figure 1": "nb_appfig1.png",
    "Appendix Figure 2": "nb_appfig2.png",
}
RAZIN_IMAGES = {
    "example_plots/dmf_orig_d2.png": "rz_dmf_orig_d2.png",
    "example_plots/dmf_orig_d3.png": "rz_dmf_orig_d3.png",
    "example_plots/dmf_orig_d4.png": "rz_dmf_orig_d4.png",
    "example_plots/tc_r1_order3.png": "rz_tc_r1_order3.png",
    "example_plots/tc_r1_order4.png": "rz_tc_r1_order4.png",
}

#: Pixels darker than this in every channel (after compositing on white) count as ink of
#: the spines and ticks; the series colours (C0-C4, the copper map's light end) are lighter
#: in at least one channel, so they do not form frames.
DARK_MAX_CHANNEL = 110
#: Matplotlib's default tick lengths in points (major 3.5, minor 2).
MAJOR_TICK_PT = 3.5
MINOR_TICK_PT = 2.0


# ----------------------------------------------------------------------------- pure arithmetic
def px_per_decade(extent_px: float, lo: float, hi: float) -> float:
    """Pixels per decade of a log axis whose limits ``lo < hi`` span ``extent_px`` pixels.

    Parameters
    ----------
    extent_px : float
        Distance in pixels between the spines at ``lo`` and ``hi`` (positive).
    lo, hi : float
        Axis limits, ``0 < lo < hi``.

    Returns
    -------
    float
        ``extent_px / log10(hi / lo)``.
    """
    if not (extent_px > 0 and 0 < lo < hi):
        raise ValueError(f"need extent > 0 and 0 < lo < hi, got {extent_px}, {lo}, {hi}")
    return extent_px / math.log10(hi / lo)


def px_per_unit(extent_px: float, lo: float, hi: float) -> float:
    """Pixels per data unit of a linear axis with limits ``lo < hi`` over ``extent_px`` pixels."""
    if not (extent_px > 0 and lo < hi):
        raise ValueError(f"need extent > 0 and lo < hi, got {extent_px}, {lo}, {hi}")
    return extent_px / (hi - lo)


def reading_tolerance(scale: str, px_per: float, accuracy_px: float) -> float:
    """The tolerance a value read to ±``accuracy_px`` pixels gets (the issue-25 rule).

    Log axis: the factor ``min(2, 10 ** (accuracy_px / px_per_decade))``; linear axis: the
    absolute tolerance ``accuracy_px / px_per_unit``.
    """
    if px_per <= 0 or accuracy_px <= 0:
        raise ValueError("px_per and accuracy_px must be positive")
    if scale == "log":
        return min(2.0, 10 ** (accuracy_px / px_per))
    if scale == "linear":
        return accuracy_px / px_per
    raise ValueError(f"scale must be log or linear, got {scale!r}")


def tick_fit(positions_px: list[float], values: list[float], scale: str) -> tuple[float, float]:
    """Least-squares pixels per decade (log) or unit (linear) from labelled tick positions.

    Returns the slope's magnitude and the largest residual of a tick from the fitted line,
    in pixels (how well the ticks agree with one linear map).
    """
    if len(positions_px) != len(values) or len(values) < 2:
        raise ValueError("need at least two ticks, one value each")
    t = np.log10(values) if scale == "log" else np.asarray(values, dtype=float)
    p = np.asarray(positions_px, dtype=float)
    slope, intercept = np.polyfit(t, p, 1)
    return float(abs(slope)), float(np.max(np.abs(p - (slope * t + intercept))))


# ----------------------------------------------------------------------------- image analysis
def ink_mask(rgba: np.ndarray) -> np.ndarray:
    """Near-black pixels of an RGBA image composited on white (the notebook PNGs are transparent)."""
    a = rgba[..., 3:4].astype(float) / 255.0
    rgb = rgba[..., :3].astype(float) * a + 255.0 * (1.0 - a)
    return rgb.max(axis=-1) < DARK_MAX_CHANNEL


def _runs(line: np.ndarray, min_len: int) -> list[tuple[int, int]]:
    """Half-open index ranges of True runs of at least ``min_len`` in a 1-d bool array."""
    padded = np.concatenate([[False], line, [False]]).astype(np.int8)
    d = np.diff(padded)
    starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
    return [(int(s), int(e)) for s, e in zip(starts, ends) if e - s >= min_len]


def _group(lines: dict[int, list[tuple[int, int]]], slack: int = 2) -> list[tuple[float, int, int, int]]:
    """Merge runs on adjacent rows (or columns) with the same extent into spines.

    Returns (centre, thickness, start, end) per spine.
    """
    items = sorted((k, s, e) for k, runs in lines.items() for s, e in runs)
    spines: list[list[tuple[int, int, int]]] = []
    for k, s, e in items:
        for sp in spines:
            k0, s0, e0 = sp[-1]
            if k - k0 == 1 and abs(s - s0) <= slack and abs(e - e0) <= slack:
                sp.append((k, s, e))
                break
        else:
            spines.append([(k, s, e)])
    out = []
    for sp in spines:
        ks = [k for k, _, _ in sp]
        out.append((float(np.mean(ks)), len(ks), min(s for _, s, _ in sp), max(e for _, _, e in sp)))
    return out


@dataclass(frozen=True)
class Frame:
    """An axes frame: spine centre lines in pixel coordinates (row 0 at the top)."""

    left: float
    right: float
    top: float
    bottom: float
    spine_px: int

    @property
    def height(self) -> float:
        return self.bottom - self.top

    @property
    def width(self) -> float:
        return self.right - self.left


def find_frames(ink: np.ndarray, min_len: int = 100, slack: int = 3, tick_px: int = 13) -> list[Frame]:
    """Axes frames: a top and a bottom spine of the same extent, joined by a left spine.

    The right spine can be hidden under a legend (Razin & Cohen's depth-2 panel), so the
    right edge is taken where the top spine ends. A spine's dark run can continue past a
    corner into a tick mark (a y tick at the top or bottom limit, an x tick at the left), so
    run ends are matched within ``tick_px + slack``. Sorted in reading order (top to bottom,
    then left to right).
    """
    h, w = ink.shape
    vert = _group({x: _runs(ink[:, x], min_len) for x in range(w)})
    horiz = _group({y: _runs(ink[y, :], min_len) for y in range(h)})
    reach = tick_px + slack
    frames = []
    for ty, tt, ts, te in horiz:
        for by, _, bs, be in horiz:
            if by <= ty + min_len or abs(te - be) > slack or abs(ts - bs) > reach:
                continue
            lefts = [(vx, vt) for vx, vt, vs, ve in vert
                     if ts - slack <= vx - (tt - 1) / 2 <= ts + reach and vs <= ty + slack and ve >= by - slack
                     and vs >= ty - reach and ve <= by + reach + 1]
            if not lefts:
                continue
            vx, vt = lefts[0]
            right = te - 1 - (tt - 1) / 2
            frames.append(Frame(vx, right, ty, by, vt))
    # Keep the tightest pair: drop a frame whose top/bottom enclose another frame's.
    frames = [f for f in frames if not any(g != f and g.left == f.left and g.top >= f.top
                                           and g.bottom <= f.bottom for g in frames)]
    return sorted(frames, key=lambda f: (round(f.top / 10), f.left))


def find_ticks(ink: np.ndarray, frame: Frame, axis: str, dpi: float, side: str | None = None) -> list[float]:
    """Centres (pixels) of the major tick marks outside the frame on the read axis.

    ``axis="y"`` looks left of the left spine (``side="right"``: right of the right spine),
    ``axis="x"`` below the bottom spine. A tick is major when its dark run outside the spine
    is at least 0.75 × 3.5 pt long (a minor tick is 2 pt).
    """
    major_px = MAJOR_TICK_PT * dpi / 72.0
    need = max(2, int(math.floor(0.75 * major_px)))
    half = frame.spine_px / 2.0
    rows: list[int] = []
    if axis == "y":
        # First pixel column outside the spine (a spine of odd width w covers centre ± w/2).
        x_out = (math.ceil(frame.left - half) - 1) if side != "right" else (math.floor(frame.right + half) + 1)
        step = -1 if side != "right" else 1
        lo, hi = int(frame.top - half) - 1, int(frame.bottom + half) + 2
        for y in range(max(lo, 0), min(hi, ink.shape[0])):
            n = 0
            while 0 <= x_out + step * n < ink.shape[1] and ink[y, x_out + step * n]:
                n += 1
            if n >= need:
                rows.append(y)
    else:
        y_out = math.floor(frame.bottom + half) + 1
        lo, hi = int(frame.left - half) - 1, int(frame.right + half) + 2
        for x in range(max(lo, 0), min(hi, ink.shape[1])):
            n = 0
            while y_out + n < ink.shape[0] and ink[y_out + n, x]:
                n += 1
            if n >= need:
                rows.append(x)
    centres, group = [], []
    for r in rows:
        if group and r - group[-1] > 1:
            centres.append(float(np.mean(group)))
            group = []
        group.append(r)
    if group:
        centres.append(float(np.mean(group)))
    return centres


# ----------------------------------------------------------------------------- the plots
@dataclass(frozen=True)
class PlotSpec:
    """Which axes of which image a published value was read from, and how its limits are known."""

    id: str
    image: str
    frames: tuple[int, ...]           # frame indices (reading order); all must agree in size
    axis: str                         # "y" or "x"
    scale: str                        # "log" or "linear"
    source: str
    limits: tuple[float, float] | None = None   # from the authors' code
    limits_where: str = ""
    tick_values: tuple[float, ...] | None = None  # labelled major ticks, read from the image
    accuracy_px: float | None = None
    why: str = ""


NB = f"roosephu/deep_matrix_factorization@{ARORA_COMMIT} plot.ipynb cell"
RZ = f"noamrazin/imp_reg_dl_not_norms@{RAZIN_COMMIT}"
ERR_LIM = (1e-7, 0.15)

#: Where a published value sits on markers of several series drawn on top of one another
#: (N1's two learning rates; depths 3 and 4 and the ground-truth line in N2/NA2), the centre
#: of a hidden marker is known only to half a marker width: matplotlib's 6 pt markers are
#: 6 px wide at the notebook's 72 dpi, so ±3 px.
LR_OVERLAP = "the lr 1e-3 (o) and lr 3e-4 (^) markers lie on each other: half of a 6-px marker, ±3 px"
DEPTH_OVERLAP = "the depth-3 (o) and depth-4 (^) markers lie on each other: half of a 6-px marker, ±3 px"
DEPTH_GT_OVERLAP = "the depth-3 (o) and depth-4 (^) markers lie on each other and on the 3-px gt line: half of a 6-px marker, ±3 px"

PLOTS: list[PlotSpec] = [
    PlotSpec("nb_n1_error", "nb_fig1.png", (0, 1, 2, 3, 4, 5), "y", "log", f"{NB} 'Figure 1'",
             ERR_LIM, "ax.set_ylim(1e-7, 0.15)", accuracy_px=3, why=LR_OVERLAP),
    PlotSpec("nb_n2_error", "nb_fig2.png", (0, 3), "y", "log", f"{NB} 'Figure 2'",
             ERR_LIM, "ax.set_ylim(1e-7, 0.15)", accuracy_px=3, why=DEPTH_OVERLAP),
    PlotSpec("nb_n2_nuclear", "nb_fig2.png", (1, 4), "y", "linear", f"{NB} 'Figure 2'",
             (210.0, 223.0), "ax.set_ylim(210, 223)", accuracy_px=3,
             why=DEPTH_GT_OVERLAP),
    PlotSpec("nb_n2_erank", "nb_fig2.png", (2, 5), "y", "linear", f"{NB} 'Figure 2'",
             (4.0, 11.0), "ax.set_ylim(4, 11)", accuracy_px=3,
             why=DEPTH_GT_OVERLAP),
    PlotSpec("nb_na1_error", "nb_appfig1.png", (0, 1, 2, 3, 4, 5), "y", "log", f"{NB} 'Appendix Figure 1'",
             ERR_LIM, "ax.set_ylim(1e-7, 0.15)", accuracy_px=3, why=LR_OVERLAP),
    PlotSpec("nb_na2_error", "nb_appfig2.png", (0, 3), "y", "log", f"{NB} 'Appendix Figure 2'",
             ERR_LIM, "ax.set_ylim(1e-7, 0.15)", accuracy_px=3, why=DEPTH_OVERLAP),
    PlotSpec("nb_na2_nuclear", "nb_appfig2.png", (1, 4), "y", "linear", f"{NB} 'Appendix Figure 2'",
             (220.0, 228.0), "ax.set_ylim(220, 228)", accuracy_px=3,
             why=DEPTH_GT_OVERLAP),
    PlotSpec("nb_na2_erank", "nb_appfig2.png", (2, 5), "y", "linear", f"{NB} 'Appendix Figure 2'",
             (4.0, 10.0), "ax.set_ylim(4, 10)", accuracy_px=3,
             why=DEPTH_GT_OVERLAP),
]

#: Figure 3 (notebook cell "Figure 3") sets no y-limits and only some x-limits, so the
#: scale comes from its tick labels, read by eye from the image (top to bottom on y, left to
#: right on x). The x tick labels are in units of the offset text (1e4 or 1e5) printed at
#: the axis end; the values below are in steps.
FIG3 = f"{NB} 'Figure 3'"
PLOTS += [
    PlotSpec("nb_fig3_synthetic_depth1_sv", "nb_fig3.png", (0,), "y", "linear", FIG3,
             tick_values=(12, 10, 8, 6, 4, 2, 0)),
    PlotSpec("nb_fig3_synthetic_depth2_sv", "nb_fig3.png", (1,), "y", "linear", FIG3,
             tick_values=(40, 30, 20, 10, 0)),
    PlotSpec("nb_fig3_synthetic_depth3_sv", "nb_fig3.png", (2,), "y", "linear", FIG3,
             tick_values=(50, 40, 30, 20, 10, 0)),
    PlotSpec("nb_fig3_synthetic_depth3_steps", "nb_fig3.png", (2,), "x", "linear", FIG3,
             (0.0, 2.0e4), "ax.set_xlim(0, 20000)", tick_values=(0, 5e3, 1e4, 1.5e4, 2e4),
             accuracy_px=3, why="a jump is read where a steep 1.5-px curve crosses its mid-level: ±3 px along x"),
    PlotSpec("nb_fig3_movielens_depth1_sv", "nb_fig3.png", (4,), "y", "linear", FIG3,
             tick_values=(70, 60, 50, 40, 30, 20, 10, 0)),
    PlotSpec("nb_fig3_movielens_depth2_sv", "nb_fig3.png", (5,), "y", "linear", FIG3,
             tick_values=(3500, 3000, 2500, 2000, 1500, 1000, 500, 0)),
    PlotSpec("nb_fig3_movielens_depth3_sv", "nb_fig3.png", (6,), "y", "linear", FIG3,
             tick_values=(4000, 3500, 3000, 2500, 2000, 1500, 1000, 500, 0)),
    PlotSpec("nb_fig3_movielens_depth3_steps", "nb_fig3.png", (6,), "x", "linear", FIG3,
             (0.0, 5.0e4), "ax.set_xlim(0, 50000)", tick_values=(0, 1e4, 2e4, 3e4, 4e4, 5e4),
             accuracy_px=3, why="a jump is read where a steep 1.5-px curve crosses its mid-level: ±3 px along x"),
]

#: Razin & Cohen's panels (example_plots/, 250 dpi): no plotting code sets the read axis'
#: limits, so the scale comes from the tick labels read off the image.
PLOTS += [
    PlotSpec("razin_fig1_d2", "rz_dmf_orig_d2.png", (0,), "y", "linear",
             f"{RZ} example_plots/dmf_orig_d2.png", tick_values=(6, 4, 2, 0)),
    PlotSpec("razin_fig1_d2_hidden", "rz_dmf_orig_d2.png", (0,), "y", "linear",
             f"{RZ} example_plots/dmf_orig_d2.png", tick_values=(6, 4, 2, 0), accuracy_px=17,
             why="the lr 6e-3 (b) run's markers (v) are partly hidden under the lr 3e-3 (b) run's (D): half a 35-px (10 pt at 250 dpi) marker"),
    PlotSpec("razin_fig1_d3", "rz_dmf_orig_d3.png", (0,), "y", "linear",
             f"{RZ} example_plots/dmf_orig_d3.png", tick_values=(60, 40, 20, 0)),
    PlotSpec("razin_fig1_d4", "rz_dmf_orig_d4.png", (0,), "y", "linear",
             f"{RZ} example_plots/dmf_orig_d4.png", tick_values=(60, 40, 20, 0)),
    PlotSpec("razin_fig1_d34_hidden", "rz_dmf_orig_d3.png", (0,), "y", "linear",
             f"{RZ} example_plots/dmf_orig_d3.png and dmf_orig_d4.png (same geometry)",
             tick_values=(60, 40, 20, 0), accuracy_px=17,
             why="values over all runs include markers hidden under the (b) run's marker: half a 35-px (10 pt at 250 dpi) marker"),
    PlotSpec("razin_fig2_o3_error", "rz_tc_r1_order3.png", (0,), "y", "log",
             f"{RZ} example_plots/tc_r1_order3.png (left)", tick_values=(1e-1, 1e-3, 1e-5)),
    PlotSpec("razin_fig2_o3_rank", "rz_tc_r1_order3.png", (1,), "y", "linear",
             f"{RZ} example_plots/tc_r1_order3.png (right)", tick_values=(15, 10, 5, 0)),
    PlotSpec("razin_fig2_o4_error", "rz_tc_r1_order4.png", (0,), "y", "log",
             f"{RZ} example_plots/tc_r1_order4.png (left)", tick_values=(1e1, 1e-1, 1e-3, 1e-5)),
    PlotSpec("razin_fig2_o4_rank", "rz_tc_r1_order4.png", (1,), "y", "linear",
             f"{RZ} example_plots/tc_r1_order4.png (right)", tick_values=(50, 40, 30, 20, 10, 0)),
]

IMAGE_DPI = {"nb": 72.0, "rz": 250.0}  # notebook inline PNGs are 72 dpi; Razin's savefig dpi=250
DEFAULT_ACCURACY_PX = 2


# ----------------------------------------------------------------------------- extraction
def extract_notebook_pngs(mirror: Path, commit: str = ARORA_COMMIT) -> dict[str, bytes]:
    """The PNG outputs of the notebook cells titled in NOTEBOOK_CELLS (title = preceding markdown)."""
    text = subprocess.run(["git", f"--git-dir={mirror}", "show", f"{commit}:plot.ipynb"],
                          check=True, capture_output=True).stdout
    cells = json.loads(text)["cells"]
    out, title = {}, None
    for cell in cells:
        if cell["cell_type"] == "markdown":
            title = "".join(cell["source"]).lstrip("# ").strip()
            continue
        for o in cell.get("outputs", []):
            if title in NOTEBOOK_CELLS and "image/png" in o.get("data", {}):
                out[NOTEBOOK_CELLS[title]] = base64.b64decode(o["data"]["image/png"])
    return out


def extract_razin_pngs(mirror: Path, commit: str = RAZIN_COMMIT) -> dict[str, bytes]:
    """Razin & Cohen's committed figure panels."""
    return {name: subprocess.run(["git", f"--git-dir={mirror}", "show", f"{commit}:{path}"],
                                 check=True, capture_output=True).stdout
            for path, name in RAZIN_IMAGES.items()}


# ----------------------------------------------------------------------------- measurement
def measure(spec: PlotSpec, png: bytes) -> dict:
    """One plot's entry of readings.yaml, measured from its image."""
    from PIL import Image

    image = Image.open(io.BytesIO(png))
    ink = ink_mask(np.asarray(image.convert("RGBA")))
    dpi = IMAGE_DPI[spec.image[:2]]
    frames = find_frames(ink)
    chosen = [frames[i] for i in spec.frames]
    extents = [f.height if spec.axis == "y" else f.width for f in chosen]
    if max(extents) - min(extents) > 1.0:
        raise RuntimeError(f"{spec.id}: panels differ in size: {extents}")
    extent = min(extents)
    f0 = chosen[0]
    edges = f"rows {f0.top:g}..{f0.bottom:g}" if spec.axis == "y" else f"columns {f0.left:g}..{f0.right:g}"
    panel = (f"frame {spec.frames[0]}" if len(chosen) == 1
             else f"frames {','.join(map(str, spec.frames))} (all {extent:g} px)")
    how = [f"{image.size[0]}x{image.size[1]} PNG; axes {panel}: spine centres at {edges} = {extent:g} px"]
    ticks = find_ticks(ink, f0, spec.axis, dpi)
    tick_px = None
    if spec.tick_values is not None:
        if len(ticks) != len(spec.tick_values):
            raise RuntimeError(f"{spec.id}: {len(ticks)} major ticks found, {len(spec.tick_values)} labels given")
        tick_px, resid = tick_fit(ticks, list(spec.tick_values), spec.scale)
        unit = "decade" if spec.scale == "log" else "unit"
        how.append(f"{len(ticks)} major {spec.axis} ticks at {', '.join(f'{t:g}' for t in ticks)} px, labelled "
                   f"{', '.join(f'{v:g}' for v in spec.tick_values)} (read from the image's tick labels) "
                   f"=> least squares {tick_px:.2f} px/{unit} (largest tick residual {resid:.2f} px)")
    if spec.limits is not None:
        lo, hi = spec.limits
        per = px_per_decade(extent, lo, hi) if spec.scale == "log" else px_per_unit(extent, lo, hi)
        span = f"{math.log10(hi / lo):.3f} decades" if spec.scale == "log" else f"{hi - lo:g} units"
        how.insert(1, f"limits [{lo:g}, {hi:g}] from the cell's code ({spec.limits_where}) => "
                      f"{extent:g} px / {span} = {per:.4g}")
        if tick_px is None and spec.scale == "log":
            # Cross-check with the labelled decade ticks inside the limits (matplotlib labels
            # every decade, or every other one when the axis spans many).
            ks = list(range(math.floor(math.log10(hi) + 1e-9), math.ceil(math.log10(lo) - 1e-9) - 1, -1))
            if len(ticks) > 1 and (len(ks) - 1) % (len(ticks) - 1) == 0:
                stride = (len(ks) - 1) // (len(ticks) - 1)
                values = [10.0 ** k for k in ks[::stride]]
                check, resid = tick_fit(ticks, values, "log")
                how.append(f"check: {len(ticks)} major ticks at {', '.join(f'{t:g}' for t in ticks)} px = "
                           f"{', '.join(f'{v:g}' for v in values)} => {check:.2f} px/decade "
                           f"(largest residual {resid:.2f} px)")
    else:
        per = tick_px
        assert per is not None, spec.id
        how.insert(1, "no limits in any code: scale from the labelled ticks")
    entry = {"source": f"{spec.source} (PNG {image.size[0]}x{image.size[1]})", "axis": spec.axis, "scale": spec.scale}
    entry["px_per_decade" if spec.scale == "log" else "px_per_unit"] = float(f"{per:.4g}")
    accuracy = spec.accuracy_px if spec.accuracy_px is not None else DEFAULT_ACCURACY_PX
    if spec.accuracy_px is not None:
        entry["accuracy_px"] = spec.accuracy_px
        entry["why"] = spec.why
    tol = reading_tolerance(spec.scale, per, accuracy)
    how.append(f"at ±{accuracy:g} px: " + (f"factor {tol:.3f}" if spec.scale == "log" else f"abs {tol:.4g}"))
    entry["how"] = "; ".join(how)
    return entry


def to_yaml(entries: dict[str, dict]) -> str:
    """readings.yaml text (json-quoted strings are valid YAML; no PyYAML needed)."""
    lines = [
        "# Digitization accuracy of each published figure image, measured from the image itself",
        "# (scripts/measure_digitization.py prints this file; docs/digitization.md says how).",
        "# Tolerance of a reading: log axis factor = min(2, 10 ** (accuracy_px / px_per_decade));",
        "# linear axis abs = accuracy_px / px_per_unit.",
        f"accuracy_px: {DEFAULT_ACCURACY_PX}   # default: a marker centre or line located to ±2 px at the stored resolution",
        "plots:",
    ]
    for pid, e in entries.items():
        lines.append(f"  {pid}:")
        for k, v in e.items():
            lines.append(f"    {k}: {json.dumps(v, ensure_ascii=False) if isinstance(v, str) else v}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arora-mirror", type=Path, help="git dir of roosephu/deep_matrix_factorization")
    parser.add_argument("--razin-mirror", type=Path, help="git dir of noamrazin/imp_reg_dl_not_norms")
    parser.add_argument("--images", type=Path, help="folder with the extracted PNGs (names as in this script)")
    parser.add_argument("--save-images", type=Path, help="write the extracted PNGs there (outside the repo)")
    args = parser.parse_args(argv)
    pngs: dict[str, bytes] = {}
    if args.images:
        pngs.update({p.name: p.read_bytes() for p in args.images.glob("*.png")})
    if args.arora_mirror:
        pngs.update(extract_notebook_pngs(args.arora_mirror))
    if args.razin_mirror:
        pngs.update(extract_razin_pngs(args.razin_mirror))
    if args.save_images:
        args.save_images.mkdir(parents=True, exist_ok=True)
        for name, data in pngs.items():
            (args.save_images / name).write_bytes(data)
    missing = sorted({s.image for s in PLOTS} - pngs.keys())
    if missing:
        print(f"missing images: {missing}", file=sys.stderr)
        return 2
    sys.stdout.write(to_yaml({s.id: measure(s, pngs[s.image]) for s in PLOTS}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
