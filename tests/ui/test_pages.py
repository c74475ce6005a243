"""The UI in a real browser against a real server with a known workload."""

from __future__ import annotations

import datetime
import math
import re
import time
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from playwright.sync_api import expect

from tests.eventually import eventually

from . import _data
from .conftest import ARTIFACTS, Server, send_otlp, wait_for

pytestmark = pytest.mark.browser

ROWS = "#trace-list tbody tr"


def _loaded(page: Any) -> None:
    """Wait until the app has rendered the current route and nothing is loading any more."""
    page.wait_for_function(
        "() => document.querySelector('main').getAttribute('aria-busy') === 'false'"
        " && !document.querySelector('.loading')"
    )


def test_overview_shows_the_exact_ingested_counts(page: Any, server: Server) -> None:
    exp = server.expected.requests
    total = sum(exp.values())
    page.goto("/?range=1h")
    headline = page.get_by_test_id("headline")
    headline.wait_for()
    assert page.get_by_test_id("hl-count").inner_text() == str(total)
    assert page.get_by_test_id("hl-timeouts").inner_text() == str(exp["timeout"])
    assert page.get_by_test_id("hl-errors").inner_text() == str(exp["error"])
    assert page.get_by_test_id("hl-fallbacks").inner_text() == str(exp["fallback"])
    assert page.get_by_test_id("hl-rejected").inner_text() == str(exp["rejected"])
    rate = (exp["success"] + exp["fallback"]) / total
    assert page.get_by_test_id("hl-success-rate").inner_text() == f"{rate * 100:.2f}%"
    _loaded(page)
    # Charts are drawn from the API: volume bars, latency lines, heatmap cells, spend bars.
    assert page.locator("#box-vol svg rect.bar").count() > 0
    assert page.locator("#box-lat svg path.line").count() == 3
    assert page.locator("#box-heat svg rect.cell").count() > 0
    assert page.locator("#box-heat .marker-label").text_content().startswith("deadline")
    models = page.locator("#box-bymodel .barrow-label").all_inner_texts()
    assert set(_data.MODELS) <= set(models)


MONEY = re.compile(r"^-?\$(0|0\.0*[1-9]\d|[1-9]\d{0,2}\.\d\d|[1-9]\d{0,2}(,\d{3})+)$")


def _usd(v: float) -> str:
    """The UI's money format: two significant digits below $1, cents below $1,000."""
    if v == 0:
        return "$0"
    if v < 1:
        return f"${v:.{1 - math.floor(math.log10(v))}f}"
    return f"${v:,.2f}" if v < 1000 else f"${round(v):,}"


def test_money_and_counts_read_the_same_everywhere(page: Any, server: Server) -> None:
    page.goto("/?range=1h")
    _loaded(page)
    llm = server.api("/api/v1/summary", scope="llm", range="1h", percentiles="false")
    stats = page.get_by_test_id("cost-stats")
    per_call = stats.locator(".stat", has_text="Cost / call").locator(".stat-value").inner_text()
    assert per_call == _usd(llm["cost_usd"] / llm["count"])  # e.g. $0.0020, not $0.00
    money = [t for t in stats.locator(".stat-value").all_inner_texts() if t.startswith("$")]
    money += page.locator("#box-bymodel .barrow-value").all_inner_texts()
    assert money and all(MONEY.match(t) for t in money), money
    notes = page.locator("#box-bymodel .barrow-note").all_inner_texts()
    assert notes and all(re.match(r"^(1 call|\d+ calls) · ", n) for n in notes), notes
    for label in page.locator("#box-bymodel .barrow-label").all():
        assert label.get_attribute("title").startswith(label.inner_text())  # full name on hover
    headline = page.get_by_test_id("headline").inner_text()
    assert not re.search(r"\b1 (timeouts|errors|fallbacks)\b", headline)


def test_overview_without_a_range_fits_the_data(page: Any, server: Server) -> None:
    # Seen from five hours later, the data (the last 30 minutes) needs the 6 h preset.
    first_ms = server.api("/api/v1/summary", scope="requests", range="30d")["first_ms"]
    page.clock.set_system_time(datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=5))
    page.goto("/")
    _loaded(page)
    active = page.locator(".range-picker .seg-btn.active")
    span_h = (time.time() + 5 * 3600 - first_ms / 1e3) / 3600
    assert 5 < span_h < 6 and active.inner_text() == "6h"
    assert active.get_attribute("aria-pressed") == "true"
    assert "range" not in page.url  # the URL still names no range: a reload chooses again


def test_headline_counts_link_to_those_requests(page: Any, server: Server) -> None:
    page.goto("/?range=1h")
    page.get_by_test_id("hl-timeouts").click()
    page.wait_for_url(re.compile(r"/traces\?.*outcome=timeout"))
    _loaded(page)
    assert page.locator(ROWS).count() == server.expected.requests["timeout"]
    assert set(page.locator(f"{ROWS} .badge").all_inner_texts()) == {"timeout"}


def test_chart_click_opens_the_traces_of_that_bucket(page: Any, server: Server) -> None:
    page.goto("/?range=1h")
    _loaded(page)
    overlay = page.locator("#box-vol svg rect.overlay")
    box = overlay.bounding_box()
    # The chart spans the hour before the page loaded; the requests were written 30 to 5 min
    # before the suite started, so aim at 15 min before that, however long the suite has run.
    target_ago_s = (time.time_ns() - server.expected.written_ns) / 1e9 + 15 * 60
    overlay.click(position={"x": box["width"] * (1 - target_ago_s / 3600), "y": box["height"] / 2})
    page.wait_for_url(re.compile(r"/traces\?.*start=.*end="))
    _loaded(page)
    assert page.locator(".chip", has_text="start").count() == 1
    query = parse_qs(urlparse(page.url).query)
    bucket = server.api("/api/v1/traces", start=query["start"][0], end=query["end"][0])
    assert bucket["items"], "the clicked bucket holds requests"
    assert page.locator(ROWS).count() == len(bucket["items"])


def test_chart_tooltips_follow_pointer_and_keyboard(page: Any) -> None:
    page.goto("/?range=1h")
    _loaded(page)
    overlay = page.locator("#box-vol svg rect.overlay")
    box = overlay.bounding_box()
    overlay.hover(position={"x": box["width"] * 0.9, "y": box["height"] / 2})
    tip = page.locator(".tooltip")
    assert tip.is_visible()
    text = tip.inner_text()
    assert "success" in text and "total" in text and "click to see these traces" in text
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    card = page.locator("#box-vol").bounding_box()
    clip = {"x": card["x"], "y": card["y"], "width": card["width"] + 240, "height": card["height"]}
    page.screenshot(path=str(ARTIFACTS / "tooltip-light.png"), clip=clip)
    # Keyboard: the latency chart is one tab stop; arrows move the crosshair, Enter opens.
    page.locator("#box-lat svg").focus()
    page.keyboard.press("ArrowRight")
    assert "p95" in tip.inner_text()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/traces\?.*start="))


def test_spend_bar_click_filters_model_calls(page: Any) -> None:
    page.goto("/?range=1h")
    _loaded(page)
    page.locator("#box-bymodel .barrow", has_text="gpt-4o").first.click()
    page.wait_for_url(
        re.compile(r"/traces\?.*scope=llm.*model=gpt-4o|/traces\?.*model=gpt-4o.*scope=llm")
    )
    _loaded(page)
    names = page.locator(f"{ROWS} .cell-main").all_inner_texts()
    assert names and all(n == "chat gpt-4o" for n in names)


def test_filters_narrow_the_trace_list(page: Any, server: Server) -> None:
    page.goto("/traces?range=1h")
    _loaded(page)
    assert page.locator(ROWS).count() == 50  # a full page, with a cursor for the rest
    assert page.get_by_test_id("next-page").is_visible()
    page.get_by_label("Service").select_option("search-api")
    page.wait_for_url(re.compile(r"service=search-api"))
    _loaded(page)
    assert page.locator(ROWS).count() == server.expected.services["search-api"]
    totals = page.get_by_test_id("totals").inner_text()
    assert totals.startswith(f"{server.expected.services['search-api']} requests match")
    page.get_by_label("Outcome").select_option("timeout")
    page.wait_for_url(re.compile(r"outcome=timeout"))
    _loaded(page)
    assert page.locator(ROWS).count() == 2
    page.goto("/traces?range=1h")
    _loaded(page)
    page.get_by_label("User", exact=True).fill("user-1")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url(re.compile(r"user=user-1"))
    _loaded(page)
    assert page.locator(ROWS).count() == sum(
        1 for i in range(len(_data.OUTCOME_PLAN)) if i % 5 == 1
    )


def test_model_filter_lists_that_models_calls(page: Any) -> None:
    page.goto("/traces?range=1h")
    _loaded(page)
    page.get_by_label("Model").select_option("claude-sonnet-4")
    page.wait_for_url(re.compile(r"model=claude-sonnet-4"))
    _loaded(page)
    assert "scope=llm" in page.url
    names = page.locator(f"{ROWS} .cell-main").all_inner_texts()
    expected = sum(
        1 for i in range(len(_data.OUTCOME_PLAN)) if _data.MODELS[i % 2] == "claude-sonnet-4"
    )
    assert names == ["chat claude-sonnet-4"] * expected


def test_text_search_finds_the_span_whose_prompt_matches(page: Any) -> None:
    page.goto("/traces?range=1h")
    _loaded(page)
    page.get_by_label("Text in prompts").fill("issued on monday")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url(re.compile(r"q=issued"))
    _loaded(page)
    assert "scope=spans" in page.url
    assert page.locator(f"{ROWS} .cell-main").all_inner_texts() == ["chat claude-haiku"]
    page.locator(ROWS).first.click()
    page.wait_for_url(f"**/traces/{_data.FALLBACK_TRACE}?span={_data.FALLBACK_ANSWER_SPAN}")
    assert "Your refund was issued on Monday." in page.get_by_test_id("span-detail").inner_text()


def test_paging_with_the_cursor_reaches_every_request(page: Any, server: Server) -> None:
    page.goto("/traces?range=1h")
    _loaded(page)
    first = page.locator(ROWS).count()
    page.get_by_test_id("next-page").click()
    page.wait_for_url(re.compile(r"cursor="))
    _loaded(page)
    assert first + page.locator(ROWS).count() == sum(server.expected.requests.values())


def test_trace_opens_with_its_waterfall(page: Any, server: Server) -> None:
    page.goto("/traces?range=1h&user=user-vip")
    _loaded(page)
    page.locator(ROWS).first.click()
    page.wait_for_url(f"**/traces/{_data.FALLBACK_TRACE}")
    rows = page.locator(".wf-row")
    rows.first.wait_for()
    assert rows.count() == server.expected.spans_in_fallback_trace
    assert page.locator(".wf-tag.fallback", has_text="fallback: claude-haiku").count() == 1
    assert page.locator(".wf-tag.retry", has_text="retry 1").count() == 1
    assert page.locator(".wf-tag.timeout", has_text="TimeoutError").count() == 1
    assert page.locator(".wf-bar.out-timeout").count() == 1
    page.locator(".wf-row", has_text="chat claude-haiku").click()
    detail = page.get_by_test_id("span-detail")
    assert detail.locator(".msg-role").all_inner_texts()[:3] == [
        "SYSTEM",
        "USER",
        "ASSISTANT · STOP",
    ]
    assert "Your refund was issued on Monday." in detail.inner_text()
    assert "span=" in page.url
    page.locator(".wf-row", has_text="chat gpt-4o").click()
    assert "deadline of 8 s exceeded" in detail.inner_text()
    assert detail.locator(".event.exception").count() == 1
    # Collapse the guard with the keyboard: its two attempts and their tool call disappear.
    guard = page.locator(".wf-row", has_text="guard answer")
    guard.focus()
    page.keyboard.press("ArrowLeft")
    assert rows.count() == server.expected.spans_in_fallback_trace - 3
    page.keyboard.press("ArrowRight")
    assert rows.count() == server.expected.spans_in_fallback_trace


def test_keyboard_navigation_on_the_trace_list(page: Any) -> None:
    page.goto("/traces?range=1h")
    _loaded(page)
    page.get_by_role("button", name="Apply").focus()
    page.keyboard.press("Tab")
    first = page.locator(ROWS).nth(0)
    assert page.evaluate("() => document.activeElement.matches('#trace-list tbody tr')")
    assert first.evaluate("el => el === document.activeElement")
    page.keyboard.press("ArrowDown")
    second = page.locator(ROWS).nth(1)
    assert second.evaluate("el => el === document.activeElement")
    href = second.locator("a").first.get_attribute("href")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**{href}")
    page.locator(".wf-row").first.wait_for()
    page.go_back()
    page.wait_for_url(re.compile(r"/traces\?range=1h$"))
    _loaded(page)
    page.keyboard.press("/")
    assert page.evaluate("() => document.activeElement.name") == "q"


def test_tab_order_starts_with_skip_link_then_navigation(page: Any) -> None:
    page.goto("/traces?range=1h")
    _loaded(page)
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.className") == "skip"
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.textContent") == "Overview"
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")  # the skip link moves focus into the page
    assert page.evaluate("() => document.activeElement.id") == "main"
    assert page.url.endswith("/traces?range=1h")
    page.keyboard.press("Tab")  # the first control of the page: the range picker
    assert page.evaluate("() => document.activeElement.textContent") == "15m"


def test_overview_refreshes_live_with_new_requests(page: Any, server: Server) -> None:
    page.goto("/?range=1h")
    count = page.get_by_test_id("hl-count")
    before = int(count.inner_text())
    send_otlp(server.url, server.token, service="live-api", plan=["success"])
    server.expected.requests["success"] += 1  # later tests count it too
    server.expected.services["live-api"] += 1
    wait_for(server, "live-api", 1)
    # No reload: the page's own 10 s refresh picks the new request up.
    expect(count).to_have_text(str(before + 1), timeout=30_000)


def test_live_refresh_can_be_paused_and_theme_toggled(page: Any) -> None:
    page.goto("/?range=15m")
    live = page.locator("button.live")
    assert live.inner_text().strip() == "Live"
    live.click()
    page.wait_for_url(re.compile(r"live=0"))
    expect(page.locator("button.live")).to_have_text("Paused")
    page.locator("#theme-toggle").click()
    assert page.evaluate("() => document.documentElement.dataset.theme") == "dark"


def test_custom_range_is_applied_and_kept_in_the_url(page: Any, server: Server) -> None:
    page.goto("/traces?range=1h")
    _loaded(page)
    page.locator(".custom-range summary").click()
    page.get_by_label("From", exact=True).fill("2020-01-01T00:00")
    page.get_by_label("To", exact=True).fill("2020-01-02T00:00")
    page.get_by_role("button", name="Apply").first.click()
    page.wait_for_url(re.compile(r"start=2020-01-01.*end=2020-01-02"))
    _loaded(page)
    assert page.locator(ROWS).count() == 0  # nothing was sent in 2020
    assert "No traces match" in page.locator("#trace-list").inner_text()
    assert "→" in page.locator(".custom-range summary").inner_text()
    page.reload()
    _loaded(page)
    assert "start=2020-01-01" in page.url


def test_sessions_and_users_link_to_their_traces(page: Any) -> None:
    page.goto("/users?range=1h")
    _loaded(page)
    page.locator("tbody tr", has_text="user-vip").click()
    page.wait_for_url(re.compile(r"/traces\?.*user=user-vip"))
    _loaded(page)
    assert page.locator(ROWS).count() == 1
    page.goto("/sessions?range=1h")
    _loaded(page)
    assert page.locator("tbody tr", has_text="sess-vip").count() == 1


def test_users_count_failed_requests_as_the_overview_does(page: Any, server: Server) -> None:
    page.goto("/users?range=1h")
    _loaded(page)
    head = [t.lower() for t in page.locator("thead th").all_inner_texts()]
    col = head.index("failed requests")
    failed = {}
    for row in page.locator("tbody tr").all():
        cells = row.locator("td").all_inner_texts()
        failed[cells[0]] = int(cells[col].replace(",", ""))
    for user in ("user-1", "otlp-user", "user-vip"):
        items = server.api(
            "/api/v1/traces", user=user, outcome="error,timeout,rejected", range="1h", limit=500
        )["items"]
        assert failed[user] == len(items), user  # root spans, not failed spans of any kind
    # Failed spans inside requests that answered (a retried call) are not failed requests.
    assert failed["user-vip"] == 0
    page.locator("tbody tr", has_text="user-1").locator("a.badge").click()
    page.wait_for_url(re.compile(r"/traces\?.*user=user-1"))
    _loaded(page)
    assert page.locator(ROWS).count() == failed["user-1"]


def test_api_key_prompt_on_401(make_page: Any, server: Server) -> None:
    pg = make_page(with_key=False)
    pg.goto("/?range=1h")
    dialog = pg.locator("#auth-dialog")
    dialog.wait_for(state="visible")
    pg.locator("#auth-key").fill(server.token)
    pg.get_by_role("button", name="Save and retry").click()
    assert pg.get_by_test_id("hl-count").inner_text() == str(sum(server.expected.requests.values()))
    assert pg.evaluate("() => localStorage.getItem('watchkeeper.apiKey')") == server.token


def test_a_silence_can_be_created(page: Any, server: Server) -> None:
    probe = httpx.get(
        server.url + "/api/v1/silences", headers={"Authorization": f"Bearer {server.token}"}
    )
    if probe.status_code == 404:
        pytest.skip("the alerting API (/api/v1/silences) is not in this build yet")
    page.goto("/alerts/silences")
    _loaded(page)
    page.get_by_label("Matcher label").fill("alertname")
    page.get_by_label("Matcher value").fill("HighErrorRate")
    page.get_by_label("Comment").fill("deploy in progress")
    page.get_by_role("button", name="Create silence").click()
    row = page.locator("tbody tr", has_text="HighErrorRate")
    row.wait_for()
    assert "deploy in progress" in row.inner_text()
    body = server.api("/api/v1/silences")
    items = body["items"] if isinstance(body, dict) else body
    mine = [s for s in items if "HighErrorRate" in str(s.get("matchers"))]
    assert len(mine) == 1 and mine[0]["active"]
    assert mine[0]["matchers"] == [{"name": "alertname", "op": "=", "value": "HighErrorRate"}]
    assert 7_190_000 <= mine[0]["ends_at"] - mine[0]["starts_at"] <= 7_210_000  # 2 h, in ms
    row.get_by_role("button", name="Expire").click()
    # An expired silence is shown as expired, or dropped from the list of current ones.
    active = page.locator("tbody tr", has_text="HighErrorRate").locator(".badge", has_text="active")
    expect(active).to_have_count(0)
    expired = [s for s in server.api("/api/v1/silences")["items"] if s["id"] == mine[0]["id"]]
    assert not expired or not expired[0]["active"]


def _firing(server: Server, timeout_s: float = 60.0) -> list[dict[str, Any]]:
    """Firing alerts, once the engine's first evaluations have run (its interval is 5 s)."""
    items: list[dict[str, Any]] = eventually(
        lambda: [a for a in server.api("/api/v1/alerts")["items"] if a["status"] == "firing"],
        timeout_s,
        0.5,
    )
    assert items, "no alert fired; the SLO burn-rate alerts should (the budget is spent)"
    return items


def test_active_alert_can_be_silenced_from_its_row(page: Any, server: Server) -> None:
    firing = _firing(server)
    rule = firing[0]["rule_id"]
    page.goto("/alerts")
    _loaded(page)
    assert page.locator("tbody tr").count() >= len(firing)
    badge = page.locator('#nav a[href="/alerts"] .nav-count')
    badge.wait_for()
    assert int(badge.inner_text()) >= len(firing)
    page.get_by_role("link", name=f"Silence {rule}").click()
    page.wait_for_url(re.compile(r"/alerts/silences\?m=rule"))
    _loaded(page)
    assert page.get_by_label("Matcher label").input_value() == "rule"
    assert page.get_by_label("Matcher value").input_value() == rule
    page.get_by_label("Comment").fill("known incident")
    page.get_by_role("button", name="Create silence").click()
    page.locator("tbody tr", has_text=rule).wait_for()
    silences = server.api("/api/v1/silences")["items"]
    assert any(s["matchers"] == [{"name": "rule", "op": "=", "value": rule}] for s in silences)


def test_slos_show_objective_and_budget(page: Any, server: Server) -> None:
    page.goto("/slos")
    _loaded(page)
    blocks = page.locator(".slo-block")
    assert blocks.count() == 2
    for slo in server.api("/api/v1/slos")["items"]:
        block = page.locator(f'.slo-block[data-slo="{slo["id"]}"]')
        left = block.get_by_test_id("budget-remaining").locator(".stat-value").inner_text()
        digits = 0 if abs(slo["budget_remaining"]) >= 10 else 1
        assert left == f"{slo['budget_remaining'] * 100:.{digits}f}%"
        assert block.locator("svg.chart path.line").count() == 1  # the burn-down
    page.goto("/?range=1h")
    assert "SLO 99.00%" in page.locator(".slo-gauge").inner_text()


def test_channel_test_notification_reaches_the_receiver(page: Any, server: Server) -> None:
    tests = lambda: [b for b in server.webhook_bodies if b.get("kind") == "test"]  # noqa: E731
    before = len(tests())  # alert notifications may arrive too: count only the tests
    page.goto("/alerts/channels")
    _loaded(page)
    page.get_by_role("button", name="Send test notification to team-webhook").click()
    page.locator(".notice", has_text="delivered to team-webhook").wait_for()
    assert len(tests()) == before + 1


def test_rules_and_channels_are_described_as_the_server_says(page: Any, server: Server) -> None:
    page.goto("/alerts/rules")
    _loaded(page)
    for rule in server.api("/api/v1/rules")["items"]:
        row = page.locator("tbody tr", has_text=rule["id"]).first
        assert rule["display"]["watches"] in row.inner_text()
        if rule["display"]["condition"]:
            assert rule["display"]["condition"] in row.inner_text()
    page.goto("/alerts/channels")
    _loaded(page)
    labels = {t["type"]: t["label"] for t in server.api("/api/v1/channel-types")["items"]}
    for channel in server.api("/api/v1/channels")["items"]:
        row = page.locator("tbody tr", has_text=channel["name"])
        assert labels[channel["type"]] in row.inner_text()


def test_rules_can_be_tested_and_disabled(page: Any, server: Server) -> None:
    page.goto("/alerts/rules")
    _loaded(page)
    row = page.locator("tbody tr", has_text="error-spike")
    row.locator("summary").click()  # unfold the rule's definition
    assert "group them by error type" in row.locator("summary").inner_text()
    row.get_by_role("button", name="Test rule").click()
    page.locator(".notice", has_text="would").wait_for()
    row.get_by_role("button", name="Disable").click()
    page.locator("tbody tr", has_text="error-spike").get_by_role("button", name="Enable").wait_for()
    assert server.api("/api/v1/rules/error-spike")["enabled"] is False
    page.locator("tbody tr", has_text="error-spike").get_by_role("button", name="Enable").click()
    page.locator("tbody tr", has_text="error-spike").get_by_role(
        "button", name="Disable"
    ).wait_for()
    assert server.api("/api/v1/rules/error-spike")["enabled"] is True


PAGES = {
    "overview": "/?range=1h",
    "traces": "/traces?range=1h",
    "trace": f"/traces/{_data.FALLBACK_TRACE}?span={_data.FALLBACK_ANSWER_SPAN}",
    "trace-logs": f"/traces/{_data.FALLBACK_TRACE}?view=logs",
    "logs": "/logs?range=1h",
    "sessions": "/sessions?range=1h",
    "users": "/users?range=1h",
    "alerts": "/alerts",
    "alerts-rules": "/alerts/rules",
    "alerts-silences": "/alerts/silences",
    "alerts-channels": "/alerts/channels",
    "alerts-history": "/alerts/history",
    "alerts-deliveries": "/alerts/notifications",
    "slos": "/slos",
    "review": "/review?range=1h",
    "infrastructure": "/infrastructure?range=1h",
    "explore": "/explore?range=1h",
    "dashboards": "/dashboards?range=1h",
    "dashboard": "/dashboards/fastapi-service?range=1h",
}


UNNAMED_CONTROLS = """() => [...document.querySelectorAll(
    'button, a[href], input, select, textarea, [tabindex="0"]')]
  .filter((el) => el.getClientRects().length > 0)
  .filter((el) => {
    const named = (el.getAttribute('aria-label') || '').trim()
      || (el.labels && el.labels.length && el.labels[0].textContent.trim())
      || (el.tagName !== 'INPUT' && el.tagName !== 'SELECT' && el.textContent.trim());
    return !named;
  })
  .map((el) => el.outerHTML.slice(0, 120))"""


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_screenshots_of_every_page(make_page: Any, scheme: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pg = make_page(scheme=scheme)
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    for name, path in PAGES.items():
        pg.goto(path)
        _loaded(pg)
        assert pg.locator("main h1").count() >= 1, name
        assert pg.locator(".error").count() == 0, (
            f"{name}: {pg.locator('.error').first.inner_text()}"
        )
        assert pg.evaluate(UNNAMED_CONTROLS) == [], f"{name}: controls without an accessible name"
        pg.screenshot(path=str(ARTIFACTS / f"{name}-{scheme}.png"), full_page=True)
    assert not errors, errors
