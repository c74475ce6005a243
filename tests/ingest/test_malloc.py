"""The C allocator gives request-sized blocks back once they are freed (`tune_malloc`)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from watchkeeper.malloc import tune_malloc

# Bodies of 300 KiB, 200 alive at a time, with a small object that outlives each: what the
# server's request path does. Untuned, glibc served the bodies from its heap after the first
# was freed, and the small objects kept those pages: 64 MiB stayed after all were freed.
_PROBE = """
import collections, sys
from watchkeeper.malloc import tune_malloc

def anon():
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon"):
            return int(line.split()[1]) // 1024

assert tune_malloc()
base = anon()
held, small = collections.deque(), []
for i in range(2000):
    body = bytearray(300 * 1024)
    body[::4096] = b"x" * len(body[::4096])
    held.append(body)
    small.append(bytearray(100))
    if len(held) > 200:
        held.popleft()
peak = anon()
held.clear()
print(base, peak, anon())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc and /proc")
def test_freed_bodies_go_back_to_the_system() -> None:
    if not tune_malloc():
        pytest.skip("not glibc")
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    base, peak, after = map(int, out.stdout.split())
    assert peak - base > 50  # the bodies were resident
    assert after - base < 10, (base, peak, after)
