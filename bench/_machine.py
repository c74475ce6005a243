"""What a benchmark's figures stand on: the versions that matter and how busy the machine is."""

from __future__ import annotations

import os
import platform
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
    """The load averages over the number of cores (above 1 per core: others share the CPU)."""
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"
