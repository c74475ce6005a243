"""The UI's pure functions, run in the browser as the app runs them (ES modules, no build)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .conftest import Server

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def js(browser: Any, server: Server) -> Any:
    """Evaluate an async JS body with `m(path)` importing one of our modules."""
    ctx = browser.new_context(base_url=server.url)
    page = ctx.new_page()
    page.goto("/ui/favicon.svg")  # same origin, no app: modules import cleanly

    def run(body: str) -> Any:
        return page.evaluate(f"async () => {{ const m = (p) => import('/ui/js/' + p); {body} }}")

    yield run
    ctx.close()


MESSAGES = [
    # OpenAI chat completions
    (
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        [["system", "Be brief."], ["user", "Hi"]],
    ),
    # OpenAI content parts and tool calls
    (
        [
            {"role": "user", "content": [{"type": "text", "text": "Weather?"}]},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}}
                ],
            },
        ],
        [["user", "Weather?"], ["assistant", '→ get_weather({"city":"Oslo"})']],
    ),
    # OpenTelemetry GenAI (v1.37+) parts
    (
        [
            {"role": "user", "parts": [{"type": "text", "content": "Refund?"}]},
            {
                "role": "assistant",
                "parts": [{"type": "tool_call", "name": "lookup", "arguments": {"id": 7}}],
                "finish_reason": "tool_call",
            },
        ],
        [["user", "Refund?"], ["assistant", '→ lookup({"id":7})']],
    ),
    # Anthropic messages
    (
        [
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Sure."},
                    {"type": "tool_use", "name": "search", "input": {"q": "x"}},
                ],
            }
        ],
        [["assistant", 'Sure.\n→ search({"q":"x"})']],
    ),
    # wrapped in an object
    ({"messages": [{"role": "user", "content": "Hello"}]}, [["user", "Hello"]]),
]


@pytest.mark.parametrize(("value", "expected"), MESSAGES)
def test_chat_payloads_become_messages(js: Any, value: Any, expected: list[list[str]]) -> None:
    got = js(f"return (await m('messages.js')).asMessages({json.dumps(value)})")
    assert [[x["role"], x["text"]] for x in got] == expected


@pytest.mark.parametrize("value", [[1, 2], ["a", "b"], {"answer": 42}, [], [{"id": 1}]])
def test_other_json_is_not_taken_for_messages(js: Any, value: Any) -> None:
    assert js(f"return (await m('messages.js')).asMessages({json.dumps(value)})") is None


def test_axis_ticks_are_round_and_cover_the_data(js: Any) -> None:
    got = js("const c = await m('chart.js'); return [c.niceTicks(0, 9.3), c.niceTicks(0, 0.072)]")
    assert got[0] == {"ticks": [0, 2.5, 5, 7.5, 10], "max": 10}
    assert got[1]["ticks"][-1] >= 0.072 and got[1]["max"] == got[1]["ticks"][-1]


def test_sparse_series_get_a_bucket_for_every_step(js: Any) -> None:
    got = js(
        "const o = await m('pages/overview.js');"
        "return o.densify([{t: 120000, count: 3}], 60000, 300000, 60000)"
    )
    assert got["times"] == [60000, 120000, 180000, 240000]
    assert got["pts"] == [None, {"t": 120000, "count": 3}, None, None]


def test_ranges_steps_and_formats(js: Any) -> None:
    got = js(
        "const r = await m('range.js'); const f = await m('format.js');"
        "const q = new URLSearchParams('range=6h');"
        "const cur = r.current(q, 1e12);"
        "const custom = r.current(new URLSearchParams('start=1000000&end=2000000'), 1e12);"
        "return {cur, step: r.stepFor(cur), custom,"
        " ms: [f.ms(0), f.ms(4.25), f.ms(820), f.ms(8100)], pct: f.pct(0.99951, 2),"
        " usd: [f.usd(0.00042), f.usd(12.5), f.usd(1234.4)]}"
    )
    assert got["cur"] == {"preset": "6h", "startMs": 1e12 - 6 * 3600e3, "endMs": 1e12, "live": True}
    assert got["step"] == 600
    assert got["custom"] == {"preset": None, "startMs": 1e6, "endMs": 2e6, "live": False}
    assert got["ms"] == ["0 ms", "4.3 ms", "820 ms", "8.10 s"]
    assert got["pct"] == "99.95%"
    assert got["usd"] == ["$0.00042", "$12.50", "$1,234"]


def test_money_has_significant_digits_from_one_function(js: Any) -> None:
    values = [0, 0.000024, 0.0031, 0.5, 1.234, 12.5, 999.994, 1234.4, -0.0031, None]
    got = js(
        f"const f = await m('format.js'); return {values!r}.map(f.usd)".replace("None", "null")
    )
    assert got == [
        "$0", "$0.000024", "$0.0031", "$0.50", "$1.23", "$12.50", "$999.99", "$1,234",
        "-$0.0031", "–",
    ]  # fmt: skip


def test_counts_are_pluralized(js: Any) -> None:
    got = js(
        "const f = await m('format.js');"
        "return [f.count(1, 'timeout'), f.count(3, 'timeout'), f.count(0, 'error'),"
        " f.count(1200, 'request'), f.count(1, 'rejected', 'rejected'), f.plural('call', 1)]"
    )
    assert got == ["1 timeout", "3 timeouts", "0 errors", "1,200 requests", "1 rejected", "call"]


def test_model_aliases_fold_into_their_dated_snapshot(js: Any) -> None:
    rows = [  # key, calls, spend, input and output tokens
        ("gpt-4.1-2025-04-14", 10, 0.5, 100, 50),
        ("claude-sonnet-4-20250514", 4, 0.7, 40, 9),
        ("gpt-4.1-mini-2025-04-14", 2, 0.01, 5, 5),
        ("gpt-4.1", 3, 0, 0, 0),
        ("claude-sonnet-4", 1, 0, 0, 0),
        ("o3", 2, 0, 0, 0),
    ]
    names = ("key", "count", "cost_usd", "input_tokens", "output_tokens")
    groups = [dict(zip(names, row, strict=True)) for row in rows]
    got = js(f"return (await m('pages/overview.js')).foldModelAliases({json.dumps(groups)})")
    assert [(g["key"], g["count"], g["keys"]) for g in got] == [
        ("claude-sonnet-4-20250514", 5, ["claude-sonnet-4-20250514", "claude-sonnet-4"]),
        ("gpt-4.1-2025-04-14", 13, ["gpt-4.1-2025-04-14", "gpt-4.1"]),
        ("gpt-4.1-mini-2025-04-14", 2, ["gpt-4.1-mini-2025-04-14"]),
        ("o3", 2, ["o3"]),  # no snapshot of it in the list: its calls stay its own
    ]


def test_default_range_is_the_smallest_preset_holding_the_data(js: Any) -> None:
    spans_min = [0, 10, 20, 59, 120, 3 * 1440, 40 * 1440]
    got = js(
        f"const r = await m('range.js'); return {spans_min}.map((v) => r.presetFor(v * 60000))"
    )
    assert got == ["15m", "15m", "1h", "1h", "6h", "7d", "30d"]
