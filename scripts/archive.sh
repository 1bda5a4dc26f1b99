#!/usr/bin/env bash
# Add the finished jobs under results/ to a results archive (default archive/paper):
#   scripts/archive.sh                  # -> archive/paper
#   scripts/archive.sh archive/quick config/quick.yaml   # another preset's archive
# Each job becomes one compressed parquet entry keyed by its results' provenance keys;
# entries already in the archive are skipped. Commit the archive afterwards:
#   git add archive/paper && git commit -m "archive: ..."
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
ARCHIVE="${1:-archive/paper}"
shift || true
# Only the jobs that the preset's config needs: results/ may hold other presets' jobs.
# Further arguments are config files merged over config/config.yaml (e.g. config/quick.yaml).
.venv/bin/python -m implicit_reg.pipeline.archive_command add "$ARCHIVE" \
  --results results --configfile config/config.yaml "$@"
.venv/bin/python -m implicit_reg.pipeline.archive_command list "$ARCHIVE" | tail -n 1
