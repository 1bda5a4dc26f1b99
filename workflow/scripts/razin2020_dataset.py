"""Adapter: provide one data set as results/razin2020/data/<name>.<json|npz>.

Sources (params.dataset["source"]):
  shared / download: copy the export after checking its configured sha256;
  generated: a tensor instance drawn with the recorded seed
             (tensor_completion.generate_tensor_data), or the 2x2 problem built
             from its observed values (b12, b21, b22).
"""

from _bootstrap import start

log = start(snakemake)  # noqa: F821

import os  # noqa: E402
from pathlib import Path  # noqa: E402

from implicit_reg.core.data_files import verify_sha256  # noqa: E402
from implicit_reg.razin2020 import data_exports as dx  # noqa: E402
from implicit_reg.razin2020 import tensor_data as td  # noqa: E402

smk = snakemake  # noqa: F821
ds = dict(smk.params.dataset)
out = Path(smk.output.export)
tmp = out.with_name(out.name + ".tmp")
if ds["source"] == "generated":
    if ds["kind"] == "matrix":
        tmp.write_text(dx.generated_matrix_export_text(*ds["observed"]))
    else:
        data = td.generate_tensor_data(ds["order"], ds["rank"], int(ds["seed"]), ds.get("mode_size", 8))
        tmp.write_bytes(dx.tensor_export_bytes(data.target, data.permutation, data.target_cp_rank))
    log.info("generated %s (%s, seed %d)", ds["name"], ds["kind"], ds["seed"])
else:
    source = Path(smk.input.source)
    got = verify_sha256(source, ds.get("sha256"), f"razin2020.data.datasets.{ds['name']}.sha256")
    tmp.write_bytes(source.read_bytes())
    log.info("%s: sha256 %s ok", source, got)
os.replace(tmp, out)
