"""The tolerance of a published value follows from how it was read (one rule).

Every entry of ``config/published.yaml`` says how its number was obtained
(``reading``) and :func:`rule_tolerance` turns that into the tolerance a
reproduced value is compared with. Nobody sets a tolerance by hand: an entry that
needs another one carries ``tolerance_exception`` with a written reason, and the
report lists every exception (docs/scorecard.md says the same for readers).

The rule
--------
``printed``
    Digits printed by the authors (paper text, notebook output, blog table, a
    colorbar tick label), kept exactly as printed in ``text``. A printed number
    agrees to half a unit of its last printed digit: ``210.15`` -> ``±0.005``,
    ``8.19e-01`` -> ``±0.0005``, ``3.1e4`` -> ``±500``. The tolerance is never
    tighter than the computational floor of the metric
    (:data:`COMPUTATIONAL_FLOORS`: how precisely our own computation, float32
    arithmetic or the convex solver's stopping accuracy, fixes the value), so
    ``abs = max(0.5 * 10**-decimals, floor_rel * |published|)``.
``log_axis``
    Read off a log axis of the plot ``plot`` (an id of ``config/readings.yaml``,
    where the figure's digitization accuracy is measured from the image itself:
    ``accuracy_px`` pixels at ``px_per_decade`` pixels per decade). A point
    located to ``a`` pixels is known to a factor ``10**(a / px_per_decade)``;
    the tolerance is that factor, capped at 2 (a reading never gets looser than
    a factor 2 either way).
``linear_axis``
    Read off a linear axis: ``abs = accuracy_px / px_per_unit``.
``approx_text``
    A value stated as "≈" about a figure (the text or the spec reads it off that
    figure): the same rule as a reading of that plot.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from implicit_reg.core.latex_text import format_number

__all__ = [
    "COMPUTATIONAL_FLOORS",
    "FACTOR_CAP",
    "READING_KINDS",
    "PlotAccuracy",
    "Reading",
    "Readings",
    "ReadingsError",
    "Tolerance",
    "ToleranceException",
    "load_readings",
    "parse_reading",
    "parse_readings",
    "parse_tolerance",
    "printed_half_unit",
    "rule_tolerance",
]

READING_KINDS = ("printed", "log_axis", "linear_axis", "approx_text")
TOLERANCE_KINDS = ("factor", "abs", "rel", "range")
#: A value read off a log axis never agrees more loosely than this factor either way.
FACTOR_CAP = 2.0

#: Relative accuracy to which our own computation fixes a metric, with the reason.
#: A printed value is never held to less than this (the computational floor).
COMPUTATIONAL_FLOORS: dict[str, tuple[float, str]] = {
    "recon_error_sq": (1e-6, "float32 squared error of a 100x100 matrix: a sum of 1e4 rounded terms"
                             " (about 1e-7 each) is good to about 1e-6 relative"),
    "recon_error": (1e-6, "float32 or float64 norms of at most 4096 entries: about 1e-6 relative"),
    "test_mse": (1e-6, "float32 mean of about 9e4 squared test residuals: about 1e-6 relative"),
    "nuclear_norm": (1e-6, "singular values in float32 (GD) or the SCS solve stopped at eps 1e-6"
                           " (min nuclear norm): about 1e-6 relative"),
    "iterations": (0.0, "an iteration count is exact"),
}


class ReadingsError(ValueError):
    """``config/readings.yaml`` is malformed or lacks a plot an entry refers to."""


# --------------------------------------------------------------------------
# tolerances
# --------------------------------------------------------------------------
def _g(x: float) -> str:
    return f"{x:.6g}"


@dataclass(frozen=True)
class Tolerance:
    """How close a reproduced value ``x`` must be to the published value ``p``."""

    kind: str  # factor | abs | rel | range
    value: float | tuple[float, float]

    def interval(self, published: float) -> tuple[float, float]:
        """The closed interval ``[lo, hi]`` of values that agree with ``published``."""
        p = float(published)
        if self.kind == "factor":
            f = float(self.value)  # type: ignore[arg-type]
            lo, hi = sorted((p / f, p * f))
            return lo, hi
        if self.kind == "abs":
            a = float(self.value)  # type: ignore[arg-type]
            return p - a, p + a
        if self.kind == "rel":
            a = float(self.value) * abs(p)  # type: ignore[arg-type]
            return p - a, p + a
        lo, hi = self.value  # type: ignore[misc]
        return float(lo), float(hi)

    def check(self, published: float, reproduced: float) -> bool:
        x, p = float(reproduced), float(published)
        if math.isnan(x):
            return False
        if self.kind == "factor":
            f = float(self.value)  # type: ignore[arg-type]
            if p == 0.0:
                return x == 0.0
            if x == 0.0 or (x > 0) != (p > 0):
                return False
            ratio = x / p  # > 0
            # tiny slack so that x == p*F exactly still counts as within
            return ratio <= f * (1 + 1e-12) and ratio >= (1 / f) * (1 - 1e-12)
        if self.kind == "abs":
            return abs(x - p) <= float(self.value) * (1 + 1e-12)  # type: ignore[arg-type]
        if self.kind == "rel":
            return abs(x - p) <= float(self.value) * abs(p) * (1 + 1e-12)  # type: ignore[arg-type]
        if self.kind == "range":
            lo, hi = self.value  # type: ignore[misc]
            return lo <= x <= hi
        raise ValueError(f"unknown tolerance kind {self.kind!r}")

    def text(self) -> str:
        """Plain ASCII description, e.g. ``factor 3``, ``abs 0.05``."""
        if self.kind == "range":
            lo, hi = self.value  # type: ignore[misc]
            return f"range [{_g(lo)}, {_g(hi)}]"
        if self.kind == "rel":
            return f"rel {_g(100 * float(self.value))}%"  # type: ignore[arg-type]
        return f"{self.kind} {_g(float(self.value))}"  # type: ignore[arg-type]

    def latex(self) -> str:
        if self.kind == "factor":
            return rf"${{\times}}/{{\div}}\,{format_number(self.value, math_mode=False)}$"
        if self.kind == "abs":
            return rf"$\pm\,{format_number(self.value, math_mode=False)}$"
        if self.kind == "rel":
            return rf"$\pm\,{_g(100 * float(self.value))}\%$"  # type: ignore[arg-type]
        lo, hi = self.value  # type: ignore[misc]
        return rf"$[{format_number(lo, math_mode=False)},\,{format_number(hi, math_mode=False)}]$"


def _num(x: Any) -> float | None:
    if isinstance(x, str):
        try:
            x = float(x)
        except ValueError:
            return None
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
        return None
    return float(x)


ErrorFactory = Callable[[str, str], Exception]


def parse_tolerance(raw: Any, err: ErrorFactory, key: str = "tolerance") -> Tolerance:
    """A :class:`Tolerance` from ``{factor: F}``, ``{abs: A}``, ``{rel: R}`` or ``{range: [lo, hi]}``."""
    if not isinstance(raw, Mapping) or len(raw) != 1:
        raise err(key, "must be a mapping with exactly one of factor, abs, rel, range, e.g. {factor: 3}")
    ((kind, val),) = raw.items()
    if kind not in TOLERANCE_KINDS:
        raise err(key, f"unknown kind {kind!r} (allowed: {', '.join(TOLERANCE_KINDS)})")
    if kind == "range":
        if not isinstance(val, (list, tuple)) or len(val) != 2:
            raise err(key, f"range must be [lo, hi] (got {val!r})")
        lo, hi = _num(val[0]), _num(val[1])
        if lo is None or hi is None or lo > hi:
            raise err(key, f"range must be two finite numbers with lo <= hi (got {val!r})")
        return Tolerance("range", (lo, hi))
    v = _num(val)
    if v is None:
        raise err(key, f"{kind} must be a finite number (got {val!r})")
    if kind == "factor" and v < 1:
        raise err(key, f"factor must be >= 1 (got {v!r})")
    if v < 0:
        raise err(key, f"{kind} must be >= 0 (got {v!r})")
    return Tolerance(kind, v)


@dataclass(frozen=True)
class ToleranceException:
    """A tolerance set against the rule, with the written reason the report prints."""

    tolerance: Tolerance
    reason: str


# --------------------------------------------------------------------------
# readings
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class Reading:
    """How a published number was obtained: ``kind`` plus ``text`` (printed) or ``plot``."""

    kind: str
    text: str | None = None
    plot: str | None = None

    def label(self) -> str:
        """Short plain description, e.g. ``printed 210.15`` or ``log axis of nb_n2_error``."""
        if self.kind == "printed":
            return f"printed {self.text}"
        what = {"log_axis": "log axis of", "linear_axis": "linear axis of", "approx_text": "'≈' about"}[self.kind]
        return f"{what} {self.plot}"


_PRINTED_RE = re.compile(r"^[+-]?(\d+)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$")


def printed_half_unit(text: str) -> float:
    """Half a unit of the last printed digit of a number printed as ``text``.

    >>> printed_half_unit("210.15"), printed_half_unit("8.19e-01"), printed_half_unit("3.1e4")
    (0.005, 0.0005, 500.0)
    """
    m = _PRINTED_RE.match(text.strip())
    if not m:
        raise ValueError(f"not a printed number: {text!r}")
    decimals = len(m.group(2) or "")
    exponent = int(m.group(3) or 0)
    return 0.5 * 10.0 ** (exponent - decimals)


def parse_reading(raw: Any, published: float, err: ErrorFactory) -> Reading:
    """Validate an entry's ``reading`` mapping (see the module docstring)."""
    if not isinstance(raw, Mapping):
        raise err("reading", "must be a mapping such as {kind: printed, text: '210.15'} or {kind: log_axis, plot: ID}")
    kind = raw.get("kind")
    if kind not in READING_KINDS:
        raise err("reading", f"kind must be one of {', '.join(READING_KINDS)} (got {kind!r})")
    allowed = {"kind", "text"} if kind == "printed" else {"kind", "plot"}
    extra = sorted(set(raw) - allowed, key=str)
    if extra:
        raise err("reading", f"{kind}: unknown key {extra[0]!r} (allowed: {', '.join(sorted(allowed))})")
    if kind == "printed":
        text = raw.get("text")
        if not isinstance(text, str) or not _PRINTED_RE.match(text.strip()):
            raise err("reading", f"printed: text must be the number exactly as printed, as a string (got {text!r})")
        if not math.isclose(float(text), published, rel_tol=1e-12, abs_tol=0.0):
            raise err("reading", f"printed text {text!r} is not the published value {published!r}")
        return Reading("printed", text=text.strip())
    plot = raw.get("plot")
    if not isinstance(plot, str) or not plot:
        raise err("reading", f"{kind}: plot must be a plot id of config/readings.yaml (got {plot!r})")
    return Reading(kind, plot=plot)


@dataclass(frozen=True)
class PlotAccuracy:
    """Digitization accuracy of one published plot axis (an entry of ``config/readings.yaml``)."""

    id: str
    scale: str  # log | linear
    accuracy_px: float
    px_per_decade: float | None = None
    px_per_unit: float | None = None


@dataclass(frozen=True)
class Readings:
    """The plots of ``config/readings.yaml`` by id."""

    plots: Mapping[str, PlotAccuracy]
    origin: str = "<readings>"


def parse_readings(data: Any, origin: str = "<readings>") -> Readings:
    """Validate parsed ``readings.yaml`` data (the interface written by the digitization step)."""
    if not isinstance(data, Mapping) or not isinstance(data.get("plots"), Mapping):
        raise ReadingsError(f"{origin}: expected a mapping with 'plots' (and a default 'accuracy_px')")
    default = _num(data.get("accuracy_px"))
    plots = {}
    for pid, raw in data["plots"].items():
        if not isinstance(raw, Mapping):
            raise ReadingsError(f"{origin}: plot {pid!r}: expected a mapping")
        scale = raw.get("scale")
        acc = _num(raw.get("accuracy_px", default))
        if scale not in ("log", "linear"):
            raise ReadingsError(f"{origin}: plot {pid!r}: scale must be log or linear (got {scale!r})")
        if acc is None or acc <= 0:
            raise ReadingsError(f"{origin}: plot {pid!r}: no accuracy_px (and no default)")
        key = "px_per_decade" if scale == "log" else "px_per_unit"
        density = _num(raw.get(key))
        if density is None or density <= 0:
            raise ReadingsError(f"{origin}: plot {pid!r}: a {scale} axis needs a positive {key}")
        plots[str(pid)] = PlotAccuracy(str(pid), scale, acc, **{key: density})
    return Readings(plots, origin)


def load_readings(path: str | Path) -> Readings:
    """Read and validate ``config/readings.yaml``."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ReadingsError(f"{path}: cannot read: {exc}") from exc
    return parse_readings(data, str(path))


# --------------------------------------------------------------------------
# the rule
# --------------------------------------------------------------------------
def rule_tolerance(reading: Reading, metric: str, published: float, readings: Readings | None) -> Tolerance:
    """The tolerance the reading rule gives (module docstring); the only place it is computed.

    Raises
    ------
    ReadingsError
        A plot reading whose plot is not in ``readings``, an axis of the wrong scale,
        or a printed value of a metric without a declared computational floor.
    """
    if reading.kind == "printed":
        if metric not in COMPUTATIONAL_FLOORS:
            raise ReadingsError(f"printed value of metric {metric!r}: declare its computational floor"
                                " in COMPUTATIONAL_FLOORS (with the reason)")
        floor = COMPUTATIONAL_FLOORS[metric][0] * abs(published)
        return Tolerance("abs", max(printed_half_unit(str(reading.text)), floor))
    if readings is None or reading.plot not in readings.plots:
        where = readings.origin if readings is not None else "config/readings.yaml (not loaded)"
        raise ReadingsError(f"plot {reading.plot!r} is not in {where}: its digitization accuracy is unknown")
    plot = readings.plots[str(reading.plot)]
    expected = {"log_axis": "log", "linear_axis": "linear"}.get(reading.kind, plot.scale)
    if plot.scale != expected:
        raise ReadingsError(f"reading {reading.kind} of plot {plot.id!r}, whose axis is {plot.scale}")
    if plot.scale == "log":
        return Tolerance("factor", min(FACTOR_CAP, 10.0 ** (plot.accuracy_px / float(plot.px_per_decade))))
    return Tolerance("abs", plot.accuracy_px / float(plot.px_per_unit))
