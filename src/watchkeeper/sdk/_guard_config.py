"""Operators' overrides of guard settings, from the environment or a config file, read at
`init()`: a timeout is tightened without a deploy.

    WATCHKEEPER_GUARD__BILLING_AGENT_ANSWER__DEADLINE=6
    WATCHKEEPER_GUARD__BILLING_AGENT_ANSWER__RETRIES=1
    WATCHKEEPER_GUARD__BILLING_AGENT_ANSWER__BACKOFF=0.1
    WATCHKEEPER_GUARD__BILLING_AGENT_ANSWER__BREAKER__FAILURE_THRESHOLD=3
    WATCHKEEPER_GUARD__BILLING_AGENT_ANSWER__BREAKER__RESET_TIMEOUT=10
    WATCHKEEPER_GUARD__BILLING_AGENT_ANSWER__BREAKER__HALF_OPEN_MAX_CALLS=1
    WATCHKEEPER_GUARD_CONFIG=/etc/app/guards.yaml      # or init(guard_config=path or dict)

A guard's name in a variable is upper-cased, with every run of characters other than letters
and digits made one `_` and none at either end ("billing-agent.answer" and "Billing Agent
Answer" are both BILLING_AGENT_ANSWER; names that differ only there share their overrides).
The file (JSON, or YAML with PyYAML installed) reads

    guards:
      billing-agent.answer: {deadline: 6, retries: 1, breaker: {failure_threshold: 3}}

its names matched the same way. A variable wins over the file, the file over the code. A value
that cannot be used is a warning naming it and what to give, never an exception into the app
(under tests, `raise_errors`, it raises `ConfigError`); the guard keeps its code's setting.

The duration histogram takes a guard's deadline as a bucket bound when its series is made, at
the guard's first call on a metrics registry: an `init()` that changes the deadline later on
the same registry keeps the earlier bound (a restart, or another registry, takes the new one).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from watchkeeper.errors import ConfigError
from watchkeeper.sdk._safe import REPORTER

_log = logging.getLogger("watchkeeper.sdk.guard")

ENV_PREFIX = "WATCHKEEPER_GUARD__"
ENV_FILE = "WATCHKEEPER_GUARD_CONFIG"
MAX_DEADLINE_S = 10.0  # a guard answers, or falls back, within a request's time

#: Overrides by normalized guard name, then setting ("deadline", "breaker.reset_timeout").
Overrides = dict[str, dict[str, float]]


def _setting(
    integer: bool, valid: Callable[[float], bool], wants: str
) -> tuple[bool, Callable[[float], bool], str]:
    return integer, valid, wants


#: Each setting: whether it is an integer, its range, and what to give (for the warning).
SETTINGS: dict[str, tuple[bool, Callable[[float], bool], str]] = {
    "deadline": _setting(False, lambda v: 0 < v < MAX_DEADLINE_S, "seconds > 0 and < 10"),
    "retries": _setting(True, lambda v: v >= 0, "a whole number >= 0"),
    "backoff": _setting(False, lambda v: v >= 0, "seconds >= 0"),
    "breaker.failure_threshold": _setting(True, lambda v: v >= 1, "a whole number >= 1"),
    "breaker.reset_timeout": _setting(False, lambda v: v > 0, "seconds > 0"),
    "breaker.half_open_max_calls": _setting(True, lambda v: v >= 1, "a whole number >= 1"),
}

_NOT_ALNUM = re.compile(r"[^A-Za-z0-9]+")


def normalize(name: str) -> str:
    """A guard name as environment variables spell it: "billing-agent.answer" →
    "BILLING_AGENT_ANSWER"."""
    return _NOT_ALNUM.sub("_", name).strip("_").upper()


def parse_value(setting: str, raw: Any) -> float | None:
    """`raw` as a value of `setting`, or None when it is not one."""
    integer, valid, _ = SETTINGS[setting]
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    if not math.isfinite(value) or not valid(value):
        return None
    if integer:
        return int(value) if value.is_integer() else None
    return value


def _put(
    table: Overrides, name: str, setting: str, raw: Any, where: str, problems: list[str]
) -> None:
    """Store one override, or note why it cannot be used."""
    if setting not in SETTINGS:
        problems.append(
            f"{where}: unknown guard setting {setting!r}; use one of {', '.join(SETTINGS)}"
        )
        return
    value = parse_value(setting, raw)
    if value is None:
        problems.append(f"{where}={raw!r} ignored: give {SETTINGS[setting][2]}")
        return
    table.setdefault(normalize(name), {})[setting] = value


def from_env(env: Mapping[str, str], table: Overrides, problems: list[str]) -> None:
    """Add the `WATCHKEEPER_GUARD__<NAME>__<SETTING>` variables to `table`."""
    for key, raw in env.items():
        if not key.upper().startswith(ENV_PREFIX):
            continue
        name, _, rest = key[len(ENV_PREFIX) :].partition("__")
        if not name or not rest:
            problems.append(f"{key}: write WATCHKEEPER_GUARD__<NAME>__<SETTING>, e.g. __DEADLINE")
            continue
        _put(table, name, rest.lower().replace("__", "."), raw.strip(), key, problems)


def from_mapping(doc: Any, where: str, table: Overrides, problems: list[str]) -> None:
    """Add `{"guards": {name: {setting: value, "breaker": {...}}}}` to `table`."""
    guards = doc.get("guards") if isinstance(doc, Mapping) else None
    if not isinstance(guards, Mapping):
        problems.append(f"{where}: expected a mapping with a 'guards' key (name -> settings)")
        return
    for name, settings in guards.items():
        if not isinstance(settings, Mapping):
            problems.append(f"{where}: guards.{name} must be a mapping of settings")
            continue
        for key, raw in _flatten(settings):
            _put(table, str(name), key, raw, f"{where}: guards.{name}.{key}", problems)


def _flatten(settings: Mapping[Any, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in settings.items():
        path = f"{prefix}{str(key).lower()}"
        if isinstance(value, Mapping):
            out.extend(_flatten(value, path + "."))
        else:
            out.append((path, value))
    return out


def read_file(path: Path) -> Any:
    """A config file's document: JSON, or YAML by its extension (needs PyYAML)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() not in (".yaml", ".yml"):
        return json.loads(text)
    try:
        import yaml  # not an SDK dependency: only for a YAML file
    except ImportError:
        raise ConfigError("a YAML file needs PyYAML (pip install pyyaml); or give JSON") from None
    return yaml.safe_load(text)


def load(
    env: Mapping[str, str], config: str | os.PathLike[str] | Mapping[str, Any] | None = None
) -> tuple[Overrides, list[str]]:
    """The overrides (file or mapping first, then the environment over it) and the problems
    found on the way (each a sentence saying what was ignored and what to give)."""
    table: Overrides = {}
    problems: list[str] = []
    source = config if config is not None else env.get(ENV_FILE) or None
    if isinstance(source, Mapping):
        from_mapping(source, "guard_config", table, problems)
    elif source is not None:
        path = Path(source)
        try:
            doc = read_file(path)
        except (OSError, ValueError, ConfigError) as exc:  # JSON and YAML errors are ValueErrors
            problems.append(f"guard config {str(path)!r} not read ({exc}); no overrides from it")
        else:
            from_mapping(doc, str(path), table, problems)
    from_env(env, table, problems)
    return table, problems


def warn(message: str) -> None:
    """Say that a guard setting was ignored (raise it instead under tests)."""
    if REPORTER.should_raise():
        raise ConfigError(message)
    counter = REPORTER.counter
    if counter is not None:
        counter("guard.config")
    _log.warning("watchkeeper SDK: %s", message)


class Configurable(Protocol):
    """A guard, as the overrides see it."""

    @property
    def name(self) -> str:
        """The guard's name."""

    def configure(self, settings: Mapping[str, float]) -> None:
        """Run on the code's settings with `settings` over them."""


class GuardRegistry:
    """Every live guard and the overrides in force; `apply` hands them out."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._guards: weakref.WeakSet[Configurable] = weakref.WeakSet()
        self.overrides: Overrides = {}

    def add(self, guard: Configurable) -> None:
        """Track `guard` and give it the overrides in force (if any)."""
        with self._lock:
            self._guards.add(guard)
            overrides = self.overrides
        # A `with guard(...)` block makes its guard per use: no name to match most of the time.
        settings = overrides.get(normalize(guard.name)) if overrides else None
        if settings:
            guard.configure(settings)

    def apply(self, overrides: Overrides, problems: Sequence[str] = ()) -> None:
        """Put `overrides` in force on every guard (a guard not named runs on its code's),
        after a warning for each of the `problems` met reading them."""
        for problem in problems:
            warn(problem)
        with self._lock:
            if not overrides and not self.overrides:
                return  # none before, none now: every guard already runs on its code's
            self.overrides = overrides
            guards = list(self._guards)
        for guard in guards:
            guard.configure(overrides.get(normalize(guard.name), {}))


#: The process's guards, like the breakers: per name, process-wide.
GUARDS = GuardRegistry()
