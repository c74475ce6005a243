"""Normalization: decoded spans → `SpanRow` + `PayloadRow`, through a pipeline of steps.

Like structlog's processors, every step has the same signature, `step(draft) -> None`, fills
some fields of the draft's rows from the span's attributes, and may raise `DropSpan`. The
pipeline is a plain list, so a deployment can add a step (PII redaction) or test one alone.
Attribute names come only from `watchkeeper.model.conventions`.

Every value that reaches a typed column is checked against a range the store and its sums
can hold (tokens, status codes, costs): a value outside it is left out (NULL), so no span
can make the store writer fail. A step that raises on one span costs that span only.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from watchkeeper.ingest._cost import Pricer, Tokens
from watchkeeper.ingest._decode import RawSpan, Resource
from watchkeeper.model import OPERATIONS, OUTCOMES, PayloadRow, SpanBatch, SpanRow
from watchkeeper.model import conventions as c

_NO_VALUE: Any = None
#: Most tokens one span may report: no model call comes near it, and the rollup's sums of
#: it cannot overflow (a u64 JSON answer holds 4 billion such spans).
MAX_TOKENS = 1 << 32
MAX_COST_USD = 1e9  # per span
#: Longest invocation-parameters JSON parsed for a model name (a chat call's parameters
#: without its messages and tools are well under 1 KiB); a longer one is not read.
MAX_INVOCATION_PARAMETERS = 64 * 1024
#: Operations that are billed per token: a call of one that cannot be priced is "missing".
_PRICED = frozenset({"llm", "embedding"})
_TIMEOUT_WORDS = ("timeout", "timed out", "timedout", "deadline")
_STATUS = ("unset", "ok", "error")
_INPUT: frozenset[str] = c.GEN_AI_INPUT_EVENTS
_OUTPUT: frozenset[str] = c.GEN_AI_OUTPUT_EVENTS


class DropSpan(Exception):
    """Raised by a step to leave a span out of the batch (counted, not an error)."""


@dataclass(slots=True)
class Settings:
    """What the steps need besides the span: the project and how to price."""

    project: str
    project_from_resource: bool = False  # only when auth is off
    pricer: Pricer | None = None


@dataclass(slots=True)
class Draft:
    """One span being normalized: the raw span and the rows the steps fill in.

    `found` maps each field of `conventions.READ` present on the span to its value and
    `names` to the attribute it came from (the first-preferred one holding a value),
    computed once so steps do not probe every name.
    """

    raw: RawSpan
    row: SpanRow
    payload: PayloadRow
    settings: Settings
    found: dict[str, Any]
    names: dict[str, str]
    used: set[str] = field(default_factory=set)  # attributes moved into input/output

    def get(self, key: str) -> Any:
        """The span's value for a field of `conventions.READ`, or None."""
        return self.found.get(key)


#: attribute name -> ((field, rank), ...): the READ table turned inside out.
_REVERSE: dict[str, tuple[tuple[str, int], ...]] = {}
for _field, _names in c.READ.items():
    for _rank, _name in enumerate(_names):
        _REVERSE[_name] = (*_REVERSE.get(_name, ()), (_field, _rank))

#: A plan: for each READ field some attribute of a span may give, its candidate attribute
#: names in order of preference.
Plan = tuple[tuple[str, tuple[str, ...]], ...]
#: Plans by the attribute names of a span, in their order: spans of one instrumentation
#: carry the same names, so a plan is made once for thousands of spans.
_PLANS: dict[tuple[str, ...], Plan] = {}
_PLANS_MAX = 4096  # distinct name sets kept; past it the cache starts again


def _plan(names: tuple[str, ...]) -> Plan:
    candidates: dict[str, list[tuple[int, str]]] = {}
    for name in names:
        for key, rank in _REVERSE.get(name, ()):
            candidates.setdefault(key, []).append((rank, name))
    return tuple((key, tuple(n for _, n in sorted(c))) for key, c in candidates.items())


def find_fields(attrs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """For every READ field present in `attrs` (with a value), the first-preferred
    attribute's value, and that attribute's name."""
    names = tuple(attrs)
    plan = _PLANS.get(names)
    if plan is None:
        if len(_PLANS) >= _PLANS_MAX:
            _PLANS.clear()
        plan = _PLANS[names] = _plan(names)
    found: dict[str, Any] = {}
    chosen: dict[str, str] = {}
    for key, candidates in plan:
        for name in candidates:
            value = attrs[name]
            if value is not None:
                found[key] = value
                chosen[key] = name
                break
    return found, chosen


Step = Callable[[Draft], None]


def first(attrs: dict[str, Any], key: str) -> Any:
    """The value of the first attribute present among `conventions.READ[key]`."""
    for name in c.READ[key]:
        v = attrs.get(name)
        if v is not None:
            return v
    return _NO_VALUE


def _int(v: Any) -> int | None:
    if v is None or isinstance(v, bool):
        return None
    try:
        return int(v)
    except (TypeError, ValueError):
        try:
            return int(float(v))
        except (TypeError, ValueError, OverflowError):
            return None


def _count(v: Any) -> int | None:
    """A token count, or None when absent or outside [0, MAX_TOKENS]."""
    n = _int(v)
    return n if n is not None and 0 <= n <= MAX_TOKENS else None


def _float(v: Any) -> float | None:
    if v is None or isinstance(v, bool):
        return None
    try:
        return float(v)
    except (TypeError, ValueError, OverflowError):
        return None


def _str(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, list):
        return ",".join(str(x) for x in v) if v else None
    return str(v)


def _text(v: Any) -> str:
    return v if isinstance(v, str) else orjson.dumps(v, option=orjson.OPT_NON_STR_KEYS).decode()


# --- steps --------------------------------------------------------------------------------


def resource_fields(d: Draft) -> None:
    """Service, environment, and the project from the resource when auth allows it."""
    res = d.raw.resource.attributes
    d.row.service = _str(first(res, "service")) or "unknown_service"
    d.row.environment = _str(first(res, "environment")) or ""
    if d.settings.project_from_resource:
        project = _str(first(res, "project")) or _str(d.get("project"))
        if project:
            d.row.project = d.payload.project = project


def gen_ai_fields(d: Draft) -> None:
    """Provider, models, tokens, agent, tool, finish reason (GenAI and OpenInference names)."""
    row, get = d.row, d.found.get  # a bound method: 13 lookups a span
    row.provider = _str(get("provider"))
    row.request_model = _str(get("request_model"))
    row.response_model = _str(get("response_model"))
    if row.request_model is None and row.response_model is None:
        row.request_model = _invocation_model(get("invocation_parameters"))
    row.agent_name = _str(get("agent_name"))
    row.tool_name = _str(get("tool_name"))
    row.finish_reason = _str(get("finish_reason"))
    row.input_tokens = _count(get("input_tokens"))
    row.output_tokens = _count(get("output_tokens"))
    row.cache_read_tokens = _count(get("cache_read_tokens"))
    row.cache_write_tokens = _count(get("cache_write_tokens"))
    row.reasoning_tokens = _count(get("reasoning_tokens"))
    _inclusive_tokens(row)


def _invocation_model(params: Any) -> str | None:
    """The model named in OpenInference invocation parameters (a JSON object), or None.

    A failed call carries its model only there. Anything that is not a JSON object with a
    string `model`, or is longer than MAX_INVOCATION_PARAMETERS, names no model.
    """
    if isinstance(params, str | bytes):
        if len(params) > MAX_INVOCATION_PARAMETERS:
            return None
        try:
            params = orjson.loads(params)
        except orjson.JSONDecodeError:
            return None
    model = params.get(c.INVOCATION_MODEL_KEY) if isinstance(params, dict) else None
    return model if isinstance(model, str) and model else None


def _inclusive_tokens(row: SpanRow) -> None:
    """Make input include cache tokens and output include reasoning (our convention).

    Anthropic-style instrumentations report cache tokens apart from input tokens; when the
    cache counts exceed the input count, they cannot be included in it, so we add them.
    """
    cached = (row.cache_read_tokens or 0) + (row.cache_write_tokens or 0)
    if cached and (row.input_tokens is None or row.input_tokens < cached):
        row.input_tokens = (row.input_tokens or 0) + cached
    reasoning = row.reasoning_tokens or 0
    if reasoning and (row.output_tokens is None or row.output_tokens < reasoning):
        row.output_tokens = (row.output_tokens or 0) + reasoning


def context_fields(d: Draft) -> None:
    """User, session and the app's feature tag."""
    row = d.row
    row.user_id = _str(d.get("user_id"))
    row.session_id = _str(d.get("session_id"))
    row.feature = _str(d.get("feature"))


def http_fields(d: Draft) -> None:
    """HTTP method, route and status code (current and old HTTP semconv names)."""
    row = d.row
    row.http_method = _str(d.get("http_method"))
    row.http_route = _str(d.get("http_route"))
    code = _int(d.get("http_status_code"))
    # compared, not `in range(...)`: that walks the whole range for None
    row.http_status_code = code if code is not None and 100 <= code <= 999 else None


def operation(d: Draft) -> None:
    """What kind of work the span did: our attribute, GenAI, OpenInference, HTTP, model, other."""
    row = d.row
    op = _str(d.get("operation"))
    if op not in OPERATIONS:
        op = c.GEN_AI_OPERATIONS.get(_str(d.get("gen_ai_operation")) or "")
    if op is None:
        op = c.OPENINFERENCE_KINDS.get((_str(d.get("openinference_kind")) or "").upper())
    if op is None and row.http_method is not None:
        op = "http"
    if op is None and (row.request_model or row.response_model) and row.provider:
        op = "llm"  # older instrumentations set gen_ai.system + model but no operation
    row.operation = op or "other"


def _exception_type(events: Sequence[dict[str, Any]]) -> str | None:
    for e in events:
        if e.get("name") == c.EXCEPTION_EVENT:
            t = e.get("attributes", {}).get(c.EXCEPTION_TYPE)
            if t:
                return str(t)
    return None


def _looks_like_timeout(error_type: str | None, message: str) -> bool:
    text = f"{error_type or ''} {message}".lower()
    return any(w in text for w in _TIMEOUT_WORDS)


def outcome(d: Draft) -> None:
    """success / error / timeout / fallback / rejected, and the error type."""
    row, raw = d.row, d.raw
    row.status_code = _STATUS[raw.status_code] if 0 <= raw.status_code < 3 else "unset"
    error_type = _str(d.get("error_type")) or _exception_type(raw.events)
    code = row.http_status_code
    if error_type is None and raw.status_code == 2 and code is not None and code >= 400:
        error_type = str(code)
    row.error_type = error_type
    declared = _str(d.get("outcome"))
    if declared in OUTCOMES:
        row.outcome = declared
    elif code in (408, 504) or (
        error_type is not None and _looks_like_timeout(error_type, raw.status_message)
    ):
        row.outcome = "timeout"
    elif raw.status_code == 2 or (code is not None and code >= 500 and row.span_kind == "server"):
        row.outcome = "error"
    else:
        row.outcome = "success"


def cost(d: Draft) -> None:
    """Cost: reported, else estimated; "missing" when a model call cannot be priced, else "none".

    A model call cannot be priced when its model has no known price, or when it names no
    model or carries no tokens yet was billed: an llm or embedding call that succeeded, or
    one that reports usage. A failed call without usage is "none": nothing says it was
    billed, and counting it as a missing price would hide the models whose price we lack.
    """
    row = d.row
    reported = _float(d.get("cost_usd"))
    if reported is not None and not -MAX_COST_USD <= reported <= MAX_COST_USD:  # NaN too
        reported = None
    if reported is not None:
        row.cost_usd, row.cost_source = reported, "reported"
        return
    model = row.response_model or row.request_model
    tokens = (row.input_tokens or 0) + (row.output_tokens or 0)
    if model is None or tokens == 0:
        billed = row.outcome == "success" or tokens > 0
        row.cost_source = "missing" if row.operation in _PRICED and billed else "none"
        return
    pricer = d.settings.pricer
    price = None
    if pricer is not None:
        usage = Tokens(
            row.input_tokens or 0,
            row.output_tokens or 0,
            row.cache_read_tokens or 0,
            row.cache_write_tokens or 0,
            row.reasoning_tokens or 0,
        )
        price = pricer.cost(row.provider, model, usage)
        if price is None and row.request_model and row.request_model != model:
            price = pricer.cost(row.provider, row.request_model, usage)
    if price is None:
        row.cost_source = "missing"
    else:
        row.cost_usd, row.cost_source = price, "estimated"


def _event_messages(events: Iterable[dict[str, Any]], names: frozenset[str]) -> list[Any]:
    out: list[Any] = []
    for e in events:
        name = e.get("name")
        wanted = name in names or (name == c.GEN_AI_ASSISTANT_EVENT and names is _INPUT)
        if not wanted:
            continue
        attrs = e.get("attributes", {})
        value = attrs.get(c.GEN_AI_EVENT_PROMPT) or attrs.get(c.GEN_AI_EVENT_COMPLETION)
        if value is None:
            value = {"event": name, **attrs}
        out.append(value)
    return out


def payload(d: Draft) -> None:
    """Input/output text (attributes, else deprecated GenAI events), raw attributes, events."""
    p, raw = d.payload, d.raw
    in_name, in_value = d.names.get("input", ""), d.found.get("input")
    out_name, out_value = d.names.get("output", ""), d.found.get("output")
    if in_value is None and raw.events:
        found = _event_messages(raw.events, _INPUT)
        in_value = (found[0] if len(found) == 1 else found) if found else None
    if out_value is None and raw.events:
        found = _event_messages(raw.events, _OUTPUT)
        out_value = (found[0] if len(found) == 1 else found) if found else None
    p.input = None if in_value is None else _text(in_value)
    p.output = None if out_value is None else _text(out_value)
    d.used.update(n for n in (in_name, out_name) if n)
    if raw.status_message:
        p.status_message = raw.status_message


DEFAULT_STEPS: tuple[Step, ...] = (
    resource_fields,
    gen_ai_fields,
    context_fields,
    http_fields,
    operation,
    outcome,
    cost,
    payload,
)


def _dumps(v: Any) -> str:
    return orjson.dumps(v, option=orjson.OPT_NON_STR_KEYS).decode()


def _draft(raw: RawSpan, settings: Settings, resource_json: str) -> Draft:
    row = SpanRow(
        project=settings.project,
        trace_id=raw.trace_id,
        span_id=raw.span_id,
        parent_span_id=raw.parent_span_id,
        name=raw.name,
        start_ns=raw.start_ns,
        duration_ns=raw.end_ns - raw.start_ns,
        span_kind=raw.span_kind,
    )
    p = PayloadRow(settings.project, raw.trace_id, raw.span_id, raw.start_ns)
    p.resource = resource_json
    return Draft(raw, row, p, settings, *find_fields(raw.attributes))


def _finish(d: Draft) -> None:
    raw = d.raw
    attrs = raw.attributes
    if d.used:
        attrs = {k: v for k, v in attrs.items() if k not in d.used}
    d.payload.attributes = _dumps(attrs) if attrs else "{}"
    if raw.events:
        d.payload.events = _dumps(raw.events)
    if raw.links:
        d.payload.links = _dumps(raw.links)


@dataclass(slots=True)
class Normalized:
    """What `normalize` made: the batch, spans steps dropped, spans that failed and why."""

    batch: SpanBatch
    dropped: int = 0  # left out on purpose by a step (`DropSpan`)
    failed: int = 0  # a step raised: the span is left out, the others go on
    error: str = ""  # the first failure's traceback, for the log


def normalize(
    spans: Iterable[RawSpan], settings: Settings, steps: Sequence[Step] = DEFAULT_STEPS
) -> Normalized:
    """Run every span through the steps; a span whose steps raise is left out and counted."""
    out = Normalized(SpanBatch())
    batch = out.batch
    resource_json: dict[int, tuple[Resource, str]] = {}
    for raw in spans:
        res = raw.resource
        cached = resource_json.get(id(res))
        if cached is None:
            doc = dict(res.attributes)
            if res.scope_name:
                doc[c.OTEL_SCOPE_NAME] = res.scope_name
            if res.scope_version:
                doc[c.OTEL_SCOPE_VERSION] = res.scope_version
            cached = (res, _dumps(doc))
            resource_json[id(res)] = cached
        d = _draft(raw, settings, cached[1])
        try:
            for step in steps:
                step(d)
            _finish(d)
        except DropSpan:
            out.dropped += 1
            continue
        except Exception:  # one bad span (or a buggy step) must not cost its neighbours
            out.failed += 1
            out.error = out.error or traceback.format_exc()
            continue
        batch.spans.append(d.row)
        batch.payloads.append(d.payload)
    return out
