"""Adapter: convert an authors' .pt data file to the .json/.npz export the pipeline reads.

input: pt  output: export (.json for a 2x2 problem, .npz for a tensor data set)
The exports are byte-identical to the shared copies (checked by sha256 later).
"""

from _bootstrap import start

log = start(snakemake)  # noqa: F821

import os  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from implicit_reg.razin_tables import export_from_pt_object  # noqa: E402

smk = snakemake  # noqa: F821
obj = torch.load(smk.input.pt, weights_only=True)
suffix, data = export_from_pt_object(obj)
out = Path(smk.output.export)
if out.suffix != suffix:
    raise ValueError(f"{smk.input.pt} holds a {suffix} data set, but {out} was requested")
tmp = out.with_name(out.name + ".tmp")
tmp.write_bytes(data)
os.replace(tmp, out)
log.info("converted %s -> %s", smk.input.pt, out)
