#!/usr/bin/env bash
# Idempotent environment setup for the reproduction pipeline.
#
#   scripts/setup.sh            # create/update .venv, install TeX Live if missing
#
# 1. Python: creates .venv with python3.11 (or python3 >= 3.11) if missing and
#    runs `pip install -r requirements-dev.txt` whenever the requirements files,
#    pyproject.toml (or the interpreter) changed since the last successful install,
#    then installs this package (implicit_reg, editable) with --no-deps: the pins
#    come from the requirements files, pyproject.toml declares the same ones.  torch
#    is pinned exactly (==2.13.0) in requirements.txt, which makes pip take the
#    local CPU wheel; never install it unpinned (that pulls a multi-GB CUDA build).
# 2. Debian packages: TeX Live (pdflatex + latexmk + lmodern + booktabs/tikz...)
#    and poppler-utils (pdfinfo), installed with apt-get --no-install-recommends
#    only when a check fails.  Uses sudo when not running as root.
#
# A second run with everything present is a fast no-op (well under a second).
# Environment knobs: SETUP_SKIP_APT=1 skips the Debian part, SETUP_FORCE_PIP=1
# re-runs pip even when the stamp matches.
set -euo pipefail
if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
  # The header above is the usage.
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
  exit 0
fi

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

VENV="$REPO/.venv"
STAMP="$VENV/.requirements.sha256"
REQ_FILES=(requirements.txt requirements-dev.txt pyproject.toml)
APT_PACKAGES=(
  texlive-latex-base texlive-latex-recommended texlive-latex-extra
  texlive-pictures texlive-fonts-recommended latexmk lmodern poppler-utils
)
# Files that must be found by kpsewhich (one per Debian package we rely on).
TEX_FILES=(booktabs.sty tikz.sty lmodern.sty subcaption.sty cleveref.sty t1lmr.fd)

say() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || die "not root and sudo is missing; cannot install Debian packages"
  SUDO=(sudo)
fi
APT_UPDATED=0
apt_install() {  # apt_install pkg...  (runs `apt-get update` at most once)
  local log; log="$(mktemp -t setup-apt.XXXXXX.log)"
  export DEBIAN_FRONTEND=noninteractive
  if [ "$APT_UPDATED" -eq 0 ]; then
    say "apt-get update"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >"$log" 2>&1 \
      || { tail -n 30 "$log" >&2; die "apt-get update failed (full log: $log)"; }
    APT_UPDATED=1
  fi
  say "apt-get install --no-install-recommends $*"
  if ! "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        --no-install-recommends "$@" >>"$log" 2>&1; then
    tail -n 40 "$log" >&2; die "apt-get install failed (full log: $log)"
  fi
  rm -f "$log"
}

# --------------------------------------------------------------------------
# 1. Python virtual environment
# --------------------------------------------------------------------------
find_python() {
  local c
  for c in python3.11 python3; do
    if command -v "$c" >/dev/null 2>&1 &&
       "$c" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      echo "$c"; return 0
    fi
  done
  return 1
}

t0=$SECONDS
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
  PY="$(find_python)" || die "python >= 3.11 not found (install python3.11)"
  say "creating .venv with $PY ($("$PY" -c 'import platform; print(platform.python_version())'))"
  rm -rf "$VENV"
  if ! "$PY" -m venv "$VENV" 2>/dev/null; then
    # Debian's python needs the separate venv/ensurepip package.
    rm -rf "$VENV"
    apt_install python3.11-venv
    "$PY" -m venv "$VENV" || die "could not create .venv"
  fi
fi

want_stamp="$( { "$VENV/bin/python" -c 'import sys; print(sys.version)'; cat "${REQ_FILES[@]}"; } | sha256sum | cut -c1-64)"
have_stamp="$(cat "$STAMP" 2>/dev/null || true)"
if [ "$want_stamp" != "$have_stamp" ] || [ "${SETUP_FORCE_PIP:-0}" = 1 ]; then
  say "pip install -r requirements-dev.txt (torch==2.13.0 CPU wheel from local disk; first run takes a few minutes)"
  rm -f "$STAMP"
  # (the grep drops the machine pip config's "Location ... is ignored" noise;
  #  pipefail keeps pip's exit status)
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt 2>&1 \
    | { grep -v "^WARNING: Location '.*' is ignored" || true; }
  say "pip install --no-deps -e . (the implicit_reg package)"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -e . 2>&1 \
    | { grep -v "^WARNING: Location '.*' is ignored" || true; }
  "$VENV/bin/python" - <<'PY'
import torch, snakemake, pandas, yaml, pytest, implicit_reg  # noqa: F401  (smoke import)
if "+cu" in torch.__version__:
    raise SystemExit(f"[setup] ERROR: a CUDA torch build ({torch.__version__}) was installed; expected the CPU wheel")
print(f"[setup] python ok: torch {torch.__version__}, snakemake {snakemake.__version__}, pandas {pandas.__version__}")
PY
  echo "$want_stamp" >"$STAMP"
  say "python environment ready ($((SECONDS - t0)) s)"
else
  say "python environment up to date (.venv, requirements unchanged)"
fi
# Nothing edits sys.path: the workflow's scripts, the notebooks' kernels and the tests import
# implicit_reg as installed, so the install must be this checkout's (an editable install of
# another checkout would shadow it).
installed="$(env -u PYTHONPATH "$VENV/bin/python" -c \
  'import implicit_reg, os; print(os.path.dirname(os.path.dirname(os.path.realpath(implicit_reg.__file__))))' \
  2>/dev/null || true)"
if [ "$installed" != "$(realpath "$REPO/src")" ]; then
  say "pip install --no-deps -e . (implicit_reg was ${installed:-not installed}, not this checkout's src)"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -e . 2>&1 \
    | { grep -v "^WARNING: Location '.*' is ignored" || true; }
fi

# --------------------------------------------------------------------------
# 2. Debian packages: TeX Live, latexmk, poppler-utils
# --------------------------------------------------------------------------
tex_ok() {
  local c f
  for c in latexmk pdflatex pdfinfo kpsewhich; do
    command -v "$c" >/dev/null 2>&1 || { echo "missing command: $c"; return 1; }
  done
  for f in "${TEX_FILES[@]}"; do
    kpsewhich "$f" >/dev/null 2>&1 || { echo "missing TeX file: $f"; return 1; }
  done
  return 0
}

if [ "${SETUP_SKIP_APT:-0}" = 1 ]; then
  say "SETUP_SKIP_APT=1: not checking Debian packages"
elif why="$(tex_ok)"; then
  say "TeX Live + latexmk + poppler-utils present"
else
  say "$why"
  command -v apt-get >/dev/null 2>&1 || die "apt-get not available; install TeX Live + latexmk + poppler-utils manually: ${APT_PACKAGES[*]}"
  missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -gt 0 ] || missing=("${APT_PACKAGES[@]}")
  t1=$SECONDS
  say "installing ${#missing[@]} Debian package(s); TeX Live takes ~2 min"
  apt_install "${missing[@]}"
  hash -r
  why="$(tex_ok)" || die "still incomplete after apt-get install: $why"
  say "Debian packages installed ($((SECONDS - t1)) s)"
fi
say "done ($((SECONDS - t0)) s)"
