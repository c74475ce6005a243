"""`feedback()` against a real `watchkeeper serve` with keys: the score joins its trace."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from tests.eventually import eventually
from tests.server._process import ServerProcess

import watchkeeper
from watchkeeper.sdk._feedback import flush_feedback


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    data_dir: Path = tmp_path_factory.mktemp("wk") / "data"
    done = subprocess.run(
        [sys.executable, "-m", "watchkeeper", "keys", "create", "--project", "shop",
         "--role", "editor", "--data-dir", str(data_dir)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    key = done.stdout.strip().splitlines()[-1]
    server = ServerProcess(data_dir).start()
    yield server, key
    server.stop()
    watchkeeper.shutdown()


def trace_json(server: ServerProcess, key: str, trace_id: str) -> dict[str, Any]:
    """The trace as the API returns it, once its span and score arrived (ingest is async)."""
    headers = {"Authorization": f"Bearer {key}"}

    def body() -> dict[str, Any]:
        r = httpx.get(f"{server.url}/api/v1/traces/{trace_id}", headers=headers, timeout=10)
        return dict(r.json()) if r.status_code == 200 else {}

    return eventually(body, 30, 0.3, until=lambda b: bool(b.get("scores")))


@pytest.mark.slow
def test_feedback_is_stored_on_the_trace(keyed_server: tuple[ServerProcess, str]) -> None:
    server, key = keyed_server
    watchkeeper.init("shop-api", endpoint=server.url, api_key=key, json_logs=False,
                     registry=CollectorRegistry(), raise_errors=True)  # fmt: skip
    with watchkeeper.observe("answer", kind="workflow") as span:
        trace_id = span.trace_id
    assert watchkeeper.flush(10)
    assert watchkeeper.feedback(trace_id, 1.0, "thumbs_up", comment="spot on", user_id="u-7")
    assert flush_feedback(10)
    body = trace_json(server, key, trace_id)
    assert [s["name"] for s in body["spans"]] == ["answer"]
    [score] = body["scores"]
    assert score["name"] == "user_feedback" and score["value"] == 1.0
    assert score["label"] == "thumbs_up" and score["comment"] == "spot on"
    assert score["user_id"] == "u-7"


def test_a_wrong_key_fails_quietly_and_is_counted(keyed_server: tuple[ServerProcess, str]) -> None:
    server, _ = keyed_server
    registry = CollectorRegistry()
    watchkeeper.init("shop-api", endpoint=server.url, api_key="wk_wrong", json_logs=False,
                     registry=registry, raise_errors=False)  # fmt: skip
    assert watchkeeper.feedback("0af7651916cd43dd8448eb211c80319c", 0.0) is True
    assert flush_feedback(10)
    labels = {"kind": "feedback_failed"}
    assert registry.get_sample_value("watchkeeper_sdk_errors_total", labels) == 1.0
