"""Ground truths and observations for the matrix experiments of Arora et al. (2019).

Spec §1.1 (ground truth), §1.2 (completion, sensing, MovieLens-100K). Arrays are
numpy float32; files are ``.npz`` (never pickle).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: The authors' sanity check on the observed labels' root mean square.
LABEL_RMS_RANGE = (0.8, 1.2)


def low_rank_ground_truth(
    n_rows: int, n_cols: int, rank: int, rng: np.random.Generator
) -> np.ndarray:
    """Random rank-``rank`` ground truth ``W* ∝ U Vᵀ/√r`` rescaled to entry RMS 1 (spec §1.1).

    U and V have i.i.d. standard normal entries (drawn independently), and

    .. math::

        W^* = \\sqrt{n_\\mathrm{rows} n_\\mathrm{cols}} \\, \\frac{U V^\\top}{\\|U V^\\top\\|_F},

    so ``‖W*‖_F = √(n_rows·n_cols)``, i.e. ``n`` for a square ``n×n`` matrix.

    Parameters
    ----------
    n_rows, n_cols : int
        Shape of W*.
    rank : int
        r, its rank.
    rng : numpy.random.Generator
        The data set's stream (U is drawn before V).

    Returns
    -------
    numpy.ndarray
        W*, float32 ``[n_rows, n_cols]``.
    """
    if min(n_rows, n_cols, rank) <= 0:
        raise ValueError("n_rows, n_cols and rank must be positive")
    u = rng.standard_normal((n_rows, rank))
    v = rng.standard_normal((n_cols, rank))
    w = (u @ v.T) / np.sqrt(rank)
    w *= np.sqrt(n_rows * n_cols) / np.linalg.norm(w)
    return w.astype(np.float32)


def completion_indices(
    n_rows: int, n_cols: int, n_obs: int, rng: np.random.Generator, replacement: bool = False
) -> np.ndarray:
    """``n_obs`` flat (row-major) indices drawn uniformly, sorted.

    Without replacement (the documented protocol, spec §1.2) they are distinct. With
    replacement, duplicates are kept: a loss over the drawn list weighs an entry drawn
    twice twice, and only about ``N(1 - exp(-m/N))`` entries are distinct (1,813 of
    10,000 for m = 2,000), as in a data set drawn by a sampler with replacement.

    Parameters
    ----------
    n_rows, n_cols : int
        Shape of the matrix.
    n_obs : int
        m, between 1 and ``n_rows·n_cols``.
    rng : numpy.random.Generator
        The data set's stream.
    replacement : bool
        Draw with replacement (a sampling variant, not the paper's protocol).

    Returns
    -------
    numpy.ndarray
        m int64 flat indices ``row·n_cols + col``, sorted.
    """
    if not 0 < n_obs <= n_rows * n_cols:
        raise ValueError(
            f"n_obs={n_obs} must be between 1 and the number of entries {n_rows * n_cols}"
        )
    if replacement:
        return np.sort(rng.integers(0, n_rows * n_cols, size=n_obs)).astype(np.int64)
    return np.sort(rng.choice(n_rows * n_cols, size=n_obs, replace=False)).astype(
        np.int64
    )


def expected_distinct(n_entries: int, n_draws: int) -> int:
    """How many distinct entries ``n_draws`` uniform draws with replacement give, in expectation.

    ``N (1 − (1 − 1/N)^m)``, rounded: 1,813 of N = 10,000 for m = 2,000 and 3,935 for
    m = 5,000.
    """
    return int(round(n_entries * (1.0 - (1.0 - 1.0 / n_entries) ** n_draws)))


def sampled_indices(n_rows: int, n_cols: int, n_obs: int, rng: np.random.Generator, sampling: str) -> np.ndarray:
    """Observed flat indices drawn by one of the sampling schemes of the instance spread.

    Parameters
    ----------
    n_rows, n_cols, n_obs, rng
        As in :func:`completion_indices`.
    sampling : str
        ``without_replacement`` (the documented protocol, spec §1.2): m distinct entries;
        ``with_replacement``: m draws, duplicates kept; ``fewer_distinct``: the
        :func:`expected_distinct` number of distinct entries that m draws with
        replacement give, each once, so that the effect of fewer distinct entries is
        measured apart from the weighting of duplicates.

    Returns
    -------
    numpy.ndarray
        Sorted int64 flat indices.
    """
    if sampling == "without_replacement":
        return completion_indices(n_rows, n_cols, n_obs, rng)
    if sampling == "with_replacement":
        return completion_indices(n_rows, n_cols, n_obs, rng, replacement=True)
    if sampling == "fewer_distinct":
        return completion_indices(n_rows, n_cols, expected_distinct(n_rows * n_cols, n_obs), rng)
    raise ValueError(f"unknown sampling {sampling!r}")


def sensing_matrices(
    n_rows: int, n_cols: int, n_obs: int, rng: np.random.Generator
) -> np.ndarray:
    """Measurement matrices as one ``[n_obs, n_rows·n_cols]`` float32 array.

    Entries are i.i.d. N(0, 1/n²) with n = n_rows (spec §1.2), so each
    measurement ⟨X_i, W*⟩ has RMS about ‖W*‖_F/n = 1. Row i is vec(X_i) in
    row-major order, which lets a batch of runs share one matrix product.

    Parameters
    ----------
    n_rows, n_cols : int
        Shape of each X_i.
    n_obs : int
        m, the number of measurements.
    rng : numpy.random.Generator
        The data set's stream.

    Returns
    -------
    numpy.ndarray
        A, float32 ``[n_obs, n_rows·n_cols]``.
    """
    a = rng.standard_normal((n_obs, n_rows * n_cols), dtype=np.float32)
    a /= np.float32(n_rows)
    return a


def check_label_rms(labels: np.ndarray) -> float:
    """The root mean square of ``labels``, checked against the authors' [0.8, 1.2] (spec §1.2).

    Parameters
    ----------
    labels : numpy.ndarray
        Observed values y.

    Returns
    -------
    float
        ``√(mean(y²))`` (computed in float64).

    Raises
    ------
    ValueError
        When it lies outside :data:`LABEL_RMS_RANGE`.
    """
    rms = float(np.sqrt(np.mean(np.square(labels, dtype=np.float64))))
    lo, hi = LABEL_RMS_RANGE
    if not lo <= rms <= hi:
        raise ValueError(f"observed labels have RMS {rms:.3f}, outside [{lo}, {hi}]")
    return rms


@dataclass(frozen=True)
class Ratings:
    """MovieLens ratings as (row = item − 1, col = user − 1, rating) in file order.

    Parameters
    ----------
    rows, cols : numpy.ndarray
        int64 item and user indices (0-based).
    values : numpy.ndarray
        float32 ratings.
    shape : (int, int)
        ``(items, users)``: the largest ids in the file.
    """

    rows: np.ndarray
    cols: np.ndarray
    values: np.ndarray
    shape: tuple[int, int]


#: Ratings of MovieLens-100K are whole stars.
RATING_RANGE = (1, 5)


class MovieLensFormatError(ValueError):
    """A ratings file has a malformed line, a rating out of range or a repeated (user, item) pair."""


def read_movielens(path: str | Path) -> Ratings:
    """Read and validate a ``u.data`` file (tab-separated user, item, rating, timestamp).

    The matrix is oriented items × users (1682 × 943 for ML-100K), as in the
    authors' code (spec §1.2).

    Parameters
    ----------
    path
        The ratings file.

    Returns
    -------
    Ratings
        In file order.

    Raises
    ------
    MovieLensFormatError
        Naming ``file:line`` (1-based, as an editor counts) for a line without
        three integer fields, an id below 1, a rating outside 1..5, or a
        (user, item) pair already rated on an earlier line (which is named too).
    """
    lo, hi = RATING_RANGE
    users, items, ratings = [], [], []
    first_line: dict[tuple[int, int], int] = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            fields = line.rstrip("\r\n").split("\t")
            where = f"{path}:{number}"
            try:
                user, item, rating = (int(x) for x in fields[:3])
            except ValueError:
                raise MovieLensFormatError(
                    f"{where}: expected tab-separated integers user, item, rating[, timestamp], got {line.strip()!r}"
                ) from None
            if user < 1 or item < 1:
                raise MovieLensFormatError(f"{where}: user and item ids must be 1-based, got user {user}, item {item}")
            if not lo <= rating <= hi:
                raise MovieLensFormatError(f"{where}: rating {rating} is outside {lo}..{hi}")
            earlier = first_line.setdefault((user, item), number)
            if earlier != number:
                raise MovieLensFormatError(
                    f"{where}: user {user} rated item {item} already on line {earlier} (duplicate pair)"
                )
            users.append(user)
            items.append(item)
            ratings.append(rating)
    if not ratings:
        raise MovieLensFormatError(f"{path}: no ratings")
    users_a, items_a = np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64)
    shape = (int(items_a.max()), int(users_a.max()))
    return Ratings(items_a - 1, users_a - 1, np.asarray(ratings, dtype=np.float32), shape)


def split_ratings(
    ratings: Ratings, n_train: int, rule: str, rng: np.random.Generator | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (into the file order) of the training and test ratings.

    ``rule="first_rows"`` takes the first ``n_train`` rows: the team copy of
    ML-100K stores the authors' permutation, so this is exactly their split.
    ``rule="seeded_permutation"`` permutes with ``rng`` first (for the
    official GroupLens file, whose order is by user).

    Parameters
    ----------
    ratings : Ratings
        All ratings, in file order.
    n_train : int
        Training ratings (10,000 in the paper), fewer than the total.
    rule : str
        ``first_rows`` or ``seeded_permutation``.
    rng : numpy.random.Generator, optional
        The permutation's stream (``seeded_permutation`` only).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Training and test indices into the file order.
    """
    total = ratings.values.shape[0]
    if not 0 < n_train < total:
        raise ValueError(f"n_train={n_train} must be between 1 and {total - 1}")
    if rule == "first_rows":
        order = np.arange(total)
    elif rule == "seeded_permutation":
        if rng is None:
            raise ValueError("seeded_permutation needs an rng")
        order = rng.permutation(total)
    else:
        raise ValueError(f"unknown split rule {rule!r}")
    return order[:n_train], order[n_train:]


def completion_arrays(
    ground_truth: np.ndarray, n_obs: int, rng: np.random.Generator, sampling: str = "without_replacement",
) -> dict[str, np.ndarray]:
    """Observation file contents for matrix completion: flat indices and labels (spec §1.2).

    Parameters
    ----------
    ground_truth : numpy.ndarray
        W*, ``[rows, cols]``.
    n_obs : int
        m, the number of observed entries.
    rng : numpy.random.Generator
        The data set's stream.
    sampling : str
        How the entries are drawn (:func:`sampled_indices`); the protocol's is without replacement.

    Returns
    -------
    dict of str to numpy.ndarray
        ``indices`` (sorted flat indices) and ``labels`` (``W*`` at them, float32).
    """
    rows, cols = ground_truth.shape
    indices = sampled_indices(rows, cols, n_obs, rng, sampling)
    labels = ground_truth.reshape(-1)[indices].astype(np.float32)
    return {"indices": indices, "labels": labels}


def sensing_arrays(
    ground_truth: np.ndarray, n_obs: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Observation file contents for matrix sensing: measurement matrix and labels (spec §1.2).

    Labels are ``y_i = ⟨X_i, W*⟩ = Σ_jk X_i[j, k] W*[j, k]``, summed in float64.

    Parameters
    ----------
    ground_truth : numpy.ndarray
        W*, ``[rows, cols]``.
    n_obs : int
        m, the number of measurements.
    rng : numpy.random.Generator
        The data set's stream.

    Returns
    -------
    dict of str to numpy.ndarray
        ``measurements`` (A of :func:`sensing_matrices`) and ``labels`` (float32).
    """
    rows, cols = ground_truth.shape
    matrix = sensing_matrices(rows, cols, n_obs, rng)
    labels = (matrix.astype(np.float64) @ ground_truth.reshape(-1).astype(np.float64)).astype(
        np.float32
    )
    return {"measurements": matrix, "labels": labels}


def movielens_arrays(
    ratings: Ratings, n_train: int, rule: str, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Observation file contents for MovieLens: train and test (row, col, rating) (spec §1.2).

    Parameters
    ----------
    ratings : Ratings
        All ratings.
    n_train, rule, rng
        The split (see :func:`split_ratings`).

    Returns
    -------
    dict of str to numpy.ndarray
        ``shape`` and ``{train,test}_{rows,cols,values}``.
    """
    train, test = split_ratings(ratings, n_train, rule, rng)
    out: dict[str, np.ndarray] = {"shape": np.asarray(ratings.shape, dtype=np.int64)}
    for name, idx in (("train", train), ("test", test)):
        out[f"{name}_rows"] = ratings.rows[idx]
        out[f"{name}_cols"] = ratings.cols[idx]
        out[f"{name}_values"] = ratings.values[idx]
    return out


def check_movielens_shape(ratings: Ratings, expected: tuple[int, int]) -> None:
    """Fail early when the ratings file does not have the configured shape.

    Parameters
    ----------
    ratings : Ratings
        As read from the file.
    expected : (int, int)
        ``data.movielens.shape`` of the config (items, users).

    Raises
    ------
    ValueError
        Naming both shapes when they differ.
    """
    if tuple(ratings.shape) != tuple(expected):
        raise ValueError(
            f"ratings span {ratings.shape[0]} items x {ratings.shape[1]} users, "
            f"but data.movielens.shape is {list(expected)}"
        )
