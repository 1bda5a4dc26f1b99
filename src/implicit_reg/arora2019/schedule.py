"""How a batch of deep factorizations is trained: optimizer, stopping, logging.

The optimizer is GroupRMSprop (the authors' optimizer for every error, nuclear-norm
and effective-rank figure, spec §1.6a) or plain gradient descent (the Figure 3
dynamics, §1.6b); iterations, the stopping rule and the logging interval follow
§1.7. :class:`~implicit_reg.arora2019.trainer.BatchTrainer` runs a batch with one
:class:`Schedule`.
"""

from __future__ import annotations

from dataclasses import dataclass



@dataclass(frozen=True)
class Schedule:
    """How long and how a batch is trained, and what is logged (spec §1.6–1.7).

    Parameters
    ----------
    optimizer : str
        ``grouprmsprop`` (one adaptive step size per run, spec §1.6a: :meth:`BatchTrainer._step_size <implicit_reg.arora2019.trainer.BatchTrainer._step_size>`) or ``gd`` (plain
        gradient descent with step size ``lr``).
    max_iters : int
        Iteration cap; a run still training there stops with status ``max_iters``.
    log_every : int
        Trajectory rows are logged at every iteration ``T`` with ``T mod log_every = 0``,
        computed before that iteration's update, and at the stopping iteration.
    train_loss_tol : float
        A run stops (converged) as soon as its train loss is ≤ this (1e-6 in the paper).
    rmsprop_alpha, rmsprop_eps : float
        GroupRMSprop's α and ε.
    n_singular_values : int
        How many top singular values of the product each trajectory row holds.
    log_alignment : bool
        Whether rows hold the singular-vector alignment statistics (Figure 3, spec §1.8).
    divergence_loss : float
        A finite loss above this counts as divergence.
    sync_every : int
        How often (iterations) stopped runs are removed from the batch.
    checkpoint_seconds : float
        Seconds between checkpoints (0 disables); does not change any number.
    """

    optimizer: str = "grouprmsprop"
    max_iters: int = 1_000_000
    log_every: int = 1000
    train_loss_tol: float = 1e-6
    rmsprop_alpha: float = 0.99
    rmsprop_eps: float = 1e-4
    n_singular_values: int = 10
    log_alignment: bool = False
    divergence_loss: float = 1e30
    sync_every: int = 100
    checkpoint_seconds: float = 300.0

    def __post_init__(self) -> None:
        if self.optimizer not in ("grouprmsprop", "gd"):
            raise ValueError(f"unknown optimizer {self.optimizer!r}")
        for name in ("max_iters", "log_every", "sync_every"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
