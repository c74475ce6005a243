"""Conformance vectors: OTLP/JSON samples of each convention and the columns they must give.

Each file in tests/data/otlp/ holds a request and, per span id, the expected `SpanRow`
columns (and `payload.<field>` for `PayloadRow`). The same request is also sent through the
protobuf decoder (converted with the official protobuf JSON parser) to check both agree.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.ingest.conftest import DATA
from watchkeeper.ingest import Pricer, Settings, decode, normalize
from watchkeeper.model import PayloadRow, SpanRow

VECTORS = sorted((DATA / "otlp").glob("*.json"))
PRICER = Pricer()


def _rows(request: bytes, encoding: str) -> dict[str, tuple[SpanRow, PayloadRow]]:
    decoded = decode(request, encoding)  # type: ignore[arg-type]
    assert decoded.rejected == 0, decoded.error_message
    done = normalize(decoded.spans, Settings("p1", pricer=PRICER))
    batch, dropped = done.batch, done.dropped
    assert dropped == 0
    return {s.span_id: (s, p) for s, p in zip(batch.spans, batch.payloads, strict=True)}


def _check(rows: dict[str, tuple[SpanRow, PayloadRow]], expected: dict[str, Any]) -> None:
    assert set(rows) == set(expected)
    for span_id, columns in expected.items():
        span, payload = rows[span_id]
        for column, want in columns.items():
            got = (
                getattr(payload, column.removeprefix("payload."))
                if column.startswith("payload.")
                else getattr(span, column)
            )
            if isinstance(want, float):
                assert got == pytest.approx(want), f"{span_id}.{column}"
            else:
                assert got == want, f"{span_id}.{column}: {got!r} != {want!r}"
        assert span.project == payload.project == "p1"


@pytest.mark.parametrize("path", VECTORS, ids=[p.stem for p in VECTORS])
def test_json_vector(path: Path) -> None:
    vector = orjson.loads(path.read_bytes())
    _check(_rows(orjson.dumps(vector["request"]), "json"), vector["expected"])


@pytest.mark.parametrize("path", VECTORS, ids=[p.stem for p in VECTORS])
def test_protobuf_vector(path: Path) -> None:
    vector = orjson.loads(path.read_bytes())
    message = json_format.Parse(
        json.dumps(_hex_ids_to_base64(vector["request"])),
        ExportTraceServiceRequest(),
        ignore_unknown_fields=True,
    )
    _check(_rows(message.SerializeToString(), "protobuf"), vector["expected"])


def _hex_ids_to_base64(doc: Any) -> Any:
    """OTLP/JSON ids are hex; the plain protobuf JSON parser wants base64 bytes."""
    import base64

    if isinstance(doc, list):
        return [_hex_ids_to_base64(x) for x in doc]
    if not isinstance(doc, dict):
        return doc
    out = {}
    for k, v in doc.items():
        if k in ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"):
            v = base64.b64encode(bytes.fromhex(v)).decode() if v else ""
        elif k in ("some_unknown_field",):
            continue
        out[k] = _hex_ids_to_base64(v)
    return out


def test_raw_attributes_resource_and_events_go_to_the_payload() -> None:
    vector = orjson.loads((DATA / "otlp" / "genai_deprecated.json").read_bytes())
    rows = _rows(orjson.dumps(vector["request"]), "json")
    _, payload = rows["1111111111111111"]
    assert orjson.loads(payload.attributes)["gen_ai.usage.prompt_tokens"] == 2000
    assert orjson.loads(payload.resource) == {
        "service.name": "legacy",
        "otel.scope.name": "openllmetry",
    }
    assert [e["name"] for e in orjson.loads(payload.events)] == [
        "gen_ai.content.prompt",
        "gen_ai.content.completion",
    ]


def test_project_from_resource_only_when_allowed() -> None:
    doc = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "watchkeeper.project", "value": {"stringValue": "x"}}]
                },
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": "44" * 16,
                                "spanId": "44" * 8,
                                "startTimeUnixNano": "1",
                                "endTimeUnixNano": "2",
                            }
                        ]
                    }
                ],
            }
        ]
    }
    spans = decode(orjson.dumps(doc), "json").spans
    keyed = normalize(spans, Settings("from-key", project_from_resource=False)).batch
    open_ = normalize(spans, Settings("default", project_from_resource=True)).batch
    assert keyed.spans[0].project == "from-key"
    assert open_.spans[0].project == open_.payloads[0].project == "x"


def _llm_span(params: dict[str, Any]) -> dict[str, Any]:
    """A request of one failed OpenInference LLM span whose parameters attribute is `params`."""
    attrs = [
        {"key": "openinference.span.kind", "value": {"stringValue": "LLM"}},
        {"key": "llm.invocation_parameters", "value": params},
    ]
    span = {"traceId": "55" * 16, "spanId": "55" * 8, "startTimeUnixNano": "1",
            "endTimeUnixNano": "2", "status": {"code": 2}, "attributes": attrs}  # fmt: skip
    return {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}


@pytest.mark.parametrize(
    ("params", "model"),
    [
        ({"stringValue": '{"model": "gpt-4o-mini", "temperature": 0}'}, "gpt-4o-mini"),
        ({"kvlistValue": {"values": [{"key": "model", "value": {"stringValue": "o3"}}]}}, "o3"),
        ({"stringValue": '{"model": 5}'}, None),
        ({"stringValue": '{"model": ""}'}, None),
        ({"stringValue": '["model", "gpt-4o"]'}, None),
        ({"stringValue": '{"model": "gpt-4o"'}, None),
        ({"stringValue": "not json"}, None),
        ({"stringValue": ""}, None),
        ({"stringValue": "[" * 60_000}, None),  # deeper than the parser goes
        ({"stringValue": '{"model": "gpt-4o", "x": "' + "a" * 70_000 + '"}'}, None),  # too long
        ({"intValue": "7"}, None),
    ],
    ids=[
        "json",
        "kvlist",
        "number",
        "empty-model",
        "array",
        "cut",
        "text",
        "empty",
        "deep",
        "long",
        "int",
    ],
)
def test_invocation_parameters_name_a_failed_calls_model(params: Any, model: str | None) -> None:
    spans = decode(orjson.dumps(_llm_span(params)), "json").spans
    done = normalize(spans, Settings("p1", pricer=PRICER))
    assert done.failed == 0, done.error
    [row] = done.batch.spans
    assert (row.request_model, row.outcome, row.cost_source) == (model, "error", "none")
