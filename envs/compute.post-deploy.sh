#!/usr/bin/env bash
# Snakemake runs this once, in the freshly created conda environment (--sdm conda),
# from the workflow's working directory (the repository). It installs the project
# (implicit_reg) editable and without dependencies, as scripts/setup.sh does for .venv:
# the pins come from the env file next to this script. Not a pip entry of the env
# file: Snakemake copies that file to .snakemake/conda/, where a relative path such
# as `-e ..` would no longer point at the repository.
set -euo pipefail
[ -f pyproject.toml ] && [ -d src/implicit_reg ] || {
  echo "post-deploy: run from the repository root (found no pyproject.toml in $PWD)" >&2; exit 1; }
python -m pip install --quiet --no-deps --no-build-isolation -e . 2>/dev/null \
  || python -m pip install --quiet --no-deps -e .
