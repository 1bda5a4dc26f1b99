"""Adapter: execute a figure notebook (jupytext percent file) with papermill."""

from _bootstrap import start

log = start(snakemake)  # noqa: F821

import json  # noqa: E402
from pathlib import Path  # noqa: E402

from implicit_reg.notebooks import execute_notebook  # noqa: E402

smk = snakemake  # noqa: F821
parameters = {
    "runs_path": smk.input.runs,
    "trajectories_path": smk.input.trajectories,
    "published_path": smk.input.published,
    "figure_pdf": smk.output.pdf,
    "figure_png": smk.output.png,
}
parameters.update(json.loads(smk.params.extra))
# Snakemake deletes the outputs of a failed job; the log directory keeps the executed copy.
failed_copy = Path(smk.log[0]).with_suffix(".failed.ipynb")
execute_notebook(smk.input.notebook, smk.output.notebook, parameters, log, failed_copy=failed_copy)
