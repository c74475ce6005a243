"""Bad input on `POST /v1/logs` (issue 12), on a real server: a body over 1 MiB is cut with a
marker; invalid UTF-8 is replaced (protobuf and JSON); records dated 1970 or 2300 are stored
at their observed time, flagged, and break no partition nor query on either engine; a flood
from one project is answered 429 with Retry-After past the rate limit, and counted."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from tests.logs.test_engines import store_section
from tests.logs.test_http import _logs, _server
from watchkeeper.ingest._logs_decode import CUT_MARKER, MAX_BODY_BYTES

_PROTOBUF = {"Content-Type": "application/x-protobuf"}
DAY_NS = 86_400 * 10**9
_OFF = {"auth": {"required": False}}


def _request(*records: dict[str, Any], service: str = "api", project: str = "") -> bytes:
    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    rl.resource.attributes.append(
        KeyValue(key="service.name", value=AnyValue(string_value=service))
    )
    if project:
        rl.resource.attributes.append(
            KeyValue(key="watchkeeper.project", value=AnyValue(string_value=project))
        )
    sl = rl.scope_logs.add()
    for fields in records:
        r = sl.log_records.add()
        r.body.string_value = fields.get("body", "")
        r.time_unix_nano = fields.get("time", 0)
        r.observed_time_unix_nano = fields.get("observed", time.time_ns())
        for k, v in fields.get("attributes", {}).items():
            r.attributes.append(KeyValue(key=k, value=AnyValue(string_value=v)))
    return req.SerializeToString()


def _post(url: str, body: bytes, headers: dict[str, str] = _PROTOBUF) -> httpx.Response:
    return httpx.post(f"{url}/v1/logs", content=body, headers=headers, timeout=60)


def test_a_body_over_one_mib_is_cut_with_a_marker(tmp_path: Path) -> None:
    big = "é" + "lorem ipsum " * 200_000  # 2.4 MB, a 2-byte character first
    with _server(tmp_path / "data", **_OFF) as (url, svc):
        r = _post(url, _request({"body": big}, {"body": "small one"}))
        assert r.status_code == 200, r.text
        assert svc.logs_ingest.flush(30)
        (cut,) = _logs(url, range="1h", q="lorem")["records"]
    size = len(big.encode())
    kept = cut["body"][: -len(CUT_MARKER.format(size=size, kept=MAX_BODY_BYTES))]
    assert cut["body"].endswith(CUT_MARKER.format(size=size, kept=MAX_BODY_BYTES))
    assert kept == big.encode()[:MAX_BODY_BYTES].decode()
    assert cut["attributes"]["watchkeeper.body.original_bytes"] == size


def test_invalid_utf8_is_replaced_not_refused(tmp_path: Path) -> None:
    # placeholders of the same length, swapped for invalid bytes once serialized
    pb = _request(
        {"body": "status PLACEHOLDER1 sent", "attributes": {"user": "PLACEHOLDER2"}},
        service="svc-PLACEHOLDER3",
    )
    for n, bad in ((1, b"caf\xe9 \xff\xfe\xfd\xfc\xfb!!"), (2, b"\xc3\x28 Ren\xe9e !!!"),
                   (3, b"\xed\xa0\x80 lone!!!!")):  # fmt: skip
        placeholder = f"PLACEHOLDER{n}".encode()
        assert len(bad) == len(placeholder)
        pb = pb.replace(placeholder, bad)
    json_body = (
        b'{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":'
        b'"json caf\xe9 latin1"}}]}]}]}'
    )
    with _server(tmp_path / "data", **_OFF) as (url, svc):
        assert _post(url, pb).status_code == 200
        r = _post(url, json_body, {"Content-Type": "application/json"})
        assert r.status_code == 200, r.text
        assert _post(url, b"\x0a\xff\xff").status_code == 400  # still no logs request: 400
        assert svc.logs_ingest.flush(30)
        (from_pb,) = _logs(url, range="1h", q="status")["records"]
        (from_json,) = _logs(url, range="1h", q="json")["records"]
    assert from_pb["body"] == "status caf\ufffd \ufffd\ufffd\ufffd\ufffd\ufffd!! sent"
    assert from_pb["attributes"]["user"] == "\ufffd( Ren\ufffde !!!"
    assert from_pb["service"].startswith("svc-\ufffd") and from_pb["service"].endswith("lone!!!!")
    assert from_json["body"] == "json caf\ufffd latin1"


@pytest.mark.parametrize("engine", ["duckdb", "clickhouse"])
def test_records_of_1970_and_2300_are_stored_at_their_observed_time(
    engine: str, tmp_path: Path
) -> None:
    now = time.time_ns()
    year_2300 = 10_413_792_000 * 10**9  # past what an Int64 of nanoseconds holds
    sections = store_section(engine, tmp_path) | _OFF
    with _server(tmp_path / "data", **sections) as (url, svc):
        body = _request(
            {"body": "epoch zero one", "time": 1, "observed": now - 10**9},
            {"body": "far future two", "time": year_2300, "observed": now - 2 * 10**9},
            {"body": "sane three", "time": now - 3 * 10**9, "observed": now},
        )
        r = _post(url, body)
        assert r.status_code == 200, r.text
        assert not ExportLogsServiceResponse.FromString(r.content).HasField("partial_success")
        assert svc.logs_ingest.flush(30)
        found = _logs(url, range="1h")["records"]
        week = {"start": str(now // 10**6 - 7 * 86_400_000), "end": str(now // 10**6 + 1)}
        hist = httpx.get(f"{url}/api/v1/logs/histogram", params={**week, "step_ms": 3_600_000})
        assert hist.status_code == 200, hist.text
        assert sum(b["count"] for b in hist.json()["buckets"]) == 3
        assert [r["body"] for r in _logs(url, range="1h", q="future")["records"]] == [
            "far future two"
        ]
        if engine == "clickhouse":  # no partition of 1970 nor 2300: today's only
            parts = svc.logs_ingest.store._rows(
                "SELECT DISTINCT partition FROM system.parts WHERE database = currentDatabase() "
                "AND table = 'logs' AND active",
                {},
            )
            assert {p for (p,) in parts} <= {time.strftime("%Y%m%d", time.gmtime(s))
                                              for s in (now / 1e9 - 2, now / 1e9)}  # fmt: skip
    by_body = {r["body"]: r for r in found}
    # newest first, by the times stored: the observed ones of the two far records
    assert [r["body"] for r in found] == ["epoch zero one", "far future two", "sane three"]
    cases = (
        ("epoch zero one", 1, "past", now - 10**9),
        ("far future two", year_2300, "future", now - 2 * 10**9),
    )
    for text, sent, why, observed in cases:
        record = by_body[text]
        assert record["time_ns"] == record["observed_ns"] == observed
        assert record["attributes"]["watchkeeper.time.adjusted"] == why
        assert record["attributes"]["watchkeeper.time.original_unix_nano"] == str(sent)
    assert "watchkeeper.time.adjusted" not in by_body["sane three"]["attributes"]


def _metric(url: str, name: str) -> float:
    for line in httpx.get(f"{url}/metrics", timeout=30).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def test_a_flood_from_one_project_gets_429_the_others_go_on(tmp_path: Path) -> None:
    limit = {"logs": {"rate_limit_records_per_s": 10, "rate_limit_burst_s": 10}}  # 100 at once
    batch = [{"body": f"line {i}"} for i in range(80)]
    with _server(tmp_path / "data", **_OFF, **limit) as (url, svc):
        assert _post(url, _request(*batch, project="noisy")).status_code == 200
        flood = _post(url, _request(*batch, project="noisy"))
        assert flood.status_code == 429, flood.text
        assert 1 <= int(flood.headers["Retry-After"]) <= 10
        assert "rate_limit_records_per_s" in flood.text
        quiet = _post(url, _request(*batch, project="quiet"))  # another project: its own
        assert quiet.status_code == 200, quiet.text
        assert _metric(url, "watchkeeper_logs_records_rate_limited_total") == 80
        assert svc.logs_ingest.flush(30)
        assert svc.logs_ingest.store.count("noisy") == 80
        assert svc.logs_ingest.store.count("quiet") == 80


def test_without_a_limit_a_large_burst_passes(tmp_path: Path) -> None:
    batch = [{"body": f"line {i}"} for i in range(2000)]
    with _server(tmp_path / "data", **_OFF) as (url, _svc):
        for _ in range(3):
            assert _post(url, _request(*batch)).status_code == 200
        assert _metric(url, "watchkeeper_logs_records_rate_limited_total") == 0


def test_the_writer_stores_the_rows_decoded_at_the_door(tmp_path: Path) -> None:
    """Decoded once: the writer decodes a request again only when its rows hold the time of
    receipt (a replay's decode would give them another time), and stores the same rows."""
    with _server(tmp_path / "data", **_OFF) as (url, svc):
        for i in range(5):
            body = _request(*({"body": f"timed {i} {k}"} for k in range(100)))
            assert _post(url, body).status_code == 200
        assert svc.logs_ingest.flush(30)
        assert _metric(url, "watchkeeper_logs_requests_decoded_in_writer_total") == 0
        untimed = orjson.dumps({"resourceLogs": [{"scopeLogs": [{"logRecords": [
            {"body": {"stringValue": "no time at all"}}]}]}]})  # fmt: skip
        r = _post(url, untimed, {"Content-Type": "application/json"})
        assert r.status_code == 200
        assert svc.logs_ingest.flush(30)
        assert _metric(url, "watchkeeper_logs_requests_decoded_in_writer_total") == 1
        assert svc.logs_ingest.store.count() == 501
