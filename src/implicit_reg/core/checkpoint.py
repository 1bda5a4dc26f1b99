"""Checkpoints of long training jobs: atomic, fingerprinted, never trusted blindly.

One mechanism for every engine (deep factorization, the Razin & Cohen 2x2 and
tensor batches). A checkpoint is a ``torch.save`` file holding a payload (nested
dicts and lists of tensors, numpy arrays, numbers and strings) and the
fingerprint of everything that determines the job's numbers. It is read back
with ``weights_only=True`` (no pickled code runs), and it is resumed only when its
fingerprint matches the job's:

- absent or empty (Snakemake creates log files empty): start afresh, silently;
- another fingerprint (the config, a data file or a seed changed): warn, naming
  the file, and start afresh; the next save overwrites it;
- unreadable (truncated, foreign bytes): warn, naming the file, move it aside to
  ``<name>.corrupt`` (kept for inspection, out of the job's way) and start afresh.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import warnings
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import torch

from implicit_reg.core.hashing import sha256_file, sha256_text

log = logging.getLogger(__name__)

#: Bumped when the payload layout changes, so that old files count as foreign.
FORMAT_VERSION = 1

_NDARRAY = "__ndarray__"


def fingerprint(spec: Any) -> str:
    """sha256 of the canonical JSON of ``spec``.

    Parameters
    ----------
    spec
        JSON-like description of a job (dicts, lists, numbers, strings; other
        values are rendered with ``str``). Key order does not matter.

    Returns
    -------
    str
        64 hex digits; equal for equal specs.
    """
    return sha256_text(json.dumps(spec, sort_keys=True, default=str, separators=(",", ":")))


def file_digests(paths: Iterable[str | Path]) -> dict[str, str]:
    """sha256 of each file, keyed by file name (not the full path).

    Names rather than paths: the same data moved to another working directory
    (a copy of the repository, a cluster node) keeps its fingerprint.

    Parameters
    ----------
    paths
        Data files a job reads.

    Returns
    -------
    dict
        ``{name: sha256}`` in sorted order of the paths given.
    """
    return {Path(p).name: sha256_file(p) for p in sorted(map(str, paths))}


def array_digest(arrays: Iterable[np.ndarray | torch.Tensor]) -> str:
    """sha256 of the dtypes, shapes and bytes of ``arrays`` (e.g. initial factors).

    Parameters
    ----------
    arrays
        Numpy arrays or CPU/GPU tensors, hashed in the order given.

    Returns
    -------
    str
        64 hex digits; equal digests mean bit-identical arrays.
    """
    h = hashlib.sha256()
    for a in arrays:
        if isinstance(a, torch.Tensor):
            a = a.detach().cpu().numpy()
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _encode(value: Any) -> Any:
    # weights_only loading accepts tensors and plain containers, not numpy arrays.
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "biuf":
            data: Any = torch.from_numpy(np.array(value, copy=True))
        else:
            data = value.tolist()
        return {_NDARRAY: data, "dtype": value.dtype.str, "shape": list(value.shape)}
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().clone()
    if isinstance(value, Mapping):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if isinstance(value, (np.generic,)):
        return value.item()
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and _NDARRAY in value:
        data = value[_NDARRAY]
        array = data.numpy() if isinstance(data, torch.Tensor) else np.array(data, dtype=value["dtype"])
        return array.astype(value["dtype"], copy=False).reshape(value["shape"])
    if isinstance(value, dict):
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def save_checkpoint(path: str | Path, payload: Mapping[str, Any], spec_fingerprint: str) -> None:
    """Write ``payload`` with its fingerprint atomically.

    The bytes go to ``<name>.tmp``, are flushed to disk, and the file is renamed
    over ``path``: a job killed at any moment leaves either the previous
    checkpoint or the new one, never half of one.

    Parameters
    ----------
    path
        Checkpoint file (its directory is created).
    payload
        Nested dicts/lists of tensors, numpy arrays, numbers and strings.
    spec_fingerprint
        :func:`fingerprint` of everything that determines the job's numbers.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    record = {"format": FORMAT_VERSION, "fingerprint": spec_fingerprint, "payload": _encode(dict(payload))}
    with open(tmp, "wb") as fh:
        torch.save(record, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def corrupt_path(path: str | Path) -> Path:
    """Where an unreadable checkpoint is moved: ``<name>.corrupt`` next to it.

    Parameters
    ----------
    path
        The checkpoint file.

    Returns
    -------
    Path
        ``<path>.corrupt``.
    """
    path = Path(path)
    return path.with_name(path.name + ".corrupt")


def unreadable_reason(err: BaseException) -> str:
    """One line saying why ``torch.load`` refused a checkpoint, without torch's advice.

    torch's message for a file its safe loader refuses recommends loading it with
    ``weights_only=False``, which runs whatever code the file carries: a checkpoint this
    pipeline cannot read safely is discarded, never loaded that way, so the log must not
    pass that advice on.

    Parameters
    ----------
    err
        The exception ``torch.load(..., weights_only=True)`` raised.

    Returns
    -------
    str
        ``<exception type>: <reason>``, one line.
    """
    text = str(err)
    detail = re.search(r"WeightsUnpickler error:\s*(\S[^\n]*)", text)
    reason = detail.group(1) if detail else (text.strip().splitlines() or [""])[0]
    reason = re.sub(r"\x1b\[[0-9;]*m", "", reason)
    if "weights_only" in reason or "Weights only" in reason:
        reason = "it holds objects other than tensors, arrays and plain containers"
    # torch's miniz messages run on with paragraphs of guesses: the first sentence says it.
    reason = reason.split(". ")[0].rstrip(".")
    return f"{type(err).__name__}: {reason}" if reason else type(err).__name__


def load_checkpoint(path: str | Path, spec_fingerprint: str) -> dict[str, Any] | None:
    """The payload of a checkpoint written for this very job, else ``None``.

    Parameters
    ----------
    path
        Checkpoint file.
    spec_fingerprint
        The current job's fingerprint.

    Returns
    -------
    dict or None
        The payload (numpy arrays come back as numpy arrays, tensors on the
        CPU) when the file exists, is readable and carries ``spec_fingerprint``;
        ``None`` otherwise, after a warning naming the file when it existed
        but was foreign or corrupt (the corrupt one is moved to
        :func:`corrupt_path`).
    """
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        return None
    try:
        with warnings.catch_warnings():
            # torch's warnings about foreign pickles would only repeat what the log says.
            warnings.simplefilter("ignore")
            record = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(record, dict) or "fingerprint" not in record or "payload" not in record:
            raise ValueError("not a checkpoint of this pipeline")
    except Exception as err:  # noqa: BLE001 - any unreadable file must not block the job
        aside = corrupt_path(path)
        os.replace(path, aside)
        log.warning("checkpoint %s is unreadable (%s); moved it to %s and starting afresh",
                    path, unreadable_reason(err), aside)
        return None
    if record.get("format") != FORMAT_VERSION or record["fingerprint"] != spec_fingerprint:
        log.warning("checkpoint %s was written for another configuration, data or seeds "
                    "(fingerprint %.12s, this job %.12s); starting afresh",
                    path, str(record["fingerprint"]), spec_fingerprint)
        return None
    return _decode(record["payload"])


def clear_checkpoint(path: str | Path) -> None:
    """Remove the checkpoint of a finished job, so that no later, changed job meets it.

    Parameters
    ----------
    path
        The checkpoint file (absent is fine).
    """
    Path(path).unlink(missing_ok=True)
