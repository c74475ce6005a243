"""A DAST scan of the running server: schemathesis against its `/openapi.json`, every role.

Two projects hold distinctive data: spans whose service, name, model, user, session, feature
and prompt carry the project's marker, a score, a rule, a silence and an SLO named by it.
Schemathesis generates requests for every operation of the OpenAPI document, valid and
invalid ones, a bounded number per operation (`WATCHKEEPER_DAST_EXAMPLES`, default 100), and
each is sent with half of the credentials, the halves taking turns: the ingest, viewer,
editor and admin keys of each project (each also naming the other project in
`X-Watchkeeper-Project`), the admin token, and none. Each half holds a project admin and an
editor, so every operation gets half of its requests with each credential. The scan fails on
any server error (5xx), and on any answer that carries data of a project the credential does
not grant: a project's key must never see the other's markers or trace ids; the admin token
(keys only) and no credential must see neither project's.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from schemathesis.generation import GenerationMode

from tests.alerting._receiver import Receiver
from tests.eventually import eventually
from tests.server import dast_hooks
from tests.server.conftest import ADMIN_TOKEN, Running
from tests.server.dast_hooks import CROSS_FIELD
from watchkeeper.alerting import _repo as repo
from watchkeeper.alerting import parse_rule
from watchkeeper.server._roles import Role

EXAMPLES = int(os.environ.get("WATCHKEEPER_DAST_EXAMPLES", "100"))
#: Examples per operation and phase of the all-checks scan (schemathesis's own engine).
CONFORMANCE_EXAMPLES = int(os.environ.get("WATCHKEEPER_DAST_CONFORMANCE_EXAMPLES", "25"))
PROJECTS = {"alpha": "mk7alphaq", "beta": "mk7betaq"}  # project -> its marker
#: The scan is about answers, not the limiter: limits high enough never to answer 429.
LIMITS = {"credential_rate": 1e6, "credential_burst": 10**7,
          "address_rate": 1e6, "address_burst": 10**7}  # fmt: skip


@dataclass
class Credential:
    """How one scanned request presents itself, and the markers its answers must not hold."""

    label: str
    headers: dict[str, str]
    forbidden: set[str] = field(default_factory=set)
    #: Which of the two halves of the credentials it is in: requests alternate between them.
    half: int = 0


#: What rule and silence bodies are made of: values each field takes, and junk.
RULE_FIELDS: dict[str, list[Any]] = {
    "kind": ["outcome_ratio", "latency", "sum", "count", "score", "absence", "anomaly",
             "burn_rate"],
    "window": ["5m", "1h", 60, "30d"], "threshold": [0, 500, "5%", 0.5, -1, 1e308],
    "statistic": ["p50", "p99", "avg", "max"], "comparison": [">", "<=", "!="],
    "for": ["1m", 0], "filters": [{}, {"scope": "llm"}, {"services": ["svc"], "name": "x"},
                                  {"outcomes": ["error"], "scope": "requests"}],
    "group_by": ["model", "service", "user", None], "outcomes": [["error", "timeout"], []],
    "field": ["cost_usd", "total_tokens"], "score_name": ["thumbs", ""],
    "score_stat": ["pass_rate", "low_share"], "metric": ["p95", "count", "cost_usd"],
    # Not the projects' SLO ids: a rule keeps what it was sent, and would hand the other
    # project's marker back to its sender (test_a_rule_cannot_burn_... tries those).
    "slo": ["slo-x"], "short_window": ["5m", 0],
    "lookback": ["1h", "1s"], "severity": ["critical", "info"], "channels": [["hook"], []],
    "min_count": [0, 5], "baseline_days": [1, 28], "factor": [0.1, 1e9], "min_value": [0, -5],
    "max_groups": [1, 200], "labels": [{"team": "x"}], "annotations": [{"summary": "{{x}}"}],
}  # fmt: skip
SILENCE_FIELDS: dict[str, list[Any]] = {
    "matchers": [["service=chat"], ["model=~gpt.*", "user!=x"], ["=x"], [], ["a=~("]],
    "duration": ["1h", "1s", "0s", "-1h", 10**12], "starts_at": [0, 1e10, -1, "now"],
    "ends_at": [1e10, 0, 9e18], "comment": ["c", ""],
}  # fmt: skip


def _junk() -> st.SearchStrategy[Any]:
    finite = st.floats(allow_nan=False, allow_infinity=False)  # what JSON can carry
    scalars = st.one_of(st.none(), st.booleans(), st.integers(), finite, st.text(max_size=12))
    return st.one_of(scalars, st.lists(scalars, max_size=3),
                     st.dictionaries(st.text(max_size=6), scalars, max_size=3))  # fmt: skip


def _object(fields: dict[str, list[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects of some of `fields` with values they take, some with one field spoiled."""
    values = {k: st.sampled_from(v) for k, v in fields.items()}
    required = {k: values.pop(k) for k in ("kind", "matchers") if k in values}
    if "kind" in fields:
        required["id"] = st.sampled_from(["draft", "rule-x", "Bad Id!", ""])
    good = st.fixed_dictionaries(required, optional=values)
    spoiled = st.tuples(good, st.sampled_from(sorted(fields)), _junk())
    return st.one_of(good, spoiled.map(lambda t: {**t[0], t[1]: t[2]}))


BODIES = {"/api/v1/rules": RULE_FIELDS, "/api/v1/rules/test": RULE_FIELDS,
          "/api/v1/rules/{rule_id}": RULE_FIELDS, "/api/v1/silences": SILENCE_FIELDS}  # fmt: skip


def _spans(project: str, marker: str) -> list[Any]:
    memory = InMemorySpanExporter()
    resource = Resource.create({"service.name": f"svc-{marker}",
                                "deployment.environment.name": f"env-{marker}"})  # fmt: skip
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("dast")
    with tracer.start_as_current_span(f"request-{marker}") as root:
        root.set_attribute("user.id", f"user-{marker}")
        root.set_attribute("session.id", f"session-{marker}")
        root.set_attribute("watchkeeper.feature", f"feature-{marker}")
        with tracer.start_as_current_span(f"chat model-{marker}") as llm:
            llm.set_attribute("gen_ai.operation.name", "chat")
            llm.set_attribute("gen_ai.provider.name", "openai")
            llm.set_attribute("gen_ai.request.model", f"model-{marker}")
            llm.set_attribute("gen_ai.usage.input_tokens", 12)
            llm.set_attribute("gen_ai.usage.output_tokens", 3)
            llm.set_attribute("input.value", f"the prompt of {project}: {marker}")
    return list(memory.get_finished_spans())


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _plant(
    server: Running, project: str, marker: str, known: dict[str, set[Any]]
) -> tuple[set[str], dict[Role, str]]:
    """Data and a key of every role in `project`; the strings only its data holds. The ids
    of what it made go into `known` (path parameter -> values), for the scan to ask for."""
    keys = {role: server.services.keys.create(project, f"dast-{role}", role=role)[1]
            for role in Role}  # fmt: skip
    exporter = OTLPSpanExporter(endpoint=f"{server.url}/v1/traces",
                                headers=_bearer(keys[Role.INGEST]))  # fmt: skip
    assert exporter.export(_spans(project, marker)) is SpanExportResult.SUCCESS
    admin = _bearer(keys[Role.ADMIN])
    traces: list[dict[str, Any]] = []

    def stored() -> bool:
        r = server.get("/api/v1/traces", headers=admin, params={"range": "1h"})
        traces[:] = r.json()["items"]
        return bool(traces)

    assert eventually(stored, 30), "the planted spans never reached the store"
    trace_id = traces[0]["trace_id"]
    posts: list[tuple[str, dict[str, Any]]] = [
        ("/api/v1/scores", {"trace_id": trace_id, "name": f"score-{marker}", "value": 1,
                            "comment": f"comment {marker}"}),
        ("/api/v1/rules", {"id": f"rule-{marker}", "name": f"rule {marker}", "kind": "latency",
                           "statistic": "p95", "threshold": 500, "window": "5m"}),
        ("/api/v1/silences", {"matchers": [f"service=svc-{marker}"], "duration": "1h",
                              "comment": f"silence {marker}"}),
    ]  # fmt: skip
    made = [server.request("POST", path, json=body, headers=admin) for path, body in posts]
    assert [r.status_code for r in made] == [201] * len(posts), [r.text for r in made]
    known["trace_id"].add(trace_id)
    known["rule_id"].add(f"rule-{marker}")
    known["silence_id"].add(made[2].json()["id"])
    known["slo_id"].add(f"slo-{marker}")
    return {marker, trace_id}, keys


@dataclass
class Scanned:
    """The server under scan, the credentials, and the ids of what each project holds."""

    server: Running
    creds: list[Credential]
    known: dict[str, list[Any]]


@pytest.fixture
def scanned(make_server: Callable[..., Running], receiver: Receiver) -> Scanned:
    slos = [{"id": f"slo-{marker}", "project": project, "objective": "99%"}
            for project, marker in PROJECTS.items()]  # fmt: skip
    alerting = {"interval": 3600, "slos": slos,
                "channels": [{"type": "webhook", "name": "hook", "url": receiver.url}]}  # fmt: skip
    server = make_server(auth={"admin_token": ADMIN_TOKEN}, alerting=alerting, limits=LIMITS)
    known: dict[str, set[Any]] = {"trace_id": set(), "rule_id": set(), "silence_id": set(),
                                  "slo_id": set(), "name": {"hook"}}  # fmt: skip
    planted = {p: _plant(server, p, marker, known) for p, marker in PROJECTS.items()}
    every = set().union(*(markers for markers, _ in planted.values()))
    creds = [Credential("no credential", {}, every, half=0),
             Credential("admin token", _bearer(ADMIN_TOKEN), every, half=1)]  # fmt: skip
    for shift, (project, (markers, keys)) in enumerate(planted.items()):
        other = next(p for p in PROJECTS if p != project)
        for turn, (role, token) in enumerate(keys.items(), start=shift):
            headers = {**_bearer(token), "X-Watchkeeper-Project": other}
            label = f"{project} {role} key"
            creds.append(Credential(label, headers, every - markers, half=turn % 2))
    for role in (Role.ADMIN, Role.EDITOR):  # each half reaches what only they may do
        assert {c.half for c in creds if c.label.endswith(f" {role} key")} == {0, 1}
    return Scanned(server, creds, {k: sorted(v) for k, v in known.items()})


#: Where a credential may see every project's markers, and why.
EVERY_PROJECT: dict[str, tuple[str, ...]] = {
    # The audit log is the server administrator's: every project's changes (SECURITY.md).
    "admin token": ("/api/v1/audit",),
}


def _problems(case: Any, response: Any, cred: Credential) -> list[str]:
    where = f"{cred.label}: {case.method} {case.formatted_path}"
    if case.formatted_path.startswith(EVERY_PROJECT.get(cred.label, ())):
        cred = Credential(cred.label, cred.headers)  # nothing forbidden here
    body = bytes(response.content)  # OTLP answers in protobuf: bytes, not text
    shown = body[:300].decode(errors="replace")
    found = []
    if response.status_code >= 500:
        found.append(f"{where}: {response.status_code} {shown}")
    # What the request itself named may come back ("no trace X in project alpha").
    sent = f"{case.formatted_path} {getattr(case, 'query', '')} {getattr(case, 'body', '')}"
    leaked = sorted(m for m in cred.forbidden if m.encode() in body and m not in sent)
    if leaked:
        found.append(f"{where}: {response.status_code} holds {leaked}: {shown}")
    return found


def _strategy(operation: Any, known: dict[str, list[Any]]) -> st.SearchStrategy[Any]:
    """Requests schemathesis makes of the document (valid and not), and the same with the
    ids both projects hold (a key asking for the other project's trace, rule, SLO...) and,
    where the document does not describe a body yet, with rule or silence bodies."""
    generated = [operation.as_strategy(mode) for mode in GenerationMode]
    names = [p.name for p in operation.path_parameters]
    ids: st.SearchStrategy[dict[str, Any] | None] = st.just(None)
    if names and operation.method.upper() != "DELETE" and all(n in known for n in names):
        ids = st.fixed_dictionaries({n: st.sampled_from(known[n]) for n in names})
        generated.append(ids.flatmap(lambda ps: operation.as_strategy(path_parameters=ps)))
    fields = BODIES.get(operation.path)
    if fields is not None and operation.method.upper() in ("POST", "PUT"):
        made = st.tuples(_object(fields), ids)
        generated.append(
            made.flatmap(lambda t: operation.as_strategy(body=t[0], path_parameters=t[1]))
        )
    return st.one_of(generated)


def _scan(operation: Any, scanned: Scanned) -> list[str]:
    """`EXAMPLES` generated requests of one operation, each sent with one half of the
    credentials (the halves take turns): every credential meets half of the requests.

    With every credential on every request the scan was two thirds of CI's test time; a
    leak or a 5xx belongs to an operation and a credential far more than to one request,
    and each credential still sees `EXAMPLES / 2` of them per operation."""
    problems: list[str] = []
    sent = [0]

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(case=_strategy(operation, scanned.known))
    def run(case: Any) -> None:
        half, sent[0] = sent[0] % 2, sent[0] + 1
        for cred in scanned.creds:
            if cred.half == half:
                response = case.call(headers=cred.headers, timeout=30)
                problems.extend(_problems(case, response, cred))

    run()
    return problems


#: The scan is cut in shards of every SHARDS-th operation: the whole is five and a half
#: minutes alone and more than 15 under coverage on a busy machine; shards spread over the
#: suite's workers and each stays well inside its guard.
SHARDS = 6


# Coverage's tracing in CI and a busy machine stretch a shard past the suite's 300 s guard
# against hangs, so it has a guard of its own.
@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("shard", range(SHARDS))
def test_dast_scan_finds_no_server_error_and_no_data_of_another_project(
    scanned: Scanned, shard: int
) -> None:
    schema = schemathesis.openapi.from_url(f"{scanned.server.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 30, "the OpenAPI document lost its operations"
    problems: list[str] = []
    for operation in operations[shard::SHARDS]:
        problems += _scan(operation, scanned)
    unique = list(dict.fromkeys(problems))
    assert unique == [], f"{len(unique)} problems:\n" + "\n".join(unique[:40])


def test_the_scan_sees_a_leak_and_a_server_error() -> None:
    """The scan's judge, on answers made up here: it is not blind."""

    @dataclass
    class Answer:
        status_code: int
        content: bytes

    @dataclass
    class Case:
        method: str = "GET"
        formatted_path: str = "/api/v1/spans"

    cred = Credential("alpha viewer key", {}, {PROJECTS["beta"]})
    assert _problems(Case(), Answer(200, b'{"items": []}'), cred) == []
    asked = Case(formatted_path=f"/api/v1/rules/rule-{PROJECTS['beta']}")
    echo = f'{{"error": "no rule rule-{PROJECTS["beta"]} in project alpha"}}'.encode()
    assert _problems(asked, Answer(404, echo), cred) == []
    leak = f'{{"service": "svc-{PROJECTS["beta"]}"}}'.encode()
    assert _problems(Case(), Answer(200, leak), cred)
    assert _problems(Case(), Answer(500, b'{"error": "internal"}'), cred)
    token = Credential("admin token", {}, {PROJECTS["beta"]})
    assert _problems(Case(formatted_path="/api/v1/audit"), Answer(200, leak), token) == []
    assert _problems(Case(), Answer(200, leak), token)


@pytest.mark.slow
def test_a_rule_cannot_burn_the_slo_of_another_project(scanned: Scanned) -> None:
    """Found by the scan: SLO ids are unique in the configuration, not per project, and a
    burn-rate rule read the SLO of whatever project held the id it named."""
    server = scanned.server
    editor = next(c.headers for c in scanned.creds if c.label == "alpha editor key")
    theirs = {"id": "borrowed", "kind": "burn_rate", "slo": f"slo-{PROJECTS['beta']}",
              "window": "1h", "short_window": "5m", "threshold": 1}  # fmt: skip
    for path in ("/api/v1/rules/test", "/api/v1/rules"):
        r = server.request("POST", path, json=theirs, headers=editor)
        assert r.status_code == 400, r.text
        assert "no SLO 'slo-mk7betaq' in project 'alpha'" in r.json()["error"]
    own = {**theirs, "id": "own", "slo": f"slo-{PROJECTS['alpha']}"}
    r = server.request("POST", "/api/v1/rules/test", json=own, headers=editor)
    assert r.status_code == 200 and r.json()["observations"], r.text
    # A rule stored before this check (in the metadata DB) evaluates on nothing.
    engine = server.services.alerting
    stored = parse_rule({**theirs, "project": "alpha"})
    repo.upsert_rule_row(engine.meta, repo.RuleRow("borrowed", "alpha", stored, None, False), 0)
    r = server.request("POST", "/api/v1/rules/borrowed/test", headers=editor)
    assert r.status_code == 200, r.text
    seen = [(o["value"], o["count"]) for o in r.json()["observations"]]
    assert all(value is None and not count for value, count in seen), seen


# As the shards: with coverage on a slow machine it passed 300 s (CI here, 2026-12-07)
@pytest.mark.timeout(900)
def test_schemathesis_with_all_checks_passes_on_every_operation(
    scanned: Scanned, tmp_path: Path
) -> None:
    """schemathesis's own engine (`--checks all`: status codes, content types, response
    schemas and headers, schema-valid data accepted and invalid data refused, Allow on 405,
    unsupported methods, missing headers...) on every operation, as a project admin, with a
    bounded number of examples.

    positive_data_acceptance (a request the schema allows must be accepted) runs everywhere.
    What no JSON Schema can say (start after end, a step giving more than 20,000 buckets,
    heatmap bounds not increasing, a rule's fields that must fit together or name an SLO or
    channel, a silence ending before it starts) is a 400 naming the rule:
    tests/server/schemathesis.toml takes that 400 on exactly those operations, and the check
    of tests/server/dast_hooks.py fails any such 400 that names none of the operation's
    rules. The toml says why for each. DELETE /api/v1/keys/{key_id} revokes a spare key
    (revoking the scan's own key would turn the rest into 401s).
    """
    config = Path(__file__).with_name("schemathesis.toml")
    assert _taking_400(config) == set(CROSS_FIELD), "schemathesis.toml and dast_hooks disagree"
    admin = next(c for c in scanned.creds if c.label == "alpha admin key")
    cli = Path(sys.executable).with_name("schemathesis")
    spare = scanned.server.services.keys.create("alpha", "dast-spare", role=Role.VIEWER)[0]
    env = {"SCHEMATHESIS_HOOKS": str(Path(dast_hooks.__file__)),
           "WATCHKEEPER_DAST_SPARE_KEY_ID": spare.key_id}  # fmt: skip
    checks = f"all,{dast_hooks.refusal_names_a_cross_field_rule.__name__}"  # unknown: unloaded
    run = subprocess.run(
        [str(cli), "--config-file", str(config),
         "run", f"{scanned.server.url}/openapi.json", "--checks", checks,
         "--phases", "examples,coverage,fuzzing", "--generation-deterministic",
         "-n", str(CONFORMANCE_EXAMPLES), "--no-color",
         "-H", f"Authorization: {admin.headers['Authorization']}"],
        capture_output=True, text=True, timeout=1800, check=False, cwd=tmp_path,
        env={**os.environ, **env},
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-20_000:] + run.stderr[-2000:]
    assert "Tested: " in run.stdout, run.stdout[-5000:]
    revoked = scanned.server.services.keys.get(spare.key_id)
    assert revoked is not None and revoked.revoked_at is not None, "DELETE /keys/{id} never ran"
    still = scanned.server.get("/api/v1/keys", headers=admin.headers)
    assert still.status_code == 200, "the scan revoked the key it sends everywhere"


def test_the_cross_field_check_takes_only_the_rules_it_names() -> None:
    """dast_hooks's check, on answers made up here: a 400 of valid data passes only where
    CROSS_FIELD lets it, naming one of the operation's rules."""

    @dataclass
    class Answer:
        status_code: int
        body: dict[str, Any]

        def json(self) -> dict[str, Any]:
            return self.body

    def case(label: str, positive: bool = True) -> Any:
        mode = GenerationMode.POSITIVE if positive else GenerationMode.NEGATIVE
        meta = SimpleNamespace(generation=SimpleNamespace(mode=mode))
        return SimpleNamespace(meta=meta, operation=SimpleNamespace(label=label))

    check = dast_hooks.refusal_names_a_cross_field_rule
    spans, rules = "GET /api/v1/spans", "POST /api/v1/rules"
    backwards = Answer(400, {"error": "start must be before end"})
    assert check(None, backwards, case(spans)) is None
    cursor = Answer(400, {"error": "invalid cursor: pass back the next_cursor of a page"})
    with pytest.raises(AssertionError, match="invalid cursor"):
        check(None, cursor, case(spans))
    assert check(None, cursor, case(spans, positive=False)) is None  # invalid data: refused
    assert check(None, cursor, case("GET /api/v1/alerts")) is None  # not taken there at all
    absence = "invalid rule a: (top level): Value error, absence: lookback must be longer "
    absence += "than window (e.g. 24h vs 10m) (got {...})"
    assert check(None, Answer(400, {"error": absence}), case(rules)) is None
    with pytest.raises(AssertionError):
        check(None, Answer(400, {"error": absence}), case("POST /api/v1/silences"))


def _taking_400(config: Path) -> set[str]:
    """The operations whose positive_data_acceptance takes a 400 in the scan's config."""
    found: set[str] = set()
    for entry in tomllib.loads(config.read_text())["operations"]:
        statuses = entry.get("checks", {}).get("positive_data_acceptance", {})
        if "400" in statuses.get("expected-statuses", ()):
            names = entry["include-name"]
            found.update([names] if isinstance(names, str) else names)
    return found
