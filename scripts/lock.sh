#!/usr/bin/env bash
# Rewrites constraints.txt from what .venv holds now: run it after changing a dependency in
# pyproject.toml (scripts/setup.sh dev first), then commit both. setup.sh and CI install with
# these versions, so a new release of a dependency cannot change the product unseen
# (a DuckDB release once moved the ingest benchmark by half).
set -euo pipefail
cd "$(dirname "$0")/.."
{
  echo "# The versions setup.sh and CI install (pip -c). Regenerate: scripts/lock.sh"
  .venv/bin/python -m pip freeze --exclude-editable --disable-pip-version-check \
    | grep -v -i -E '^(py-spy|pip|setuptools|wheel)==' | LC_ALL=C sort -f
} > constraints.txt
echo "constraints.txt: $(grep -c '==' constraints.txt) pinned versions"
