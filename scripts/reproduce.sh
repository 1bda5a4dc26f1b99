#!/usr/bin/env bash
# Reproduce everything (experiments, figures, report):
#   scripts/reproduce.sh                              # paper scale (config/config.yaml)
#   scripts/reproduce.sh --configfile config/quick.yaml
#   scripts/reproduce.sh --from-archive archive/paper # restore archived results, compute the rest
#   scripts/reproduce.sh --from-archive URL#sha256=HEX   (a .tar.gz, e.g. a release asset)
#   scripts/reproduce.sh --recompute arora2019_fig4   # recompute named figures (or: all)
#   scripts/reproduce.sh --no-archive                 # ignore archive/<preset>
#   scripts/reproduce.sh --restored-only              # only the figures the archive holds whole; compute nothing
# By default the archive archive/<preset>/ is used when it exists. Other arguments go
# to snakemake.  Sets up the environment first.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

usage() {
  cat <<'USAGE'
Usage: scripts/reproduce.sh [options] [snakemake arguments...]

Sets up .venv and TeX Live (scripts/setup.sh), then runs `snakemake --cores all`
to build paper/build/report.pdf (paper scale by default).

Options:
  --configfile FILE          another preset, e.g. config/quick.yaml or config/test.yaml
  --from-archive DIR         restore archived results from DIR, compute the rest
  --from-archive URL#sha256=HEX
                             the same from a published .tar.gz, checked by sha256
  --recompute FIGS           recompute the named figures (comma-separated, or: all)
  --no-archive               ignore archive/<preset>/
  --restored-only            build only the figures the archive holds whole; compute nothing
  -n, --dry-run              plan only: no set-up (nothing is installed), no job runs
  -h, --help                 print this help and exit (no set-up, no side effects)
Any other argument goes to snakemake.
USAGE
}
dry_run=0
for arg in "$@"; do
  case "$arg" in
    -h|--help) usage; exit 0 ;;
    # -n alone or among combined short flags (-np), as snakemake takes it
    --dry-run|--dryrun|-n*|-[!-]*n*) dry_run=1 ;;
  esac
done
cd "$REPO"

if [ "$dry_run" = 1 ]; then
  # A dry run only plans: it must not install anything (pip, apt), so it needs the environment.
  [ -x .venv/bin/snakemake ] || { echo "[reproduce] dry run: .venv is missing; run scripts/setup.sh first (a dry run installs nothing)" >&2; exit 2; }
  echo "[reproduce] dry run: skipping scripts/setup.sh"
else
  bash scripts/setup.sh
fi

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

# Snakemake reports a broken config file without naming the file or the line; this does.
.venv/bin/python -m implicit_reg.pipeline.config "$@"

# Archive options become config values (archive.path / archive.url / recompute / restored_only).
args=()
config=()
while [ $# -gt 0 ]; do
  case "$1" in
    --from-archive)
      [ $# -ge 2 ] || { echo "[reproduce] --from-archive needs a directory or URL#sha256=HEX" >&2; exit 2; }
      if [[ "$2" == *://* ]]; then
        url="${2%%#sha256=*}"; sha="${2##*#sha256=}"
        [ "$sha" != "$2" ] || { echo "[reproduce] an archive URL needs #sha256=HEX" >&2; exit 2; }
        config+=("archive={url: '$url', sha256: '$sha'}")
      else
        config+=("archive={path: '$2'}")
      fi
      shift 2 ;;
    --no-archive) config+=("use_archive=False"); shift ;;
    --restored-only) config+=("restored_only=True"); shift ;;
    --recompute)
      [ $# -ge 2 ] || { echo "[reproduce] --recompute needs figure names (comma-separated) or all" >&2; exit 2; }
      config+=("recompute=[${2}]"); shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
if [ ${#config[@]} -gt 0 ]; then args+=(--config "${config[@]}"); fi

echo "[reproduce] .venv/bin/snakemake --cores all ${args[*]}"
start=$SECONDS
.venv/bin/snakemake --cores all "${args[@]}"
echo "[reproduce] snakemake finished in $((SECONDS - start)) s"

report="$REPO/paper/build/report.pdf"
if [ -f "$report" ]; then
  echo "[reproduce] report: $report"
else
  echo "[reproduce] no report at $report (dry run, or targets other than the report)"
fi
