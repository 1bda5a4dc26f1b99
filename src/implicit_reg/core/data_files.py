"""Checks on the data files a configuration names: checksums and readable contents.

Every error names the file and the config key that points to it, so that the
message says both what is wrong and where to change it.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
import warnings
from pathlib import Path
from typing import Any, Callable

from implicit_reg.core.hashing import sha256_file


class DataFileError(ValueError):
    """A configured data file is damaged, differs from its checksum, or cannot be read."""


class DataUnavailableError(DataFileError):
    """A data file is neither configured locally nor downloadable (no network, host unreachable)."""


#: What every "data unavailable" message ends with: results restored from the archive read no data.
ARCHIVE_NEEDS_NO_DATA = ("the results archive needs none of it (scripts/reproduce.sh builds the report "
                         "from archive/paper without data files)")


def verify_sha256(path: str | Path, expected: str | None, key: str) -> str:
    """Check that ``path`` has the sha256 ``expected`` (configured at ``key``).

    Parameters
    ----------
    path
        The data file.
    expected
        Configured hex digest; ``None`` or empty is an error, since every data
        file the configuration names must carry one.
    key
        The config key holding ``expected`` (for the message).

    Returns
    -------
    str
        The file's digest (equal to ``expected``).

    Raises
    ------
    DataFileError
        When no digest is configured or the file's differs.
    """
    got = sha256_file(path)
    if not expected:
        raise DataFileError(f"{path}: no sha256 configured at {key} (the file has {got}); add it to the config")
    if got != expected:
        raise DataFileError(f"{path}: sha256 {got} differs from {key} {expected}; the file is damaged or "
                            "another version (delete a downloaded copy to fetch it again)")
    return got


def load_torch_file(path: str | Path, key: str) -> Any:
    """Read a ``.pt`` data file with ``weights_only=True``, naming file and key on failure.

    Parameters
    ----------
    path
        The ``.pt`` file.
    key
        The config key of the data set it belongs to (for the message).

    Returns
    -------
    Any
        The loaded object (tensors and plain containers only).

    Raises
    ------
    DataFileError
        When the file is empty, truncated, or holds something other than tensors;
        never with torch's advice to load untrusted files unsafely.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import torch

            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - every failure here means an unusable input
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DataFileError(f"{path}: not a readable .pt data file ({type(err).__name__}: {reason[:200]}); "
                            f"it is the data set configured at {key}; delete it to download it again") from None


def require_local_file(path: str | Path, key: str, advice: str, root: str | Path = ".", directory: bool = False) -> str:
    """Check that the local data file (or directory) configured at ``key`` exists, when a job reads it.

    Called by the rules' input functions, so only a job that reads the file needs it:
    results restored from the archive read no data.

    Parameters
    ----------
    path
        The configured path (relative to ``root``).
    key
        The config key naming it.
    advice
        What to do instead (appended to the message).
    root
        The working directory.
    directory
        Expect a directory rather than a file.

    Returns
    -------
    str
        ``path`` as given.

    Raises
    ------
    DataFileError
        One line naming the key, the path and ``advice``.
    """
    target = Path(root) / path
    if not (target.is_dir() if directory else target.is_file()):
        kind = "directory" if directory else "file"
        raise DataFileError(f"{key}: {kind} {str(path)!r} does not exist; {advice}; {ARCHIVE_NEEDS_NO_DATA}")
    return str(path)


def download_checked(url: str, sha256: str, local_key: str, opener: Callable[..., Any] | None = None,
                     timeout: float = 120) -> bytes:
    """Fetch ``url`` and check its sha256; a failure is one line naming the URL and the local way out.

    Parameters
    ----------
    url
        A pinned URL (a commit or release, so its sha256 never changes).
    sha256
        The expected hex digest; an empty one is refused (no unchecked download).
    local_key
        The config key that points at a local copy instead (for the message).
    opener
        ``urllib.request.urlopen`` or a stand-in with its signature (tests).
    timeout
        Seconds.

    Returns
    -------
    bytes
        The checked payload.

    Raises
    ------
    DataUnavailableError
        When the URL cannot be read (no network, unreachable host, HTTP error): names
        the URL, ``local_key`` and that the results archive needs no data.
    DataFileError
        When no digest is given or the payload's differs.
    """
    if not sha256:
        raise DataFileError(f"{url}: no sha256 configured; refusing an unchecked download")
    opener = opener or urllib.request.urlopen
    try:
        with opener(url, timeout=timeout) as response:
            payload = response.read()
    except (urllib.error.URLError, OSError, ValueError) as err:
        reason = getattr(err, "reason", None) or err
        raise DataUnavailableError(f"cannot download {url} ({str(reason).splitlines()[0][:120]}); set {local_key} "
                                   f"instead; {ARCHIVE_NEEDS_NO_DATA}") from None
    got = hashlib.sha256(payload).hexdigest()
    if got != sha256:
        raise DataFileError(f"{url}: sha256 {got} differs from the expected {sha256}; the file at that URL "
                            "is not the pinned one")
    return payload


def write_atomic(path: str | Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` through a temporary file, so a failed job leaves no partial file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(payload)
    os.replace(tmp, path)
