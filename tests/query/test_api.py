"""The query API over HTTP: shapes of docs/api.md, parameters, errors, and key isolation."""

from __future__ import annotations

from typing import Any

import pytest

from tests.datagen import NEEDLE
from tests.query.conftest import Api
from watchkeeper.store import SpanFilter


def test_summary_is_the_store_summary(api: Api) -> None:
    got: Any = api.get("/api/v1/summary", range="24h", scope="requests")
    want = api.store.summary(SpanFilter("demo", scope="requests"))
    assert got["count"] == want.count == 300
    assert got["p95_ms"] == pytest.approx(want.p95_ms)
    assert got["success_rate"] == pytest.approx(want.success_rate)
    assert got["cost_usd"] == pytest.approx(want.cost_usd)
    last: Any = api.get("/api/v1/summary", last_n=10)
    assert last["count"] == 10


def test_filters_from_query_parameters(api: Api) -> None:
    both: Any = api.get("/api/v1/summary", service="chat-api,search-api", scope="llm")
    one: Any = api.get("/api/v1/summary", service=["chat-api"], scope="llm")
    rows = [s for s in api.demo.spans if s.operation == "llm"]
    assert both["count"] == len(rows)
    assert one["count"] == sum(s.service == "chat-api" for s in rows)
    slow: Any = api.get("/api/v1/summary", min_duration_ms="3000", user="user-1")
    assert slow["count"] == sum(
        s.duration_ns >= 3e9 and s.user_id == "user-1" for s in api.demo.spans
    )
    t0 = api.demo.spans[0].start_ns
    window: Any = api.get("/api/v1/summary", start=str(t0 // 1_000_000), end=t0 / 1e6 + 600e3)
    assert window["count"] == sum(t0 <= s.start_ns < t0 + 600e9 for s in api.demo.spans)
    lean: Any = api.get("/api/v1/summary", service="chat-api", scope="llm", percentiles="no")
    assert lean["count"] == one["count"] and lean["p95_ms"] is None and one["p95_ms"] is not None


def test_breakdown_and_value_lists(api: Api) -> None:
    body: Any = api.get("/api/v1/breakdown", by="model", scope="llm", order="cost", limit=2)
    assert body["by"] == "model" and len(body["groups"]) == 2
    assert body["groups"][0]["cost_usd"] >= body["groups"][1]["cost_usd"]
    lean: Any = api.get(
        "/api/v1/breakdown", by="model", scope="llm", order="cost", limit=2, percentiles="false"
    )
    assert [g["key"] for g in lean["groups"]] == [g["key"] for g in body["groups"]]
    assert lean["groups"][0]["p95_ms"] is None and body["groups"][0]["p95_ms"] is not None
    lists: Any = api.get("/api/v1/services")
    assert lists["items"] == ["chat-api", "search-api"]
    assert lists["environments"] == ["prod", "staging"]
    models: Any = api.get("/api/v1/models")
    assert "mystery-model" in models["items"] and "gpt-4o" in lists["models"]


def test_several_breakdowns_in_one_request(api: Api) -> None:
    params = {"scope": "llm", "order": "cost", "limit": 3, "percentiles": "false"}
    body: Any = api.get("/api/v1/breakdowns", by="model,user", feature=["answer"], **params)
    assert [b["by"] for b in body["items"]] == ["model", "user"]
    for item in body["items"]:
        alone: Any = api.get("/api/v1/breakdown", by=item["by"], feature=["answer"], **params)
        assert item == alone and item["groups"]


def test_timeseries_and_heatmap(api: Api) -> None:
    series: Any = api.get("/api/v1/timeseries", step_ms=3_600_000, scope="requests")
    assert series["step_ms"] == 3_600_000 and sum(p["count"] for p in series["points"]) == 300
    assert all(p["t"] % 3_600_000 == 0 for p in series["points"])
    split: Any = api.get(
        "/api/v1/timeseries", step_ms=3_600_000, scope="llm", by="provider", limit=1
    )
    assert {p["key"] for p in split["points"]} == {"openai"}
    heat: Any = api.get("/api/v1/heatmap", step_ms=3_600_000, bounds="500,2000")
    assert heat["bounds_ms"] == [500.0, 2000.0]
    assert sum(map(sum, heat["counts"])) == len(api.demo.spans)
    assert len(heat["t"]) == len(heat["counts"]) and all(len(r) == 3 for r in heat["counts"])


def test_spans_pages_and_text_search(api: Api) -> None:
    seen, cursor = [], None
    while True:
        page: Any = api.get("/api/v1/spans", limit=200, **({"cursor": cursor} if cursor else {}))
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(api.demo.spans) == len({s["span_id"] for s in seen})
    assert seen[0]["start_ms"] == max(s.start_ns for s in api.demo.spans) / 1e6
    newest = max(api.demo.spans, key=lambda s: s.start_ns)
    assert seen[0]["duration_ms"] == newest.duration_ns / 1e6 and "duration_ns" not in seen[0]
    found: Any = api.get("/api/v1/spans", q=NEEDLE.lower(), limit=100)
    wanted = {p.span_id for p in api.demo.payloads if NEEDLE in (p.input or "")}
    assert {s["span_id"] for s in found["items"]} == wanted


def test_traces_and_one_trace(api: Api) -> None:
    roots: Any = api.get("/api/v1/traces", limit=1000)
    assert len(roots["items"]) == 300 and all(s["parent_span_id"] == "" for s in roots["items"])
    tid = sorted({s.trace_id for s in api.demo.spans})[0]
    t: Any = api.get(f"/api/v1/traces/{tid}")
    assert t["spans"][0]["span_id"].endswith("0000")  # the root starts first
    llm = [s for s in t["spans"] if s["operation"] == "llm"]
    assert llm and all(NEEDLE in s["payload"]["input"] for s in llm)  # trace 0 mentions it
    assert {s["name"] for s in t["scores"]} == {"user_feedback", "relevance"}
    missing = api.client.get("/api/v1/traces/" + "f" * 32, headers=api.auth(api.demo_key))
    assert missing.status_code == 404 and "error" in missing.json()
    assert t["span_count"] == len(t["spans"]) and t["next_cursor"] is None
    first: Any = api.get(f"/api/v1/traces/{tid}", limit=1)
    rest: Any = api.get(f"/api/v1/traces/{tid}", limit=1000, cursor=first["next_cursor"])
    assert [s["span_id"] for s in first["spans"] + rest["spans"]] == [
        s["span_id"] for s in t["spans"]
    ]
    for bad in ("0", "5001", "1" + "0" * 40):
        r = api.client.get(f"/api/v1/traces/{tid}?limit={bad}", headers=api.auth(api.demo_key))
        assert r.status_code == 400 and "limit" in r.json()["error"]


def test_sessions_users_and_scores(api: Api) -> None:
    sessions: Any = api.get("/api/v1/sessions", limit=3)
    assert len(sessions["items"]) == 3 and sessions["items"][0]["key"] == "session-59"
    users: Any = api.get("/api/v1/users")
    assert {u["key"] for u in users["items"]} == {f"user-{k}" for k in range(7)}
    tid = sorted({s.trace_id for s in api.demo.spans})[42]
    r = api.client.post(
        "/api/v1/scores",
        json={"trace_id": tid, "value": 1, "comment": "great"},
        headers=api.auth(api.demo_key),
    )
    assert r.status_code == 201 and r.json()["name"] == "user_feedback"
    assert r.json()["source"] == "feedback"
    listed: Any = api.get("/api/v1/scores", trace_id=tid)
    assert [s["comment"] for s in listed["items"]] == ["great"]
    summary: Any = api.get("/api/v1/scores/summary", name="user_feedback")
    assert summary["items"][0]["count"] == 11


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/v1/summary", {"start": "yesterday"}),
        ("/api/v1/summary", {"range": "2y"}),
        ("/api/v1/summary", {"scope": "everything"}),
        ("/api/v1/summary", {"min_duration_ms": "-1"}),
        ("/api/v1/summary", {"last_n": "many"}),
        ("/api/v1/summary", {"start": "2025-01-02", "end": "2025-01-01"}),
        ("/api/v1/breakdown", {"by": "colour"}),
        ("/api/v1/breakdown", {}),
        ("/api/v1/breakdown", {"by": "model", "order": "loudest"}),
        ("/api/v1/breakdown", {"by": "model", "percentiles": "maybe"}),
        ("/api/v1/summary", {"percentiles": "maybe"}),
        ("/api/v1/breakdowns", {}),
        ("/api/v1/breakdowns", {"by": "model,colour"}),
        ("/api/v1/breakdowns", {"by": "model,user,feature,service,route,provider"}),
        ("/api/v1/timeseries", {"step_ms": "0"}),
        ("/api/v1/timeseries", {"step_ms": "1500"}),  # whole seconds only
        ("/api/v1/timeseries", {"step_ms": "1000", "range": "30d"}),
        ("/api/v1/heatmap", {"bounds": "100,50"}),
        ("/api/v1/spans", {"cursor": "%%%"}),
        ("/api/v1/spans", {"limit": "100000"}),
    ],
)
def test_bad_parameters_get_400(api: Api, path: str, params: dict[str, str]) -> None:
    r = api.client.get(path, params=params, headers=api.auth(api.demo_key))
    assert r.status_code == 400 and r.json()["error"], r.text


@pytest.mark.parametrize(
    "body",
    [b"not json", b'{"value": 1}', b'{"trace_id": "abc"}', b'{"trace_id": "abc", "value": "x"}'],
)
def test_bad_scores_get_400(api: Api, body: bytes) -> None:
    r = api.client.post("/api/v1/scores", content=body, headers=api.auth(api.demo_key))
    assert r.status_code == 400 and r.json()["error"], r.text


def test_a_key_sees_only_its_project(api: Api) -> None:
    assert api.client.get("/api/v1/summary").status_code == 401
    bad = api.client.get("/api/v1/summary", headers=api.auth("wk_nope"))
    assert bad.status_code == 401
    mine: Any = api.get("/api/v1/summary", key=api.other_key, project="demo")
    assert mine["count"] == len(api.other.spans)  # ?project= cannot widen a key
    tid = api.demo.spans[0].trace_id
    r = api.client.get(f"/api/v1/traces/{tid}", headers=api.auth(api.other_key))
    assert r.status_code == 404
    users: Any = api.get("/api/v1/users", key=api.other_key)
    assert sum(u["spans"] for u in users["items"]) == len(api.other.spans)
    scores: Any = api.get("/api/v1/scores", key=api.other_key)
    assert scores["items"] == []
    spans: Any = api.get("/api/v1/spans", key=api.other_key, limit=1000)
    assert {s["project"] for s in spans["items"]} == {"other"}


def test_openapi_documents_the_responses(api: Api) -> None:
    doc = api.client.get("/openapi.json").json()
    ok = doc["paths"]["/api/v1/summary"]["get"]["responses"]["200"]
    assert ok["content"]["application/json"]["schema"]["$ref"].endswith("/Summary")
    params = {p["name"] for p in doc["paths"]["/api/v1/spans"]["get"]["parameters"]}
    assert {"range", "service", "q", "cursor", "limit"} <= params
    assert "requestBody" in doc["paths"]["/api/v1/scores"]["post"]
    assert "p95_ms" in doc["components"]["schemas"]["Summary"]["properties"]
