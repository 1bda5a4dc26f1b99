"""Progress lines of long training jobs: share done and an upper bound on the time left."""

from __future__ import annotations

import pytest

from implicit_reg.core.progress import format_duration, progress_text, seconds_left


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0 s"), (42.4, "42 s"), (200, "3 min 20 s"), (3600, "1 h 00 min"), (7530, "2 h 05 min")],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_seconds_left_extrapolates_the_mean_rate() -> None:
    assert seconds_left(250, 1000, 10.0) == pytest.approx(30.0)
    assert seconds_left(1000, 1000, 10.0) == 0.0
    assert seconds_left(1200, 1000, 10.0) == 0.0  # past the cap: nothing left


def test_seconds_left_is_unknown_without_a_rate() -> None:
    assert seconds_left(0, 1000, 5.0) is None
    assert seconds_left(100, 1000, 0.0) is None


def test_progress_text() -> None:
    assert progress_text(250, 1000, 10.0) == "25 % of 1000 iterations, at most 30 s left"
    assert progress_text(0, 1000, 0.0) == "0 % of 1000 iterations, time left not known yet"
