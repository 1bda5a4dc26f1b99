"""Shared start of every Snakemake script: logging, threads.

Scripts call :func:`start` first so that everything they print goes to the
rule's log and torch uses exactly the threads the rule declared, and
:func:`table_provenance` for the metadata of the parquet tables they write.
The package ``implicit_reg`` is imported as installed (``scripts/setup.sh``
installs it editable; the conda environments in ``envs/`` carry it too).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from pathlib import Path
from typing import Any, Iterable

REPO = Path(__file__).resolve().parents[2]


def start(snakemake, serves: Iterable[str] | None = None) -> logging.Logger:
    """Send stderr and logging to the rule's (first) log file; pin thread counts.

    ``serves``: the figures a training job computes results for, the log's first line.
    """
    log_path = snakemake.log[0] if len(snakemake.log) else None
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        stream = open(log_path, "w", buffering=1)
        sys.stderr = stream
    else:
        stream = sys.stderr
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=stream,
        force=True,
    )
    threads = max(1, int(snakemake.threads))
    os.environ["OMP_NUM_THREADS"] = str(threads)
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:  # figure and report jobs do not need torch
        pass
    log = logging.getLogger(f"rule.{snakemake.rule}")
    if serves is not None:
        log.info("serves: %s", ", ".join(serves))
    return log


@contextlib.contextmanager
def c_stdout_to_log():
    """Send file descriptor 1 (what C libraries such as SCS print) to the log, which is stderr after :func:`start`."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1)
    os.dup2(sys.stderr.fileno(), 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def table_provenance(snakemake, *engines: str) -> dict[str, Any]:
    """Provenance of the job's tables: this repository's commit, the config hash, ``engines``' numerics versions."""
    from implicit_reg.results.provenance import table_provenance as provenance

    return provenance(REPO, snakemake.config, engines)
