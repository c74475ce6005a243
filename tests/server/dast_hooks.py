"""A check for schemathesis's all-checks scan (loaded through `SCHEMATHESIS_HOOKS`).

Some rules of the API join two fields or name what exists, which no JSON Schema can say:
`start` before `end`, a step that gives at most 20,000 buckets, increasing heatmap bounds, a
rule's fields that fit together, a silence that ends after it starts. A schema-valid request
that breaks one gets a 400 naming it. schemathesis.toml lets `positive_data_acceptance` take
that 400 on exactly the operations listed here; this check makes sure a 400 there names one
of the operation's rules, so no other refusal of valid data hides behind them.
"""

from __future__ import annotations

import re
from typing import Any

import schemathesis

#: Start before end: a time filter's `start` and `end` (the query API's spans and scores).
_RANGE = r"^start must be before end$"
#: A time series or heatmap's `step_ms` over the range: at most 20,000 buckets.
_BUCKETS = r"^step of .* s makes \d+ buckets over this range; use a step that gives at most"
#: A heatmap's `bounds`, each above the one before (in whole nanoseconds).
_BOUNDS = r"^bounds must be 1-100 increasing latency upper bounds in ms$"
#: A rule's fields that fit together only in some ways (the kind's `check`), and what it names.
_RULE = (
    r"Value error, absence: lookback must be longer than window",  # lookback vs window
    r"Value error, burn_rate needs slo and a short_window shorter than window",  # the windows
    r"Value error, threshold .* is not a share: a score rule",  # threshold vs score_stat
    r"^rule \S+: no SLO '.*' in project '.*'; see GET /api/v1/slos$",  # an SLO of the project
    r"^rule \S+: unknown channels \[.*\]; configured: ",  # a channel of the config file
    r"Value error, (expr: \d+:\d+: parse error|a promql rule needs expr)",  # PromQL text
)
#: A rules file is text the schema cannot check: YAML, groups and rules Prometheus takes.
_RULES_FILE = (r"^rules file: ",)
#: A silence's times and matchers.
_SILENCE = (
    r"^silence: ends_at must be after starts_at$",  # ends_at (or starts_at + duration)
    r"^silence: starts_at and ends_at must be between 1970 and 2262$",  # starts_at + duration
    r"^invalid silence: .*bad regular expression",  # a value after =~ or !~ is a regex
)
#: A PromQL expression that does not parse or evaluate (no schema says which strings are
#: PromQL), a time, duration or selector the schema's patterns allow but that does not exist
#: (month 13, a range past 11,000 steps), and Prometheus's `execution` errors (422).
_PROMQL = (
    r"^(\d+:\d+: )?parse error: ",
    r"is not supported yet",
    r"^expected (type|a string)",
    r"^invalid expression type",
    r"^(binary|unary) expression",
    r"^cannot parse .* to a valid (timestamp|duration)$",
    r"^(time|start|end) .* is out of range$",
    r"^end timestamp must not be before start time$",
    r"^exceeded maximum resolution of 11,000 points",
    r"^zero or negative query resolution step",
    r"^vector selector must contain at least one non-empty matcher$",
    r"^invalid parameter 'match\[\]'",
    r"^invalid regular expression",
    r"^an offset or range of more than 100 years",
    r"many-to-many matching not allowed|multiple matches for labels|same labelset",
    r"would load too many samples",
    r"^start and end are required$",
    r"^no match\[\] parameter provided$",
)
#: A dashboard: its PromQL parses, a panel fits in 24 columns, a query is promql or spans,
#: and the project is the caller's (or "*").
_DASHBOARD = (
    r"Value error, parse error: ",
    r"Value error, x \+ w must be at most 24",
    r"Value error, a query is either `promql: EXPR` or `spans",
    r"^project: '.*' is not this key's project",
)
#: A remote-write body is bytes: any the schema allows may not be snappy or a WriteRequest.
_REMOTE_WRITE = (r"^body is not ", r"series refused: ", r"^body inflates")
_PROMETHEUS = ("query", "query_range", "series", "labels")  # GET and POST
_QUERY = ("summary", "breakdown", "breakdowns", "spans", "traces", "sessions", "users",
          "scores/summary", "scores", "services", "environments", "models")  # fmt: skip

#: Operation -> the rules its 400 may name when its request is schema-valid.
CROSS_FIELD: dict[str, tuple[str, ...]] = {
    **{f"GET /api/v1/{path}": (_RANGE,) for path in _QUERY},
    "GET /api/v1/timeseries": (_RANGE, _BUCKETS),
    "GET /api/v1/heatmap": (_RANGE, _BUCKETS, _BOUNDS),
    "POST /api/v1/rules": _RULE,
    "PUT /api/v1/rules/{rule_id}": _RULE,
    "POST /api/v1/rules/test": (*_RULE, *_PROMQL),  # a promql draft is evaluated
    "POST /api/v1/rules/prometheus": _RULES_FILE,
    "POST /api/v1/silences": _SILENCE,
    **{f"{m} /prometheus/api/v1/{path}": _PROMQL for path in _PROMETHEUS for m in ("GET", "POST")},
    "GET /prometheus/api/v1/label/{name}/values": _PROMQL,
    "POST /api/v1/write": _REMOTE_WRITE,
    "POST /api/v1/dashboards": _DASHBOARD,
    "PUT /api/v1/dashboards/{board_id}": _DASHBOARD,
}


def _error(response: Any) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    return str(body.get("error", body)) if isinstance(body, dict) else str(body)


@schemathesis.serializer("application/x-protobuf")
def empty_protobuf(_ctx: Any, _value: Any) -> bytes:
    """Schemathesis cannot make protobuf messages from a binary schema: a protobuf body
    (OTLP, remote-write) is sent empty (a valid empty message; no snappy header for
    remote-write: its 400). Bad bodies are the decoders' own tests' (tests/metrics,
    tests/ingest)."""
    return b""


@schemathesis.check
def refusal_names_a_cross_field_rule(ctx: Any, response: Any, case: Any) -> bool | None:
    """A schema-valid request refused with 400 where CROSS_FIELD lets it be: the error names
    one of the operation's rules."""
    meta = case.meta
    rules = CROSS_FIELD.get(case.operation.label)
    if rules is None or meta is None or response.status_code != 400:
        return None
    if not meta.generation.mode.is_positive:
        return None
    error = _error(response)
    if not any(re.search(rule, error) for rule in rules):
        raise AssertionError(
            f"a schema-valid request was refused with a 400 that names none of the rules "
            f"JSON Schema cannot say for {case.operation.label}: {error!r}"
        )
    return None
