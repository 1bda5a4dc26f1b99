"""Where Figure 1 cuts its curves and puts its grey markers (Razin & Cohen 2020, §3).

Spec: ``shared/spec/razin2020.md`` §3 (Figure 1). Each curve of |P11| against the
loss is drawn up to and including its first logged loss below
:data:`CURVE_CUT_LOSS`, and carries four grey markers at the losses
:data:`MARKER_LOSSES`. The tables (:mod:`implicit_reg.razin2020.tables`), the
figure notebook and the benchmark all use these functions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

#: Loss values of Figure 1's four grey markers (spec §3).
MARKER_LOSSES = (1.3e-1, 1.3e-2, 1.3e-3, 1.3e-4)
#: Figure 1 cuts each curve right after its first logged loss below this (spec §3).
CURVE_CUT_LOSS = 1e-4


def first_below(loss: np.ndarray, threshold: float) -> int:
    """Row of the first logged loss strictly below ``threshold``.

    Parameters
    ----------
    loss : array_like, shape ``[rows]``
        A run's logged training losses, in logging order.
    threshold : float

    Returns
    -------
    int
        ``min{k : loss[k] < threshold}``, or −1 when no row qualifies.
    """
    hit = np.flatnonzero(np.asarray(loss) < threshold)
    return int(hit[0]) if hit.size else -1


def curve_cut(loss: np.ndarray, threshold: float = CURVE_CUT_LOSS) -> int:
    """Number of history rows Figure 1 draws: up to and including the first loss below 1e-4.

    Parameters
    ----------
    loss : array_like, shape ``[rows]``
    threshold : float

    Returns
    -------
    int
        ``first_below(loss, threshold) + 1``, or all rows when the loss never gets below.
    """
    idx = first_below(loss, threshold)
    return len(loss) if idx < 0 else idx + 1


def marker_rows(loss: np.ndarray, thresholds: Sequence[float] = MARKER_LOSSES) -> list[int]:
    """History rows of Figure 1's markers, with the authors' plotting rule.

    Marker k is the first row *after* marker k−1 whose loss is below threshold k.
    This is :func:`first_below` of each threshold unless one logging step
    crosses two thresholds, in which case the later marker moves one row on.

    Parameters
    ----------
    loss : array_like, shape ``[rows]``
    thresholds : sequence of float
        Decreasing marker losses.

    Returns
    -------
    list of int
        One row per threshold; −1 for a marker never reached (and every later one).
    """
    loss = np.asarray(loss)
    out, start = [], 0
    for thr in thresholds:
        if start < 0:
            out.append(-1)
            continue
        hit = np.flatnonzero(loss[start:] < thr)
        if hit.size:
            out.append(start + int(hit[0]))
            start = out[-1] + 1
        else:
            out.append(-1)
            start = -1
    return out


def unobserved_at_markers(
    loss: np.ndarray, unobserved: np.ndarray, thresholds: Sequence[float] = MARKER_LOSSES
) -> np.ndarray:
    """``|unobserved entry|`` at Figure 1's markers (rows of :func:`marker_rows`).

    Parameters
    ----------
    loss : array_like, shape ``[rows]``
    unobserved : array_like, shape ``[rows]``
        The logged unobserved entry (P11 in Figure 1).
    thresholds : sequence of float

    Returns
    -------
    numpy.ndarray, shape ``[len(thresholds)]``
        ``|P11|`` at each marker; NaN for a marker never reached.
    """
    vals = np.abs(np.asarray(unobserved, dtype=np.float64))
    return np.array([vals[i] if i >= 0 else math.nan for i in marker_rows(loss, thresholds)])
