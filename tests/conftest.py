"""Put the repository's ``src/`` directory on ``sys.path`` for the tests."""

from __future__ import annotations

import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))

# One thread per process, as in the pipeline's jobs: with another process on
# the other core, torch with two threads is several times slower.
try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover
    pass
