"""Adapter: convert an authors' .pt data file to the .json/.npz export the pipeline reads.

input: pt (checked against its configured pt_sha256)  output: export (.json for a 2x2 problem, .npz for a tensor data set)
The exports are byte-identical to the shared copies (checked by sha256 later).
"""

from _bootstrap import start

log = start(snakemake)  # noqa: F821

import os  # noqa: E402
from pathlib import Path  # noqa: E402

from implicit_reg.core.data_files import DataFileError, load_torch_file, verify_sha256  # noqa: E402
from implicit_reg.razin2020.data_exports import export_from_pt_object  # noqa: E402

smk = snakemake  # noqa: F821
key = f"razin2020.data.datasets.{smk.wildcards.name}"
# A .pt file already in resources/ is checked again: it may be damaged or another version.
verify_sha256(smk.input.pt, smk.params.sha256, f"{key}.pt_sha256")
obj = load_torch_file(smk.input.pt, key)
try:
    suffix, data = export_from_pt_object(obj)
except (KeyError, TypeError, ValueError, AttributeError) as err:
    raise DataFileError(f"{smk.input.pt}: not one of the authors' data sets ({type(err).__name__}: {err}); "
                        f"it is the data set configured at {key}") from None
out = Path(smk.output.export)
if out.suffix != suffix:
    raise ValueError(f"{smk.input.pt} holds a {suffix} data set, but {out} was requested")
tmp = out.with_name(out.name + ".tmp")
tmp.write_bytes(data)
os.replace(tmp, out)
log.info("converted %s -> %s", smk.input.pt, out)
