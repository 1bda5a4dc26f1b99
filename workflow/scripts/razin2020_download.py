"""Adapter: download one of the authors' .pt data files and check its sha256.

params: url, sha256 (of the .pt file; required)  output: pt
"""

import sys

from _bootstrap import start

log = start(snakemake)  # noqa: F821

from implicit_reg.core.data_files import DataFileError, download_checked, write_atomic  # noqa: E402

smk = snakemake  # noqa: F821
log.info("downloading %s", smk.params.url)
try:
    payload = download_checked(smk.params.url, smk.params.sha256, 
                               "razin2020.data.source: shared and data_dir to a local copy of the exports")
except DataFileError as err:
    log.error("%s", err)
    print(f"error: {err}", file=sys.__stderr__)  # one line on the console, not only in the log
    sys.exit(1)
write_atomic(smk.output.pt, payload)
log.info("wrote %s (sha256 %s)", smk.output.pt, smk.params.sha256)
