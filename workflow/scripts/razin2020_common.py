"""Helpers shared by the Razin & Cohen adapters: checkpoints of long training jobs.

A checkpoint is an ``.npz`` of an engine state plus a fingerprint of the job's
spec, written atomically (temporary file, then rename) next to the job's log.
It is not a declared log file: Snakemake deletes declared logs when it starts
a job again, which would throw the state away. An empty, unreadable or foreign
(other fingerprint) checkpoint counts as absent.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

log = logging.getLogger("razin2020.checkpoint")


def fingerprint(spec: Any) -> str:
    """sha256 of the canonical JSON of a job spec."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()


def save_checkpoint(path: str | Path, state: Mapping[str, np.ndarray], spec_fingerprint: str,
                    extra: Mapping[str, float] | None = None) -> None:
    """Write ``state`` (+ fingerprint and scalar ``extra`` values) atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    arrays = {f"state__{k}": np.asarray(v) for k, v in state.items()}
    arrays["fingerprint"] = np.array(spec_fingerprint)
    for k, v in (extra or {}).items():
        arrays[f"extra__{k}"] = np.asarray(v)
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: str | Path, spec_fingerprint: str) -> tuple[dict[str, np.ndarray], dict[str, float]] | None:
    """(state, extra) of a matching checkpoint, or None (absent, empty, corrupt or foreign)."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["fingerprint"]) != spec_fingerprint:
                log.warning("checkpoint %s belongs to another job spec; starting afresh", path)
                return None
            state = {k[len("state__"):]: z[k] for k in z.files if k.startswith("state__")}
            extra = {k[len("extra__"):]: float(z[k]) for k in z.files if k.startswith("extra__")}
    except Exception as err:  # noqa: BLE001 - a damaged checkpoint must not stop the job
        log.warning("checkpoint %s unreadable (%s); starting afresh", path, err)
        return None
    return state, extra


def clear_checkpoint(path: str | Path) -> None:
    """Remove the checkpoint of a finished job (it must not be resumed by a changed job)."""
    Path(path).unlink(missing_ok=True)
