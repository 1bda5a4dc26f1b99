"""MovieLens-100K in the authors' order, read from their repository's ``ml-100k.pkl``.

Arora et al. publish the ratings they trained on as ``datasets/ml-100k/ml-100k.pkl``
(repository ``roosephu/deep_matrix_factorization``, commit 84ece27 "add ml-100k.pkl").
Its row order is their random permutation, whose first 10,000 ratings are their
training split (spec arora2019 §1.2); the official GroupLens ``u.data`` is in another
order, so it gives other runs.

The file is PyTorch's legacy (pre-zip) serialization of ``[(items, users), ratings]``:
five pickles in a row (magic number, protocol version, system info, the object, the
storage keys), then each storage's raw little-endian bytes. Unpickling it with
``pickle`` or ``torch.load`` could run any code the file names; this reader refuses
every global but the three the file needs (``torch._utils._rebuild_tensor_v2``,
``torch.LongStorage``, ``torch.FloatStorage``) and maps those to inert stand-ins, so
neither torch nor any code from the file runs. The storages are then read as numpy
arrays.

Indices in the file run from -1 upwards (items -1..1680, users -1..941); the 1-based
ids of ``u.data`` are index + 2 (spec §1.2). The written ``u.data`` is byte-identical
to the team's copy (the sha256 ``data.movielens.file_sha256`` checks it).
"""

from __future__ import annotations

import io
import pickle
from dataclasses import dataclass
from typing import Any

import numpy as np

#: First pickle of a legacy ``torch.save`` file (torch.serialization.MAGIC_NUMBER).
TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
#: Second pickle: the legacy format's protocol version.
TORCH_LEGACY_PROTOCOL = 1001
#: ``u.data`` id of a stored index (ids are 1-based, stored indices start at -1).
ID_OFFSET = 2


class AuthorsFileError(ValueError):
    """The authors' ``ml-100k.pkl`` is not the legacy torch file of ratings it should be."""


@dataclass(frozen=True)
class _StorageType:
    name: str
    dtype: str  # numpy dtype of one element, little endian


# Legacy LongStorage elements are int64 whatever the saving machine's C long was.
_STORAGE_TYPES = {
    ("torch", "LongStorage"): _StorageType("LongStorage", "<i8"),
    ("torch", "FloatStorage"): _StorageType("FloatStorage", "<f4"),
}


@dataclass(frozen=True)
class _StorageRef:
    key: str
    storage_type: _StorageType
    numel: int


@dataclass(frozen=True)
class _TensorRef:
    storage: _StorageRef
    offset: int
    size: tuple
    stride: tuple


def _rebuild_tensor_v2(storage: Any, offset: Any, size: Any, stride: Any, *rest: Any) -> _TensorRef:
    """Inert stand-in for ``torch._utils._rebuild_tensor_v2``: records where the tensor's values are."""
    if not isinstance(storage, _StorageRef):
        raise AuthorsFileError("a tensor is rebuilt from something other than a storage")
    return _TensorRef(storage, int(offset), tuple(size), tuple(stride))


_REBUILD = ("torch._utils", "_rebuild_tensor_v2")


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the names of ``allowed`` (to stand-ins); anything else is refused."""

    def __init__(self, file: io.BytesIO, allowed: dict[tuple[str, str], Any]) -> None:
        super().__init__(file)
        self._allowed = allowed

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise AuthorsFileError(f"refusing the global {module}.{name}: the ratings file needs only "
                                   "torch tensors of longs and floats") from None

    def persistent_load(self, pid: Any) -> _StorageRef:
        # ("storage", type, key, location, numel, view metadata): views of storages are not expected.
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage" and isinstance(pid[1], _StorageType)
                and isinstance(pid[2], str) and isinstance(pid[4], int) and pid[5] is None):
            raise AuthorsFileError(f"unexpected persistent id {pid!r:.200}")
        return _StorageRef(pid[2], pid[1], pid[4])


def _load(stream: io.BytesIO, allowed: dict[tuple[str, str], Any] | None = None) -> Any:
    try:
        return _RestrictedUnpickler(stream, allowed or {}).load()
    except AuthorsFileError:
        raise
    except Exception as err:  # noqa: BLE001 - any parse failure means a damaged or other file
        raise AuthorsFileError(f"not a legacy torch file ({type(err).__name__}: {err})") from None


@dataclass(frozen=True)
class AuthorsRatings:
    """The authors' ratings in their stored order.

    Attributes
    ----------
    items, users : numpy.ndarray
        int64 indices as stored (from -1 upwards).
    ratings : numpy.ndarray
        float32 ratings.
    """

    items: np.ndarray
    users: np.ndarray
    ratings: np.ndarray


def read_authors_pickle(payload: bytes) -> AuthorsRatings:
    """Read ``[(items, users), ratings]`` from the authors' ``ml-100k.pkl`` without running its code.

    Parameters
    ----------
    payload
        The file's bytes.

    Returns
    -------
    AuthorsRatings
        The three arrays in the stored order.

    Raises
    ------
    AuthorsFileError
        For another format, a global other than the three allowed, tensors that are
        not whole 1-d storages of equal length, or trailing or missing bytes.
    """
    stream = io.BytesIO(payload)
    if _load(stream) != TORCH_LEGACY_MAGIC:
        raise AuthorsFileError("no legacy torch magic number at the start")
    if _load(stream) != TORCH_LEGACY_PROTOCOL:
        raise AuthorsFileError(f"legacy torch protocol other than {TORCH_LEGACY_PROTOCOL}")
    info = _load(stream)
    if not (isinstance(info, dict) and info.get("little_endian") is True):
        raise AuthorsFileError("the file was not saved little endian")
    allowed = {_REBUILD: _rebuild_tensor_v2, **_STORAGE_TYPES}
    obj = _load(stream, allowed)
    keys = _load(stream)
    try:
        (items, users), ratings = obj
    except (TypeError, ValueError):
        raise AuthorsFileError("the object is not [(items, users), ratings]") from None
    tensors = {"items": items, "users": users, "ratings": ratings}
    if not all(isinstance(t, _TensorRef) for t in tensors.values()):
        raise AuthorsFileError("the object is not [(items, users), ratings] of tensors")
    if not (isinstance(keys, list) and sorted(keys) == sorted(t.storage.key for t in tensors.values())):
        raise AuthorsFileError("the storage keys do not match the tensors'")
    storages = {}
    view = memoryview(payload)
    position = stream.tell()
    by_key = {t.storage.key: t.storage for t in tensors.values()}
    for key in keys:
        storage = by_key[key]
        if position + 8 > len(payload):
            raise AuthorsFileError("truncated before a storage")
        count = int.from_bytes(view[position:position + 8], "little")
        if count != storage.numel:
            raise AuthorsFileError(f"storage {key} holds {count} elements, its header says {storage.numel}")
        dtype = np.dtype(storage.storage_type.dtype)
        end = position + 8 + count * dtype.itemsize
        if end > len(payload):
            raise AuthorsFileError(f"truncated in storage {key}")
        storages[key] = np.frombuffer(payload, dtype=dtype, count=count, offset=position + 8).copy()
        position = end
    if position != len(payload):
        raise AuthorsFileError(f"{len(payload) - position} bytes after the last storage")
    arrays = {}
    for name, t in tensors.items():
        if t.offset != 0 or len(t.size) != 1 or t.size[0] != t.storage.numel or t.stride != (1,):
            raise AuthorsFileError(f"{name} is not a whole 1-d storage")
        arrays[name] = storages[t.storage.key]
    if arrays["items"].dtype != np.int64 or arrays["users"].dtype != np.int64 or arrays["ratings"].dtype != np.float32:
        raise AuthorsFileError("indices must be longs and ratings floats")
    if not len(arrays["items"]) == len(arrays["users"]) == len(arrays["ratings"]):
        raise AuthorsFileError("items, users and ratings differ in length")
    return AuthorsRatings(**arrays)


def to_udata(ratings: AuthorsRatings) -> bytes:
    """The ratings as ``u.data`` text, in the stored order.

    Tab-separated ``user item rating timestamp`` lines with 1-based ids (stored index
    + 2), integer ratings and timestamp 0, the format of the team's copy (spec §1.2).

    Parameters
    ----------
    ratings
        As read by :func:`read_authors_pickle`.

    Returns
    -------
    bytes
        The file's contents (ASCII, one line per rating, final newline).

    Raises
    ------
    AuthorsFileError
        When an index is below -1 or a rating is not an integer in 1..5.
    """
    values = ratings.ratings
    whole = values.astype(np.int64)
    if not (np.all(whole == values) and whole.min(initial=1) >= 1 and whole.max(initial=5) <= 5):
        raise AuthorsFileError("ratings must be whole numbers 1..5")
    if min(ratings.items.min(initial=0), ratings.users.min(initial=0)) < 1 - ID_OFFSET:
        raise AuthorsFileError(f"an index is below {1 - ID_OFFSET}")
    users = ratings.users + ID_OFFSET
    items = ratings.items + ID_OFFSET
    return "".join(f"{u}\t{i}\t{r}\t0\n" for u, i, r in zip(users.tolist(), items.tolist(), whole.tolist())).encode()


def authors_udata(payload: bytes, udata_sha256: str) -> bytes:
    """``u.data`` in the authors' order from their pickle's bytes, checked against ``udata_sha256``.

    Parameters
    ----------
    payload
        The bytes of ``ml-100k.pkl`` (its own sha256 is checked where it is fetched).
    udata_sha256
        The sha256 the written ``u.data`` must have (``data.movielens.file_sha256``),
        the one the provenance keys of the MovieLens runs carry.

    Returns
    -------
    bytes
        The ``u.data`` contents.

    Raises
    ------
    AuthorsFileError
        When the pickle cannot be read or the text differs from ``udata_sha256``.
    """
    import hashlib

    text = to_udata(read_authors_pickle(payload))
    got = hashlib.sha256(text).hexdigest()
    if got != udata_sha256:
        raise AuthorsFileError(f"the ratings converted from the authors' file have sha256 {got}, not "
                               f"data.movielens.file_sha256 {udata_sha256}")
    return text
