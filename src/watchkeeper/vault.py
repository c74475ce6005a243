"""The server's secrets: values sealed with the server key, and known secrets kept out of text.

Sealed values. A secret in a config file (a webhook URL, a bot token, an SMTP password) may
be written sealed, `wkenc:v1:<token>`, made by `watchkeeper secrets seal`: a Fernet token
(AES-128-CBC with HMAC-SHA256, from `cryptography`) under the server key, opened when the
file is read. So the file, its backups and its copies in version control hold no secret in
clear; `${NAME}` references to the environment remain the other way.

The server key. `WATCHKEEPER_SECRET_KEY` (keys separated by commas) or
`WATCHKEEPER_SECRET_KEY_FILE` (a file with one key a line, readable by the server only):
the first key seals, every key opens. Rotation: put a new key (`watchkeeper secrets keygen`)
first and keep the old one after it, run `watchkeeper secrets reseal FILE` (every sealed
value re-sealed under the new key, the rest of the file untouched), restart, then drop the
old key.

Redaction. A `Redactor` knows the secret values the server holds (every channel's secrets,
and the secret part of each URL) and replaces them with `***` in text that leaves the
process or is stored: log lines (`RedactingFormatter` around each handler's formatter), and
delivery errors kept in the outbox and shown by the API (a receiver may echo its URL).
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from watchkeeper.errors import ConfigError

SEALED_PREFIX = "wkenc:v1:"
KEY_ENV = "WATCHKEEPER_SECRET_KEY"
KEY_FILE_ENV = "WATCHKEEPER_SECRET_KEY_FILE"
MASK = "***"
#: Shorter values are not redacted: they would mask ordinary words.
MIN_SECRET_CHARS = 6
_SEALED = re.compile(re.escape(SEALED_PREFIX) + r"[A-Za-z0-9_=-]+")


def generate_key() -> str:
    """A new random server key (32 bytes, URL-safe base64)."""
    return Fernet.generate_key().decode()


class SecretBox:
    """Seals with the first key, opens with any (Fernet; `MultiFernet` for rotation)."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ConfigError(
                f"no server key: set {KEY_ENV} (make one: watchkeeper secrets keygen)"
            )
        try:
            self._fernet = MultiFernet([Fernet(k.strip().encode()) for k in keys])
        except (ValueError, TypeError):
            raise ConfigError(
                f"the server key in {KEY_ENV} or {KEY_FILE_ENV} is not a valid key "
                "(32 bytes of URL-safe base64; make one: watchkeeper secrets keygen)"
            ) from None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SecretBox | None:
        """The box of the key(s) the environment names; None when it names none."""
        env = os.environ if env is None else env
        if env.get(KEY_ENV, "").strip():
            return cls([k for k in env[KEY_ENV].split(",") if k.strip()])
        path = env.get(KEY_FILE_ENV, "").strip()
        if not path:
            return None
        try:
            lines = Path(path).read_text().splitlines()
        except OSError as exc:
            raise ConfigError(f"{KEY_FILE_ENV}={path} cannot be read: {exc.strerror}") from None
        return cls([k for k in lines if k.strip() and not k.lstrip().startswith("#")])

    def seal(self, value: str) -> str:
        """`value` sealed under the first key: `wkenc:v1:...`."""
        return SEALED_PREFIX + self._fernet.encrypt(value.encode()).decode()

    def open(self, sealed: str, where: str = "a value") -> str:
        """The clear value of a sealed one; ConfigError when no key opens it."""
        try:
            return self._fernet.decrypt(sealed.removeprefix(SEALED_PREFIX).encode()).decode()
        except InvalidToken:
            raise ConfigError(
                f"{where} is sealed under a key the server does not have (or was altered): "
                f"add that key to {KEY_ENV} after the current one"
            ) from None

    def reseal(self, sealed: str) -> str:
        """The same value sealed under the first key (for key rotation)."""
        try:
            token = self._fernet.rotate(sealed.removeprefix(SEALED_PREFIX).encode())
        except InvalidToken:
            raise ConfigError("a sealed value opens with none of the server keys") from None
        return SEALED_PREFIX + token.decode()


def is_sealed(value: Any) -> bool:
    """True for a `wkenc:v1:` value."""
    return isinstance(value, str) and value.startswith(SEALED_PREFIX)


def open_sealed(value: Any, env: Mapping[str, str] | None = None, where: str = "") -> Any:
    """`value` (a nested structure) with every sealed string opened with the server key."""
    box: list[SecretBox | None] = []

    def walk(v: Any) -> Any:
        if is_sealed(v):
            if not box:
                box.append(SecretBox.from_env(env))
            if box[0] is None:
                raise ConfigError(
                    f"{where or 'a value'} is sealed (wkenc:v1:...) but no server key is "
                    f"set: export {KEY_ENV} or {KEY_FILE_ENV}"
                )
            return box[0].open(v, where or "a sealed value")
        if isinstance(v, Mapping):
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [walk(x) for x in v]
        return v

    return walk(value)


def reseal_text(text: str, box: SecretBox) -> tuple[str, int]:
    """`text` (a config file) with every sealed value re-sealed under the first key."""
    count = 0

    def one(match: re.Match[str]) -> str:
        nonlocal count
        count += 1
        return box.reseal(match.group(0))

    return _SEALED.sub(one, text), count


def _variants(value: str) -> list[str]:
    """A secret and the parts of it that travel alone: a URL's path and query (a webhook's
    secret) and its password; each also as JSON writes it."""
    out = [value]
    if value.startswith(("http://", "https://")):
        parts = urlsplit(value)
        tail = parts.path + (f"?{parts.query}" if parts.query else "")
        if len(tail.strip("/")) >= MIN_SECRET_CHARS:
            out.append(tail)
        if parts.password:
            out.append(parts.password)
    out += [json.dumps(v)[1:-1] for v in out]
    return [v for v in out if len(v) >= MIN_SECRET_CHARS]


class Redactor:
    """Replaces every known secret value in a text with `***`; thread-safe, starts empty."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    def add(self, *values: str | None) -> None:
        """Know these secret values (and their parts that travel alone) from now on."""
        with self._lock:
            for value in values:
                if value:
                    self._secrets.update(_variants(value))
            ordered = sorted(self._secrets, key=len, reverse=True)  # longest first
            self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def scrub(self, text: str) -> str:
        """`text` with every known secret replaced."""
        pattern = self._pattern
        return text if pattern is None else pattern.sub(MASK, text)


class RedactingFormatter(logging.Formatter):
    """Formats with the handler's own formatter, then scrubs the whole line (message,
    extras, exception and traceback alike)."""

    def __init__(self, inner: logging.Formatter | None, redactor: Redactor) -> None:
        super().__init__()
        self._inner = inner or logging.Formatter()
        self._redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        """The inner formatter's line, scrubbed."""
        return self._redactor.scrub(self._inner.format(record))


def redact_handlers(logger: logging.Logger, redactor: Redactor) -> None:
    """Wrap the formatter of each of `logger`'s handlers so no known secret is written."""
    for handler in logger.handlers:
        if not isinstance(handler.formatter, RedactingFormatter):
            handler.setFormatter(RedactingFormatter(handler.formatter, redactor))
