"""Structured JSON logs for the server, in the same format the SDK gives apps."""

from __future__ import annotations

import logging

from watchkeeper.jsonlog import install_json_logging
from watchkeeper.vault import Redactor, redact_handlers

#: Libraries that log every request's full URL at INFO: a webhook's URL or a bot token
#: would be in it. Their warnings and errors still show (scrubbed).
_URL_LOGGERS = ("httpx", "httpcore")


def configure_logging(level: str = "info", redactor: Redactor | None = None) -> None:
    """One JSON object per line on stderr, uvicorn's loggers included; every line scrubbed
    of the secrets `redactor` knows (it learns the channels' when alerting is built)."""
    install_json_logging("watchkeeper-server", level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    for name in _URL_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    if redactor is not None:
        redact_handlers(logging.getLogger(), redactor)
