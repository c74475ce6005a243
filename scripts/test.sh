#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine: installs what it needs, then runs pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh dev
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
