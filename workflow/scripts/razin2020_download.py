"""Adapter: download one of the authors' .pt data files and check its sha256.

params: url, sha256 (of the .pt file; required)  output: pt
"""

from _bootstrap import start

log = start(snakemake)  # noqa: F821

import os  # noqa: E402
import urllib.request  # noqa: E402
from pathlib import Path  # noqa: E402

from implicit_reg.core.hashing import sha256_file  # noqa: E402

smk = snakemake  # noqa: F821
url, expected = smk.params.url, smk.params.sha256
if not expected:
    raise ValueError(f"no pt_sha256 configured for {smk.output.pt}: refusing an unchecked download")
out = Path(smk.output.pt)
tmp = out.with_name(out.name + ".part")
log.info("downloading %s", url)
with urllib.request.urlopen(url, timeout=60) as resp, open(tmp, "wb") as fh:
    fh.write(resp.read())
got = sha256_file(tmp)
if got != expected:
    tmp.unlink(missing_ok=True)
    raise ValueError(f"{url}: sha256 {got} does not match the configured {expected}")
os.replace(tmp, out)
log.info("wrote %s (sha256 %s)", out, got)
