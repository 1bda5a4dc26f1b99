"""Helpers shared by the Razin & Cohen adapters: the fingerprint of a training job.

Checkpoints themselves are :mod:`implicit_reg.core.checkpoint` (the same mechanism as the
deep-factorization trainer). The checkpoint lives next to the job's log but is not a
declared log file: Snakemake deletes declared logs when it starts a job again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from implicit_reg.core import checkpoint as ckpt


def job_fingerprint(spec: Any, data_files: Iterable[str | Path]) -> str:
    """Fingerprint of a job: its spec (settings, learning rates, seeds) and its data files' sha256."""
    return ckpt.fingerprint({"spec": spec, "data": ckpt.file_digests(data_files)})
