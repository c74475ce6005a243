"""A walk over the rule-kind registry: every registered kind is one module whose example
validates and round-trips as stored, queries a real store, is judged, names what it watches
and its unit, says its Prometheus form (or why it has none), and is listed by the API.

A new kind fails here until it has each part (see CONTRIBUTING.md, "How to add a rule kind").
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator

import pytest

from tests.alerting._spans import requests
from watchkeeper.alerting import PromQLReader, Rule, Signals, evaluate, parse_rule
from watchkeeper.alerting._config import Slo, rule_to_data
from watchkeeper.alerting._fetch import example_traces, fetch
from watchkeeper.alerting.exports import Skipped, rule_expression
from watchkeeper.alerting.kinds import KINDS, RULE_KINDS, kind_name, own_fields
from watchkeeper.model import LogRow, Sample, ScoreRow
from watchkeeper.query import Engine
from watchkeeper.server._kinds_api import kind_info
from watchkeeper.store.duckdb import DuckDBStore
from watchkeeper.store.duckdb_logs import DuckDBLogStore
from watchkeeper.store.logs import LogStore
from watchkeeper.store.metrics import MetricsStore

NOW = 1_800_000_000.0
UNITS = {"", "%", "ms", "s", "USD", "x"}
SLOS = {"checkout-availability": Slo(id="checkout-availability")}


@pytest.fixture(scope="module")
def metrics() -> Iterator[PromQLReader]:
    """A metric store where a target is down (`up` 0), for PromQL rules."""
    s = MetricsStore(None)
    labels = (("__name__", "up"), ("instance", "db:9187"), ("job", "postgres"))
    s.write("default", [Sample(labels, int((NOW - 10) * 1000), 0.0)])
    yield PromQLReader(Engine(s))
    s.close()


@pytest.fixture(scope="module")
def logs() -> Iterator[LogStore]:
    """A log store with 120 records in the last minute, one in ten an error timeout."""
    s = DuckDBLogStore(None)
    t = int((NOW - 30) * 1e9)
    s.write(
        [
            LogRow("default", f"{i:016x}", t + i, t + i, 17, "ERROR", f"call {i} hit a timeout")
            if i % 10 == 0
            else LogRow("default", f"{i:016x}", t + i, t + i, 9, "INFO", f"call {i} answered")
            for i in range(120)
        ]
    )
    yield s
    s.close()


@pytest.fixture(scope="module")
def store() -> Iterator[DuckDBStore]:
    s = DuckDBStore(None)
    for day in range(4):  # today and the same hour of three past days (anomaly baselines)
        s.write(requests(NOW - day * 86400, 40, timeouts=4, errors=2, cost_usd=0.01))
    traces = [f"{k:032x}" for k in range(1, 11)]
    s.write_scores(
        [
            ScoreRow("default", f"s{k}", t, "user_feedback", int((NOW - 60) * 1e9), value=k % 2)
            for k, t in enumerate(traces)
        ]
    )
    yield s
    s.close()


def test_kinds_are_registered_once_each_in_their_own_module() -> None:
    assert list(KINDS) == [kind_name(m) for m in RULE_KINDS]
    assert len(set(KINDS)) == len(RULE_KINDS)
    for model in RULE_KINDS:
        assert model.__module__ == f"watchkeeper.alerting.kinds._{kind_name(model)}"


@pytest.mark.parametrize("model", RULE_KINDS, ids=kind_name)
def test_every_kind_has_each_part(
    model: type[Rule], store: DuckDBStore, metrics: PromQLReader, logs: LogStore
) -> None:
    name = kind_name(model)
    assert not inspect.isabstract(model), f"{name} leaves a part undefined"
    assert model.label and model.about and model.example, f"{name}: label, about, example"
    rule = parse_rule({"id": "walk", "kind": name, **model.example})
    assert type(rule) is model
    assert parse_rule(rule_to_data(rule)) == rule  # stored and read back as it was
    assert set(model.example) <= {*own_fields(model), "window", "threshold", "group_by",
                                  "filters", "comparison"}  # fmt: skip

    data = fetch(store, rule, NOW, SLOS, {}, Signals(metrics, logs))
    decision = evaluate(rule, data, NOW)
    assert decision.rule_id == "walk" and decision.observations
    judged = [o for o in decision.observations if o.value is not None]
    assert judged, f"{name} judged nothing on a store with spans, scores and past days"
    ids = example_traces(store, rule, judged[0].labels, NOW, 5, SLOS)
    assert all(len(i) == 32 for i in ids)

    assert rule.watches() and rule.unit() in UNITS
    condition = rule.condition()
    assert condition is None or condition.strip()
    exported = rule_expression(rule)
    if isinstance(exported, Skipped):
        assert exported.reason
    else:
        assert "watchkeeper_" in exported.expr or exported.native  # promql: as written

    info = kind_info(model)
    assert info.kind == name and set(info.parameters) == set(own_fields(model))


@pytest.mark.parametrize("model", RULE_KINDS, ids=kind_name)
def test_another_kinds_parameters_are_ignored_as_before(model: type[Rule]) -> None:
    others = {k: v for m in RULE_KINDS if m is not model for k, v in m.example.items()
              if k in own_fields(m) and k not in own_fields(model)}  # fmt: skip
    plain = parse_rule({"id": "walk", "kind": kind_name(model), **model.example})
    mixed = parse_rule({**others, "id": "walk", "kind": kind_name(model), **model.example})
    assert mixed == plain
