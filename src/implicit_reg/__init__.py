"""Library behind the reproduction of Arora et al. (2019) and Razin & Cohen (2020).

Nothing in this package imports Snakemake: the workflow's scripts are thin
adapters around these functions.
"""

__all__ = ["__version__"]
__version__ = "0.1.0"
