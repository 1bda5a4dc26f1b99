"""What a dynamics run that stopped at its step cap had reached: the evidence a report states.

Arora et al. (2019), Figure 3 (§2.3 of ../shared/spec/arora2019.md) plots, per run, the
top singular values of the product matrix and, for ML-100K, the test error over the
training steps. Our ML-100K runs at depths 2 and 3 stop at a lower step cap than the
authors' 2e5 (a depth-3 step costs three dense 943x943 products). A cap is harmless
when every plotted feature is reached before it: the minimum of the test MSE lies
inside the run (the error rises again after it), every singular value's jump lies
inside the run, and the singular values are flat over the last part of the run.
:func:`cap_evidence` measures these from the logged trajectory and
:func:`cap_sentence` states them in the report's generated figure note.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pandas as pd

from implicit_reg.core.latex_text import format_number
from implicit_reg.core.metrics_numpy import half_rise_step

#: The status of a run that stopped at its step cap (``BatchTrainer``'s ``max_iters``).
CAP_STATUS = "max_iters"
_SV_COLUMN = re.compile(r"^sv_(\d+)$")


def cap_evidence(runs: pd.DataFrame, trajectories: pd.DataFrame, tail_fraction: float = 0.2) -> pd.DataFrame:
    """Per run stopped at its step cap: where its plotted features were reached.

    Parameters
    ----------
    runs
        A figure's runs table (``run_id``, ``task``, ``depth``, ``iterations``, ``status``).
    trajectories
        The figure's trajectories table (``run_id``, ``iteration``, ``sv_1`` ...,
        optionally ``test_mse``).
    tail_fraction
        The final part of the run over which the singular values' flatness is measured.

    Returns
    -------
    pandas.DataFrame
        One row per capped run: ``run_id``, ``task``, ``depth``, ``cap`` (steps run),
        ``min_test_mse_step`` (NaN without test error), ``min_test_mse_inside`` (the
        minimum is followed by higher values, so the run passed it), ``min_test_mse_state``
        (:func:`minimum_state`: ``passed``, ``flat`` or ``still falling``), ``last_jump_step``
        (latest half-rise step over the logged singular values), and
        ``sv_tail_change``: max_i |sigma_i(T) - sigma_i((1 - f) T)| / sigma_1(T),
        the largest change of a singular value over the last fraction f of the run,
        relative to the top one.
    """
    columns = ["run_id", "task", "depth", "cap", "min_test_mse_step", "min_test_mse_inside",
               "min_test_mse_state", "last_jump_step", "sv_tail_change"]
    capped = runs.loc[runs["status"] == CAP_STATUS] if "status" in runs.columns else runs.iloc[:0]
    sv_columns = sorted((c for c in trajectories.columns if _SV_COLUMN.match(c)),
                        key=lambda c: int(_SV_COLUMN.match(c).group(1)))
    rows: list[dict[str, Any]] = []
    for run in capped.itertuples(index=False):
        traj = trajectories.loc[trajectories["run_id"] == run.run_id].sort_values("iteration")
        if traj.empty or not sv_columns:
            continue
        steps = traj["iteration"].to_numpy(dtype=float)
        row: dict[str, Any] = {"run_id": run.run_id, "task": run.task, "depth": int(run.depth),
                               "cap": int(run.iterations), "min_test_mse_step": math.nan,
                               "min_test_mse_inside": False, "min_test_mse_state": ""}
        if "test_mse" in traj.columns and traj["test_mse"].notna().any():
            mse = traj["test_mse"].to_numpy(dtype=float)
            best = int(np.nanargmin(mse))
            row["min_test_mse_step"] = float(steps[best])
            row["min_test_mse_inside"] = _passed_minimum(mse, best)
            row["min_test_mse_state"] = minimum_state(mse)
        sv = traj[sv_columns].to_numpy(dtype=float)
        row["last_jump_step"] = max(half_rise_step(steps, sv[:, i]) for i in range(sv.shape[1]))
        tail_start = int(np.searchsorted(steps, (1.0 - tail_fraction) * steps[-1]))
        top = abs(sv[-1, 0]) or 1.0
        row["sv_tail_change"] = float(np.max(np.abs(sv[-1] - sv[tail_start])) / top)
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)


#: Relative spread of a test-MSE curve under which it is called flat (float32 noise is ~1e-7).
FLAT_RELATIVE_SPREAD = 1e-6


def minimum_state(mse: np.ndarray, flat_spread: float = FLAT_RELATIVE_SPREAD) -> str:
    """Where a run stands relative to its minimum test MSE at its last logged step.

    Parameters
    ----------
    mse
        The logged test MSE, in step order (NaN entries ignored).
    flat_spread
        Largest ``(max − min) / |min|`` of a curve called flat.

    Returns
    -------
    str
        ``flat`` when the curve hardly moves (``(max − min) ≤ flat_spread·|min|``: no
        minimum to pass, e.g. a depth-1 run whose prediction stays at zero), ``passed``
        when a higher value follows the minimum, else ``still falling``.
    """
    lo, hi = float(np.nanmin(mse)), float(np.nanmax(mse))
    if hi - lo <= flat_spread * abs(lo):
        return "flat"
    return "passed" if _passed_minimum(mse, int(np.nanargmin(mse))) else "still falling"


def _passed_minimum(mse: np.ndarray, best: int) -> bool:
    """A higher value follows the minimum at index ``best``: the run went past it."""
    return bool(best < len(mse) - 1 and np.nanmax(mse[best + 1:]) > mse[best])


def _steps(values: pd.Series) -> str:
    return ", ".join(format_number(v) for v in values)


def cap_sentence(evidence: pd.DataFrame, task_names: dict[str, str] | None = None) -> str:
    """One LaTeX sentence per task stating where its capped runs reached their features.

    Parameters
    ----------
    evidence
        :func:`cap_evidence` of a figure.
    task_names
        Printed name per task (default: the task).

    Returns
    -------
    str
        Empty when no run stopped at its cap.
    """
    names = task_names or {}
    parts = []
    for task, group in evidence.groupby("task", sort=True):
        group = group.sort_values("depth")
        depths = ", ".join(str(d) for d in group["depth"])
        text = (f"{names.get(task, task)} depth {depths} stopped at the step cap "
                f"({_steps(group['cap'])}):")
        clauses = []
        if group["min_test_mse_step"].notna().all():
            minima = ", ".join(f"{format_number(step)} ({state})"
                               for step, state in zip(group["min_test_mse_step"], group["min_test_mse_state"]))
            clauses.append(f"minimum test MSE at step {minima}")
        clauses.append(f"last singular-value jump at step {_steps(group['last_jump_step'])}")
        change = 100.0 * float(group["sv_tail_change"].max())
        clauses.append(f"singular values moved by at most {format_number(change)}\\,\\% of the top one "
                       "over the last fifth of the run")
        parts.append(text + " " + "; ".join(clauses) + ".")
    return " ".join(parts)


#: Printed names of the tasks in a cap sentence.
TASK_NAMES = {"movielens": "ML-100K", "completion": "Completion", "sensing": "Sensing"}


def cap_note(runs: pd.DataFrame, trajectories: pd.DataFrame) -> str:
    """The report's sentence for a figure's dynamics runs (identity init) stopped at their cap.

    Parameters
    ----------
    runs, trajectories
        The figure's tables (see :func:`cap_evidence`).

    Returns
    -------
    str
        :func:`cap_sentence` of the capped identity-init runs; empty when there are none.
    """
    evidence = cap_evidence(runs, trajectories)
    # only the dynamics runs (identity init, plain GD) are read for what they reach over time
    evidence = evidence.loc[evidence["run_id"].isin(runs.loc[runs["init"] == "identity", "run_id"])]
    return cap_sentence(evidence, TASK_NAMES)
