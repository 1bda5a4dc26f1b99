"""The Razin & Cohen training jobs, minus their files: fingerprints, observed entries, rows.

The workflow's adapters (``workflow/scripts/razin2020_dmf_batch.py``,
``razin2020_tc_train.py``) read their inputs, call these functions and write the
tables; what a job computes and how its rows are assembled lives here.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from implicit_reg.core import checkpoint as ckpt
from implicit_reg.razin2020 import data_exports as dx
from implicit_reg.razin2020 import tensor_completion as tc
from implicit_reg.razin2020 import tensor_data as td
from implicit_reg.razin2020.cp_rank import estimate_cp_rank


def job_fingerprint(spec: Any, data_files: Iterable[str | Path]) -> str:
    """Fingerprint of a training job, the key its checkpoint is resumed under.

    Parameters
    ----------
    spec
        The job's spec (settings, learning rates, seeds), JSON-like.
    data_files
        The data files it reads; their sha256 (by file name) enter the fingerprint.

    Returns
    -------
    str
        sha256 hex digest: a checkpoint written under another spec or data is not resumed.
    """
    return ckpt.fingerprint({"spec": spec, "data": ckpt.file_digests(data_files)})


def instance_data(data: td.TensorCompletionData, spec: Mapping[str, Any]) -> td.TensorCompletionData:
    """The data set as the job observes it: another instance has its own observation order.

    Parameters
    ----------
    data
        The data set (ground truth and the authors' observation order).
    spec
        The job's spec; a ``permutation_seed`` (instances i > 0 of the spread, spec §4)
        replaces the observation order by a permutation drawn with that seed.

    Returns
    -------
    TensorCompletionData
        ``data`` itself, or the same ground truth under the seeded order.
    """
    if spec.get("permutation_seed") is None:
        return data
    order = np.random.default_rng(spec["permutation_seed"]).permutation(data.permutation.size)
    return td.with_permutation(data, order)


def new_tc_batch(data: td.TensorCompletionData, spec: Mapping[str, Any]) -> tc.CPCompletionBatch:
    """The job's runs as one batch from initialization: the first ``n_obs`` entries observed.

    Parameters
    ----------
    data
        The data set as observed by the job (:func:`instance_data`).
    spec
        ``n_obs``, ``runs`` (``init_std``, ``seed`` each) and ``tc`` (the adaptive-step
        gradient descent's ``lr``, ``beta``, ``eps``, stop settings and device).
    """
    s, runs = spec["tc"], spec["runs"]
    observed = td.observed_indices(data, int(spec["n_obs"]))
    return tc.CPCompletionBatch(
        data.target, observed, [r["init_std"] for r in runs], [r["seed"] for r in runs],
        lr=s["lr"], beta=s["beta"], eps=s["eps"], check_every=s["check_every"], tol=s["tol"],
        patience=s["patience"], max_iters=s["max_iters"], device=s["device"])


def model_cp_ranks(
    tensors: Sequence[np.ndarray], runs: Sequence[Mapping[str, Any]], cp_rank: Mapping[str, Any],
) -> tuple[dict[int, int], dict[int, float], list[int]]:
    """Estimated CP rank of every trained model tensor, once per distinct tensor.

    Runs that end at the same tensor (bit for bit) share one estimate, made with the
    ``rank_seed`` of the first of them.

    Parameters
    ----------
    tensors
        The runs' final model tensors, in run order.
    runs
        The runs' specs (``rank_seed`` each).
    cp_rank
        ``tol`` and ``max_sweeps`` of the estimate.

    Returns
    -------
    ranks, seconds, rep_of
        Rank and wall seconds of the estimate of each representative run, by index; and the
        representative of every run.
    """
    first, rep_of = dx.unique_by_content(list(tensors))
    ranks, seconds = {}, {}
    for i in first:
        t1 = time.perf_counter()
        ranks[i] = estimate_cp_rank(tensors[i], runs[i]["rank_seed"], cp_rank["tol"], cp_rank["max_sweeps"])
        seconds[i] = time.perf_counter() - t1
    return ranks, seconds, rep_of


def tc_run_records(
    spec: Mapping[str, Any], results: Sequence[Any], num_components: int, ranks: Mapping[int, int],
    rank_seconds: Mapping[int, float], rep_of: Sequence[int], wall: float,
) -> list[dict[str, Any]]:
    """One record per trained run, the input of :func:`implicit_reg.razin2020.tables.tc_rows`.

    Parameters
    ----------
    spec
        The job's spec (``runs``, ``tc``).
    results
        The batch's per-run results (status, iterations, losses), in run order.
    num_components
        R of the CP factorizations.
    ranks, rank_seconds, rep_of
        From :func:`model_cp_ranks`; a run that shares its tensor reports the
        representative's rank and ``rank_seed`` and no rank time of its own.
    wall
        The job's training wall time (seconds).
    """
    runs = spec["runs"]
    return [{
        "run_id": r["run_id"], "init_std": r["init_std"], "rep": r["rep"], "seed": r["seed"],
        "rank_seed": r["rank_seed"] if rep_of[i] == i else runs[rep_of[i]]["rank_seed"], "lr": spec["tc"]["lr"],
        "num_components": num_components, "status": res.status, "iterations": res.final_iteration,
        "final_train_loss": res.final_train_loss, "recon_error": res.reconstruction_error,
        "cp_rank": ranks[rep_of[i]], "wall_seconds": wall, "rank_seconds": rank_seconds.get(i, 0.0),
    } for i, (r, res) in enumerate(zip(runs, results))]
