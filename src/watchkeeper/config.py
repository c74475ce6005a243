"""Server configuration: one declarative, validated model, read in one place.

Order of precedence: the YAML file (`--config` or `WATCHKEEPER_CONFIG`), then environment
variables `WATCHKEEPER_<SECTION>__<KEY>` (e.g. `WATCHKEEPER_SERVER__PORT=4318`), then the
defaults below. Every error names the key and says how to fix it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)

from watchkeeper.errors import ConfigError

ENV_PREFIX = "WATCHKEEPER_"
MIN_ADMIN_TOKEN_CHARS = 24
#: Keys whose values never appear in error messages.
SECRET_KEYS = frozenset({"auth.admin_token"})


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerConfig(_Section):
    """Where the server listens and keeps its files."""

    host: str = "127.0.0.1"
    port: int = Field(default=4318, ge=0, le=65535)
    data_dir: Path = Path("./watchkeeper-data")
    public_url: str = ""  # base URL used in links of notifications; default http://host:port
    log_level: Literal["debug", "info", "warning", "error"] = "info"


class IngestConfig(_Section):
    """Limits and batching of the OTLP receiver and the spool."""

    max_body_bytes: int = Field(default=16 * 1024 * 1024, gt=0)  # decompressed
    spool_segment_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    spool_max_backlog_bytes: int = Field(default=2 * 1024 * 1024 * 1024, gt=0)  # 503 above this
    # a request's whole body must arrive within this (408 after); slow senders hold no slot
    body_timeout_s: float = Field(default=30.0, gt=0)
    # bytes of request bodies being received at once, all senders together (503 above)
    receive_budget_bytes: int = Field(default=128 * 1024 * 1024, gt=0)
    # 503 + Retry-After while the oldest record not yet stored is older than this (0: off)
    lag_budget_s: float = Field(default=5.0, ge=0)
    group_commit_ms: float = Field(default=2.0, ge=0)
    batch_max_spans: int = Field(default=20_000, gt=0)
    batch_max_wait_ms: float = Field(default=250.0, gt=0)
    # decode/normalize/compress worker processes; 0 = in-process. Measured (bench.ingest,
    # 1M spans, 2 cores, payloads compressed in the workers), runs interleaved: 3 workers
    # 26.1k, 24.4k spans/s written; 2 workers 24.3k, 23.0k; 1 worker 16.8k, 18.1k (more
    # records in flight hide the hand-over to and from the workers). ~35 MB RSS per worker.
    workers: int = Field(default=3, ge=0)


class StoreConfig(_Section):
    """Which span store to use."""

    backend: Literal["duckdb", "clickhouse", "chdb"] = "duckdb"
    path: Path | None = None  # default <data_dir>/spans.duckdb
    clickhouse_url: str = ""
    meta_url: str = ""  # SQLAlchemy URL; default sqlite:///<data_dir>/meta.sqlite
    # the embedded engine's memory (DuckDB's memory_limit; it spills to disk above it)
    memory_limit_mb: int = Field(default=256, ge=64)


class AuthConfig(_Section):
    """API keys and the admin token; without auth the server listens on 127.0.0.1 only."""

    # None: required as soon as an admin token or one key exists, then until restart
    required: bool | None = None
    default_project: str = "default"
    # Manages keys over HTTP (/api/v1/keys); reads no project data. Best set through the
    # environment: WATCHKEEPER_AUTH__ADMIN_TOKEN.
    admin_token: SecretStr | None = None

    @field_validator("admin_token", mode="before")
    @classmethod
    def _empty_is_none(cls, v: Any) -> Any:
        return None if v == "" else v

    @field_validator("admin_token")
    @classmethod
    def _long_enough(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and len(v.get_secret_value()) < MIN_ADMIN_TOKEN_CHARS:
            raise ValueError(
                f"use at least {MIN_ADMIN_TOKEN_CHARS} random characters "
                "(e.g. from: python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        return v


class PriceOverride(_Section):
    """A user price for a model, in USD per million tokens."""

    model: str
    provider: str | None = None
    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cache_read: float | None = Field(default=None, ge=0)
    cache_write: float | None = Field(default=None, ge=0)
    reasoning: float | None = Field(default=None, ge=0)  # default: the output price


class RetentionConfig(_Section):
    """How long data is kept."""

    days: int = Field(default=30, ge=1)
    check_interval_s: float = Field(default=3600.0, gt=0)


class Config(_Section):
    """The whole configuration of `watchkeeper serve`."""

    server: ServerConfig = ServerConfig()
    ingest: IngestConfig = IngestConfig()
    store: StoreConfig = StoreConfig()
    auth: AuthConfig = AuthConfig()
    prices: list[PriceOverride] = []
    retention: RetentionConfig = RetentionConfig()
    # Sections owned by other packages are kept as raw mappings here and validated there.
    alerting: dict[str, Any] = {}
    evals: dict[str, Any] = {}

    @field_validator("prices", mode="before")
    @classmethod
    def _prices_list(cls, v: Any) -> Any:
        return [] if v is None else v

    @property
    def span_store_path(self) -> Path:
        """Path of the DuckDB file."""
        return self.store.path or self.server.data_dir / "spans.duckdb"

    @property
    def meta_url(self) -> str:
        """SQLAlchemy URL of the metadata store."""
        return self.store.meta_url or f"sqlite:///{self.server.data_dir / 'meta.sqlite'}"

    @property
    def base_url(self) -> str:
        """Base URL of the UI, for links in notifications."""
        return self.server.public_url or f"http://{self.server.host}:{self.server.port}"


def _env_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name or name == "WATCHKEEPER_CONFIG":
            continue
        section, _, key = name[len(ENV_PREFIX) :].lower().partition("__")
        out.setdefault(section, {})[key] = value
    return out


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _describe(err: ValidationError, source: str) -> str:
    lines = [f"invalid configuration ({source}):"]
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"]) or "(top level)"
        hint = "remove it or check its spelling" if e["type"] == "extra_forbidden" else e["msg"]
        got = "<hidden>" if where in SECRET_KEYS else repr(e.get("input"))
        lines.append(f"  {where}: {hint} (got {got})")
    return "\n".join(lines)


def load_config(
    path: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Read the file (if any), apply environment variables and overrides, and validate."""
    env = os.environ if env is None else env
    path = path or env.get("WATCHKEEPER_CONFIG") or None
    data: dict[str, Any] = {}
    source = "defaults"
    if path:
        source = str(path)
        try:
            loaded = yaml.safe_load(Path(path).read_text()) or {}
        except FileNotFoundError:
            raise ConfigError(
                f"config file {path} does not exist; create it or drop --config"
            ) from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must hold a mapping at the top level")
        data = loaded
    data = _merge(data, _env_overrides(env))
    data = _merge(data, overrides or {})
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from None
