"""Numerics versions of the engines: the part of a result's provenance that code carries.

A result is determined by its parameters, its input data and the code that computes
it. Parameters and data are hashed from the config and the files; the code is
represented by one integer per engine, bumped by hand whenever a change alters the
numbers that engine produces (beyond float32 rounding). A refactor that changes no
number keeps the version, so archived results stay valid; a change of numerics makes
every archived result of that engine stale.

``tests/test_numerics_version.py`` holds a reference output of each engine keyed by
its version: changing an engine's output without bumping its version fails that test.
"""

from __future__ import annotations

#: engine name -> numerics version (bump on any change of the numbers it produces).
NUMERICS_VERSIONS: dict[str, int] = {
    # seeded ground truths, observation draws and measurement operators (Arora et al.)
    "matrix_data": 1,
    # deep matrix factorization by GD / GroupRMSprop (completion, sensing, MovieLens)
    "deep_factorization": 1,
    # minimum nuclear norm by CVXPY + SCS: completion (|S vec X - y| <= eps)
    "min_nuclear_norm": 1,
    # ... and sensing, in the slack form (A vec X - y = r, |r| <= eps; arora2019/convex.py)
    "min_nuclear_norm_sensing": 1,
    # Razin & Cohen 2x2 deep matrix factorization
    "two_by_two": 1,
    # Razin & Cohen CP tensor factorization (tensor completion: razin2020/tensor_completion.py, cp_gradients.py)
    "tensor_completion": 1,
    # Razin & Cohen CP rank estimates and the linear baseline
    "cp_rank": 1,
}


def numerics_version(engine: str) -> int:
    """The numerics version of ``engine``.

    Parameters
    ----------
    engine : str
        A key of :data:`NUMERICS_VERSIONS`.

    Returns
    -------
    int
        The version; raises ``KeyError`` naming the known engines otherwise.
    """
    try:
        return NUMERICS_VERSIONS[engine]
    except KeyError:
        raise KeyError(f"unknown engine {engine!r}; known: {sorted(NUMERICS_VERSIONS)}") from None
