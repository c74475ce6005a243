"""Digests: the schedule as a pure function of time, and rendering of a hand-made digest."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from watchkeeper.alerting._config import ReportSchedule
from watchkeeper.alerting._report import (
    Digest,
    SloLine,
    digest_notification,
    next_run,
    render_html,
    render_markdown,
    render_text,
)
from watchkeeper.store._protocol import Group, Summary


def at(iso: str) -> float:
    return datetime.fromisoformat(iso).replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("daily", "weekly", "now", "when", "period"),
    [
        (True, False, "2026-03-04T07:00", "2026-03-04T08:00", "daily"),  # Wednesday
        (True, False, "2026-03-04T08:00", "2026-03-05T08:00", "daily"),  # strictly after now
        (True, False, "2026-03-04T23:59", "2026-03-05T08:00", "daily"),
        (False, True, "2026-03-04T07:00", "2026-03-09T08:00", "weekly"),  # next Monday
        (False, True, "2026-03-09T07:59", "2026-03-09T08:00", "weekly"),
        (False, True, "2026-03-09T08:00", "2026-03-16T08:00", "weekly"),
        (True, True, "2026-03-08T09:00", "2026-03-09T08:00", "weekly"),  # weekly wins the tie
        (True, True, "2026-03-09T09:00", "2026-03-10T08:00", "daily"),
        (True, False, "2026-12-31T09:00", "2027-01-01T08:00", "daily"),  # year boundary
    ],
)
def test_next_run(daily: bool, weekly: bool, now: str, when: str, period: str) -> None:
    schedule = ReportSchedule(daily=daily, weekly=weekly, at="08:00", weekday="mon")
    assert next_run(schedule, at(now)) == (at(when), period)


def test_nothing_scheduled() -> None:
    with pytest.raises(ValueError, match="no digest"):
        next_run(ReportSchedule(), 0.0)


DIGEST = Digest(
    project="default",
    period="daily",
    start=at("2026-03-03T08:00"),
    end=at("2026-03-04T08:00"),
    requests=Summary(count=1000, success=900, errors=40, timeouts=50, fallbacks=10, p95_ms=6200.0),
    llm=Summary(count=2000, cost_usd=12.345, input_tokens=100_000, output_tokens=20_000),
    failing_agents=[Group("planner", Summary(count=300, errors=30, timeouts=20))],
    failing_models=[Group("gpt-4o", Summary(count=800, errors=8, timeouts=40))],
    slos=[SloLine("Chat availability", 0.99, 0.97, -2.0)],
)


def test_render_text() -> None:
    text = render_text(DIGEST)
    assert (
        "Watchkeeper daily digest — default (2026-03-03 08:00 UTC → 2026-03-04 08:00 UTC)" in text
    )
    expected = [
        "Requests     1,000",
        "Timeouts     50 (5.00%)",
        "Errors       40 (4.00%)",
        "Fallbacks    10 (1.00%)",
        "p95 latency  6,200 ms",
        "Spend        $12.35",
        "planner: 50 failed of 300 (16.67%)",
        "gpt-4o: 48 failed of 800 (6.00%)",
        "Chat availability: SLI 97.00% (objective 99.00%), budget left -200.00%",
    ]
    for line in expected:
        assert line in text


def test_render_markdown_and_html() -> None:
    md = render_markdown(DIGEST)
    assert "| Timeouts | 50 (5.00%) |" in md and "**Top failing agents**" in md
    page = render_html(DIGEST)
    assert page.startswith("<!doctype html>") and "<li>planner: 50 failed" in page
    assert "→" in page


def test_digest_notification() -> None:
    n = digest_notification(DIGEST, "http://wk")
    assert n.kind == "digest" and n.severity == "info"
    assert n.summary == "1,000 requests, 5.00% timeouts, 4.00% errors, p95 6,200 ms, spend $12.35"
    assert n.body_markdown == render_markdown(DIGEST)


def test_collect_from_a_real_store_and_the_cli(tmp_path: Path, capsys: Any) -> None:
    import time

    from tests.alerting._spans import requests
    from watchkeeper.alerting._report import collect_digest
    from watchkeeper.cli._report import report_main
    from watchkeeper.store.duckdb import DuckDBStore

    data = tmp_path / "data"
    data.mkdir()
    store = DuckDBStore(data / "spans.duckdb")
    store.write(requests(time.time() - 60, 100, timeouts=7, errors=3, service="chat"))
    digest = collect_digest(store, "default", "daily", time.time())
    assert (digest.requests.count, digest.requests.timeouts, digest.requests.errors) == (100, 7, 3)
    store.close()
    assert report_main(["--period", "weekly", "--format", "markdown", "--data-dir", str(data)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("## Watchkeeper weekly digest — default")
    assert "| Timeouts | 7 (7.00%) |" in out
    assert report_main(["--data-dir", str(tmp_path / "nowhere")]) == 1
    assert "no span store" in capsys.readouterr().err
