"""Loss and hand-written gradients of the CP model of Razin & Cohen (2020), Fig. 2.

The model is a CP factorization ``W = Σ_{ρ≤R} A_1[:, ρ] ⊗ … ⊗ A_N[:, ρ]``,
stacked over ``B`` runs on a leading batch axis (factors ``[B, d_m, R]``).
Gradients are written by hand: splitting the modes into a left and a right
group turns the forward pass and both halves of the backward pass into three
batched matrix products (``[D_left, R] × [R, D_right]``), followed by cheap
contractions inside each group. Tests check them against autograd.

Every intermediate of a step lives in a workspace allocated once per set of
running runs (:class:`StepWorkspace`): at order 4, R = 512, the ~1.3 MB
per-step temporaries of the earlier allocating step cost a fresh ``mmap``
and its page faults each (two thirds of the step time). The arithmetic is
the earlier step's, operation by operation (same float32 operations on the
same operands in the same order; ``tests/test_tensor_completion.py`` checks
bit-identity against a copy of it). ``bench/bench_tensor.py`` times both in
one process.

Separate from the batched trainer (:mod:`implicit_reg.razin2020.tensor_completion`,
which owns the optimizer, stop rule, histories and state) so that the
numerics of one step can be read, tested and benchmarked on their own.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def _khatri_rao(mats: Sequence[torch.Tensor], out: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
    """Batched column-wise Kronecker product ``[B, Π d, R]`` (first matrix slowest).

    Broadcast products rather than einsum: they write the result contiguously
    instead of going through permuted copies (half the step time at order 4).
    ``out``: workspace buffers for the partial products ``[B, d_1, d_2, R]``,
    ``[B, d_1 d_2, d_3, R]``, … (same products, same order), or ``None``.
    """
    result = mats[0]
    for i, m in enumerate(mats[1:]):
        buf = None if out is None else out[i]
        result = torch.mul(result[:, :, None, :], m[:, None, :, :], out=buf).reshape(
            result.shape[0], -1, result.shape[-1])
    return result


def mode_split(order: int) -> int:
    """Number of leading modes in the left group (``order // 2``, at least 1)."""
    return max(order // 2, 1)


def cp_full_tensor(factors: Sequence[torch.Tensor]) -> torch.Tensor:
    """Model tensors ``[B, d_1, …, d_N]`` from factors ``[B, d_m, R]``."""
    h = mode_split(len(factors))
    left, right = _khatri_rao(factors[:h]), _khatri_rao(factors[h:])
    mat = torch.bmm(left, right.transpose(1, 2))
    return mat.reshape(mat.shape[0], *[f.shape[1] for f in factors])


def _factor_view(factor: torch.Tensor, i: int, k: int) -> torch.Tensor:
    """Factor ``[B, d_i, R]`` of position ``i`` in a group of ``k``, viewed as ``[B, 1, …, d_i, …, 1, R]``."""
    view = [factor.shape[0]] + [1] * k + [factor.shape[-1]]
    view[1 + i] = factor.shape[1]
    return factor.reshape(view)


def _group_gradients(
    h: torch.Tensor,
    group: Sequence[torch.Tensor],
    prod: torch.Tensor | None,
    out: Sequence[torch.Tensor] | None,
) -> list[torch.Tensor]:
    """Per-mode gradients from ``h = G_(group) · KR(other group)``.

    ``h`` is reshaped to the group's modes ``[B, d_1, …, d_k, R]``; the
    gradient of mode j multiplies in the group's other factors (broadcast,
    ``((h · A_i) · A_i') …`` in mode order) and sums over their axes.
    ``prod`` (``h``'s size) and ``out`` (one ``[B, d_j, R]`` per mode) are
    workspace buffers to write into, or ``None`` to allocate; the values
    are the same bits either way.
    """
    if len(group) == 1:
        return [h]
    k = len(group)
    h = h.reshape(h.shape[0], *[g.shape[1] for g in group], h.shape[-1])
    grads = []
    for j in range(k):
        others = [i for i in range(k) if i != j]
        p = torch.mul(h, _factor_view(group[others[0]], others[0], k),
                      out=None if prod is None else prod.view(h.shape))
        for i in others[1:]:
            p.mul_(_factor_view(group[i], i, k))
        axes = tuple(1 + i for i in others)
        grads.append(p.sum(dim=axes) if out is None else torch.sum(p, dim=axes, out=out[j]))
    return grads


class StepWorkspace:
    """Buffers of one step (loss, gradients, optimizer) for ``B`` stacked runs.

    Allocated once per set of running runs: fresh per-step temporaries of
    this size (``[B, 64, 512]`` float32, 1.3 MB at B = 10) come from ``mmap``
    and are paid for in page faults at every step. Each buffer is its own
    allocation (no views into a shared block), so the matrix products see
    the same kind of operands as with fresh tensors.

    Parameters
    ----------
    batch : int
        Number of stacked runs B.
    shape : sequence of int
        Mode sizes ``d_1 … d_N``.
    num_components : int
        R.
    dtype, device
        Of the factors.
    """

    def __init__(self, batch: int, shape: Sequence[int], num_components: int,
                 dtype: torch.dtype, device: torch.device) -> None:
        h = mode_split(len(shape))
        r = int(num_components)

        def empty(*size: int) -> torch.Tensor:
            return torch.empty(*size, dtype=dtype, device=device)

        def chain(group: Sequence[int]) -> list[torch.Tensor]:
            # Partial Khatri-Rao products of a group: [B, d_1, d_2, R], [B, d_1 d_2, d_3, R], ...
            return [empty(batch, int(np.prod(group[:i])), group[i], r) for i in range(1, len(group))]

        left, right = list(shape[:h]), list(shape[h:])
        d_left, d_right = int(np.prod(left)), int(np.prod(right))
        self.kr_left, self.kr_right = chain(left), chain(right)
        self.resid = empty(batch, d_left, d_right)
        self.resid_sq = empty(batch, d_left, d_right)
        self.loss_sum = empty(batch)
        self.loss = empty(batch)
        self.h_left, self.h_right = empty(batch, d_left, r), empty(batch, d_right, r)
        self.prod_left = empty(batch, d_left, r) if len(left) > 1 else None
        self.prod_right = empty(batch, d_right, r) if len(right) > 1 else None
        self.grads_left = [empty(batch, d, r) for d in left] if len(left) > 1 else None
        self.grads_right = [empty(batch, d, r) for d in right] if len(right) > 1 else None
        self.grad_sq = [empty(batch, d, r) for d in shape]
        self.grad_sq_sum = empty(batch)


def loss_and_gradients(
    factors: Sequence[torch.Tensor],
    target_mat: torch.Tensor,
    mask_mat: torch.Tensor,
    n_obs: int,
    workspace: StepWorkspace | None = None,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Per-run MSE over the observed entries and its gradient w.r.t. each factor.

    ``target_mat`` / ``mask_mat`` are the target and the 0/1 observation mask
    unfolded to ``[D_left, D_right]`` (row-major, left group = first
    :func:`mode_split` modes). Returns ``loss [B]`` and ``[B, d_m, R]`` grads.

    With the residual ``E = M ⊙ (L Rᵀ − T)`` of the unfolded model
    ``L Rᵀ`` (``L``, ``R`` the Khatri-Rao products of the two groups), the
    loss is ``‖E‖²/n`` and ``∂/∂L = (2/n) E R``, ``∂/∂R = (2/n) Eᵀ L``, split
    over each group's modes by :func:`_group_gradients`.

    ``workspace``: buffers to write into (the returned tensors are those
    buffers, overwritten by the next call); ``None`` allocates fresh tensors.
    """
    ws = workspace if workspace is not None else StepWorkspace(
        factors[0].shape[0], [f.shape[1] for f in factors], factors[0].shape[-1],
        factors[0].dtype, factors[0].device)
    h = mode_split(len(factors))
    left = _khatri_rao(factors[:h], ws.kr_left)
    right = _khatri_rao(factors[h:], ws.kr_right)
    resid = torch.bmm(left, right.transpose(1, 2), out=ws.resid)
    resid.sub_(target_mat)
    torch.mul(mask_mat, resid, out=resid)
    loss = torch.div(torch.sum(torch.square(resid, out=ws.resid_sq), dim=(1, 2), out=ws.loss_sum),
                     n_obs, out=ws.loss)
    g = resid.mul_(2.0 / n_obs)
    grads = _group_gradients(torch.bmm(g, right, out=ws.h_left), factors[:h], ws.prod_left, ws.grads_left)
    grads += _group_gradients(torch.bmm(g.transpose(1, 2), left, out=ws.h_right), factors[h:], ws.prod_right,
                              ws.grads_right)
    return loss, grads


def init_factors(
    shape: Sequence[int], num_components: int, init_std: float, seed: int
) -> list[np.ndarray]:
    """Factors ``[d_m, R]`` with i.i.d. N(0, σ²) float32 entries, from ``default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    return [
        rng.standard_normal((d, num_components), dtype=np.float32) * np.float32(init_std)
        for d in shape
    ]
