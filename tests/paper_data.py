"""Config overrides for planning the paper preset on a machine without ``../shared``.

The paper preset reads the MovieLens file and the Razin & Cohen data sets from the
team's shared copy. A clean clone elsewhere (CI) has no such copy; the pipeline then
refuses the config up front (``check_local_data``), so the planning tests switch to
the download sources, which plan the same figures.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
MOVIELENS = ROOT.parent / "shared" / "data" / "ml-100k" / "u.data"
RAZIN2020_DATA = ROOT.parent / "shared" / "razin2020_data"


def razin2020_data_present() -> bool:
    return RAZIN2020_DATA.is_dir()


def paper_data_overrides() -> list[str]:
    """Snakemake arguments that replace missing shared data by the download rules.

    A config file rather than ``--config`` (which reads ``null`` as a string); it is
    merged on top of the Snakefile's config, and a test's own ``--config`` still wins.
    """
    values: dict = {}
    if not MOVIELENS.is_file():
        values["data"] = {"movielens": {"path": None, "split": "seeded_permutation"}}
    if not razin2020_data_present():
        values["razin2020"] = {"data": {"source": "download"}}
    if not values:
        return []
    path = Path(tempfile.gettempdir()) / "implicit-reg-paper-data-overrides.yaml"
    path.write_text(yaml.safe_dump(values))
    return ["--configfile", str(path)]
