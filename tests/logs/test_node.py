"""A Node.js app's logs through the OpenTelemetry JS SDK (`@opentelemetry/sdk-logs` and the
OTLP/HTTP protobuf exporter from npm) to a real server, read back through the query API."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.logs.logserver import log_server

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("node") / "send_logs.mjs"

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")


def _records(url: str, **params: Any) -> list[dict[str, Any]]:
    r = httpx.get(f"{url}/api/v1/logs", params={"range": "1h", **params}, timeout=30)
    assert r.status_code == 200, r.text
    records: list[dict[str, Any]] = r.json()["records"]
    return records


def test_a_node_app_s_logs_are_stored_with_their_fields(tmp_path: Path) -> None:
    assert (ROOT / "node_modules/@opentelemetry/sdk-logs").is_dir(), "run npm ci first"
    with log_server(tmp_path / "data") as (url, svc):
        sent = subprocess.run(
            ["node", str(SCRIPT), url, "run-7"], capture_output=True, text=True, timeout=120
        )
        assert sent.returncode == 0, sent.stderr
        assert svc.logs_ingest.flush(30)
        records = _records(url, service="node-shop")
        assert len(records) == 7
        by_body = {r["body"]: r for r in records}
        for word, number in (("debug", 5), ("info", 9), ("warn", 13), ("error", 17),
                             ("fatal", 21)):  # fmt: skip
            record = by_body[f"{word} from node run-7"]
            assert (record["severity_number"], record["severity"]) == (number, word)
            assert record["severity_text"] == word.upper()
            assert record["attributes"] == {"run.id": "run-7", "cart.items": 3,
                                            "cart.total": 41.5, "cart.paid": False}  # fmt: skip
            assert (record["scope"], record["environment"]) == ("shop.checkout", "test")
        structured = by_body['{"event":"order placed","order":{"id":"A-17","lines":[1,2]}}']
        assert structured["attributes"]["tags"] == ["new", "mobile"]
        failed = _records(url, trace_id="5b8efff798038103d269b633813fc60c")
        assert [(r["body"], r["span_id"]) for r in failed] == [
            ("payment failed run-7", "eee19b7ec3c1b174")
        ]
        assert len(_records(url, severity="error", q="node")) == 2  # error and fatal
        assert [r["body"] for r in _records(url, attr="cart.paid=false", severity="fatal")] == [
            "fatal from node run-7"
        ]
