"""Logs end to end on a real server: the OpenTelemetry Python SDK's OTLP log exporter and
OTLP/JSON in, the query API out; project keys; bad bodies; a restart keeps what was acked."""

from __future__ import annotations

import contextlib
import gzip
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from tests.eventually import eventually
from tests.serving import serve_in_thread
from watchkeeper.config import load_config
from watchkeeper.server._roles import Role
from watchkeeper.server._services import Services
from watchkeeper.server.app import build_services, create_app


@contextlib.contextmanager
def _server(data_dir: Path, **sections: Any) -> Iterator[tuple[str, Services]]:
    overrides = {"server": {"data_dir": str(data_dir), "port": 0}, **sections}
    config = load_config(env={}, overrides=overrides)
    svc = build_services(config)
    with serve_in_thread(create_app(config, services=svc), name="logs-test-server") as url:
        yield url, svc


def _logs(url: str, token: str | None = None, **params: Any) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    r = httpx.get(f"{url}/api/v1/logs", params=params, headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def test_the_python_sdk_exports_logs_that_are_found_again(tmp_path: Path) -> None:
    with _server(tmp_path / "data", auth={"required": False}) as (url, svc):
        resource = Resource.create({"service.name": "checkout"})
        provider = LoggerProvider(resource=resource)
        provider.add_log_record_processor(
            BatchLogRecordProcessor(OTLPLogExporter(endpoint=f"{url}/v1/logs", timeout=10))
        )
        logger = logging.getLogger("test.logs.http")
        logger.propagate = False
        logger.setLevel(logging.INFO)
        handler = LoggingHandler(level=logging.INFO, logger_provider=provider)
        logger.addHandler(handler)
        tracer = TracerProvider(resource=resource).get_tracer("t")
        try:
            with tracer.start_as_current_span("order") as span:
                for i in range(30):
                    logger.info("order %d placed", i, extra={"order.id": str(i)})
                try:
                    raise TimeoutError("payment gateway")
                except TimeoutError:
                    logger.exception("payment failed for order 29")
            trace_id = f"{span.get_span_context().trace_id:032x}"
        finally:
            logger.removeHandler(handler)
            assert provider.force_flush(10_000)
            provider.shutdown()
        assert svc.logs_ingest.flush(30)
        page = _logs(url, range="1h", service="checkout")
        assert len(page["records"]) == 31
        newest = page["records"][0]
        assert newest["severity"] == "error" and newest["trace_id"] == trace_id
        assert newest["attributes"]["exception.type"] == "TimeoutError"
        assert [r["body"] for r in _logs(url, range="1h", severity="error")["records"]] == [
            "payment failed for order 29"
        ]
        assert len(_logs(url, range="1h", trace_id=trace_id)["records"]) == 31
        found = _logs(url, range="1h", q='"order 7"')["records"]
        assert [r["body"] for r in found] == ["order 7 placed"]
        assert [r["body"] for r in _logs(url, range="1h", attr="order.id=12")["records"]] == [
            "order 12 placed"
        ]
        first = _logs(url, range="1h", limit=20)
        second = _logs(url, range="1h", limit=20, cursor=first["next_cursor"])
        assert len(first["records"]) + len(second["records"]) == 31
        assert second["next_cursor"] is None
        hist = httpx.get(f"{url}/api/v1/logs/histogram", params={"range": "1h"}).json()
        by = {b["severity"]: 0 for b in hist["buckets"]}
        for b in hist["buckets"]:
            by[b["severity"]] += b["count"]
        assert by == {"info": 30, "error": 1}


def _json_body(*bodies: str, time_ns: int = 0) -> bytes:
    records = [{"timeUnixNano": str(time_ns), "body": {"stringValue": b}} for b in bodies]
    return orjson.dumps({"resourceLogs": [{"scopeLogs": [{"logRecords": records}]}]})


def test_keys_bad_bodies_partial_success_and_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    now = time.time_ns()
    with _server(data) as (url, svc):
        _, key = svc.keys.create("shop", role=Role.INGEST)
        _, viewer = svc.keys.create("shop", role=Role.VIEWER)
        _, other = svc.keys.create("other", role=Role.VIEWER)
        post = lambda body, **h: httpx.post(  # noqa: E731
            f"{url}/v1/logs", content=body, timeout=30,
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}", **h},
        )  # fmt: skip
        assert post(_json_body("hello", time_ns=now)).status_code == 200
        assert post(gzip.compress(_json_body("zipped", time_ns=now)),
                    **{"Content-Encoding": "gzip"}).status_code == 200  # fmt: skip
        no_time = [{"timeUnixNano": t, "body": {"stringValue": "x"}} for t in ("soon", [1])]
        r = post(orjson.dumps({"resourceLogs": [{"scopeLogs": [{"logRecords": no_time}]}]}))
        assert r.status_code == 200
        assert r.json()["partialSuccess"]["rejectedLogRecords"] == "2"
        assert post(b"{not json").status_code == 400
        assert post(b"x", **{"Content-Type": "text/plain"}).status_code == 415
        assert httpx.post(f"{url}/v1/logs", content=_json_body("x")).status_code == 401
        pb = httpx.post(
            f"{url}/v1/logs", content=b"\x0a\x02\x0a\x00", timeout=30,
            headers={"Content-Type": "application/x-protobuf", "Authorization": f"Bearer {key}"},
        )  # fmt: skip
        assert pb.status_code == 200
        assert (
            ExportLogsServiceResponse.FromString(pb.content).partial_success.rejected_log_records
            == 0
        )
        assert svc.logs_ingest.flush(30)
        assert sorted(r["body"] for r in _logs(url, viewer, range="1h")["records"]) == [
            "hello", "zipped",
        ]  # fmt: skip
        assert _logs(url, other, range="1h")["records"] == []  # another project's key
    with _server(data) as (url, svc):  # restarted on the same data
        assert svc.logs_ingest.store.count("shop") == 2


def test_logs_keep_their_own_retention(tmp_path: Path) -> None:
    """`logs.retention_days` (2) drops records the spans' 30 days would keep."""
    day_ns = 86_400 * 10**9
    now = time.time_ns()
    with _server(
        tmp_path / "data",
        auth={"required": False},
        logs={"retention_days": 2},
        retention={"days": 30, "check_interval_s": 0.2},
    ) as (url, svc):
        for body, age in (("four days old", 4), ("a day old", 1)):
            r = httpx.post(
                f"{url}/v1/logs", content=_json_body(body, time_ns=now - age * day_ns),
                headers={"Content-Type": "application/json"}, timeout=30,
            )  # fmt: skip
            assert r.status_code == 200
        assert svc.logs_ingest.flush(30)

        def bodies() -> list[str]:
            return sorted(r["body"] for r in _logs(url, range="7d")["records"])

        assert eventually(bodies, 15, until=lambda b: b == ["a day old"]) == ["a day old"]
