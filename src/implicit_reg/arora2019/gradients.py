"""Forward and backward passes of a batch of deep matrix factorizations, by hand.

For ``W = W_N ⋯ W_1`` and a loss ``L(W)`` with gradient ``G = ∇_W L`` with respect
to the end-to-end matrix, the gradient with respect to factor j is

.. math::

    \\nabla_{W_j} L = (W_N \\cdots W_{j+1})^\\top \\, G \\, (W_{j-1} \\cdots W_1)^\\top

(the chain rule for the deep linear network of spec §1.3, no autograd). The
forward pass keeps the partial products ``W_j ⋯ W_1`` and the backward pass
accumulates the left factor from the top, so a step costs 3(N−1) batched matrix
products ``[B, n, n]``. :class:`Workspace` holds the preallocated buffers of a
training batch, its runs grouped by depth (:class:`FactorGroup`).
"""

from __future__ import annotations

import numpy as np
import torch

from implicit_reg.arora2019.observations import SampledEntries


def forward(
    factors: list[torch.Tensor], out: list[torch.Tensor | None] | None = None
) -> list[torch.Tensor]:
    """Partial products ``[W_1, W_2 W_1, …, W_N ⋯ W_1]``; the last one is the product W.

    Parameters
    ----------
    factors : list of torch.Tensor
        W_1 … W_N of a batch, each ``[B, rows_j, cols_j]``.
    out : list, optional
        Buffers for the partial products (``out[j]`` receives ``W_{j+1} ⋯ W_1``;
        ``out[0]`` is unused since the first partial product is W_1 itself).

    Returns
    -------
    list of torch.Tensor
        N partial products, computed with N−1 batched matrix products.
    """
    partial = [factors[0]]
    for j in range(1, len(factors)):
        partial.append(torch.bmm(factors[j], partial[-1], out=None if out is None else out[j]))
    return partial


def backward(
    factors: list[torch.Tensor],
    partial: list[torch.Tensor],
    product_grad: torch.Tensor,
    out: list[torch.Tensor] | None = None,
    work: dict[int, torch.Tensor] | None = None,
) -> list[torch.Tensor]:
    """Gradients of the loss with respect to each factor, given G = ∂L/∂W.

    .. math::

        \\nabla_{W_j} L = (W_N \\cdots W_{j+1})^\\top G \\, (W_{j-1} \\cdots W_1)^\\top,

    the left factor accumulated from the top (``U_N = G``,
    ``U_{j} = W_{j+1}ᵀ U_{j+1}``), so the pass costs 2(N−1) batched matrix products.

    Parameters
    ----------
    factors : list of torch.Tensor
        W_1 … W_N, each ``[B, rows_j, cols_j]``.
    partial : list of torch.Tensor
        :func:`forward`'s partial products of ``factors``.
    product_grad : torch.Tensor
        G, ``[B, rows, cols]``; any scaling of it (the engine passes the unscaled
        adjoint) scales every gradient alike.
    out : list of torch.Tensor, optional
        One buffer per factor for the gradients.
    work : dict, optional
        Buffers for the upstream products ``U_j`` of factors 2 … N−1 (with ``out``,
        nothing is allocated).

    Returns
    -------
    list of torch.Tensor
        ∇_{W_1} L … ∇_{W_N} L, shaped like the factors.
    """
    depth = len(factors)
    grads: list[torch.Tensor] = [product_grad] * depth
    upstream = product_grad
    for j in range(depth - 1, 0, -1):
        grads[j] = torch.bmm(upstream, partial[j - 1].transpose(1, 2),
                             out=None if out is None else out[j])
        dest = None if out is None else (out[0] if j == 1 else work[j])
        upstream = torch.bmm(factors[j].transpose(1, 2), upstream, out=dest)
    grads[0] = upstream
    return grads


def sampled_forward(factors: list[torch.Tensor], train: SampledEntries,
                    out: list[torch.Tensor | None] | None = None) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Partial products below the top factor and the residual on the observed entries.

    The product ``W = W_N · (W_{N−1} ⋯ W_1)`` is only sampled on the observation
    pattern (SDDMM), never formed: a MovieLens step reads 10,000 of its 1.6 million
    entries.

    Parameters
    ----------
    factors : list of torch.Tensor
        W_1 … W_N, each ``[B, rows_j, cols_j]``.
    train : SampledEntries
        The observed entries.
    out : list, optional
        Buffers for the partial products, as in :func:`forward`.

    Returns
    -------
    (list of torch.Tensor, torch.Tensor)
        ``[W_1, …, W_{N−1} ⋯ W_1]`` (just ``[W_1]`` at depth 1) and the residual
        ``A(W) − y``, ``[B, count]``.
    """
    if len(factors) == 1:
        return [factors[0]], train.residual(factors[0])
    partial = forward(factors[:-1], out=None if out is None else out[:-1])
    return partial, train.sampled_residual(factors[-1], partial[-1])


def sampled_backward(factors: list[torch.Tensor], partial: list[torch.Tensor],
                     train: SampledEntries, residual: torch.Tensor) -> list[torch.Tensor]:
    """Gradients of every factor (unscaled, like :func:`backward`'s) from a sparse G.

    G is the residual placed on the observed entries (a sparse matrix); its two
    products ``G (W_{N−1} ⋯ W_1)ᵀ`` and ``W_Nᵀ G`` are sparse kernels (count × width
    work each) and the rest is :func:`backward`'s dense chain below the top factor.

    Parameters
    ----------
    factors : list of torch.Tensor
        W_1 … W_N, each ``[B, rows_j, cols_j]``.
    partial : list of torch.Tensor
        :func:`sampled_forward`'s partial products.
    train : SampledEntries
        The observed entries.
    residual : torch.Tensor
        ``[B, count]``, from :func:`sampled_forward`.

    Returns
    -------
    list of torch.Tensor
        The unscaled gradients of W_1 … W_N, shaped like the factors.
    """
    depth = len(factors)
    if depth == 1:
        return [train.adjoint(residual).view(-1, *train.shape)]
    top = factors[-1]
    grads: list[torch.Tensor] = [residual] * depth
    grads[-1] = train.times_dense(residual, partial[-1].transpose(1, 2))
    upstream = train.transposed_times_dense(residual, top).transpose(1, 2)
    for j in range(depth - 2, 0, -1):
        grads[j] = torch.bmm(upstream, partial[j - 1].transpose(1, 2))
        upstream = torch.bmm(factors[j].transpose(1, 2), upstream)
    grads[0] = upstream.contiguous()
    return grads


class FactorGroup:
    """Buffers of the runs of one depth: factors, gradients, partial products.

    When every factor has the same shape (square problems, depth ≥ 2) the
    factors and their gradients live in single ``[N, B, rows, cols]`` buffers,
    so the update and the gradient norms are one operation each instead of N.

    Parameters
    ----------
    factors : list of torch.Tensor
        W_1 … W_N of the group's runs, each ``[B_group, rows_j, cols_j]`` (copied
        into the group's buffers).
    start : int
        The group's first row in the batch (its runs are rows ``start:stop``).
    """

    def __init__(self, factors: list[torch.Tensor], start: int) -> None:
        depth = len(factors)
        shapes = [tuple(w.shape) for w in factors]
        self.depth, self.start, self.stop = depth, start, start + factors[0].shape[0]
        self.factor_buf: torch.Tensor | None = None
        self.grad_buf: torch.Tensor | None = None
        if depth >= 2 and all(s == shapes[0] for s in shapes):
            self.factor_buf = torch.stack(factors)
            self.factors = list(self.factor_buf.unbind(0))
            self.grad_buf = torch.empty_like(self.factor_buf)
            self.grads: list[torch.Tensor] = list(self.grad_buf.unbind(0))
        else:
            self.factors = [w.contiguous() for w in factors]
            self.grads = [torch.empty_like(w) for w in factors]
        like = factors[0]
        batch, cols = like.shape[0], like.shape[2]
        self.partial: list[torch.Tensor | None] = [None] + [
            like.new_empty((batch, factors[j].shape[1], cols)) for j in range(1, depth)
        ]
        self.upstream = {j: like.new_empty((batch, factors[j].shape[2], cols)) for j in range(2, depth)}

    def forward(self, product_out: torch.Tensor | None) -> list[torch.Tensor]:
        """Partial products of this group; the last one is written into ``product_out`` when given.

        A depth-1 group's product is its factor: it is copied into ``product_out``
        (n² numbers per run, against the m·n² of the shared products).
        """
        if product_out is not None and self.depth == 1:
            product_out.copy_(self.factors[0])
            return [product_out]
        return forward(self.factors, out=self.partial)

    def grad_norms(self, grads: list[torch.Tensor]) -> torch.Tensor:
        """‖∇_j‖ per factor and run, ``[N, B_group]`` (one pass over the gradients)."""
        if self.grad_buf is not None and grads[0] is self.grads[0]:
            n, b = self.grad_buf.shape[:2]
            return torch.linalg.vector_norm(self.grad_buf.view(n * b, -1), dim=1).view(n, b)
        return torch.stack([torch.linalg.vector_norm(g.flatten(1), dim=1) for g in grads])

    def update(self, grads: list[torch.Tensor], scale: torch.Tensor) -> None:
        """W_j ← W_j − scale·∇_j for every factor (scale is per run, ``[B_group]``)."""
        if self.factor_buf is not None and grads[0] is self.grads[0]:
            self.factor_buf.addcmul_(scale.view(1, -1, 1, 1), self.grad_buf, value=-1.0)
            return
        s = scale.view(-1, 1, 1)
        for w, g in zip(self.factors, grads):
            w.addcmul_(s, g, value=-1.0)


class Workspace:
    """Preallocated buffers of the training loop for one batch, runs grouped by depth.

    The runs of a batch are ordered by depth; each depth is a :class:`FactorGroup`
    (rows ``start:stop`` of the batch). With more than one group the groups' last
    partial products are views into one ``[B, rows, cols]`` product buffer, so
    the observation (for sensing the two products with the measurement matrix
    A, 99 % of a step) runs once on the whole batch whatever the mix of depths.
    ``st.factors`` (the groups' factors, group after group) are views into the
    groups' buffers while a workspace is live.

    Parameters
    ----------
    factors : list of torch.Tensor
        Every group's factors, group after group (W_1 … W_N of each depth).
    group_depths : list of int
        The groups' depths in batch order.
    lr : torch.Tensor
        Learning rate per run, ``[B]``.
    gradient_scale : float
        The observation's 2/m (gradients are computed unscaled).
    all_active : bool
        Every run of the batch is active (the step then needs no mask).
    residual_like_product : bool
        The observation's residual has the product's shape (it may overwrite it).
    """

    def __init__(self, factors: list[torch.Tensor], group_depths: list[int], lr: torch.Tensor,
                 gradient_scale: float, all_active: bool, residual_like_product: bool) -> None:
        self.groups: list[FactorGroup] = []
        start = k = 0
        for depth in group_depths:
            group = FactorGroup(factors[k:k + depth], start)
            self.groups.append(group)
            start, k = group.stop, k + depth
        self.factors = [w for g in self.groups for w in g.factors]
        self.product: torch.Tensor | None = None
        if len(self.groups) > 1:
            like = factors[-1]
            self.product = like.new_empty((start, like.shape[1], factors[0].shape[2]))
            for g in self.groups:
                if g.depth >= 2:
                    g.partial[-1] = self.product[g.start:g.stop]
        #: The residual may overwrite the product (same shape, and the product is not a factor).
        self.residual_in_place = residual_like_product and (self.product is not None or self.groups[0].depth >= 2)
        self.residual: torch.Tensor | None = None  # allocated by the first residual() call
        self.adjoint: torch.Tensor | None = None
        #: lr × gradient_scale: the update step of plain GD on the unscaled adjoint.
        self.lr_scaled = lr * gradient_scale
        #: Every run of the batch is active (then the step needs no mask).
        self.all_active = all_active

    @property
    def single(self) -> FactorGroup | None:
        """The only group of a one-depth batch (the common case, and the sampled path's)."""
        return self.groups[0] if len(self.groups) == 1 else None

    def forward(self) -> list[list[torch.Tensor]]:
        """Every group's partial products; the batch's products are :meth:`products` of them."""
        out = self.product
        return [g.forward(None if out is None else out[g.start:g.stop]) for g in self.groups]

    def products(self, partials: list[list[torch.Tensor]]) -> torch.Tensor:
        """The product matrices of the whole batch, ``[B, rows, cols]`` (no copy)."""
        return partials[0][-1] if self.product is None else self.product

    def backward(self, partials: list[list[torch.Tensor]], adjoint: torch.Tensor) -> list[list[torch.Tensor]]:
        """Unscaled gradients of every group from the batch's adjoint ``[B, rows, cols]``."""
        return [
            backward(g.factors, p, adjoint[g.start:g.stop], out=g.grads, work=g.upstream)
            for g, p in zip(self.groups, partials)
        ]

    def grad_sq_norms(self, grads: list[list[torch.Tensor]], xp, arr):
        """Σ_j ‖∇_j‖² per run, ``[B]``, in the bookkeeping namespace ``xp`` (``arr`` converts to it)."""
        sq = [(arr(g.grad_norms(gg)) ** 2).sum(0) for g, gg in zip(self.groups, grads)]
        if len(sq) == 1:
            return sq[0]
        return np.concatenate(sq) if xp is np else torch.cat(sq)

    def update(self, grads: list[list[torch.Tensor]], scale: torch.Tensor) -> None:
        """One step of every run: W_j ← W_j − scale·∇_j (scale is per run, ``[B]``)."""
        for g, gg in zip(self.groups, grads):
            g.update(gg, scale if len(self.groups) == 1 else scale[g.start:g.stop])

    def adopt(self, partials: list[list[torch.Tensor]], product: torch.Tensor) -> None:
        """Use fresh, contiguous selected tensors as this iteration's partial products."""
        if self.product is not None:
            self.product = product
        for g, p in zip(self.groups, partials):
            g.partial[1:len(p)] = p[1:]
            if self.product is not None and g.depth >= 2:
                g.partial[-1] = product[g.start:g.stop]

