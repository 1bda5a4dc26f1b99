"""Checks on the data files a configuration names: checksums and readable contents.

Every error names the file and the config key that points to it, so that the
message says both what is wrong and where to change it.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from implicit_reg.core.hashing import sha256_file


class DataFileError(ValueError):
    """A configured data file is damaged, differs from its checksum, or cannot be read."""


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
