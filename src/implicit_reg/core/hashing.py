"""sha256 digests: of a file's bytes, and of a text (e.g. canonical JSON).

One implementation for every caller that names data or results by content: the data
identity of a provenance key (the MovieLens file), archive entries and tarballs, the
data files a checkpoint's fingerprint covers, and the configured digests of data files.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

#: Bytes read at a time: a large data file is never held in memory whole.
CHUNK_BYTES = 1 << 20


def sha256_file(path: str | Path, chunk: int = CHUNK_BYTES) -> str:
    """Hex sha256 of a file's bytes, read in chunks.

    Parameters
    ----------
    path : path
        The file.
    chunk : int
        Bytes read at a time (the digest does not depend on it).

    Returns
    -------
    str
        64 hex digits, as ``sha256sum`` prints them.
    """
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_text(text: str) -> str:
    """Hex sha256 of a text's UTF-8 bytes.

    Parameters
    ----------
    text : str
        Typically a canonical JSON rendering (sorted keys, fixed separators), so that
        equal contents give equal digests.

    Returns
    -------
    str
        64 hex digits.
    """
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
