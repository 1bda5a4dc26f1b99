"""Metrics of a product matrix, as defined in Arora et al. (2019) §D.2 and the spec §1.8.

All functions accept batched torch tensors ``[..., rows, cols]`` and return one
value per matrix, so the training engine can evaluate a whole batch of runs at
once. Numpy references used by the tests live in ``tests/``.
"""

from __future__ import annotations

import torch

#: Guard inside the logarithm of the effective rank (the authors' value).
EFFECTIVE_RANK_LOG_GUARD = 1e-10


def _finite_part(product: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(product with non-finite matrices zeroed, mask of finite matrices)``; mask None if all are.

    LAPACK refuses non-finite input, and one diverged run would take its whole batch down:
    such a matrix is decomposed as zeros and its results are set to NaN by the caller.
    """
    finite = torch.isfinite(product).all(dim=-1).all(dim=-1)
    if bool(finite.all()):
        return product, None
    return torch.where(finite[..., None, None], product, torch.zeros_like(product)), finite


def svd(product: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Thin SVD ``W = U diag(σ) Vᵀ`` of a batch; a matrix with a NaN/inf entry (a diverged run) gets NaN factors.

    Parameters
    ----------
    product : torch.Tensor
        ``[..., rows, cols]``.

    Returns
    -------
    (torch.Tensor, torch.Tensor, torch.Tensor)
        U ``[..., rows, k]``, σ ``[..., k]`` (descending) and Vᵀ ``[..., k, cols]``,
        k = min(rows, cols).
    """
    safe, finite = _finite_part(product)
    u, s, vh = torch.linalg.svd(safe, full_matrices=False)
    if finite is None:
        return u, s, vh
    nan = float("nan")
    return (torch.where(finite[..., None, None], u, nan), torch.where(finite[..., None], s, nan),
            torch.where(finite[..., None, None], vh, nan))


def singular_values(product: torch.Tensor) -> torch.Tensor:
    """Singular values in descending order; NaN for a non-finite matrix.

    Parameters
    ----------
    product : torch.Tensor
        ``[..., rows, cols]``.

    Returns
    -------
    torch.Tensor
        ``[..., min(rows, cols)]``.
    """
    safe, finite = _finite_part(product)
    sv = torch.linalg.svdvals(safe)
    return sv if finite is None else torch.where(finite[..., None], sv, float("nan"))


def nuclear_norm_from_singular_values(sv: torch.Tensor) -> torch.Tensor:
    """Nuclear norm ``‖W‖_* = Σ_i σ_i`` (spec §1.8).

    Parameters
    ----------
    sv : torch.Tensor
        Singular values ``[..., k]``.

    Returns
    -------
    torch.Tensor
        ``[...]``.
    """
    return sv.sum(dim=-1)


def effective_rank_from_singular_values(sv: torch.Tensor) -> torch.Tensor:
    """Effective rank of Roy & Vetterli (2007): exp of the entropy of σ/Σσ (spec §1.8).

    .. math::

        \\mathrm{erank} = \\exp\\Big(-\\sum_i p_i \\ln(p_i + 10^{-10})\\Big), \\qquad
        p_i = \\frac{\\sigma_i}{\\sum_j \\sigma_j},

    summed over all singular values with the 1e-10 guard of the authors' code, so a
    zero singular value contributes nothing. A rank-r matrix with r equal singular
    values has effective rank ≈ r.

    Parameters
    ----------
    sv : torch.Tensor
        Singular values ``[..., k]``.

    Returns
    -------
    torch.Tensor
        ``[...]``.

    This torch version exists beside the numpy one
    (:func:`implicit_reg.core.metrics_numpy.effective_rank`, the single numpy
    implementation) because the deep-factorization engine evaluates it on the
    training device for a whole batch of runs without copying the singular values
    to the host; ``tests/test_metrics_numpy.py`` checks that the two agree.
    """
    p = sv / sv.sum(dim=-1, keepdim=True)
    return torch.exp(-(p * torch.log(p + EFFECTIVE_RANK_LOG_GUARD)).sum(dim=-1))


def alignment_statistics(
    product: torch.Tensor,
    rescaled_gradient: torch.Tensor,
    singular_vectors: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Singular-vector alignment of the paper's Corollary 1 (Figure 3, 4th column).

    With the thin SVD ``W = U diag(σ) Vᵀ``, returns ``[..., 4]`` holding the mean
    and unbiased std of the diagonal of ``|Uᵀ G V|`` and the same two numbers for
    its off-diagonal entries. ``G`` is the rescaled end-to-end gradient (the
    caller chooses the scaling, spec §1.8). ``singular_vectors`` = (U, Vᵀ) of
    ``product`` when the caller already has them (the SVD of a 1682×943 product
    costs about a second).

    Parameters
    ----------
    product : torch.Tensor
        W, ``[..., rows, cols]``.
    rescaled_gradient : torch.Tensor
        G, ``[..., rows, cols]``.
    singular_vectors : (torch.Tensor, torch.Tensor), optional
        (U, Vᵀ) of ``product``.

    Returns
    -------
    torch.Tensor
        ``[..., 4]``: diagonal mean, diagonal std, off-diagonal mean, off-diagonal std.
    """
    u, vh = singular_vectors if singular_vectors is not None else svd(product)[::2]
    a = (u.transpose(-1, -2) @ rescaled_gradient @ vh.transpose(-1, -2)).abs()
    k = a.shape[-1]
    eye = torch.eye(k, dtype=torch.bool, device=a.device)
    diag = torch.diagonal(a, dim1=-2, dim2=-1)
    off = a[..., ~eye].reshape(*a.shape[:-2], k * k - k)
    return torch.stack(
        [diag.mean(-1), diag.std(-1), off.mean(-1), off.std(-1)], dim=-1
    )
