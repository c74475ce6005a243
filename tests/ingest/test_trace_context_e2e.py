"""A plain OpenTelemetry app (no Watchkeeper SDK) that sets `user.id`, `session.id` and the
feature on the root span only and sends the children first: its spend by user, session and
feature is exact to the cent (issue 15, item 3)."""

from __future__ import annotations

from collections import defaultdict

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind

from tests.ingest.conftest import Receiver
from watchkeeper.ingest._cost import Pricer, Tokens
from watchkeeper.model import conventions as c
from watchkeeper.store import SpanFilter

FEATURE = "watchkeeper.feature"
assert FEATURE in c.READ["feature"]
#: (user, session, feature, [(model, input tokens, output tokens) of each LLM call])
REQUESTS = [
    ("alice", "s-1", "chat", [("gpt-4o", 1200, 340), ("gpt-4o-mini", 5000, 800)]),
    ("alice", "s-2", "rag", [("gpt-4o", 900, 120)]),
    ("bob", "s-3", "chat", [("gpt-4o", 30000, 2000), ("gpt-4o", 700, 90)]),
]


def _send(receiver: Receiver) -> None:
    """Each span is its own export; the children are stored before their root is sent."""
    provider = TracerProvider(resource=Resource.create({"service.name": "plain-otel-app"}))
    exporter = OTLPSpanExporter(endpoint=f"{receiver.url}/v1/traces", timeout=10)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("plain-app")
    for user, session, feature, calls in REQUESTS:
        root = tracer.start_span(
            "POST /answer",
            kind=SpanKind.SERVER,
            attributes={"user.id": user, "session.id": session, FEATURE: feature},
        )
        ctx = trace.set_span_in_context(root)
        for model, tin, tout in calls:
            with tracer.start_as_current_span(
                f"chat {model}",
                context=ctx,
                kind=SpanKind.CLIENT,
                attributes={
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": model,
                    "gen_ai.usage.input_tokens": tin,
                    "gen_ai.usage.output_tokens": tout,
                },
            ):
                pass
        assert receiver.ingest.flush(30), "ingest did not drain"
        assert receiver.store.count("default") > 0
        root.end()
    provider.shutdown()
    assert receiver.ingest.flush(30), "ingest did not drain"


def _expected(index: int) -> dict[str, float]:
    """Spend per user, session or feature (tuple index 0, 1, 2) from the price table."""
    pricer, out = Pricer(), defaultdict(float)
    for request in REQUESTS:
        for model, tin, tout in request[3]:
            cost = pricer.cost("openai", model, Tokens(input=tin, output=tout))
            assert cost is not None
            out[str(request[index])] += cost
    return dict(out)


@pytest.mark.slow
def test_spend_by_user_session_and_feature_of_a_plain_otel_app(receiver: Receiver) -> None:
    _send(receiver)
    store, f = receiver.store, SpanFilter("default")
    assert store.count("default") == sum(1 + len(r[3]) for r in REQUESTS)
    for by, index in (("user", 0), ("session", 1), ("feature", 2)):
        want = _expected(index)
        for percentiles in (True, False):
            groups = store.breakdown(f, by, limit=50, order="cost", percentiles=percentiles)
            got = {g.key: g.summary.cost_usd for g in groups}
            assert set(got) == set(want)  # no spans left without a user, session or feature
            for key, cost in want.items():
                assert round(got[key], 2) == round(cost, 2) and got[key] == pytest.approx(cost)
    users = {a.key: a for a in store.users(f)}
    sessions = {a.key: a for a in store.sessions(f)}
    for activity, index in ((users, 0), (sessions, 1)):
        for key, cost in _expected(index).items():
            assert activity[key].cost_usd == pytest.approx(cost)
            assert activity[key].spans == sum(1 + len(r[3]) for r in REQUESTS if r[index] == key)
    alice = store.summary(SpanFilter("default", user_id="alice", scope="llm"))
    assert alice.count == 3 and alice.cost_usd == pytest.approx(_expected(0)["alice"])
    chat = store.summary(SpanFilter("default", features=("chat",)))
    assert chat.cost_usd == pytest.approx(_expected(2)["chat"])
