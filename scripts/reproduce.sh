#!/usr/bin/env bash
# Reproduce everything (experiments, figures, report):
#   scripts/reproduce.sh                              # paper scale (config/config.yaml)
#   scripts/reproduce.sh --configfile config/quick.yaml
# Extra arguments go to snakemake.  Sets up the environment first.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

bash scripts/setup.sh

# Reproducibility: one BLAS/OpenMP thread per job (Snakemake schedules the
# cores), fixed hash seed, and PDF/PNG timestamps taken from the commit time.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
export PYTHONHASHSEED=0
export FORCE_SOURCE_DATE=1
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
  SOURCE_DATE_EPOCH="$(git log -1 --format=%ct 2>/dev/null || true)"
  export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-0}"
fi
echo "[reproduce] SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH OMP_NUM_THREADS=$OMP_NUM_THREADS"
echo "[reproduce] .venv/bin/snakemake --cores all $*"

# Snakemake reports a broken config file without naming the file or the line; this does.
PYTHONPATH=src .venv/bin/python -m implicit_reg.config "$@"
start=$SECONDS
.venv/bin/snakemake --cores all "$@"
echo "[reproduce] snakemake finished in $((SECONDS - start)) s"

report="$REPO/paper/build/report.pdf"
if [ -f "$report" ]; then
  echo "[reproduce] report: $report"
else
  echo "[reproduce] no report at $report (dry run, or targets other than the report)"
fi
