"""Structured JSON logs for the server, in the same format the SDK gives apps."""

from __future__ import annotations

import logging

from watchkeeper.sdk._logs import install_json_logging


def configure_logging(level: str = "info") -> None:
    """One JSON object per line on stderr, uvicorn's loggers included."""
    install_json_logging("watchkeeper-server", level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
