#!/usr/bin/env bash
# Installs what Watchkeeper needs on a fresh Debian machine with Python 3.11:
#   scripts/setup.sh          the server, the SDK and the demo in .venv
#   scripts/setup.sh dev      plus test tools, Chromium, Prometheus, Alertmanager, PostgreSQL,
#                             Redis, the node/postgres/redis exporters and eslint
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-run}

if [ "$mode" = dev ]; then
  need=()
  command -v chromium >/dev/null || need+=(chromium)
  command -v prometheus >/dev/null || need+=(prometheus)
  command -v prometheus-alertmanager >/dev/null || need+=(prometheus-alertmanager)
  command -v npm >/dev/null || need+=(nodejs npm)  # eslint for the UI's JavaScript
  # The metadata tests start their own PostgreSQL server (initdb into a temp dir)
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
  # The metrics tests scrape real exporters (and a Redis they start) on loopback ports
  for pkg in prometheus-node-exporter prometheus-postgres-exporter prometheus-redis-exporter \
             redis-server; do
    command -v "$pkg" >/dev/null || need+=("$pkg")
  done
  if [ ${#need[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
# constraints.txt pins every version (scripts/lock.sh writes it): what is measured is installed.
if [ "$mode" = dev ]; then
  .venv/bin/python -m pip install -q -c constraints.txt -e '.[dev]'
  # package-lock.json pins the UI's lint tools (eslint), as constraints.txt pins Python's
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
else
  .venv/bin/python -m pip install -q -c constraints.txt -e '.[demo]'
fi
