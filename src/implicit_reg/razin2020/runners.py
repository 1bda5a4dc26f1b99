"""Razin & Cohen's training jobs from spec to tables: the 2×2 panels and CP tensor completion.

The one way into these engines: the workflow's adapters
(``workflow/scripts/razin2020_dmf_batch.py``, ``razin2020_tc_train.py``) and the
public API (:func:`implicit_reg.api.fit_two_by_two`,
:func:`implicit_reg.api.complete_tensor`) build a job spec and call the functions
here, so a run gives the same numbers whichever way it is started. The adapters add
what only a workflow job needs: files, checkpoints and the job record.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd

from implicit_reg.razin2020 import jobs
from implicit_reg.razin2020 import tables as rt
from implicit_reg.razin2020 import tensor_completion as tc
from implicit_reg.razin2020 import tensor_data as td
from implicit_reg.razin2020 import two_by_two as tt
from implicit_reg.razin2020 import two_by_two_problem as tp

_DTYPES = {"float32": np.float32, "float64": np.float64}


def new_dmf_batch(problems: Mapping[str, tp.CompletionProblem], spec: Mapping[str, Any]) -> tt.DMFBatch:
    """A 2×2 panel's runs at iteration 0.

    Parameters
    ----------
    problems : mapping
        The completion problems by data set name.
    spec : mapping
        The panel's spec (:meth:`implicit_reg.razin2020.plan.RazinPlan.dmf_spec`): ``runs``
        (``dataset``, ``depth``, ``lr``, ``init_product_std``, ``init``, ``det_sign``,
        ``seed`` each), ``dtype``, ``log_every``, ``tol``, ``patience``, ``max_iters``.

    Returns
    -------
    DMFBatch
    """
    configs = [tp.DMFRunConfig(r["depth"], r["lr"], r["init_product_std"], r["init"], r["det_sign"], r["seed"])
               for r in spec["runs"]]
    return tt.init_batch([problems[r["dataset"]] for r in spec["runs"]], configs, _DTYPES[spec["dtype"]],
                         spec["log_every"], spec["tol"], spec["patience"], spec["max_iters"])


def dmf_job_tables(problems: Mapping[str, tp.CompletionProblem], spec: Mapping[str, Any], batch: tt.DMFBatch,
                   wall_seconds: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The runs and trajectories tables of a finished 2×2 panel.

    Parameters
    ----------
    problems : mapping
        The completion problems by data set name (their observed values b12, b21, b22).
    spec : mapping
        The panel's spec (``figure``, ``runs`` and the settings of :func:`new_dmf_batch`).
    batch : DMFBatch
        The batch after :func:`implicit_reg.razin2020.two_by_two.run_batch`.
    wall_seconds : float
        The training time, recorded on every row.

    Returns
    -------
    (pandas.DataFrame, pandas.DataFrame)
        :data:`~implicit_reg.razin2020.tables.DMF_RUN_COLUMNS` and
        :data:`~implicit_reg.razin2020.tables.DMF_TRAJECTORY_COLUMNS`.
    """
    results = tt.run_results(batch)
    observed = {name: [float(v) for v in p.values] for name, p in problems.items()}
    return rt.dmf_tables(spec["figure"], spec["runs"], observed, [r.history for r in results],
                         [r.status for r in results], [r.final_iteration for r in results],
                         [r.final_product for r in results], spec, wall_seconds)


def run_dmf_job(problems: Mapping[str, tp.CompletionProblem], spec: Mapping[str, Any],
                batch: tt.DMFBatch | None = None, on_checkpoint: Callable[[tt.DMFBatch], None] | None = None,
                wall: Callable[[], float] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train a 2×2 panel to the end and tabulate it.

    Parameters
    ----------
    problems, spec
        As in :func:`new_dmf_batch`; ``spec`` also has ``checkpoint_every`` and ``backend``.
    batch : DMFBatch, optional
        A batch resumed from a checkpoint (default: a new one).
    on_checkpoint : callable, optional
        Called with the batch every ``checkpoint_every`` iterations.
    wall : callable, optional
        Returns the training time so far (earlier attempts included); default: this call's.

    Returns
    -------
    (pandas.DataFrame, pandas.DataFrame)
        As :func:`dmf_job_tables`.
    """
    clock = _Stopwatch() if wall is None else wall
    batch = new_dmf_batch(problems, spec) if batch is None else batch
    tt.run_batch(batch, spec.get("checkpoint_every"), on_checkpoint, spec.get("backend", "auto"))
    return dmf_job_tables(problems, spec, batch, clock())


def new_tc_batch(data: td.TensorCompletionData, spec: Mapping[str, Any]) -> tc.CPCompletionBatch:
    """The runs of one (data set, n) at initialization (:func:`implicit_reg.razin2020.jobs.new_tc_batch`)."""
    return jobs.new_tc_batch(data, spec)


def tc_job_tables(spec: Mapping[str, Any], batch: tc.CPCompletionBatch,
                  wall_seconds: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The runs and trajectories tables of a finished tensor-completion job, CP ranks estimated.

    Every distinct model tensor's CP rank is estimated once (spec ``cp_rank``: ``tol``,
    ``max_sweeps``; each run's ``rank_seed``).

    Parameters
    ----------
    spec : mapping
        The job's spec (:meth:`implicit_reg.razin2020.plan.RazinPlan.tc_spec`): ``figure``,
        ``dataset`` (``name``, ``order``, ``mode_size``, ``rank``), ``n_obs``, ``runs``
        (``run_id``, ``init_std``, ``rep``, ``seed``, ``rank_seed``), ``tc``, ``cp_rank``.
    batch : CPCompletionBatch
        The batch after :meth:`~implicit_reg.razin2020.tensor_completion.CPCompletionBatch.run`.
    wall_seconds : float
        The training time, recorded on every row.

    Returns
    -------
    (pandas.DataFrame, pandas.DataFrame)
        :data:`~implicit_reg.razin2020.tables.TC_RUN_COLUMNS` and the trajectories
        (``run_id, figure, dataset, n_obs, iteration, train_loss, recon_error``).
    """
    runs, n = spec["runs"], int(spec["n_obs"])
    results, tensors = batch.results(), batch.model_tensors()
    ranks, rank_seconds, rep_of = jobs.model_cp_ranks(tensors, runs, spec["cp_rank"])
    rows = jobs.tc_run_records(spec, results, batch.num_components, ranks, rank_seconds, rep_of, wall_seconds)
    table = rt.tc_rows(spec["figure"], spec["dataset"], n, "tf", rows)
    traj = rt.tc_trajectories(spec["figure"], spec["dataset"]["name"], n, [r["run_id"] for r in runs],
                              [res.history for res in results])
    return table, traj


def run_tc_job(data: td.TensorCompletionData, spec: Mapping[str, Any],
               batch: tc.CPCompletionBatch | None = None,
               on_checkpoint: Callable[[tc.CPCompletionBatch], None] | None = None,
               wall: Callable[[], float] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train one (data set, n) of tensor completion to the end and tabulate it.

    Parameters
    ----------
    data : TensorCompletionData
        The data set as the job observes it (:func:`implicit_reg.razin2020.jobs.instance_data`).
    spec : mapping
        As in :func:`tc_job_tables`; ``spec["tc"]`` also has ``checkpoint_every``.
    batch, on_checkpoint, wall
        As in :func:`run_dmf_job`.

    Returns
    -------
    (pandas.DataFrame, pandas.DataFrame)
        As :func:`tc_job_tables`.
    """
    clock = _Stopwatch() if wall is None else wall
    batch = new_tc_batch(data, spec) if batch is None else batch
    batch.run(spec["tc"].get("checkpoint_every"), on_checkpoint)
    return tc_job_tables(spec, batch, clock())


class _Stopwatch:
    """Seconds since creation (a job that was never interrupted)."""

    def __init__(self) -> None:
        self._start = time.perf_counter()

    def __call__(self) -> float:
        return time.perf_counter() - self._start
