"""Config overrides for planning the paper preset on a machine without ``../shared``.

The paper preset reads the MovieLens file and the Razin & Cohen data sets from the
team's shared copy. A clean clone elsewhere (CI) has no such copy; the pipeline then
refuses the config up front (``check_local_data``), so the planning tests switch to
the download sources, which plan the same figures.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MOVIELENS = ROOT.parent / "shared" / "data" / "ml-100k" / "u.data"
RAZIN2020_DATA = ROOT.parent / "shared" / "razin2020_data"


def razin2020_data_present() -> bool:
    return RAZIN2020_DATA.is_dir()


def paper_data_overrides() -> list[str]:
    """``--config`` arguments that replace missing shared data by the download rules."""
    values = []
    if not MOVIELENS.is_file():
        values.append('data={"movielens": {"path": null, "split": "seeded_permutation"}}')
    if not razin2020_data_present():
        values.append('razin2020={"data": {"source": "download"}}')
    return ["--config", *values] if values else []
