"""`watchkeeper serve`: OTLP receiver, query API, UI, alerting, all in one process.

`create_app` and `build_services` are in `watchkeeper.server.app`. The names below are what the
commands in `watchkeeper.cli` use (keys, people, the audit log, logging); apart from `Role`
they load on first use, so `watchkeeper --help` never imports FastAPI or SQLAlchemy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from watchkeeper.server._roles import DEFAULT_KEY_ROLE, Role

if TYPE_CHECKING:
    from watchkeeper.server._audit import AuditLog
    from watchkeeper.server._audit_actor import cli_actor, local_origin
    from watchkeeper.server._auth import KeyRing
    from watchkeeper.server._http import header_deadline
    from watchkeeper.server._logging import configure_logging
    from watchkeeper.server._people_audit import people_recorder
    from watchkeeper.server._signin import SignIn

_LAZY = {
    "AuditLog": "watchkeeper.server._audit",
    "KeyRing": "watchkeeper.server._auth",
    "SignIn": "watchkeeper.server._signin",
    "cli_actor": "watchkeeper.server._audit_actor",
    "configure_logging": "watchkeeper.server._logging",
    "header_deadline": "watchkeeper.server._http",
    "local_origin": "watchkeeper.server._audit_actor",
    "people_recorder": "watchkeeper.server._people_audit",
}

__all__ = [
    "DEFAULT_KEY_ROLE",
    "AuditLog",
    "KeyRing",
    "Role",
    "SignIn",
    "cli_actor",
    "configure_logging",
    "header_deadline",
    "local_origin",
    "people_recorder",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'watchkeeper.server' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
