"""What every figure notebook starts with: its imports, the figure style, pandas display.

A notebook's first code cell is one explicit import of the names it uses, e.g.::

    from implicit_reg.figures.notebook_prelude import Image, P, PM, Path, display, np, pd, plt

Importing this module applies the shared figure style (:func:`implicit_reg.figures.plotting.apply_style`,
the rcParams every figure is drawn with) and wide pandas display options for the
tables the notebooks print. The package is imported as installed (``scripts/setup.sh``
installs it editable), so notebooks need no import-path code.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Image, display
from matplotlib.collections import LineCollection
from matplotlib.lines import Line2D

from implicit_reg.figures import plotting as P
from implicit_reg.figures import markers as PM

__all__ = ["Image", "Line2D", "LineCollection", "P", "PM", "Path", "display", "mpl", "np", "pd", "plt"]

#: pandas display options of the notebooks' printed tables
PANDAS_DISPLAY = {"display.width": 250, "display.max_columns": 50}


def apply_notebook_style() -> None:
    """Set the figure style (rcParams) and the pandas display options of the figure notebooks."""
    P.apply_style()
    for option, value in PANDAS_DISPLAY.items():
        pd.set_option(option, value)


apply_notebook_style()
