"""Deterministic seeds derived from the configuration.

Every random draw of the pipeline comes from a seed computed here from the
config's base seed and a tuple of keys naming what is drawn. The derivation
hashes a canonical text form, so it does not depend on Python's hash
randomisation, on the order in which jobs run, or on the machine.
"""

from __future__ import annotations

import hashlib

import numpy as np


def derive_seed(base_seed: int, *keys: object) -> int:
    """A 63-bit seed determined by ``base_seed`` and ``keys``.

    The seed is the first 8 bytes (little-endian) of ``sha256("base|key_1|…|key_k")``
    with the top bit cleared. Floats are written with ``repr`` so that 1e-3 and
    0.001 give the same seed; lists and tuples as ``(a,b,…)``.

    Parameters
    ----------
    base_seed : int
        The config's ``seed``.
    *keys
        What is drawn (e.g. the data set's name, a run's id).

    Returns
    -------
    int
        In ``[0, 2^63)``.
    """
    text = "|".join([str(int(base_seed))] + [_canonical(k) for k in keys])
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def rng_for(base_seed: int, *keys: object) -> np.random.Generator:
    """A numpy Generator seeded by :func:`derive_seed`.

    Parameters
    ----------
    base_seed : int
        The config's ``seed``.
    *keys
        What is drawn.

    Returns
    -------
    numpy.random.Generator
    """
    return np.random.default_rng(derive_seed(base_seed, *keys))


def _canonical(key: object) -> str:
    if isinstance(key, float):
        return repr(float(key))
    if isinstance(key, (list, tuple)):
        return "(" + ",".join(_canonical(k) for k in key) + ")"
    return str(key)
