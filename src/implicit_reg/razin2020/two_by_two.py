"""Deep matrix factorization of the 2×2 completion problem (Razin & Cohen 2020, Fig. 1).

Spec: ``shared/spec/razin2020.md`` §2.1 (model, init, loss, logging, stopping),
§3 (Figure 1) and §6.2 (perturbed problems).

The product matrix is ``P = W_1 W_2 ⋯ W_L`` (the authors' multiplication
order) of ``L = depth`` square ``d×d`` layers (``d = 2`` here, the code works
for any small ``d``). The loss is ``½ Σ_{(i,j)∈Ω} (P_ij − b_ij)²`` and the
optimizer is plain full-batch gradient descent with a constant learning rate,
in float32 by default.

Performance
-----------
Figure 1 needs up to 5·10⁶ GD steps per run on 2×2 matrices, where a PyTorch
eager step costs ~0.2 ms of pure overhead. The engine therefore keeps Python
out of the inner loop: one numba-compiled kernel advances a whole batch
``[runs, max_depth, d, d]`` for many iterations per call, including the
logging every ``log_every`` steps and the stop rule, so each run can have its
own depth, learning rate and problem and stops independently. Without numba
the very same kernel runs as plain Python (``backend="python"``), which is
only good for tests. ``bench/bench_two_by_two.py`` measures the speed-up over a
plain eager PyTorch loop: on the shared 2-core machine (one thread, other
jobs running) the kernel took 0.3–0.9 µs per run-iteration versus 0.6–1 ms
for the eager loop (~900× in the same process), and the real 12-run Figure 1
configuration (up to 5·10⁶ iterations per run) finished in 16–19 s of wall
time.

Modules: :mod:`~implicit_reg.razin2020.two_by_two_problem` (problems and
initializations), :mod:`~implicit_reg.razin2020.two_by_two_kernel` (the compiled
step and its numpy reference, :func:`reference_step`), this module (the batch
state, its driver, checkpoints and per-run results) and
:mod:`~implicit_reg.razin2020.loss_markers` (Figure 1's markers and curve cut).
The numerics version of all of them is the engine ``two_by_two``
(:mod:`implicit_reg.core.numerics`).

Logging alignment (spec §9.4): at an iteration ``t`` that is a multiple of
``log_every`` (``t`` counts completed updates, starting at 1) the logged loss
is the one computed *before* that update and the logged product matrix is the
one *after* it. The last history row of a run is its stopping iteration.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from implicit_reg.razin2020.two_by_two_kernel import (
    HAVE_NUMBA,
    RUNNING,
    STATUS_NAMES,
    advance_kernel_jit,
    advance_kernel_py,
)
from implicit_reg.razin2020.two_by_two_problem import (
    CompletionProblem,
    DMFRunConfig,
    init_layers,
    product_matrix,
)

#: Defaults of the authors' runner (spec §2.1).
DEFAULT_LOG_EVERY = 50
DEFAULT_TOL = 1e-4
DEFAULT_PATIENCE = 10
DEFAULT_MAX_ITERS = 5_000_000


@dataclass
class DMFBatch:
    """State of a batch of independent GD runs (all numpy arrays).

    ``layers[b, :depth[b]]`` are run ``b``'s parameters (unused slots hold the
    identity). ``history[b, :history_len[b]]`` are its logged rows
    ``(iteration, loss, P_11, P_12, …, P_dd)`` in float64. ``status`` holds the
    codes of :mod:`~implicit_reg.razin2020.two_by_two_kernel` (``RUNNING`` …);
    ``log_every``, ``tol``, ``patience`` and ``max_iters`` are the logging and
    stopping settings of spec §2.1.
    """

    layers: np.ndarray
    depth: np.ndarray
    lr: np.ndarray
    mask: np.ndarray
    target: np.ndarray
    iteration: np.ndarray
    below_tol: np.ndarray
    status: np.ndarray
    history: np.ndarray
    history_len: np.ndarray
    log_every: int = DEFAULT_LOG_EVERY
    tol: float = DEFAULT_TOL
    patience: int = DEFAULT_PATIENCE
    max_iters: int = DEFAULT_MAX_ITERS

    @property
    def n_runs(self) -> int:
        return self.layers.shape[0]

    @property
    def dim(self) -> int:
        return self.layers.shape[-1]

    def running(self) -> np.ndarray:
        """Boolean mask of the runs that have not stopped."""
        return self.status == RUNNING


def init_batch(
    problems: CompletionProblem | Sequence[CompletionProblem],
    configs: Sequence[DMFRunConfig],
    dtype: type = np.float32,
    log_every: int = DEFAULT_LOG_EVERY,
    tol: float = DEFAULT_TOL,
    patience: int = DEFAULT_PATIENCE,
    max_iters: int = DEFAULT_MAX_ITERS,
) -> DMFBatch:
    """Initialize a batch of runs (spec §2.1), each from its own seeded draw.

    Parameters
    ----------
    problems : CompletionProblem or sequence of CompletionProblem
        One problem for all runs, or one per run (same ``d×d`` shape).
    configs : sequence of DMFRunConfig
        One per run; depths may differ.
    dtype : type
        Arithmetic dtype of the layers (float32 in the paper).
    log_every, tol, patience, max_iters
        Logging interval and stop rule (the authors' defaults).

    Returns
    -------
    DMFBatch
        All runs at iteration 0, status running.
    """
    if isinstance(problems, CompletionProblem):
        problems = [problems] * len(configs)
    if len(problems) != len(configs) or not configs:
        raise ValueError("need one config per run and one problem per run (or a single problem)")
    dim = problems[0].dim
    if any(p.shape != (dim, dim) for p in problems):
        raise ValueError("all problems of a batch must have the same square shape")
    depths = np.array([c.depth for c in configs], dtype=np.int64)
    max_depth = int(depths.max())
    layers = np.broadcast_to(np.eye(dim, dtype=dtype), (len(configs), max_depth, dim, dim)).copy()
    for b, c in enumerate(configs):
        layers[b, : c.depth] = init_layers(c, dim, dtype)
    n = len(configs)
    return DMFBatch(
        layers=layers,
        depth=depths,
        lr=np.array([c.lr for c in configs], dtype=dtype),
        mask=np.stack([p.mask() for p in problems]).astype(dtype),
        target=np.stack([p.observed_matrix() for p in problems]).astype(dtype),
        iteration=np.zeros(n, dtype=np.int64),
        below_tol=np.zeros(n, dtype=np.int64),
        status=np.zeros(n, dtype=np.int64),
        history=np.zeros((n, 1024, 2 + dim * dim), dtype=np.float64),
        history_len=np.zeros(n, dtype=np.int64),
        log_every=int(log_every),
        tol=float(tol),
        patience=int(patience),
        max_iters=int(max_iters),
    )



def _ensure_history_room(batch: DMFBatch, n_iters: int) -> None:
    need = int(batch.history_len.max()) + n_iters // batch.log_every + 2
    cap = batch.history.shape[1]
    if need > cap:
        new_cap = max(need, 2 * cap)
        grown = np.zeros((batch.n_runs, new_cap, batch.history.shape[2]), dtype=np.float64)
        grown[:, :cap] = batch.history
        batch.history = grown


def advance(batch: DMFBatch, n_iters: int, backend: str = "auto") -> DMFBatch:
    """Advance every running run by up to ``n_iters`` GD iterations, in place.

    Results do not depend on how the iterations are split into calls.

    Parameters
    ----------
    batch : DMFBatch
    n_iters : int
        Iterations per run at most (a run stops earlier when it converges,
        diverges or reaches ``max_iters``).
    backend : str
        ``"numba"`` (compiled), ``"python"`` (same kernel, interpreted; slow,
        for tests) or ``"auto"`` (numba when available).

    Returns
    -------
    DMFBatch
        ``batch`` itself.
    """
    if backend == "auto":
        backend = "numba" if HAVE_NUMBA else "python"
    if backend == "numba" and not HAVE_NUMBA:
        raise RuntimeError("numba is not installed")
    kernel = {"numba": advance_kernel_jit, "python": advance_kernel_py}.get(backend)
    if kernel is None:
        raise ValueError(f"unknown backend {backend!r}")
    if n_iters <= 0 or not batch.running().any():
        return batch
    _ensure_history_room(batch, n_iters)
    kernel(
        batch.layers,
        batch.depth,
        batch.lr,
        batch.mask,
        batch.target,
        batch.iteration,
        batch.below_tol,
        batch.status,
        batch.history,
        batch.history_len,
        int(n_iters),
        int(batch.log_every),
        int(batch.max_iters),
        float(batch.tol),
        int(batch.patience),
        batch.layers.dtype.type(0.5),
    )
    return batch


def run_batch(
    batch: DMFBatch,
    checkpoint_every: int | None = None,
    on_checkpoint: Callable[[DMFBatch], None] | None = None,
    backend: str = "auto",
) -> DMFBatch:
    """Run until every run has stopped (converged, capped or diverged).

    Parameters
    ----------
    batch : DMFBatch
    checkpoint_every : int or None
        Every that many iterations (of the slowest run) ``on_checkpoint`` is
        called with the batch, e.g. to save :func:`get_state` atomically.
    on_checkpoint : callable or None
    backend : str
        As in :func:`advance`.

    Returns
    -------
    DMFBatch
        ``batch`` itself.
    """
    chunk = int(checkpoint_every) if checkpoint_every else 1_000_000
    while batch.running().any():
        advance(batch, chunk, backend)
        if on_checkpoint is not None and batch.running().any():
            on_checkpoint(batch)
    return batch


_STATE_ARRAYS = (
    "layers", "depth", "lr", "mask", "target", "iteration", "below_tol", "status", "history_len",
)


def get_state(batch: DMFBatch) -> dict[str, np.ndarray]:
    """The full engine state, to checkpoint a batch.

    Parameters
    ----------
    batch : DMFBatch

    Returns
    -------
    dict of str to numpy.ndarray
        Copies of every state array (``np.savez``-ready) and the settings.
    """
    state = {k: np.array(getattr(batch, k), copy=True) for k in _STATE_ARRAYS}
    state["history"] = batch.history[:, : max(int(batch.history_len.max()), 1)].copy()
    state["settings"] = np.array(
        [batch.log_every, batch.tol, batch.patience, batch.max_iters], dtype=np.float64
    )
    return state


def restore_state(state: Mapping[str, np.ndarray]) -> DMFBatch:
    """Inverse of :func:`get_state`; resuming gives bit-identical results.

    Parameters
    ----------
    state : mapping of str to numpy.ndarray
        What :func:`get_state` returned.

    Returns
    -------
    DMFBatch
    """
    log_every, tol, patience, max_iters = (float(x) for x in np.asarray(state["settings"]))
    kwargs = {k: np.array(state[k], copy=True) for k in _STATE_ARRAYS}
    return DMFBatch(
        history=np.array(state["history"], dtype=np.float64, copy=True),
        log_every=int(log_every),
        tol=tol,
        patience=int(patience),
        max_iters=int(max_iters),
        **kwargs,
    )



@dataclass(frozen=True)
class DMFRunResult:
    """Outcome of one run: status name, stopping iteration, logged history.

    ``history`` maps ``iteration``, ``loss`` and ``p11``, ``p12``, … (1-based
    entry names of the product matrix) to equal-length arrays.
    """

    status: str
    final_iteration: int
    history: dict[str, np.ndarray]
    final_product: np.ndarray


def entry_names(dim: int) -> list[str]:
    """Names ``p11, p12, …`` (1-based) of the logged product entries.

    Parameters
    ----------
    dim : int
        ``d``.

    Returns
    -------
    list of str
        Row-major, ``d²`` names.
    """
    return [f"p{i + 1}{j + 1}" for i in range(dim) for j in range(dim)]


def _quiet_product(layers: np.ndarray) -> np.ndarray:
    # A diverged run's layers hold inf/NaN; their product is expected garbage.
    with np.errstate(over="ignore", invalid="ignore"):
        return product_matrix(layers)


def run_results(batch: DMFBatch) -> list[DMFRunResult]:
    """Per-run results of a batch (works mid-run too: status ``running``).

    Parameters
    ----------
    batch : DMFBatch

    Returns
    -------
    list of DMFRunResult
        In the order of the batch's runs; ``history`` maps ``iteration``,
        ``loss`` (before the logged update) and ``p11`` … (after it).
    """
    names = entry_names(batch.dim)
    out = []
    for b in range(batch.n_runs):
        rows = batch.history[b, : batch.history_len[b]]
        hist = {"iteration": rows[:, 0].astype(np.int64), "loss": rows[:, 1].copy()}
        for k, name in enumerate(names):
            hist[name] = rows[:, 2 + k].copy()
        out.append(
            DMFRunResult(
                status=STATUS_NAMES[int(batch.status[b])],
                final_iteration=int(batch.iteration[b]),
                history=hist,
                final_product=_quiet_product(batch.layers[b, : batch.depth[b]]),
            )
        )
    return out


def history_products(history: Mapping[str, np.ndarray]) -> np.ndarray:
    """The logged product matrices of a result history.

    Parameters
    ----------
    history : mapping
        ``DMFRunResult.history`` (``p11``, ``p12``, … arrays of equal length).

    Returns
    -------
    numpy.ndarray, shape ``[rows, d, d]``
    """
    names = [k for k in history if k.startswith("p") and k[1:].isdigit()]
    dim = int(round(math.sqrt(len(names))))
    return np.stack([history[n] for n in entry_names(dim)], axis=-1).reshape(-1, dim, dim)
