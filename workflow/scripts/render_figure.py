"""Adapter: render a figure notebook (either paper) with papermill.

Every named input but the notebook is passed as the parameter <name>_path
(runs_path, trajectories_path, markers_path or summary_path, published_path);
then figure_pdf and figure_png; params.extra is a JSON object of further
parameters (the planner's notebook parameters of the figure).
"""

from _bootstrap import start

log = start(snakemake)  # noqa: F821

import json  # noqa: E402
from pathlib import Path  # noqa: E402

from implicit_reg.figures.notebooks import execute_notebook  # noqa: E402

smk = snakemake  # noqa: F821
parameters = {f"{k}_path": str(v) for k, v in smk.input.items() if k != "notebook"}
parameters.update(figure_pdf=smk.output.pdf, figure_png=smk.output.png)
parameters.update(json.loads(smk.params.extra))
# Snakemake deletes the outputs of a failed job; the log directory keeps the executed copy.
failed_copy = Path(smk.log[0]).with_suffix(".failed.ipynb")
execute_notebook(smk.input.notebook, smk.output.notebook, parameters, log, failed_copy=failed_copy)
