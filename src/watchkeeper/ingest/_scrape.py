"""The built-in scraper: `metrics.scrape` jobs read like Prometheus reads its targets.

Each target is scraped every `interval_s` (at an offset within the interval derived from
its name, so targets spread out), within `timeout_s`; the text is parsed by
`prometheus_client`'s parsers (Prometheus text 0.0.4, or OpenMetrics when the target answers
in it). As Prometheus does, each scrape also writes `up`, `scrape_duration_seconds`,
`scrape_samples_scraped`, `scrape_samples_post_metric_relabeling` and `scrape_series_added`;
the target's `job` and `instance` (and the job's `labels`) are set on every series, a
scraped label of the same name kept as
`exported_<name>`; a series that was in the last scrape and is not in this one (or all of
them, when the target is down) gets a staleness marker, so it ends at once instead of
lingering for the lookback. Samples go to the metric spool like any request's.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from watchkeeper.config import ScrapeJob
from watchkeeper.model import Labels, Metadata, Sample

log = logging.getLogger("watchkeeper.ingest.scrape")

ACCEPT = "text/plain;version=0.0.4;q=1,*/*;q=0.1"
_TYPES = {"counter", "gauge", "histogram", "summary", "info", "stateset", "gaugehistogram"}


@dataclass(slots=True)
class Scraped:
    """What one scrape produced: samples (the scrape's own series included) and metadata."""

    samples: list[Sample] = field(default_factory=list)
    metadata: dict[str, Metadata] = field(default_factory=dict)
    up: bool = False
    error: str = ""


def parse_exposition(text: str, content_type: str) -> Iterable[Any]:
    """Metric families of a scrape body, in the format its content type names."""
    if content_type.split(";", 1)[0].strip().lower() == "application/openmetrics-text":
        families: Iterable[Any] = openmetrics_families(text)  # type: ignore[no-untyped-call]
        return families
    return _named_as_exposed(text_string_to_metric_families(text), _counters_declared(text))


def _counters_declared(text: str) -> set[str]:
    """The names of `# TYPE NAME counter` lines of a Prometheus text exposition."""
    out = set()
    for line in text.splitlines():
        if line.startswith("# TYPE ") and line.rstrip().endswith(" counter"):
            out.add(line.split()[2])
    return out


def _named_as_exposed(families: Iterable[Any], counters: set[str]) -> Iterable[Any]:
    """Counter samples under the names the target exposed. prometheus_client's text parser
    appends `_total` to a counter's samples that lack it (its OpenMetrics model), where
    Prometheus keeps `pg_stat_database_xact_commit` as it is."""
    for family in families:
        if family.type == "counter" and family.name in counters:
            renamed = family.name + "_total"
            family.samples = [
                s._replace(name=family.name) if s.name == renamed else s for s in family.samples
            ]
        yield family


def target_labels(job: ScrapeJob, target: str) -> dict[str, str]:
    """The labels a target sets on its series."""
    return {**job.labels, "job": job.job_name, "instance": target}


def to_samples(families: Iterable[Any], target: dict[str, str], t_ms: int) -> Scraped:
    """Samples of parsed families at the scrape's time (or the sample's own timestamp)."""
    out = Scraped(up=True)
    for family in families:
        if family.type in _TYPES:
            out.metadata[family.name] = Metadata(
                family.type, family.unit or "", family.documentation
            )
        for s in family.samples:
            labels = {(f"exported_{k}" if k in target else k): v for k, v in s.labels.items()}
            labels.update(target)
            labels["__name__"] = s.name
            t = t_ms if s.timestamp is None else round(float(s.timestamp) * 1000)
            out.samples.append(Sample(tuple(sorted(labels.items())), t, float(s.value)))
    return out


def scrape_series(
    target: dict[str, str], t_ms: int, up: bool, duration_s: float, scraped: int, added: int
) -> list[Sample]:
    """The series Prometheus writes about each scrape."""

    def one(name: str, value: float) -> Sample:
        return Sample(tuple(sorted({**target, "__name__": name}.items())), t_ms, value)

    return [
        one("up", 1.0 if up else 0.0),
        one("scrape_duration_seconds", duration_s),
        one("scrape_samples_scraped", float(scraped)),
        one("scrape_samples_post_metric_relabeling", float(scraped)),  # no relabeling here
        one("scrape_series_added", float(added)),
    ]


def stale_markers(previous: set[Labels], current: set[Labels], t_ms: int) -> list[Sample]:
    """A staleness marker for each series of the last scrape missing from this one."""
    return [Sample(labels, t_ms, None) for labels in sorted(previous - current)]


def offset_s(job: ScrapeJob, target: str) -> float:
    """Where in each interval a target is scraped: stable, spread over the interval."""
    digest = hashlib.blake2b(f"{job.job_name}/{target}".encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "little") / 2**64) * job.interval_s


def _auth(job: ScrapeJob) -> tuple[dict[str, str], httpx.BasicAuth | None]:
    headers = {"Accept": ACCEPT, "User-Agent": "watchkeeper-scraper"}
    if job.bearer_token is not None:
        headers["Authorization"] = f"Bearer {job.bearer_token.get_secret_value()}"
    auth = None
    if job.basic_auth is not None:
        auth = httpx.BasicAuth(job.basic_auth.username, job.basic_auth.password.get_secret_value())
    headers["X-Prometheus-Scrape-Timeout-Seconds"] = f"{job.timeout_s:g}"
    return headers, auth


async def scrape_once(client: httpx.AsyncClient, job: ScrapeJob, target: str, t_ms: int) -> Scraped:
    """GET one target within the job's timeout and parse it; `up` False on any failure."""
    url = f"{job.scheme}://{target}{job.metrics_path}"
    headers, auth = _auth(job)
    try:
        async with asyncio.timeout(job.timeout_s):
            response = await client.get(url, headers=headers, auth=auth, timeout=job.timeout_s)
        response.raise_for_status()
        return to_samples(
            list(parse_exposition(response.text, response.headers.get("content-type", ""))),
            target_labels(job, target),
            t_ms,
        )
    except (TimeoutError, httpx.HTTPError) as exc:
        return Scraped(error=f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    except ValueError as exc:  # the parsers' error for text that is not an exposition
        return Scraped(error=f"cannot parse the scrape: {exc}")


Submit = Callable[[str, list[Sample], dict[str, Metadata]], Any]


class Scraper:
    """Scrapes every target of the configured jobs until stopped; hands samples to `submit`
    (the metric ingest's `accept_samples`)."""

    def __init__(
        self,
        jobs: list[ScrapeJob],
        submit: Submit,
        default_project: str,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._jobs = jobs
        self._submit = submit
        self._default_project = default_project
        self._clock = clock
        self.last: dict[tuple[str, str], Scraped] = {}  # (job, target) -> its last scrape

    async def run(self, stop: asyncio.Event) -> None:
        """Scrape every target on its schedule until `stop` is set."""
        if not self._jobs:
            return
        async with httpx.AsyncClient(follow_redirects=True) as client:
            tasks = [
                asyncio.create_task(self._loop(client, job, target, stop))
                for job in self._jobs
                for target in job.targets
            ]
            await stop.wait()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _loop(
        self, client: httpx.AsyncClient, job: ScrapeJob, target: str, stop: asyncio.Event
    ) -> None:
        previous: set[Labels] = set()
        project = job.project or self._default_project
        now = self._clock()
        tick = math.floor(now / job.interval_s) * job.interval_s + offset_s(job, target)
        while not stop.is_set():
            if tick < now:
                tick += job.interval_s * math.ceil((now - tick) / job.interval_s)
            await _sleep_until(stop, tick - self._clock())
            if stop.is_set():
                return
            previous = await self._scrape(client, job, target, project, previous)
            tick += job.interval_s
            now = self._clock()

    async def _scrape(
        self,
        client: httpx.AsyncClient,
        job: ScrapeJob,
        target: str,
        project: str,
        previous: set[Labels],
    ) -> set[Labels]:
        t_ms = round(self._clock() * 1000)
        started = time.perf_counter()
        scraped = await scrape_once(client, job, target, t_ms)
        duration = time.perf_counter() - started
        if scraped.error:
            log.warning("scrape of %s (job %s) failed: %s", target, job.job_name, scraped.error)
        current = {s.labels for s in scraped.samples}
        own = scrape_series(
            target_labels(job, target), t_ms, scraped.up, duration,
            len(scraped.samples), len(current - previous),
        )  # fmt: skip
        samples = scraped.samples + stale_markers(previous, current, t_ms) + own
        self.last[(job.job_name, target)] = scraped
        try:
            await self._submit(project, samples, scraped.metadata)
        except Exception as exc:  # overloaded or stopping: this scrape is lost, not the next
            log.warning("scrape of %s (job %s) not stored: %s", target, job.job_name, exc)
        return current


async def _sleep_until(stop: asyncio.Event, seconds: float) -> None:
    if seconds <= 0:
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
