"""Log alert rules end to end: records in through `POST /v1/logs`, a `log_count` and a
`log_ratio` rule fire at a real webhook receiver and resolve when the records stop matching;
bad rules are refused with what to fix; the Prometheus export says why they have no form."""

from __future__ import annotations

import time
from typing import Any

import httpx
import orjson
import pytest
from pydantic import ValidationError

from tests.alerting._receiver import Receiver
from tests.eventually import eventually
from tests.logs.test_engines import store_section
from tests.logs.test_http import _server
from tests.metrics.test_alerts import _alerting
from watchkeeper.alerting.kinds import LogCountRule, validate_rule


def _send(url: str, *records: tuple[str, str, str], at_s: float | None = None) -> None:
    """OTLP/JSON records: (service, severity text, body), at one time (so bodies differ: two
    records saying the same at the same time are one)."""
    ns = str(int((at_s if at_s is not None else time.time()) * 1e9))
    by_service: dict[str, list[dict[str, Any]]] = {}
    for service, severity, body in records:
        by_service.setdefault(service, []).append(
            {"timeUnixNano": ns, "severityText": severity, "body": {"stringValue": body}}
        )
    resource_logs = [
        {
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": s}}]},
            "scopeLogs": [{"logRecords": recs}],
        }
        for s, recs in by_service.items()
    ]
    r = httpx.post(
        f"{url}/v1/logs",
        content=orjson.dumps({"resourceLogs": resource_logs}),
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert r.status_code == 200, r.text


TIMEOUTS = {
    "id": "checkout-timeouts",
    "kind": "log_count",
    "logs": {"services": ["checkout"], "severity": "error", "text": '"upstream timeout"'},
    "threshold": 3,
    "comparison": ">=",
    "window": "15s",
    "severity": "critical",
}
ERROR_SHARE = {
    "id": "error-share",
    "kind": "log_ratio",
    "logs": {"services": ["search"], "severity": "error"},
    "threshold": "20%",
    "window": "15s",
    "min_count": 5,
}


def test_log_rules_fire_on_matching_records_and_resolve(tmp_path: Any, receiver: Receiver) -> None:
    alerting = _alerting(receiver.url, TIMEOUTS, ERROR_SHARE)
    with _server(tmp_path / "data", auth={"required": False}, alerting=alerting) as (url, svc):
        _send(
            url,
            *[("checkout", "ERROR", f"payment {i} failed: upstream timeout") for i in range(3)],
            ("checkout", "WARN", "upstream timeout, retrying"),  # below the severity
            ("checkout", "ERROR", "card declined"),  # other words
            ("billing", "ERROR", "upstream timeout"),  # another service
            *[("search", "INFO", f"query {i} answered") for i in range(6)],
            *[("search", "ERROR", f"index {i} unavailable") for i in range(2)],  # 2 of 8: 25%
        )
        assert svc.logs_ingest.flush(30)

        def firing() -> dict[str, dict[str, Any]]:
            return {b["rule_id"]: b for b in receiver.received if b.get("status") == "firing"}

        got = eventually(firing, 20, until=lambda f: len(f) == 2)
        assert got["checkout-timeouts"]["value"] == 3.0
        assert got["checkout-timeouts"]["severity"] == "critical"
        assert got["error-share"]["value"] == pytest.approx(25.0)  # a share, in percent

        # The window (15 s) moves past the records: both resolve.
        def resolved() -> set[str]:
            return {b["rule_id"] for b in receiver.received if b.get("status") == "resolved"}

        assert eventually(resolved, 60, until=lambda r: len(r) == 2) == {
            "checkout-timeouts", "error-share",
        }  # fmt: skip


@pytest.mark.parametrize("engine", ["duckdb", "clickhouse"])
def test_a_share_is_not_judged_below_min_count(
    engine: str, tmp_path: Any, receiver: Receiver
) -> None:
    """The rules read the log store of either engine (ClickHouse: on chDB)."""
    sections = store_section(engine, tmp_path) | {
        "auth": {"required": False},
        "alerting": _alerting(receiver.url, ERROR_SHARE, TIMEOUTS),
    }
    with _server(tmp_path / "data", **sections) as (url, svc):
        _send(url, ("search", "ERROR", "index unavailable"), ("search", "INFO", "ok"))  # 50% of 2
        _send(url, ("checkout", "ERROR", "upstream timeout, twice"))
        assert svc.logs_ingest.flush(30)
        assert svc.alerting is not None
        decision = svc.alerting.evaluator.test(validate_rule(ERROR_SHARE), time.time())
        (verdict,) = decision.observations
        assert verdict.value is None and not verdict.breaching and verdict.count == 2
        (count,) = svc.alerting.evaluator.test(validate_rule(TIMEOUTS), time.time()).observations
        assert count.value == 1.0 and not count.breaching
        assert receiver.received == []


@pytest.mark.parametrize(
    ("rule", "says"),
    [
        ({"filters": {"services": ["checkout"]}}, "put their conditions under logs"),
        ({"logs": {"severity": "loud"}}, "severity"),
        ({"logs": {"text": '""'}}, "has no word in it"),
        ({"kind": "log_ratio", "threshold": 3}, "is not a share"),
        ({"group_by": "service"}, "cannot use group_by"),
    ],
)
def test_bad_log_rules_say_what_to_fix(rule: dict[str, Any], says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        validate_rule({**TIMEOUTS, **rule})


def test_log_rules_have_no_prometheus_form() -> None:
    rule = validate_rule(TIMEOUTS)
    assert isinstance(rule, LogCountRule)
    assert "Prometheus holds no logs" in str(rule.promql())
    want = 'log records (error or worse, service checkout, containing "upstream timeout")'
    assert rule.watches() == want
