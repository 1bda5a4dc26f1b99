"""Progress of long training jobs for their logs: how far, and how long is left.

Jobs run with stderr redirected to their log file, so progress is a log line, not a
bar. Training stops early once every run meets its tolerance, so the time left is
an upper bound: the time to reach the iteration cap at the rate seen so far.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any


def format_duration(seconds: float) -> str:
    """A duration for humans: ``"42 s"``, ``"3 min 20 s"``, ``"2 h 05 min"``.

    Parameters
    ----------
    seconds : float
        A non-negative duration; rounded to whole seconds.

    Returns
    -------
    str
        Two units at most, the larger first.
    """
    total = int(round(max(seconds, 0.0)))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def seconds_left(done: int, total: int, elapsed_seconds: float) -> float | None:
    """Time to reach ``total`` iterations at the mean rate so far.

    Parameters
    ----------
    done : int
        Iterations done, including those of an earlier attempt the job resumed from.
    total : int
        The iteration cap.
    elapsed_seconds : float
        Wall time spent on ``done`` (earlier attempts included, like ``done``).

    Returns
    -------
    float or None
        Seconds left; ``None`` before there is a rate to extrapolate from.
    """
    if done <= 0 or elapsed_seconds <= 0 or not math.isfinite(elapsed_seconds):
        return None
    return max(total - done, 0) * elapsed_seconds / done


def progress_text(done: int, total: int, elapsed_seconds: float) -> str:
    """``"12 % of 50000 iterations, at most 3 min 20 s left"`` for a log line.

    Parameters
    ----------
    done, total, elapsed_seconds
        As for :func:`seconds_left`.

    Returns
    -------
    str
        The share of the iteration cap done and the estimated time left (an upper
        bound: runs stop early when they converge).
    """
    share = f"{100.0 * done / total:.0f} % of {total} iterations" if total > 0 else f"{done} iterations"
    left = seconds_left(done, total, elapsed_seconds)
    if left is None:
        return f"{share}, time left not known yet"
    return f"{share}, at most {format_duration(left)} left"


class AttemptClock:
    """Wall and process-CPU seconds of a job over all its attempts.

    A job that resumes from a checkpoint continues the clock of its earlier attempts,
    which the checkpoint carries (:meth:`to_checkpoint`, :meth:`from_checkpoint`). A
    scheduler's benchmark file times only the last attempt; the job record adds
    ``resumed_wall`` and ``resumed_cpu``, which it misses.

    Parameters
    ----------
    resumed_wall, resumed_cpu : float
        The earlier attempts' wall and CPU seconds (0 for a first attempt).
    """

    def __init__(self, resumed_wall: float = 0.0, resumed_cpu: float = 0.0) -> None:
        self.resumed_wall = float(resumed_wall)
        self.resumed_cpu = float(resumed_cpu)
        self._wall0 = time.perf_counter()
        self._cpu0 = time.process_time()

    def wall(self) -> float:
        """Wall seconds of all attempts so far."""
        return self.resumed_wall + time.perf_counter() - self._wall0

    def cpu(self) -> float:
        """CPU seconds of this process since the clock started, plus the earlier attempts'."""
        return self.resumed_cpu + time.process_time() - self._cpu0

    def to_checkpoint(self) -> dict[str, float]:
        """The clock's readings, for a checkpoint's payload."""
        return {"wall_seconds": self.wall(), "cpu_seconds": self.cpu()}

    @classmethod
    def from_checkpoint(cls, payload: Mapping[str, Any] | None) -> AttemptClock:
        """A clock that continues the one whose readings ``payload`` holds (None: a new clock).

        Checkpoints written before CPU time was carried hold the wall time only; it bounds
        the CPU time of a single-threaded job from above and stands in for it.
        """
        if not payload:
            return cls()
        wall = float(payload["wall_seconds"])
        return cls(wall, float(payload.get("cpu_seconds", wall)))
