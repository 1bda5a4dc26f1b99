"""Which device a training job runs on (no Snakemake inside)."""

from __future__ import annotations

import logging
import os

import torch

__all__ = ["pick_device"]

log = logging.getLogger(__name__)


def pick_device(requested: str = "auto") -> torch.device:
    """``cuda`` when asked for or available (``auto``), else CPU, saying so in the log.

    The scheduler restricts visible GPUs through ``CUDA_VISIBLE_DEVICES``; torch
    honours it, so device 0 is always the one this job was given.

    Parameters
    ----------
    requested : str
        ``auto``, ``cpu`` or ``cuda``.

    Returns
    -------
    torch.device
        ``cuda:0`` or ``cpu``.
    """
    if requested == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda:0")
    if requested == "cuda":
        log.warning("CUDA requested but not available: falling back to CPU")
    else:
        log.info(
            "no GPU visible (CUDA_VISIBLE_DEVICES=%s): running on CPU",
            os.environ.get("CUDA_VISIBLE_DEVICES", "unset"),
        )
    return torch.device("cpu")
