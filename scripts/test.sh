#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine: installs what it needs, then runs pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh dev
# Two pytest-xdist workers: most tests wait on a real server, a browser or a subprocess, so two
# sessions side by side took the suite from 44 to 28 min with coverage on a 2-core machine.
# Each worker starts its own PostgreSQL, exporters and Chromium (tests/_ports.py moves their
# ports apart). WATCHKEEPER_TEST_WORKERS=0 runs it in one process.
exec .venv/bin/python -m pytest -q -p no:cacheprovider -n "${WATCHKEEPER_TEST_WORKERS:-2}" "$@"
