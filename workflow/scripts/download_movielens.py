"""Adapter: download the official ML-100K archive, check its sha256, extract u.data."""

from _bootstrap import start

log = start(snakemake)  # noqa: F821

import hashlib  # noqa: E402
import io  # noqa: E402
import os  # noqa: E402
import urllib.request  # noqa: E402
import zipfile  # noqa: E402

url, expected = snakemake.params.url, snakemake.params.sha256  # noqa: F821
log.info("downloading %s", url)
with urllib.request.urlopen(url, timeout=120) as response:
    payload = response.read()
digest = hashlib.sha256(payload).hexdigest()
if digest != expected:
    raise ValueError(f"{url}: sha256 {digest} differs from the expected {expected} (data.movielens.archive_sha256)")
with zipfile.ZipFile(io.BytesIO(payload)) as archive:
    data = archive.read("ml-100k/u.data")
out = snakemake.output.ratings  # noqa: F821
tmp = out + ".tmp"
with open(tmp, "wb") as f:
    f.write(data)
os.replace(tmp, out)
log.info("wrote %s (%d bytes)", out, len(data))
