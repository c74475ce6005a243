"""What a benchmark's figures stand on: the versions that matter and how busy the machine is."""

from __future__ import annotations

import os
import platform
import time
from importlib import metadata

#: Packages whose version moves the ingest and query figures.
PACKAGES = (
    "duckdb", "pyarrow", "protobuf", "orjson", "zstandard", "uvicorn", "fastapi", "httpx",
)  # fmt: skip


def versions(packages: tuple[str, ...] = PACKAGES) -> str:
    """`name version` of Python and each installed package, on one line."""
    parts = [f"python {platform.python_version()}"]
    for name in packages:
        try:
            parts.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{name} -")
    return ", ".join(parts)


def load() -> str:
    """The load averages over the number of cores (above 1 per core: others share the CPU),
    and how fast one core runs now (`speed`)."""
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores, {speed()}"


def speed() -> str:
    """How fast one core runs now (`core_speed`), as the benchmarks print it."""
    return f"{core_speed():.1f}M loop steps/s on one core"


def core_speed(steps: int = 3_000_000) -> float:
    """Millions of steps of a plain Python loop one core runs a second, now. This machine
    (a VM on a shared host) has measured 1.8x apart between sessions at the same load, so
    figures from two sessions compare only beside this one."""
    started = time.perf_counter()
    total = 0
    for i in range(steps):
        total += i
    return steps / (time.perf_counter() - started) / 1e6
