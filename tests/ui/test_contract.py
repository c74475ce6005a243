"""The web UI reads only what /openapi.json declares: every API path it calls is an operation
of the document, and every API field it reads (snake_case, as every field of our API is;
the UI's own names are camelCase) is a property of one of the document's schemas.

A field renamed in the API (`step_s` to `step_ms`) and not in the UI fails here, before a
browser shows a dash where a number was.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from watchkeeper.config import load_config
from watchkeeper.server.app import create_app

JS = Path(__file__).resolve().parents[2] / "src" / "watchkeeper" / "ui" / "static" / "js"
#: Not the API's: chat messages and tool calls inside payloads, read in the formats of the
#: LLM providers and conventions that wrote them (OpenAI, Anthropic, OpenTelemetry GenAI).
PAYLOAD_FORMATS = {"messages.js"}
#: Keys of free-form maps the API declares as such (a rule's `annotations`), not fields.
MAP_KEYS = {"runbook_url"}
FIELD = re.compile(r"(?<![\w$])[A-Za-z_$][\w$]*(?:\?)?\.([a-z][a-z0-9]*(?:_[a-z0-9]+)+)\b")
API_PATH = re.compile(r"""["'`](/api/v1/[A-Za-z0-9_/{}.-]*)""")


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    data = tmp_path_factory.mktemp("contract")
    config = load_config(None, env={}, overrides={"server": {"data_dir": data}})
    doc: dict[str, Any] = create_app(config).openapi()
    return doc


def _sources() -> Iterator[tuple[str, str]]:
    for path in sorted(JS.rglob("*.js")):
        if path.name not in PAYLOAD_FORMATS:
            yield str(path.relative_to(JS)), path.read_text()


def _properties(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                yield from value
            yield from _properties(value)
    elif isinstance(node, list):
        for value in node:
            yield from _properties(value)


def fields_read(source: str) -> set[str]:
    """The snake_case properties a JS source reads (`x.first_ms`, `x?.trace_id`)."""
    return set(FIELD.findall(source))


def paths_called(source: str) -> set[str]:
    """The API paths a JS source names, as written (a prefix when an id is appended)."""
    return set(API_PATH.findall(source))


def test_every_field_the_ui_reads_is_declared(spec: dict[str, Any]) -> None:
    declared = set(_properties(spec))
    missing = {
        (name, field)
        for name, source in _sources()
        for field in fields_read(source)
        if field not in declared | MAP_KEYS
    }
    assert not missing, f"the UI reads fields /openapi.json does not declare: {sorted(missing)}"


def test_every_path_the_ui_calls_is_an_operation(spec: dict[str, Any]) -> None:
    templates = [re.sub(r"\{[^}]+\}", "[^/]+", p) for p in spec["paths"]]
    called = {(name, p) for name, source in _sources() for p in paths_called(source)}
    assert len(called) > 15, called  # the pages call the API: the pattern finds them
    unknown = {
        (name, p)
        for name, p in called
        if not any(re.fullmatch(t, p.rstrip("/")) or t.startswith(re.escape(p)) for t in templates)
    }
    assert not unknown, f"the UI calls paths /openapi.json does not have: {sorted(unknown)}"


def test_the_checks_see_a_field_or_path_the_api_lacks(spec: dict[str, Any]) -> None:
    """The checks' own patterns, on code made up here: they are not blind."""
    old = 'const stepMs = body.step_s; fmt.dateTime(r?.first_ns); api.get("/api/v1/nowhere")'
    assert fields_read(old) == {"step_s", "first_ns"}
    assert not {"step_s", "first_ns"} & set(_properties(spec))
    assert paths_called(old) == {"/api/v1/nowhere"}
    assert "/api/v1/nowhere" not in spec["paths"]
    assert "step_ms" in set(_properties(spec)) and "first_ms" in set(_properties(spec))
