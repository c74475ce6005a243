"""Operators' overrides of guard settings: from the environment or a file, read at init(),
shown on the guard span, a warning (never an exception into the app) for a bad value."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import watchkeeper
from watchkeeper import CircuitOpen
from watchkeeper.errors import ConfigError
from watchkeeper.model import conventions as c
from watchkeeper.sdk._guard_config import load, normalize
from watchkeeper.sdk._guard_run import (
    WK_GUARD_BACKOFF_S,
    WK_GUARD_BREAKER_FAILURES,
    WK_GUARD_BREAKER_RESET_S,
    WK_GUARD_OVERRIDDEN,
    WK_GUARD_RETRIES,
)

from .conftest import start_sdk

SLACK = 1.0  # a loaded 2-core CI machine


@pytest.fixture(autouse=True)
def clean() -> Iterator[None]:
    watchkeeper.shutdown()
    yield
    watchkeeper.shutdown()


@pytest.mark.parametrize(
    ("name", "normalized"),
    [
        ("billing-agent.answer", "BILLING_AGENT_ANSWER"),
        ("Billing Agent  Answer", "BILLING_AGENT_ANSWER"),
        ("llm", "LLM"),
        ("-search/v2-", "SEARCH_V2"),
    ],
)
def test_names_are_upper_case_with_runs_of_other_characters_one_underscore(
    name: str, normalized: str
) -> None:
    assert normalize(name) == normalized


def test_the_environment_wins_over_the_file_and_the_file_names_match_loosely(
    tmp_path: Path,
) -> None:
    path = tmp_path / "guards.json"
    doc = {
        "guards": {
            "billing-agent.answer": {"deadline": 4, "retries": 3, "breaker": {"reset_timeout": 5}},
            "search": {"backoff": "0.05", "breaker.failure_threshold": 2},
        }
    }
    path.write_text(json.dumps(doc))
    env = {
        "WATCHKEEPER_GUARD_CONFIG": str(path),
        "WATCHKEEPER_GUARD__BILLING_AGENT_ANSWER__DEADLINE": "6",
        "WATCHKEEPER_GUARD__BILLING_AGENT_ANSWER__BREAKER__HALF_OPEN_MAX_CALLS": " 2 ",
        "OTEL_SERVICE_NAME": "unrelated",
    }
    table, problems = load(env)
    assert problems == []
    assert table == {
        "BILLING_AGENT_ANSWER": {
            "deadline": 6.0,
            "retries": 3,
            "breaker.reset_timeout": 5.0,
            "breaker.half_open_max_calls": 2,
        },
        "SEARCH": {"backoff": 0.05, "breaker.failure_threshold": 2},
    }


def test_a_yaml_file(tmp_path: Path) -> None:
    path = tmp_path / "guards.yaml"
    path.write_text("guards:\n  llm:\n    deadline: 2.5\n    breaker: {failure_threshold: 4}\n")
    table, problems = load({}, path)
    assert (table, problems) == ({"LLM": {"deadline": 2.5, "breaker.failure_threshold": 4}}, [])


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("DEADLINE", "abc", "give seconds > 0 and < 10"),
        ("DEADLINE", "0", "give seconds > 0 and < 10"),
        ("DEADLINE", "12", "give seconds > 0 and < 10"),
        ("DEADLINE", "nan", "give seconds > 0 and < 10"),
        ("RETRIES", "1.5", "a whole number >= 0"),
        ("RETRIES", "-1", "a whole number >= 0"),
        ("BACKOFF", "-0.1", "seconds >= 0"),
        ("BREAKER__RESET_TIMEOUT", "0", "seconds > 0"),
        ("BREAKER__FAILURE_THRESHOLD", "0", "a whole number >= 1"),
        ("TIMEOUT", "3", "unknown guard setting 'timeout'"),
    ],
)
def test_a_bad_variable_is_named_with_what_to_give(key: str, value: str, says: str) -> None:
    variable = f"WATCHKEEPER_GUARD__LLM__{key}"
    table, problems = load({variable: value, "WATCHKEEPER_GUARD__OTHER__RETRIES": "1"})
    assert table == {"OTHER": {"retries": 1}}
    assert len(problems) == 1 and variable in problems[0] and says in problems[0]


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("{not json", "not read"),
        ('{"deadline": 3}', "expected a mapping with a 'guards' key"),
        ('{"guards": {"llm": 3}}', "guards.llm must be a mapping"),
        ('{"guards": {"llm": {"retries": true}}}', "guards.llm.retries=True ignored"),
    ],
)
def test_a_bad_file_is_named_with_what_to_give(tmp_path: Path, content: str, says: str) -> None:
    path = tmp_path / "guards.json"
    path.write_text(content)
    table, problems = load({"WATCHKEEPER_GUARD_CONFIG": str(path)})
    assert table == {}
    assert len(problems) == 1 and says in problems[0] and str(path) in problems[0]


def test_a_missing_file_is_a_problem_not_an_error(tmp_path: Path) -> None:
    table, problems = load({"WATCHKEEPER_GUARD__LLM__DEADLINE": "3"}, tmp_path / "none.json")
    assert table == {"LLM": {"deadline": 3.0}}
    assert len(problems) == 1 and "none.json" in problems[0] and "not read" in problems[0]


def test_init_applies_overrides_to_guards_made_before_and_after_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    release = threading.Event()
    before = watchkeeper.guard("billing-agent.answer", deadline=5.0, fallbacks=["fb"])
    hang = before(lambda: release.wait(10))
    monkeypatch.setenv("WATCHKEEPER_GUARD__BILLING_AGENT_ANSWER__DEADLINE", "0.2")
    monkeypatch.setenv("WATCHKEEPER_GUARD__BILLING_AGENT_ANSWER__RETRIES", "0")
    sdk = start_sdk()
    try:
        start = time.monotonic()
        assert hang() == "fb"  # cut at the operator's 0.2 s, not the code's 5 s
        assert time.monotonic() - start < 0.2 + SLACK
    finally:
        release.set()
    span = sdk.span("guard billing-agent.answer")
    attrs = dict(span.attributes or {})
    assert attrs[c.WK_GUARD_DEADLINE_S] == 0.2
    assert attrs[WK_GUARD_RETRIES] == 0
    assert attrs[WK_GUARD_BACKOFF_S] == 0.2  # the code's, shown too
    assert attrs[WK_GUARD_BREAKER_FAILURES] == 5 and attrs[WK_GUARD_BREAKER_RESET_S] == 30.0
    assert list(attrs[WK_GUARD_OVERRIDDEN]) == ["deadline", "retries"]  # type: ignore[arg-type]
    after = watchkeeper.guard("billing-agent.answer", deadline=5.0)
    assert after.policy.deadline == 0.2
    watchkeeper.shutdown()  # back to the settings in the code
    assert before.policy.deadline == after.policy.deadline == 5.0
    assert before.policy.overridden == ()


def test_breaker_overrides_from_a_mapping_and_span_without_overrides() -> None:
    guard = watchkeeper.guard("brk-config", retries=0, fallbacks=["fb"])

    @guard
    def down() -> str:
        raise ConnectionError("down")

    sdk = start_sdk(guard_config={"guards": {"brk-config": {"breaker": {"failure_threshold": 1}}}})
    assert down() == "fb"  # the one failure that opens it
    assert down() == "fb"  # refused by the open breaker, answered by the fallback
    assert guard.policy.breaker is not None and guard.policy.breaker.state == "open"
    attrs = [dict(s.attributes or {}) for s in sdk.spans() if s.name == "guard brk-config"]
    assert [a[WK_GUARD_BREAKER_FAILURES] for a in attrs] == [1, 1]
    assert list(attrs[0][WK_GUARD_OVERRIDDEN]) == ["breaker.failure_threshold"]  # type: ignore[arg-type]
    with pytest.raises(CircuitOpen):
        watchkeeper.guard("brk-config", retries=0).call(lambda: "never")
    watchkeeper.shutdown()
    assert guard.policy.breaker.failure_threshold == 5
    sdk = start_sdk()
    watchkeeper.guard("plain", breaker=False).call(lambda: "ok")
    attrs0 = dict(sdk.span("guard plain").attributes or {})
    assert WK_GUARD_OVERRIDDEN not in attrs0 and WK_GUARD_BREAKER_FAILURES not in attrs0


def test_bad_values_are_warnings_and_the_rest_still_applies(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    guard = watchkeeper.guard("warned", deadline=3.0, breaker=False)
    monkeypatch.setenv("WATCHKEEPER_GUARD__WARNED__DEADLINE", "soon")
    monkeypatch.setenv("WATCHKEEPER_GUARD__WARNED__RETRIES", "0")
    monkeypatch.setenv("WATCHKEEPER_GUARD__WARNED__BREAKER__RESET_TIMEOUT", "5")
    with caplog.at_level(logging.WARNING, logger="watchkeeper.sdk.guard"):
        sdk = start_sdk(raise_errors=False)
    messages = [r.getMessage() for r in caplog.records]
    assert any("WATCHKEEPER_GUARD__WARNED__DEADLINE='soon' ignored" in m for m in messages)
    assert any("'warned' has no breaker" in m for m in messages)
    assert (guard.policy.deadline, guard.policy.retries) == (3.0, 0)
    assert guard.call(lambda: "ok") == "ok"  # the app goes on
    assert sdk.metric("watchkeeper_sdk_errors_total", {"kind": "guard.config"}) == 2


def test_under_tests_a_bad_value_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHKEEPER_GUARD__RAISED__DEADLINE", "-1")
    with pytest.raises(ConfigError, match="WATCHKEEPER_GUARD__RAISED__DEADLINE"):
        start_sdk()


def test_a_later_init_takes_the_new_overrides(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    guard = watchkeeper.guard("again", deadline=3.0)
    options: dict[str, Any] = {"guard_config": {"guards": {"again": {"deadline": 2}}}}
    start_sdk(**options)
    first = guard.policy
    monkeypatch.setenv("WATCHKEEPER_GUARD__AGAIN__DEADLINE", "1")
    start_sdk(**options)  # another registry: init again, the variable now wins
    assert first.deadline == 2.0 and guard.policy.deadline == 1.0
