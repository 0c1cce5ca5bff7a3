#!/usr/bin/env bash
# Run inside the activated conda environment (Snakemake --use-conda does this automatically).
# RecBole 1.2.1's setup.py pins conflict with today's stack (ciess/compat.py, item 5), so it is
# installed without them; its real dependencies are in environment.yml.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
pip install --no-deps -r "$here/requirements/recbole.txt"
if [ -f "$here/pyproject.toml" ]; then pip install --no-deps -e "$here"; fi
