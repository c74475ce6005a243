#!/usr/bin/env bash
# Sets everything up and starts Watchkeeper on the embedded store with the demo workload.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/watchkeeper demo "$@"
