"""`feedback()` POSTs scores to the server from a bounded background queue, never raising."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry
from tests.sdk.integrations._receiver import receiver

import watchkeeper
from watchkeeper import feedback, init, shutdown
from watchkeeper.sdk._feedback import FeedbackSender, flush_feedback, scores_url

TRACE = "0af7651916cd43dd8448eb211c80319c"
SPAN = "b7ad6b7169203331"


@pytest.fixture(autouse=True)
def _no_sdk() -> Iterator[None]:
    shutdown()
    yield
    shutdown()


def start(url: str, *, raise_errors: bool = True, **kw: object) -> CollectorRegistry:
    registry = CollectorRegistry()
    init("feedback-test", endpoint=url, exporter=InMemorySpanExporter(), registry=registry,
         json_logs=False, raise_errors=raise_errors, **kw)  # type: ignore[arg-type]  # fmt: skip
    return registry


@pytest.mark.slow
def test_posts_the_score_with_the_api_key_and_project() -> None:
    with receiver() as rx:
        start(rx.url, api_key="wk_secret", project="shop")
        assert feedback(
            TRACE.upper(), 1.0, "thumbs_up", comment="great", user_id="u1", span_id=SPAN
        )
        assert flush_feedback(10)
        [req] = rx.wait_for(1)
    assert req.path == "/api/v1/scores"
    assert req.headers["authorization"] == "Bearer wk_secret"
    assert req.headers["x-watchkeeper-project"] == "shop"
    assert req.headers["content-type"] == "application/json"
    assert req.json() == {
        "trace_id": TRACE, "name": "user_feedback", "source": "feedback", "value": 1.0,
        "label": "thumbs_up", "comment": "great", "user_id": "u1", "span_id": SPAN,
    }  # fmt: skip


@pytest.mark.slow
def test_env_traces_endpoint_points_at_the_same_server(monkeypatch: pytest.MonkeyPatch) -> None:
    with receiver() as rx:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", rx.url + "/v1/traces")
        init("feedback-test", exporter=InMemorySpanExporter(), registry=CollectorRegistry(),
             json_logs=False, raise_errors=True)  # fmt: skip
        assert feedback(TRACE, label="wrong_answer", name="quality")
        assert flush_feedback(10)
        [req] = rx.wait_for(1)
    assert req.path == "/api/v1/scores"
    assert req.json() == {"trace_id": TRACE, "name": "quality", "source": "feedback",
                          "label": "wrong_answer"}  # fmt: skip


@pytest.mark.slow
def test_overload_is_retried_and_a_rejection_is_not() -> None:
    with receiver() as rx:
        start(rx.url)
        rx.statuses[:] = [503, 201]
        assert feedback(TRACE, 0.0)
        assert flush_feedback(10)
        assert len(rx.wait_for(2)) == 2  # the 503, then the retry that was accepted
        rx.statuses[:] = [400]
        assert feedback(TRACE, 1.0)
        assert flush_feedback(10)
        assert len(rx.wait_for(3)) == 3  # a 400 is final: no retry


@pytest.mark.slow
def test_is_a_no_op_before_init() -> None:
    with receiver() as rx:
        assert feedback(TRACE, 1.0) is False
        assert flush_feedback(1)
        assert rx.requests == []


@pytest.mark.slow
def test_bad_arguments_raise_under_tests_and_are_swallowed_otherwise() -> None:
    with receiver() as rx:
        start(rx.url)
        with pytest.raises(ValueError, match="32 hex"):
            feedback("not-a-trace", 1.0)
        with pytest.raises(ValueError, match="value, a label"):
            feedback(TRACE)
        start(rx.url, raise_errors=False)
        assert feedback("not-a-trace", 1.0) is False
        assert feedback(TRACE, float("nan")) is False
        assert feedback(TRACE, "1") is False  # type: ignore[arg-type]
        assert rx.requests == []


@pytest.mark.slow
def test_unreachable_server_never_raises_into_the_app() -> None:
    with receiver() as rx:
        url = rx.url
    registry = start(url, raise_errors=False)  # the receiver is gone: connection refused
    assert feedback(TRACE, 1.0) is True  # queued; delivery fails in the background
    assert flush_feedback(20)
    failed = registry.get_sample_value("watchkeeper_sdk_errors_total", {"kind": "feedback_failed"})
    assert failed == 1.0


@pytest.mark.slow
def test_full_queue_drops_and_counts() -> None:
    with receiver(hold=True) as rx:
        lost: list[str] = []
        sender = FeedbackSender(rx.url + "/api/v1/scores", {}, max_queue=2, on_loss=lost.append)
        body = {"trace_id": TRACE, "name": "user_feedback", "value": 1.0}
        assert sender.submit(body)
        rx.wait_for(1)  # the thread holds the first one in flight
        assert sender.submit(body) and sender.submit(body)
        assert not sender.submit(body)
        assert sender.dropped == 1 and lost == ["feedback_dropped"]
        assert sender.flush(0.05) is False  # still held by the receiver
        rx.release.set()
        assert sender.flush(10) and sender.sent == 3
        assert sender.close(5)
        assert not sender.submit(body) and sender.dropped == 2


@pytest.mark.parametrize(
    ("endpoint", "url"),
    [
        ("http://h:4318", "http://h:4318/api/v1/scores"),
        ("http://h:4318/", "http://h:4318/api/v1/scores"),
        ("https://h/wk/v1/traces", "https://h/wk/api/v1/scores"),
    ],
)
def test_scores_url(endpoint: str, url: str) -> None:
    assert scores_url(endpoint) == url


@pytest.mark.slow
def test_queued_feedback_is_delivered_when_the_app_exits() -> None:
    script = (
        "import sys, watchkeeper\n"
        "from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter\n"
        "watchkeeper.init('x', endpoint=sys.argv[1], exporter=InMemorySpanExporter(),"
        " json_logs=False)\n"
        f"for _ in range(5): watchkeeper.feedback('{TRACE}', 1.0)\n"
    )
    with receiver() as rx:
        done = subprocess.run([sys.executable, "-c", script, rx.url], timeout=60)
        assert done.returncode == 0
        assert len(rx.wait_for(5, timeout_s=5)) == 5


@pytest.mark.slow
def test_a_bool_value_is_a_thumbs_up_or_down() -> None:
    with receiver() as rx:
        start(rx.url)
        assert feedback(TRACE, True) and feedback(TRACE, False)
        assert flush_feedback(10)
        values = sorted(r.json()["value"] for r in rx.wait_for(2))
    assert values == [0.0, 1.0]


@pytest.mark.slow
def test_flush_returns_only_once_queued_feedback_was_delivered() -> None:
    with receiver(hold=True) as rx:
        registry = start(rx.url)
        assert feedback(TRACE, 1.0)
        rx.wait_for(1)  # in flight: the receiver holds its answer
        assert watchkeeper.flush(0.05) is False  # spans are out, the score is not
        answer = threading.Timer(0.2, rx.release.set)
        answer.start()
        try:
            assert watchkeeper.flush(10)
            assert rx.release.is_set()  # flush waited for the receiver's answer
        finally:
            rx.release.set()
            answer.cancel()
    assert [r.json()["value"] for r in rx.requests] == [1.0]
    lost = registry.get_sample_value("watchkeeper_sdk_errors_total", {"kind": "feedback_failed"})
    assert lost is None


@pytest.mark.slow
def test_shutdown_sends_queued_feedback_within_its_timeout() -> None:
    with receiver(hold=True) as rx:
        start(rx.url)
        assert feedback(TRACE, 0.0)
        answer = threading.Timer(0.2, rx.release.set)
        answer.start()
        try:
            shutdown(10)
            assert rx.release.is_set()  # shutdown waited for the receiver's answer
        finally:
            rx.release.set()
            answer.cancel()
    assert [r.json()["value"] for r in rx.requests] == [0.0]
