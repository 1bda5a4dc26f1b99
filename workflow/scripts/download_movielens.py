"""Adapter: fetch MovieLens-100K (checked by sha256) and write u.data.

rule movielens_authors: the authors' ml-100k.pkl, read without running its code and
converted to u.data in their order (checked against file_sha256);
rule movielens_grouplens: the official archive's ml-100k/u.data (file_sha256 None).
params: url, sha256 (of the download), file_sha256  output: ratings
"""

import sys

from _bootstrap import start

log = start(snakemake)  # noqa: F821

import io  # noqa: E402
import zipfile  # noqa: E402

from implicit_reg.arora2019.movielens_source import authors_udata  # noqa: E402
from implicit_reg.core.data_files import DataFileError, download_checked, write_atomic  # noqa: E402

smk = snakemake  # noqa: F821
url = smk.params.url
log.info("downloading %s", url)
try:
    payload = download_checked(url, smk.params.sha256,
                               "data.movielens.path to a local u.data in the authors' order")
except DataFileError as err:
    log.error("%s", err)
    print(f"error: {err}", file=sys.__stderr__)  # one line on the console, not only in the log
    sys.exit(1)
if smk.params.file_sha256:
    data = authors_udata(payload, smk.params.file_sha256)
    log.info("converted the authors' pickle to u.data in their order (sha256 %s)", smk.params.file_sha256)
else:
    with zipfile.ZipFile(io.BytesIO(payload)) as archive:
        data = archive.read("ml-100k/u.data")
write_atomic(smk.output.ratings, data)
log.info("wrote %s (%d bytes)", smk.output.ratings, len(data))
