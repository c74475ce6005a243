"""The Logs page and the logs in the trace view, in a real browser, with records sent through
the real `POST /v1/logs` route as OTLP protobuf."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from playwright.sync_api import expect

from tests.eventually import eventually
from watchkeeper.server._logs_models import LogHistogramOut, LogPageOut

from . import _data
from .conftest import Server

pytestmark = pytest.mark.browser

SERVICE = "payments-ui-test"
TRACE = _data.FALLBACK_TRACE
ROOT_SPAN = "a" * 15 + "0"
TIMED_OUT_SPAN = "a" * 15 + "3"  # "chat gpt-4o" in the fallback trace
SEV = {"info": 9, "warn": 13, "error": 17, "fatal": 21}


@dataclass
class Log:
    """A record to send: its body, severity, time and optional ids and attributes."""

    body: str
    severity: str
    time_ns: int
    trace_id: str = ""
    span_id: str = ""
    attrs: dict[str, str] | None = None


def send(server: Server, service: str, records: list[Log]) -> None:
    """One OTLP/HTTP protobuf export to /v1/logs, as an SDK's exporter sends it."""
    req = ExportLogsServiceRequest()
    res = ResourceLogs(
        resource=Resource(
            attributes=[
                KeyValue(key="service.name", value=AnyValue(string_value=service)),
                KeyValue(key="host.name", value=AnyValue(string_value="web-7")),
            ]
        )
    )
    scope = ScopeLogs()
    scope.scope.name = "ui-tests"
    for r in records:
        rec = LogRecord(
            time_unix_nano=r.time_ns,
            observed_time_unix_nano=r.time_ns + 1_000_000,
            severity_number=SEV[r.severity],  # type: ignore[arg-type]
            severity_text=r.severity.upper(),
            body=AnyValue(string_value=r.body),
            trace_id=bytes.fromhex(r.trace_id) if r.trace_id else b"",
            span_id=bytes.fromhex(r.span_id) if r.span_id else b"",
        )
        for k, v in (r.attrs or {}).items():
            rec.attributes.append(KeyValue(key=k, value=AnyValue(string_value=v)))
        scope.log_records.append(rec)
    res.scope_logs.append(scope)
    req.resource_logs.append(res)
    answer = httpx.post(
        server.url + "/v1/logs",
        content=req.SerializeToString(),
        headers={
            "Content-Type": "application/x-protobuf",
            "Authorization": f"Bearer {server.token}",
        },
        timeout=30,
    )
    assert answer.status_code == 200, answer.text


def count_logs(server: Server, **params: Any) -> int:
    """Records matching `params` over the last day, every page."""
    n, cursor = 0, None
    while True:
        more = {"cursor": cursor} if cursor else {}
        page = server.api("/api/v1/logs", range="24h", limit=1000, **more, **params)
        n += len(page["records"])
        cursor = page["next_cursor"]
        if not cursor:
            return n


def wait_logs(server: Server, count: int, **params: Any) -> None:
    """Ingest is asynchronous (spool, then writer): wait until the records are searchable."""
    got = eventually(lambda: count_logs(server, **params), 30, 0.2, until=lambda n: n >= count)
    assert got >= count, f"only {got} of {count} log records became searchable"


@pytest.fixture(scope="module")
def sent(server: Server) -> dict[str, Any]:
    """30 info lines, 3 warnings and 2 errors of one service over the last 10 minutes (the
    errors in the fallback trace), and 4 lines on two spans of that trace, at its time."""
    now = time.time_ns()
    records = [
        Log(f"order {i} placed", "info", now - (600 - i * 10) * 10**9, attrs={"order.id": str(i)})
        for i in range(30)
    ]
    records += [Log("slow payment gateway", "warn", now - (290 - i) * 10**9) for i in range(3)]
    records += [
        Log(
            "payment failed for order 7",
            "error",
            now - 60 * 10**9,
            TRACE,
            TIMED_OUT_SPAN,
            {"order.id": "7", "error.type": "TimeoutError"},
        ),
        Log("payment failed again", "error", now - 30 * 10**9, TRACE, ROOT_SPAN),
    ]
    send(server, SERVICE, records)
    trace = server.api("/api/v1/traces/" + TRACE)
    t0 = round(min(s["start_ms"] for s in trace["spans"]) * 1_000_000)
    in_trace = [
        Log("calling gpt-4o", "info", t0 + 331_000_000, TRACE, TIMED_OUT_SPAN),
        Log("no answer yet", "warn", t0 + 4_000_000_000, TRACE, TIMED_OUT_SPAN),
        Log("deadline exceeded", "error", t0 + 8_330_000_000, TRACE, TIMED_OUT_SPAN),
        Log("request in", "info", t0 + 1_000_000, TRACE, ROOT_SPAN),
    ]
    send(server, "chat-api", in_trace)
    wait_logs(server, 35, service=SERVICE)
    wait_logs(server, 6, trace_id=TRACE)
    t1 = round(max(s["start_ms"] + s["duration_ms"] for s in trace["spans"]) * 1_000_000)
    return {"now": now, "t0": t0, "t1": t1}


def _lines(page: Any) -> Any:
    return page.locator("ol.log-lines > li")


def _ready(page: Any) -> None:
    page.wait_for_function(
        "() => document.querySelector('main').getAttribute('aria-busy') === 'false'"
        " && !document.querySelector('.loading')"
    )


def test_the_page_lists_lines_newest_first_with_a_histogram(
    page: Any, server: Server, sent: dict[str, Any]
) -> None:
    page.goto("/")
    page.locator('#nav a[href^="/logs"]').click()
    expect(page).to_have_url(re.compile(r"/logs"))
    page.goto(f"/logs?range=1h&service={SERVICE}")
    _ready(page)
    bodies = page.locator("ol.log-lines .log-body").all_inner_texts()
    assert len(bodies) == 35
    assert bodies[:3] == [
        "payment failed again",
        "payment failed for order 7",
        "slow payment gateway",
    ]
    assert bodies[-1] == "order 0 placed"
    assert page.get_by_test_id("log-count").inner_text().startswith("35 lines")
    assert page.locator("[data-testid=log-histogram] svg rect.bar").count() > 0
    legend = page.locator("[data-testid=log-histogram] .legend-item").all_inner_texts()
    assert legend == ["info", "warn", "error"]
    assert "service:" in page.get_by_test_id("syntax").inner_text()
    # What the page read is what /openapi.json declares.
    answer = LogPageOut.model_validate(server.api("/api/v1/logs", range="1h", service=SERVICE))
    assert answer.records[0].observed_ms == answer.records[0].time_ms + 1
    LogHistogramOut.model_validate(server.api("/api/v1/logs/histogram", range="1h"))
    # Dragging across the histogram narrows the range to what was dragged over.
    box = page.locator("[data-testid=log-histogram] svg rect.overlay").bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.9, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.95, y, steps=5)
    page.mouse.move(box["x"] + box["width"] + 30, y, steps=5)  # past the edge: to the end
    page.mouse.up()
    expect(page).to_have_url(re.compile(r"start=.*end="))
    assert "range=" not in page.url
    _ready(page)
    bodies = page.locator("ol.log-lines .log-body").all_inner_texts()
    assert 0 < len(bodies) < 35 and bodies[0] == "payment failed again"


def test_older_pages_append_below(page: Any, server: Server, sent: dict[str, Any]) -> None:
    start = sent["now"] - 3000 * 10**9
    extra = [Log(f"bulk line {i}", "info", start + i, attrs={"bulk": "yes"}) for i in range(120)]
    send(server, SERVICE + "-bulk", extra)
    wait_logs(server, 120, service=SERVICE + "-bulk")
    page.goto(f"/logs?range=6h&service={SERVICE}-bulk")
    _ready(page)
    expect(_lines(page)).to_have_count(100)
    page.get_by_test_id("older").click()
    expect(_lines(page)).to_have_count(120)
    assert page.get_by_test_id("older").count() == 0
    ids = page.locator("ol.log-lines > li").evaluate_all("els => els.map(e => e.dataset.log)")
    assert len(set(ids)) == 120


def test_the_service_filter_offers_services_whose_lines_are_not_shown(
    page: Any, server: Server, sent: dict[str, Any]
) -> None:
    # The filter lists the services that sent logs in the range (GET /api/v1/logs/services),
    # not only those of the lines on the page: here only SERVICE's lines are shown.
    quiet = SERVICE + "-quiet"
    send(server, quiet, [Log("a quiet line", "info", sent["now"] - 5 * 10**9)])
    wait_logs(server, 1, service=quiet)
    page.goto(f"/logs?range=1h&service={SERVICE}")
    _ready(page)
    expect(page.get_by_label("Service").locator(f"option[value={quiet}]")).to_have_count(1)
    assert quiet not in " ".join(page.locator("ol.log-lines .log-svc").all_inner_texts())


def test_search_and_severity_narrow_the_lines(
    page: Any, server: Server, sent: dict[str, Any]
) -> None:
    page.goto("/logs?range=1h")
    _ready(page)
    # A service that sends logs and no spans is offered too.
    expect(page.get_by_label("Service").locator(f"option[value={SERVICE}]")).to_have_count(1)
    box = page.get_by_label("Search logs")
    box.fill(f'"order 7" service:{SERVICE}')
    box.press("Enter")
    expect(page.locator("ol.log-lines .log-body")).to_have_text(
        ["payment failed for order 7", "order 7 placed"]  # the phrase, not "order 17 placed"
    )
    assert "q=" in page.url  # a link reproduces the view
    box = page.get_by_label("Search logs")
    box.fill(f"service:{SERVICE} order.id=12")
    box.press("Enter")
    expect(page.locator("ol.log-lines .log-body")).to_have_text(["order 12 placed"])
    page.goto(f"/logs?range=1h&service={SERVICE}")
    _ready(page)
    page.get_by_label("Minimum severity").select_option("warn")  # applies at once
    expect(_lines(page)).to_have_count(5)
    assert set(page.locator("ol.log-lines .sev").all_inner_texts()) == {"WARN", "ERROR"}
    assert "severity=warn" in page.url
    page.goto(f"/logs?range=1h&q=service:{SERVICE}+severity:error")
    _ready(page)
    expect(_lines(page)).to_have_count(2)
    page.goto("/logs?range=1h&q=service:no-such-service-here")
    _ready(page)
    expect(page.locator(".empty-title")).to_have_text("No logs match")
    page.goto(f"/logs?range=1h&q=service:{SERVICE}+-order")
    _ready(page)
    expect(page.get_by_test_id("query-errors")).to_contain_text("negation is not supported")


def test_a_line_shows_every_field_and_opens_its_trace(
    page: Any, server: Server, sent: dict[str, Any]
) -> None:
    page.goto(f"/logs?range=1h&service={SERVICE}&q=%22order+7%22")
    _ready(page)
    _lines(page).first.locator(".log-body").click()
    detail = page.get_by_test_id("log-detail")
    expect(detail).to_be_visible()
    text = detail.inner_text()
    fields = ("order.id", "TimeoutError", SERVICE, "web-7", "ui-tests", TRACE, TIMED_OUT_SPAN)
    for shown in (*fields, "Observed"):
        assert shown in text, shown
    detail.get_by_test_id("line-link").click()  # a link to the line opens it again
    expect(page).to_have_url(re.compile(r"line=[0-9a-f]{16}"))
    _ready(page)
    detail = page.get_by_test_id("log-detail")
    expect(detail.locator(".log-body-full")).to_have_text("payment failed for order 7")
    expect(_lines(page)).to_have_count(1)
    # An attribute's + adds it to the search.
    detail.get_by_role("button", name="Filter by order.id").click()
    expect(page).to_have_url(re.compile(r"q=order.id%3D7"))
    assert "line=" not in page.url
    _ready(page)
    expect(page.locator("ol.log-lines .log-body")).to_have_text(["payment failed for order 7"])
    _lines(page).first.locator(".log-body").click()
    detail = page.get_by_test_id("log-detail")
    detail.get_by_test_id("log-trace-link").click()
    expect(page).to_have_url(re.compile(rf"/traces/{TRACE}\?span={TIMED_OUT_SPAN}"))
    expect(page.locator(".wf-row.selected")).to_contain_text("chat gpt-4o")


def test_live_tail_shows_new_lines_and_waits_while_one_reads(
    page: Any, server: Server, sent: dict[str, Any]
) -> None:
    service = "tail-ui-test"
    send(server, service, [Log("before the page", "info", time.time_ns())])
    wait_logs(server, 1, service=service)
    page.goto(f"/logs?range=15m&service={service}&tail=1")
    _ready(page)
    expect(_lines(page)).to_have_count(1)
    expect(page.get_by_test_id("tail-live")).to_be_visible()
    send(server, service, [Log("after the page loaded", "warn", time.time_ns())])
    first = page.locator("ol.log-lines > li").first.locator(".log-body")
    expect(first).to_have_text("after the page loaded", timeout=20_000)
    # Reading a line (its fields open) holds new lines back, and says how many wait.
    page.locator("ol.log-lines > li").first.locator(".log-body").click()
    send(server, service, [Log("while reading", "error", time.time_ns())])
    waiting = page.get_by_test_id("tail-waiting")
    expect(waiting).to_contain_text("1 new line", timeout=20_000)
    expect(_lines(page)).to_have_count(2)
    waiting.click()
    expect(_lines(page)).to_have_count(3)
    expect(page.locator("ol.log-lines > li").first.locator(".log-body")).to_have_text(
        "while reading"
    )


def test_the_trace_view_shows_logs_under_spans_and_a_logs_tab(
    page: Any, server: Server, sent: dict[str, Any]
) -> None:
    # The view asks for the trace's records from 15 minutes before it to 15 minutes after:
    # the Logs page's two errors (sent when this module started) are in it unless the
    # session had already run that long.
    margin = 15 * 60 * 10**9
    seen = [sent["t0"] - margin <= sent["now"] - s * 10**9 < sent["t1"] + margin for s in (60, 30)]
    page.goto(f"/traces/{TRACE}")
    row = page.locator(f'.wf-row[data-span="{TIMED_OUT_SPAN}"]')
    badge = row.get_by_test_id("log-badge")
    expect(badge).to_have_text(f"{3 + seen[0]} logs")
    badge.click()
    lines = page.get_by_test_id("span-logs").locator(".log-body")
    expect(lines).to_have_count(3 + seen[0])
    assert lines.first.inner_text() == "calling gpt-4o"  # oldest first, as the spans
    row.focus()
    row.press("l")  # the keyboard's way to the same
    expect(page.get_by_test_id("span-logs")).to_have_count(0)
    page.keyboard.press("l")  # the row kept the focus
    expect(page.get_by_test_id("span-logs")).to_have_count(1)
    page.get_by_test_id("view-logs").click()
    assert "view=logs" in page.url
    tab = page.get_by_test_id("trace-logs")
    expect(tab.locator("ol.log-lines > li")).to_have_count(4 + sum(seen))
    root_line = tab.locator("ol.log-lines > li", has_text="request in")
    root_line.get_by_test_id("log-span").click()
    expect(page.get_by_test_id("span-detail")).to_be_visible()
    expect(page.locator(".detail .card-head .mono")).to_have_text(ROOT_SPAN)
    assert f"span={ROOT_SPAN}" in page.url
    page.reload()
    expect(page.get_by_test_id("trace-logs").locator("ol.log-lines > li")).to_have_count(
        4 + sum(seen)
    )


@pytest.fixture(scope="module")
def js(browser: Any, server: Server) -> Any:
    """Evaluate an async JS body with `m(path)` importing one of our modules."""
    ctx = browser.new_context(base_url=server.url)
    page = ctx.new_page()
    page.goto("/ui/favicon.svg")

    def run(body: str) -> Any:
        return page.evaluate(f"async () => {{ const m = (p) => import('/ui/js/' + p); {body} }}")

    yield run
    ctx.close()


QUERIES = [
    ("timeout", {"q": "timeout"}, []),
    ('"payment failed" retry', {"q": '"payment failed" retry'}, []),
    ("service:a service:b", {"service": ["a", "b"]}, []),
    ("severity:warning level:error", {"severity": "error"}, []),
    ("Severity:WARN", {"severity": "warn"}, []),
    ('order.id=42 user="Ann Lee"', {"attr": ["order.id=42", "user=Ann Lee"]}, []),
    ("trace:" + "AB" * 16, {"trace_id": "ab" * 16}, []),
    ("span:" + "c" * 16, {"span_id": "c" * 16}, []),
    ("trace:xyz", {}, ["trace:xyz: a trace id is 32 hex digits"]),
    ("severity:loud", {}, ["severity:loud: not one of trace, debug, info, warn, error, fatal"]),
    (
        "-debug -service:a",
        {},
        ["-debug: negation is not supported", "-service:a: negation is not supported"],
    ),
    ("http://x.io at 12:30", {"q": "http://x.io at 12:30"}, []),
]


@pytest.mark.parametrize(("text", "params", "errors"), QUERIES)
def test_the_search_syntax_becomes_api_parameters(
    js: Any, text: str, params: dict[str, Any], errors: list[str]
) -> None:
    got = js(f"return (await m('logs.js')).parseQuery({text!r});")
    expected = {"service": [], "attr": [], **params}
    assert got == {"params": expected, "errors": errors}


def test_a_trace_with_more_logs_than_a_page_is_paged_through(
    page: Any, server: Server, sent: dict[str, Any]
) -> None:
    trace_id, root = _data._tid(0), _data._sid(0, 1)
    t0 = round(server.api("/api/v1/traces/" + trace_id)["spans"][0]["start_ms"] * 1_000_000)
    many = [Log(f"step {i}", "info", t0 + i * 1000, trace_id, root) for i in range(1100)]
    send(server, "chat-api", many)
    wait_logs(server, 1100, trace_id=trace_id)
    page.goto(f"/traces/{trace_id}")
    expect(page.get_by_test_id("view-logs")).to_have_text("Logs (1,100)")  # two API pages
    badge = page.locator(f'.wf-row[data-span="{root}"]').get_by_test_id("log-badge")
    expect(badge).to_have_text("1.1k logs")
    badge.click()
    under = page.get_by_test_id("span-logs")
    expect(under.locator("li")).to_have_count(200)
    expect(under).to_contain_text("the first 200 of 1,100")
    page.get_by_test_id("view-logs").click()
    expect(page.get_by_test_id("trace-logs").locator("ol.log-lines > li")).to_have_count(1100)


def test_a_line_time_shows_milliseconds_and_the_day_when_not_today(js: Any) -> None:
    today, before = js(
        "const l = await m('logs.js'); const now = Date.UTC(2026, 11, 6, 12);"
        "return [l.lineTime(now - 1234, now), l.lineTime(now - 3 * 86400e3 - 5, now)];"
    )
    assert re.fullmatch(r"\d\d:\d\d:\d\d\.766", today), today
    assert re.fullmatch(r"Dec \d \d\d:\d\d:\d\d\.995", before), before
