#!/usr/bin/env bash
# The SDK installs alone (DESIGN: an app that instruments itself never pulls in the server):
# builds the wheel, installs it without extras into a fresh venv, checks that no server
# dependency came with it, and instruments a function against a server that is not there.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Built from a copy of the work tree (committed and new files), so no build/ is left here.
mkdir "$work/src"
git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$work/src" 2>/dev/null || true
"$PY" -m pip wheel -q --no-deps "$work/src" -w "$work/dist" 2> >(grep -v "^WARNING: Location" >&2)
"$PY" -m venv "$work/venv"
# With the versions setup.sh and CI pin (constraints.txt), as an app's lock file would.
"$work/venv/bin/python" -m pip install -q -c constraints.txt "$work"/dist/watchkeeper-*.whl \
  2> >(grep -v "^WARNING: Location" >&2)

cd "$work"  # import the installed wheel, not the source tree
"$work/venv/bin/python" - <<'PYEOF'
import importlib.util
import logging
import sys
import time

import watchkeeper

server_deps = ["fastapi", "starlette", "uvicorn", "duckdb", "pyarrow", "sqlalchemy", "zstandard"]
present = [m for m in server_deps if importlib.util.find_spec(m) is not None]
assert not present, f"installing the SDK alone brought server dependencies: {present}"
assert "site-packages" in (watchkeeper.__file__ or ""), watchkeeper.__file__

started = time.monotonic()
# Nothing listens on port 9: init must not raise, and neither may the instrumented call.
# (The exporter's retries against it are expected: their warnings are kept out of CI's log.)
logging.getLogger("opentelemetry").setLevel(logging.CRITICAL)
watchkeeper.init("wheel-check", endpoint="http://127.0.0.1:9", json_logs=False)


@watchkeeper.observe(kind="tool")
def add(a: int, b: int) -> int:
    return a + b


assert add(2, 3) == 5
watchkeeper.shutdown(2.0)
took = time.monotonic() - started
assert took < 15, f"init, one call and shutdown took {took:.1f} s against no server"
assert not any(m.startswith("watchkeeper.server") for m in sys.modules)
print(f"sdk wheel: installs alone, no server dependency, works without a server ({took:.1f} s)")
PYEOF

# The server's commands say which extra they need instead of a ModuleNotFoundError.
set +e
out=$("$work/venv/bin/watchkeeper" serve 2>&1)
status=$?
set -e
if [[ $status -ne 2 || "$out" != *"pip install 'watchkeeper[server]'"* || "$out" == *Traceback* ]]; then
  echo "watchkeeper serve without the server extra: exit $status, said: $out" >&2
  exit 1
fi
echo "sdk wheel: 'watchkeeper serve' names the extra it needs"
