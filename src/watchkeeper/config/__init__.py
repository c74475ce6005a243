"""Server configuration: one declarative, validated model, read in one place.

Order of precedence: the YAML file (`--config` or `WATCHKEEPER_CONFIG`), then environment
variables `WATCHKEEPER_<SECTION>__<KEY>` (e.g. `WATCHKEEPER_SERVER__PORT=4318`), then the
defaults below. Every error is one line that names the file and the key and says how to fix
it; any input, however large or hostile, is refused in bounded time and memory (`_file`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from watchkeeper.config._access import (
    MIN_ADMIN_TOKEN_CHARS,
    AuthConfig,
    OidcConfig,
    OidcRoleGrant,
    SessionsConfig,
)
from watchkeeper.config._file import (
    MAX_CONFIG_VALUES,
    describe,
    expanded_size,
    parse,
    read,
)
from watchkeeper.config._section import Section as _Section
from watchkeeper.errors import ConfigError

ENV_PREFIX = "WATCHKEEPER_"


__all__ = [
    "ENV_PREFIX",
    "MAX_CONFIG_VALUES",
    "MIN_ADMIN_TOKEN_CHARS",
    "AuditConfig",
    "AuthConfig",
    "BasicAuth",
    "Config",
    "DashboardsConfig",
    "IngestConfig",
    "LimitsConfig",
    "LogsConfig",
    "MetricsConfig",
    "OidcConfig",
    "OidcRoleGrant",
    "PriceOverride",
    "RetentionConfig",
    "ScrapeJob",
    "ServerConfig",
    "SessionsConfig",
    "StoreConfig",
    "check_meta_url",
    "describe",
    "expanded_size",
    "load_config",
]


class ServerConfig(_Section):
    """Where the server listens and keeps its files."""

    host: str = "127.0.0.1"
    port: int = Field(default=4318, ge=0, le=65535)
    data_dir: Path = Path("./watchkeeper-data")
    public_url: str = ""  # base URL used in links of notifications; default http://host:port
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # a request's headers must arrive within this (408 and the connection closed after)
    header_timeout_s: float = Field(default=10.0, gt=0, le=3600)
    # one line per HTTP request: off, so the terminal keeps what matters (and the URL banner)
    access_log: bool = False


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
    # Spans per store write (the batch is cut at the first record that reaches it). At
    # least one of the DuckDB span store's row groups (16,384 rows, `store.duckdb`): DuckDB
    # writes an insert's whole row groups straight into the file, not through its WAL.
    # Measured (bench.ingest, 1M spans, alternated): 10,000 15.3-15.5k spans/s written with
    # 53-54 us of server CPU a span; 16,384 16.1-17.5k with 43-48 us, peak +12-18 MiB.
    batch_max_spans: int = Field(default=16_384, gt=0)
    batch_max_wait_ms: float = Field(default=250.0, gt=0)
    # decode/normalize/compress worker processes; 0 = in-process. Measured (bench.ingest,
    # 1M spans, 2 cores, payloads compressed in the workers), runs interleaved: 3 workers
    # 26.1k, 24.4k spans/s written; 2 workers 24.3k, 23.0k; 1 worker 16.8k, 18.1k (more
    # records in flight hide the hand-over to and from the workers). Each worker is 45-55
    # MiB of RSS, so the default is one per core, at most 3: 2 on a 2-core machine.
    workers: int = Field(default_factory=lambda: min(os.cpu_count() or 1, 3), ge=0)
    # The workers stop after this many seconds without a record and start again with the
    # next one, which waits about a second for them; 0: they stay. An idle server was 100
    # MiB smaller without them (bench.ingest: 2 workers of 50 MiB after a burst).
    workers_idle_s: float = Field(default=60.0, ge=0)
    # After this many seconds without a store write, the memory of the last burst goes back
    # to the system (the store engine's cache, the server's free heap); 0: never.
    idle_release_s: float = Field(default=10.0, ge=0)


class LimitsConfig(_Section):
    """Size, time and rate limits of the API and the UI (OTLP ingest has its own: `ingest`)."""

    # a request body (rules, silences, scores, keys: small JSON); 413 above
    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    # a request's whole body must arrive within this (408 and the connection closed after)
    body_timeout_s: float = Field(default=10.0, gt=0, le=3600)
    # requests a second each credential may sustain, and how many it may spend at once
    # (429 + Retry-After past them; a rate of 0 turns the limit off)
    credential_rate: float = Field(default=20.0, ge=0)
    credential_burst: int = Field(default=200, ge=1)
    # the same per client address (behind a proxy: the address it forwards, see SECURITY.md)
    address_rate: float = Field(default=50.0, ge=0)
    address_burst: int = Field(default=500, ge=1)


class StoreConfig(_Section):
    """Which span store to use."""

    backend: Literal["duckdb", "clickhouse", "chdb"] = "duckdb"
    path: Path | None = None  # default <data_dir>/spans.duckdb
    # backend "clickhouse": http(s)://USER:PASSWORD@HOST:8123 (a server), or chdb:///PATH
    # (the same engine in-process); "chdb" is "clickhouse" at chdb://<data_dir>/chdb.
    clickhouse_url: str = ""
    clickhouse_database: str = Field(default="watchkeeper", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    # SQLAlchemy URL; default sqlite:///<data_dir>/meta.sqlite. Replicas share one
    # postgresql+psycopg://USER:PASSWORD@HOST:PORT/DATABASE (docs/replicas.md).
    meta_url: str = ""
    # The embedded engine's memory (DuckDB's memory_limit; it spills to disk above it, and
    # gives it back when ingest is idle: ingest.idle_release_s): the span store's; the
    # metric store and the log store get half of it each (`side_memory_limit_mb`). DuckDB's
    # own default is 80% of the machine's memory. 256 MB once ran out (Out of Memory in
    # queries and writes) in a soak at 20k spans/s with ~6M spans stored: the dashboards and
    # a starter rule took exact percentiles over every span of their window. Busy windows
    # now come from the per-minute rollup, and a percentile query reads at most
    # MINUTE_FROM_SPANS spans' durations. At 128 MB the dashboards' queries answer over 37M
    # spans (the 30-minute soak's store), and the ingest benchmark writes 25k spans/s (29k
    # at 256 MB) with a peak ~120 MiB lower (issue 16's note). A larger limit buys speed
    # on big scans, not correctness: DuckDB spills the rest.
    memory_limit_mb: int = Field(default=128, ge=64)
    # The span store engine's threads (DuckDB's `threads`; its default is one per core).
    # On 2 cores the engine's threads fought the decode workers and the event loop for
    # the CPU: at 16.5k spans/s offered (0.7x the written rate) the ack -> queryable lag
    # p99 climbed to 3-5 s within 20 minutes with 2 threads; with 1 it held under 1 s for
    # the 10 minutes measured (a 30-minute soak with 1, on a host twice as slow that day:
    # 0.7-2.9 s, 28 of 30 minutes under 2 s); the 1M-span benchmark wrote 29.5k spans/s
    # instead of 27.1k (on the slow day, within 2% either way). The price is the long
    # aggregates on an idle server (1.3-1.7x slower over 2M spans: issue 16's note), not
    # point reads. Half the cores by default, measured on 2 only.
    threads: int = Field(default_factory=lambda: max(1, (os.cpu_count() or 1) // 2), ge=1, le=256)
    # A trace's user, session and feature (from any of its spans, usually the root) fill
    # the spans of the trace that start within this many seconds of a stored span of the
    # trace; a write looks up its traces only among the rows of that window.
    trace_context_window_s: int = Field(default=3600, ge=60, le=7 * 86_400)

    @field_validator("meta_url")
    @classmethod
    def _known_meta_engine(cls, v: str) -> str:
        return check_meta_url(v)

    @field_validator("clickhouse_url")
    @classmethod
    def _clickhouse_address(cls, v: str) -> str:
        if v and not v.startswith(("http://", "https://", "chdb://")):
            raise ValueError(
                "not a ClickHouse address: use http(s)://USER:PASSWORD@HOST:8123 (a server) "
                "or chdb:///PATH (the engine in-process, its files in PATH)"
            )
        return v

    @model_validator(mode="after")
    def _clickhouse_needs_url(self) -> StoreConfig:
        if self.backend == "clickhouse" and not self.clickhouse_url:
            raise ValueError(
                "backend clickhouse needs store.clickhouse_url (--clickhouse-url): "
                "http(s)://HOST:8123 or chdb:///PATH"
            )
        return self


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


class AuditConfig(_Section):
    """The audit log: how long its entries are kept (pruning leaves a checkpoint)."""

    retention_days: int = Field(default=400, ge=1)
    check_interval_s: float = Field(default=3600.0, gt=0)


class BasicAuth(_Section):
    """A user name and password sent with each scrape."""

    username: str
    password: SecretStr


class ScrapeJob(_Section):
    """Targets the built-in scraper reads (Prometheus or OpenMetrics text), as a Prometheus
    `scrape_configs` entry with static targets."""

    job_name: str = Field(min_length=1)
    targets: list[str] = Field(min_length=1)  # host:port
    scheme: Literal["http", "https"] = "http"
    metrics_path: str = "/metrics"
    interval_s: float = Field(default=15.0, gt=0)
    timeout_s: float = Field(default=10.0, gt=0)
    labels: dict[str, str] = {}  # added to every series of the job's targets
    basic_auth: BasicAuth | None = None
    bearer_token: SecretStr | None = None
    project: str = ""  # default: auth.default_project

    @field_validator("timeout_s")
    @classmethod
    def _within_interval(cls, v: float, info: Any) -> float:
        interval = info.data.get("interval_s")
        if interval is not None and v > interval:
            raise ValueError(f"timeout_s ({v:g}) must not be longer than interval_s ({interval:g})")
        return v


class MetricsConfig(_Section):
    """The metric store (OTLP metrics, remote-write, the scraper) and PromQL."""

    path: Path | None = None  # default <data_dir>/metrics.duckdb
    # series a project may hold; samples of new series past it are dropped and counted
    # (watchkeeper_metrics_samples_dropped{reason="series_limit"}), the warning names the label
    max_series_per_project: int = Field(default=200_000, gt=0)
    # how far back an instant vector looks for a series' last sample (Prometheus: 5m)
    lookback_delta_s: float = Field(default=300.0, gt=0)
    # samples one PromQL query may load at most (Prometheus: --query.max-samples)
    query_max_samples: int = Field(default=50_000_000, gt=0)
    # samples older than this are deleted, and the series left without one (checked every
    # retention.check_interval_s); None: retention.days, as spans
    retention_days: int | None = Field(default=None, ge=1)
    scrape: list[ScrapeJob] = []


class LogsConfig(_Section):
    """The log store (OTLP logs; docs/logs.md)."""

    path: Path | None = None  # default <data_dir>/logs.duckdb
    # records older than this are deleted (checked every retention.check_interval_s);
    # None: retention.days, as spans. Logs are often kept for less (e.g. 14 days).
    retention_days: int | None = Field(default=None, ge=1)
    # records per second one project may send (a token bucket holding burst_s seconds of
    # them); past it, 429 with Retry-After. 0: no limit (the default: one project per server
    # is the usual setup, and the lag budget already bounds what the writer is behind)
    rate_limit_records_per_s: float = Field(default=0.0, ge=0)
    rate_limit_burst_s: float = Field(default=10.0, gt=0, le=3600)
    # Processes that decode large log requests (over 64 KiB) at the door, off the server's
    # interpreter lock (ingest/_offload.py); 0: decoded in the server process. They start
    # with the first such request and stop after ingest.workers_idle_s without one.
    decode_workers: int = Field(default=1, ge=0, le=16)


class DashboardsConfig(_Section):
    """Where the user's dashboards are kept: one YAML file each (docs/dashboards.md)."""

    # default: dashboards/ beside the config file, or in the data directory without one
    path: Path | None = None


class Config(_Section):
    """The whole configuration of `watchkeeper serve`."""

    server: ServerConfig = ServerConfig()
    ingest: IngestConfig = IngestConfig()
    limits: LimitsConfig = LimitsConfig()
    store: StoreConfig = StoreConfig()
    auth: AuthConfig = AuthConfig()
    sessions: SessionsConfig = SessionsConfig()
    oidc: OidcConfig = OidcConfig()
    prices: list[PriceOverride] = []
    retention: RetentionConfig = RetentionConfig()
    audit: AuditConfig = AuditConfig()
    metrics: MetricsConfig = MetricsConfig()
    logs: LogsConfig = LogsConfig()
    dashboards: DashboardsConfig = DashboardsConfig()
    # Sections owned by other packages are kept as raw mappings here and validated there.
    alerting: dict[str, Any] = {}
    evals: dict[str, Any] = {}
    _source: str = PrivateAttr(default="configuration")
    _file: Path | None = PrivateAttr(default=None)

    @field_validator("prices", mode="before")
    @classmethod
    def _prices_list(cls, v: Any) -> Any:
        return [] if v is None else v

    @property
    def source(self) -> str:
        """Where the configuration came from, as error messages name it."""
        return self._source

    @property
    def span_store_path(self) -> Path:
        """Path of the DuckDB file."""
        return self.store.path or self.server.data_dir / "spans.duckdb"

    @property
    def side_memory_limit_mb(self) -> int:
        """The memory of the metric store's and the log store's engines (each)."""
        return max(self.store.memory_limit_mb // 2, 32)

    @property
    def metrics_store_path(self) -> Path:
        """Path of the metric store's DuckDB file."""
        return self.metrics.path or self.server.data_dir / "metrics.duckdb"

    @property
    def logs_store_path(self) -> Path:
        """Path of the log store's DuckDB file."""
        return self.logs.path or self.server.data_dir / "logs.duckdb"

    @property
    def dashboards_dir(self) -> Path:
        """The directory of the user's dashboard files."""
        if self.dashboards.path is not None:
            return self.dashboards.path
        base = self._file.parent if self._file is not None else self.server.data_dir
        return base / "dashboards"

    @property
    def clickhouse_url(self) -> str:
        """Where the ClickHouse store is (backend "chdb": in-process, in the data directory)."""
        if self.store.backend == "chdb" and not self.store.clickhouse_url:
            return f"chdb://{self.server.data_dir / 'chdb'}"
        return self.store.clickhouse_url

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


def check_meta_url(url: str) -> str:
    """The metadata store's URL if it names an engine we run on (`postgresql://` is read as
    psycopg 3's `postgresql+psycopg://`); ValueError saying what to write otherwise. The
    message never repeats a password."""
    scheme, sep, _rest = url.partition("://")
    if not url or scheme == "sqlite":
        return url
    if scheme in ("postgresql", "postgres"):
        url = "postgresql+psycopg://" + _rest
    elif scheme != "postgresql+psycopg" or not sep:
        named = repr(scheme) if sep and scheme.replace("+", "").isalnum() else "this URL"
        raise ValueError(
            f"{named} is not a metadata engine: use sqlite:///PATH, or "
            "postgresql+psycopg://USER:PASSWORD@HOST:PORT/DATABASE (psycopg 3: pip install "
            "'watchkeeper[postgres]')"
        )
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018  (reading it checks it)
    except ValueError:
        raise ValueError("the PostgreSQL URL's port is not a number from 1 to 65535") from None
    if not parts.hostname or not parts.path.strip("/"):
        raise ValueError(
            "a PostgreSQL URL names a host and a database: "
            "postgresql+psycopg://USER:PASSWORD@HOST:PORT/DATABASE"
        )
    return url


def load_config(
    path: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Read the file (if any), apply environment variables and overrides, and validate."""
    env = os.environ if env is None else env
    path = path or env.get("WATCHKEEPER_CONFIG") or None
    data: dict[str, Any] = {}
    source = "configuration (WATCHKEEPER_* variables and options)"
    if path:
        source = f"config file {path}"
        loaded = parse(read(Path(path)), Path(path)) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must hold a mapping at the top level")
        data = loaded
    data = _merge(data, _env_overrides(env))
    data = _merge(data, overrides or {})
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {describe(exc)}") from None
    config._source = source
    config._file = Path(path) if path else None
    return config
