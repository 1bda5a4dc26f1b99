"""Shared test setup. ``implicit_reg`` is imported as installed (``scripts/setup.sh``
installs it editable; pyproject's pytest ``pythonpath`` puts this checkout's ``src``
first, so a worktree tests its own sources)."""

from __future__ import annotations

# One thread per process, as in the pipeline's jobs: with another process on
# the other core, torch with two threads is several times slower.
try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover
    pass
