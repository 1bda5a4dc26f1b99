"""Progress lines of long training jobs: share done and an upper bound on the time left."""

from __future__ import annotations

import time

import pytest

from implicit_reg.core.progress import AttemptClock, format_duration, progress_text, seconds_left


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


def test_attempt_clock_continues_the_earlier_attempts() -> None:
    first = AttemptClock()
    end = time.process_time() + 0.05
    while time.process_time() < end:  # burn CPU, so that both readings move
        pass
    saved = first.to_checkpoint()
    assert saved["wall_seconds"] > 0.0 and saved["cpu_seconds"] >= 0.04
    resumed = AttemptClock.from_checkpoint({"state": None, **saved})
    assert (resumed.resumed_wall, resumed.resumed_cpu) == (saved["wall_seconds"], saved["cpu_seconds"])
    assert resumed.wall() >= saved["wall_seconds"] and resumed.cpu() >= saved["cpu_seconds"]


def test_attempt_clock_from_an_old_or_no_checkpoint() -> None:
    fresh = AttemptClock.from_checkpoint(None)
    assert (fresh.resumed_wall, fresh.resumed_cpu) == (0.0, 0.0)
    # Checkpoints written before CPU time was carried hold the wall time, which bounds it.
    old = AttemptClock.from_checkpoint({"wall_seconds": 12.5})
    assert (old.resumed_wall, old.resumed_cpu) == (12.5, 12.5)
