"""One batch of deep-factorization runs, from its spec to its tables.

The one way into the trainer: the workflow's adapter
(``workflow/scripts/train_factorization_batch.py``) and the public API
(:func:`implicit_reg.api.fit_deep_factorization`) both build a
:class:`~implicit_reg.arora2019.observations.Problem` and a batch spec and call
:func:`train_batch`, so a run gives the same numbers whichever way it is started.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch

from implicit_reg.arora2019 import tables
from implicit_reg.arora2019.initialization import initial_factors
from implicit_reg.arora2019.observations import Problem
from implicit_reg.arora2019.schedule import Schedule
from implicit_reg.arora2019.trainer import BatchResult, BatchTrainer

#: The engine settings of the config (``engine``) that a batch reads, with their schema defaults.
ENGINE_DEFAULTS: dict[str, Any] = {
    "sync_every": 100, "checkpoint_seconds": 300, "sampled_gradient_max_fraction": 0.05,
    "divergence_loss": 1.0e30,
}
#: GroupRMSprop's constants (config ``arora2019.group_rmsprop``), the authors' values.
GROUP_RMSPROP_DEFAULTS: dict[str, float] = {"alpha": 0.99, "eps": 1.0e-4}


@dataclass
class BatchTables:
    """A trained batch: its runs and trajectories tables and the trainer's result.

    Parameters
    ----------
    runs : pandas.DataFrame
        One row per run, the columns of ``results/<figure>/runs.parquet``
        (:data:`~implicit_reg.arora2019.tables.KEY_COLUMNS` then ``VALUE_COLUMNS``).
    trajectories : pandas.DataFrame
        One row per (run, logged iteration), the columns of ``trajectories.parquet``.
    result : BatchResult
        What the trainer returned (final products, resumed time).
    """

    runs: pd.DataFrame
    trajectories: pd.DataFrame
    result: BatchResult


def run_depths(spec: Mapping[str, Any]) -> list[int]:
    """The depth of every run of ``spec``: a shared-operator batch (depth 0) gives each run its own."""
    return [int(r.get("depth", spec["depth"])) for r in spec["runs"]]


def schedule_for(spec: Mapping[str, Any], engine: Mapping[str, Any], group_rmsprop: Mapping[str, Any]) -> Schedule:
    """The trainer's :class:`Schedule` of a batch spec.

    Parameters
    ----------
    spec : mapping
        The batch spec (its ``schedule``: optimizer, max_iters, log_every,
        train_loss_tol, n_singular_values, log_alignment).
    engine : mapping
        ``divergence_loss``, ``sync_every`` and ``checkpoint_seconds``.
    group_rmsprop : mapping
        ``alpha`` and ``eps``.

    Returns
    -------
    Schedule
    """
    sched = spec["schedule"]
    return Schedule(
        optimizer=sched["optimizer"],
        max_iters=sched["max_iters"],
        log_every=sched["log_every"],
        train_loss_tol=sched["train_loss_tol"],
        rmsprop_alpha=group_rmsprop["alpha"],
        rmsprop_eps=group_rmsprop["eps"],
        n_singular_values=sched["n_singular_values"],
        log_alignment=sched["log_alignment"],
        divergence_loss=engine["divergence_loss"],
        sync_every=engine["sync_every"],
        checkpoint_seconds=engine["checkpoint_seconds"],
    )


def train_batch(
    problem: Problem,
    spec: Mapping[str, Any],
    engine: Mapping[str, Any],
    group_rmsprop: Mapping[str, Any],
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    checkpoint: str | Path | None = None,
    fingerprint: str = "",
) -> BatchTables:
    """Train every run of a batch spec on ``problem`` and tabulate them.

    Parameters
    ----------
    problem : Problem
        The shared observations and test entries (:func:`~implicit_reg.arora2019.observations.build_problem`).
    spec : mapping
        The batch spec (:meth:`implicit_reg.arora2019.plan.Batch.spec`): ``task``,
        ``rank``, ``n_obs``, ``depth`` (0: each run's own), ``schedule`` and per run
        ``run_id``, ``init``, ``init_scale``, ``lr``, ``seed``, ``init_seed`` (the
        seed of its initial factors) and optionally ``depth``.
    engine, group_rmsprop : mapping
        See :func:`schedule_for`.
    device, dtype
        Where and in which precision to train.
    checkpoint : path, optional
        Checkpoint file (saved every ``engine["checkpoint_seconds"]``, resumed when
        its fingerprint matches).
    fingerprint : str
        What determines the numbers beyond the arguments (the data files' sha256).

    Returns
    -------
    BatchTables
    """
    depths = run_depths(spec)
    initial = [
        initial_factors(problem.shape, d, r["init"], r["init_scale"], np.random.default_rng(r["init_seed"]))
        for d, r in zip(depths, spec["runs"])
    ]
    trainer = BatchTrainer(problem, initial, [r["lr"] for r in spec["runs"]],
                           schedule_for(spec, engine, group_rmsprop), device, dtype, checkpoint, fingerprint)
    result = trainer.run()
    runs = tables.batch_runs_table(dict(spec), result.final, result.status)
    runs["depth"] = np.asarray(depths, dtype=runs["depth"].dtype)
    trajectories = tables.batch_trajectories_table(dict(spec), result.trajectories, runs)
    return BatchTables(runs, trajectories, result)
