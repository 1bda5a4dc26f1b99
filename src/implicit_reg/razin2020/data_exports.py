"""The Razin & Cohen (2020) data sets as files: exports and content digests.

Spec: ``shared/spec/razin2020.md`` §1 (the authors' data), §2.1 (2×2 problems) and
§2.2 (tensors). The helpers write the 2×2 problems and tensors in the same export
format as the shared copies of the authors' ``.pt`` files (``.json`` with ``A``,
``y``, ``target_matrix``; ``.npz`` with ``target_tensor``, ``train_indices_order``,
``target_cp_rank``), and digest arrays, so identical model tensors (whose CP rank
is estimated once) are recognised. Files are hashed by
:func:`implicit_reg.core.hashing.sha256_file` (a data set's configured sha256).
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

#: The 2×2 problems observe (row, col) = (0, 1), (1, 0), (1, 1): values b12, b21, b22.
OBSERVED_2X2 = ((0, 1), (1, 0), (1, 1))


def content_digest(array: np.ndarray) -> str:
    """sha256 of an array's dtype, shape and bytes: equal digests = identical tensors.

    Parameters
    ----------
    array : numpy.ndarray

    Returns
    -------
    str
        64 hex digits.
    """
    a = np.ascontiguousarray(array)
    h = hashlib.sha256(f"{a.dtype.str}|{a.shape}|".encode())
    h.update(a.tobytes())
    return h.hexdigest()


def unique_by_content(arrays: Sequence[np.ndarray]) -> tuple[list[int], list[int]]:
    """Indices of the first occurrence of each distinct array, and each array's representative.

    ``first, rep = unique_by_content(xs)``: estimate something once per index
    in ``first`` and give array ``i`` the value computed for ``rep[i]`` (the
    CP rank of identical model tensors is estimated once).

    Parameters
    ----------
    arrays : sequence of numpy.ndarray

    Returns
    -------
    first : list of int
        Index of the first occurrence of each distinct array, in order.
    rep : list of int
        For each array, the index of its first occurrence.
    """
    seen: dict[str, int] = {}
    first: list[int] = []
    rep: list[int] = []
    for i, a in enumerate(arrays):
        d = content_digest(a)
        if d not in seen:
            seen[d] = i
            first.append(i)
        rep.append(seen[d])
    return first, rep


def matrix_export_text(a: np.ndarray, y: np.ndarray, target_matrix: np.ndarray) -> str:
    """The JSON export of a 2×2 problem, formatted like the shared ``.json`` files.

    Values go through float32 (the authors' tensors are float32) and are
    written as Python floats, e.g. 0.01 as 0.009999999776482582.

    Parameters
    ----------
    a : numpy.ndarray, shape ``[k, d, d]``
        One-hot sensing matrices, one per observed entry.
    y : numpy.ndarray, shape ``[k]``
        Observed values.
    target_matrix : numpy.ndarray, shape ``[d, d]``

    Returns
    -------
    str
        JSON with keys ``A``, ``y``, ``target_matrix``.
    """
    def f32(x: np.ndarray) -> Any:
        return np.asarray(x, dtype=np.float32).astype(np.float64).tolist()

    return json.dumps({"A": f32(a), "y": f32(y), "target_matrix": f32(target_matrix)})


def generated_matrix_export_text(b12: float, b21: float, b22: float) -> str:
    """Export of the 2×2 problem [[*, b12], [b21, b22]], built from its definition.

    One-hot sensing matrices at (1,2), (2,1), (2,2) (1-based) in that order, as
    in the authors' data; the stored target has 0 at the unobserved entry
    (Figure 1: (1, 1, 0), spec §3; perturbed: (−2, 0.5, ε), §6.2).

    Parameters
    ----------
    b12, b21, b22 : float
        The observed entries.

    Returns
    -------
    str
        As :func:`matrix_export_text`.
    """
    a = np.zeros((3, 2, 2))
    for k, (i, j) in enumerate(OBSERVED_2X2):
        a[k, i, j] = 1.0
    y = np.array([b12, b21, b22], dtype=np.float64)
    target = np.array([[0.0, b12], [b21, b22]])
    return matrix_export_text(a, y, target)


def tensor_export_bytes(target: np.ndarray, permutation: np.ndarray, cp_rank: int) -> bytes:
    """The ``.npz`` export of a tensor completion data set (uncompressed ``np.savez``; spec §2.2).

    Parameters
    ----------
    target : numpy.ndarray
        The ground truth T* (stored float32).
    permutation : numpy.ndarray
        The permutation of the linear (row-major) indices; a run with n
        observations observes its first n.
    cp_rank : int
        The ground truth's CP rank.

    Returns
    -------
    bytes
        With arrays ``target_tensor``, ``train_indices_order``, ``target_cp_rank``.
    """
    buf = io.BytesIO()
    np.savez(
        buf,
        target_tensor=np.asarray(target, dtype=np.float32),
        train_indices_order=np.asarray(permutation, dtype=np.int64),
        target_cp_rank=np.asarray(int(cp_rank), dtype=np.int64),
    )
    return buf.getvalue()


def export_from_pt_object(obj: Mapping[str, Any]) -> tuple[str, bytes]:
    """Convert the dict loaded from an authors' ``.pt`` file into (suffix, export bytes).

    A 2×2 problem (keys ``A``, ``y``, ``target_matrix``) becomes ``.json``; a
    tensor data set (``target_tensor``, ``train_indices_order``,
    ``target_cp_rank``) becomes ``.npz``. Tensors may be torch tensors or
    anything ``np.asarray`` accepts.

    Parameters
    ----------
    obj : mapping
        What ``torch.load`` returned for the authors' file.

    Returns
    -------
    suffix : str
        ``.json`` or ``.npz``.
    data : bytes
        The export.

    Raises
    ------
    ValueError
        For any other layout.
    """
    def arr(x: Any) -> np.ndarray:
        return np.asarray(x.numpy() if hasattr(x, "numpy") else x)

    keys = set(obj)
    if {"A", "y", "target_matrix"} <= keys:
        return ".json", matrix_export_text(arr(obj["A"]), arr(obj["y"]), arr(obj["target_matrix"])).encode()
    if {"target_tensor", "train_indices_order", "target_cp_rank"} <= keys:
        return ".npz", tensor_export_bytes(
            arr(obj["target_tensor"]), arr(obj["train_indices_order"]), int(obj["target_cp_rank"])
        )
    raise ValueError(f"unknown data set layout with keys {sorted(keys)}")
