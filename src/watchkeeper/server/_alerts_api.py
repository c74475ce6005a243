"""The alerting endpoints of docs/api.md: rules, alerts, channels, SLOs, outbox log (the
silences: `_silences_api`).

Handlers are thin: they validate, call the `AlertingEngine` in `Services.alerting`, and shape
the JSON of `_alerts_models` (times in unix milliseconds; the engine counts in seconds).
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from watchkeeper.alerting import (
    AlertingEngine,
    AlertState,
    Rule,
    load_rules_file,
    render_summary,
    rule_to_data,
)
from watchkeeper.errors import Conflict, NotFound, ValidationError
from watchkeeper.server import _alerts_models as m
from watchkeeper.server._access import needs
from watchkeeper.server._audit import audited
from watchkeeper.server._audit_actor import who
from watchkeeper.server._openapi import refusal
from watchkeeper.server._params import integer
from watchkeeper.server._roles import Role
from watchkeeper.server._services import services
from watchkeeper.server._units import ms, ms_or_none

router = APIRouter(prefix="/api/v1", tags=["alerting"])
# What each route needs; its value is the project the request acts for.
Project = Depends(needs(Role.VIEWER))  # reading
Editing = Depends(needs(Role.EDITOR))  # rules and silences
Administering = Depends(needs(Role.ADMIN))  # channels
RuleBody = Annotated[
    dict[str, Any],
    Body(description='a rule, as in the config file; durations in ms or as text ("5m")'),
]


_RULE = m.rule_body()
_NEW_RULE = m.json_body(_RULE)
_RULE_AT_PATH = m.json_body(  # its id is the path's (one in the body is dropped)
    {
        "oneOf": [
            {
                **k,
                "required": [r for r in k["required"] if r != "id"],
                "properties": {**k["properties"], "id": {"description": "ignored: the path's"}},
            }
            for k in _RULE["oneOf"]
        ]
    }
)
#: What a rule body's schema cannot say: its fields that fit together, and what it names.
_RULE_400: dict[int | str, dict[str, Any]] = {
    400: refusal(
        "the body is refused, with the reason: not a rule of its kind, or what no JSON Schema "
        "says: an absence rule's lookback not longer than its window; a burn_rate rule's "
        "short_window not shorter than its window, or an SLO that is not the project's; a "
        "score rule's threshold outside 0 to 1 with score_stat pass_rate or low_share; a "
        "channel the configuration does not name"
    )
}


def engine_of(request: Request) -> AlertingEngine:
    """The alerting engine; NotFound (404) when alerting is off."""
    engine: AlertingEngine | None = services(request).alerting
    if engine is None:
        raise NotFound("alerting is disabled (alerting.enabled: false in the config file)")
    return engine


def _rule_json(engine: AlertingEngine, rule: Rule) -> dict[str, Any]:
    data = m.durations_to_ms(rule_to_data(rule), m.RULE_DURATIONS)
    # How the UI shows the rule, said by its kind: what it watches, the unit, the condition.
    display = {"watches": rule.watches(), "unit": rule.unit(), "condition": rule.condition()}
    return {**data, "source": engine.rule_source(rule.id), "display": display}


def _get_rule(engine: AlertingEngine, project: str, rule_id: str) -> Rule:
    rule = engine.rule(project, rule_id)
    if rule is None:
        raise NotFound(f"no rule {rule_id!r} in project {project!r}; see GET /api/v1/rules")
    return rule


def _validated(engine: AlertingEngine, data: dict[str, Any], project: str) -> Rule:
    if not isinstance(data, dict):
        raise ValidationError("the body must be a JSON object describing a rule")
    data = {k: v for k, v in data.items() if k not in m.RULE_READ_ONLY}
    return engine.check_rule(m.durations_from_ms(data, m.RULE_DURATIONS), project)


# --- rules -------------------------------------------------------------------------------------


@router.get("/rules", response_model=m.Rules)
def list_rules(request: Request, project: str = Project) -> dict[str, Any]:
    """Every rule of the project (config, starter, SLO burn-rate and API rules)."""
    engine = engine_of(request)
    return {"items": [_rule_json(engine, r) for r in engine.rules(project)]}


@router.post(
    "/rules",
    status_code=201,
    response_model=m.RuleOut,
    openapi_extra=_NEW_RULE,
    responses={**_RULE_400, 409: refusal("a rule has this id: change it with PUT")},
)
def create_rule(request: Request, body: RuleBody, project: str = Editing) -> dict[str, Any]:
    """Create a rule; 409 when its id is taken."""
    engine = engine_of(request)
    rule = _validated(engine, body, project)
    if engine.rule(project, rule.id) is not None:
        raise Conflict(f"a rule with id {rule.id!r} exists; PUT /api/v1/rules/{rule.id}")
    with audited(request, "rule.create", f"rule {rule.id}", project) as change:
        engine.save_rule(project, rule)
        change.after = rule_to_data(rule)
    return _rule_json(engine, rule)


_RULES_FILE = {
    "requestBody": {
        "required": True,
        "description": "a Prometheus rules file (`groups:`), as YAML or JSON",
        "content": {
            media: {"schema": {"type": "string" if "yaml" in media else "object"}}
            for media in ("application/yaml", "application/json")
        },
    }
}


@router.post(
    "/rules/prometheus",
    status_code=201,
    response_model=m.RulesFileOut,
    openapi_extra=_RULES_FILE,
    responses={
        400: refusal(
            "the file is refused, with the group, the rule and the reason: not YAML, a key "
            "Prometheus does not know, an expression that does not parse (with its line and "
            "column), a duration or label that is not one"
        )
    },
)
async def import_prometheus_rules(
    request: Request,
    project: str = Editing,
    dry_run: Annotated[bool, Query(description="check the file, store nothing")] = False,
) -> dict[str, Any]:
    """Load a Prometheus rules file as it is: each alert becomes a promql rule of the project
    (replacing the rule of the same id: the group's name and the alert's); recording rules
    are listed in `skipped` with the reason."""
    engine = engine_of(request)
    body = (await request.body()).decode("utf-8", "replace")
    loaded = load_rules_file(body, project, "rules file")
    rules = [engine.check_rule(rule_to_data(r), project) for r in loaded.rules]
    if not dry_run and rules:
        await run_in_threadpool(_save_all, request, engine, project, rules)
    skipped = [{"name": name, "reason": reason} for name, reason in loaded.skipped]
    return {"rules": [_rule_json(engine, r) for r in rules], "skipped": skipped,
            "dry_run": dry_run}  # fmt: skip


def _save_all(request: Request, engine: AlertingEngine, project: str, rules: list[Rule]) -> None:
    with audited(request, "rule.import", f"{len(rules)} rules", project) as change:
        for rule in rules:
            engine.save_rule(project, rule)
        change.after = {"rules": [r.id for r in rules]}


@router.get("/rules/{rule_id}", response_model=m.RuleOut)
def get_rule(request: Request, rule_id: str, project: str = Project) -> dict[str, Any]:
    """One rule."""
    engine = engine_of(request)
    return _rule_json(engine, _get_rule(engine, project, rule_id))


@router.put(
    "/rules/{rule_id}", response_model=m.RuleOut, openapi_extra=_RULE_AT_PATH, responses=_RULE_400
)
def update_rule(
    request: Request, rule_id: str, body: RuleBody, project: str = Editing
) -> dict[str, Any]:
    """Replace a rule (a rule of the config file is overridden in the meta DB)."""
    engine = engine_of(request)
    old = _get_rule(engine, project, rule_id)
    rule = _validated(engine, {**body, "id": rule_id}, project)
    with audited(request, "rule.update", f"rule {rule_id}", project) as change:
        engine.save_rule(project, rule)
        change.before, change.after = rule_to_data(old), rule_to_data(rule)
    return _rule_json(engine, rule)


@router.delete("/rules/{rule_id}", status_code=204)
def delete_rule(request: Request, rule_id: str, project: str = Editing) -> None:
    """Delete a rule (a config rule is hidden until deleted from the file too)."""
    engine = engine_of(request)
    old = _get_rule(engine, project, rule_id)
    with audited(request, "rule.delete", f"rule {rule_id}", project) as change:
        engine.delete_rule(project, rule_id)
        change.before = rule_to_data(old)


def _set_enabled(request: Request, rule_id: str, project: str, enabled: bool) -> dict[str, Any]:
    engine = engine_of(request)
    rule = _get_rule(engine, project, rule_id)
    action = "rule.enable" if enabled else "rule.disable"
    with audited(request, action, f"rule {rule_id}", project) as change:
        engine.set_enabled(project, rule_id, enabled)
        change.before, change.after = {"enabled": rule.enabled}, {"enabled": enabled}
    return _rule_json(engine, rule.model_copy(update={"enabled": enabled}))


@router.post("/rules/{rule_id}/enable", response_model=m.RuleOut)
def enable_rule(request: Request, rule_id: str, project: str = Editing) -> dict[str, Any]:
    """Enable a rule."""
    return _set_enabled(request, rule_id, project, True)


@router.post("/rules/{rule_id}/disable", response_model=m.RuleOut)
def disable_rule(request: Request, rule_id: str, project: str = Editing) -> dict[str, Any]:
    """Disable a rule (its alerts are forgotten without a notification)."""
    return _set_enabled(request, rule_id, project, False)


@router.post("/rules/test", response_model=m.RuleTest, openapi_extra=_NEW_RULE, responses=_RULE_400)
def test_draft_rule(request: Request, body: RuleBody, project: str = Editing) -> dict[str, Any]:
    """Evaluate a rule that is not saved (a draft from an editor) now; nothing is stored."""
    engine = engine_of(request)
    return _test_json(engine, _validated(engine, body, project))


@router.post("/rules/{rule_id}/test", response_model=m.RuleTest)
def test_rule(request: Request, rule_id: str, project: str = Editing) -> dict[str, Any]:
    """Evaluate a rule now, without changing alert state or notifying."""
    engine = engine_of(request)
    return _test_json(engine, _get_rule(engine, project, rule_id))


def _test_json(engine: AlertingEngine, rule: Rule) -> dict[str, Any]:
    decision = engine.test_rule(rule)
    return {
        "rule_id": rule.id,
        "at": ms(decision.at),
        "breaching": any(o.breaching for o in decision.observations),
        "observations": [
            {**dataclasses.asdict(o), "labels": dict(o.labels)} for o in decision.observations
        ],
    }


# --- alerts ----------------------------------------------------------------------------------


@router.get("/alerts", response_model=m.Alerts)
def list_alerts(
    request: Request,
    state: Literal["firing", "pending", "resolved"] | None = Query(None),
    project: str = Project,
) -> dict[str, Any]:
    """Current alerts (pending, firing, recently resolved) of the project."""
    engine = engine_of(request)
    rules = {r.id: r for r in engine.rules(project)}
    items = [
        _alert_json(s, rules.get(s.rule_id))
        for s in engine.alerts(project)
        if state is None or s.status == state
    ]
    items.sort(key=lambda s: (s["status"] != "firing", -(s["firing_since"] or 0)))
    return {"items": items}


_INSTANTS = ("pending_since", "firing_since", "last_breach_at", "resolved_at", "last_notified_at")


def _alert_json(state: AlertState, rule: Rule | None) -> dict[str, Any]:
    out = {**dataclasses.asdict(state), "labels": dict(state.labels)}
    out.update({k: ms_or_none(out[k]) for k in _INSTANTS})
    if rule is not None:
        out.update(
            rule_name=rule.title,
            severity=rule.severity,
            kind=rule.kind,
            comparison=rule.comparison,
            summary=render_summary(rule, state),
        )
    return out


@router.get("/alerts/history", response_model=m.History)
def alert_history(
    request: Request,
    limit: int = integer("limit", 200, 1, 5000),
    rule: str | None = None,
    project: str = Project,
) -> dict[str, Any]:
    """Alert events (firing, resolved, repeat), newest first, with why any was muted."""
    items = engine_of(request).history(project, limit, rule)
    return {"items": [{**e, "at": ms(e["at"])} for e in items]}


# --- channels, SLOs, notifications -----------------------------------------------------------


@router.get("/channels", response_model=m.Channels)
def list_channels(request: Request, _project: str = Project) -> dict[str, Any]:
    """Configured channels (names, types and severities; never their secrets)."""
    engine = engine_of(request)
    items = []
    for name, channel in engine.channels.items():
        spec = engine.channel_specs.get(name)
        severities = list(spec.severities) if spec is not None else []
        items.append({"name": name, "type": channel.type, "severities": severities})
    return {"items": items}


@router.post(
    "/channels/{name}/test",
    response_model=m.ChannelTest,
    responses={502: {"model": m.ChannelTest, "description": "the channel refused or is down"}},
)
async def test_channel(request: Request, name: str, _project: str = Administering) -> JSONResponse:
    """Send a test notification to a channel now; 502 with the reason when it fails."""
    engine = engine_of(request)
    if name not in engine.channels:
        raise NotFound(f"no channel {name!r}; configured: {sorted(engine.channels)}")
    # Recorded before it is sent: a test that cannot be recorded is not sent (its outcome is
    # in the answer and in watchkeeper_notifications_total).
    actor, origin = who(request)
    await run_in_threadpool(
        services(request).audit.record, actor, origin, "channel.test", f"channel {name}", _project
    )
    result = await engine.send_test(name)
    return JSONResponse(result, status_code=200 if result["ok"] else 502)


def _slo_json(engine: AlertingEngine, slo: Any, series: bool) -> dict[str, Any]:
    out = m.durations_to_ms(engine.slo_status(slo, series=series), m.SLO_DURATIONS)
    out["burn_rates"] = [
        {
            **b,
            "long_window_ms": ms(b.pop("long_window_s")),
            "short_window_ms": ms(b.pop("short_window_s")),
        }
        for b in out["burn_rates"]
    ]
    if "burndown" in out:
        out["burndown"] = [{**p, "t": ms(p["t"])} for p in out["burndown"]]
    return out


@router.get("/slos", response_model=m.Slos)
def list_slos(request: Request, project: str = Project) -> dict[str, Any]:
    """SLOs of the project with SLI, budget left and burn rates (no series)."""
    engine = engine_of(request)
    return {"items": [_slo_json(engine, s, False) for s in engine.slos(project)]}


@router.get("/slos/{slo_id}", response_model=m.SloDetail)
def get_slo(request: Request, slo_id: str, project: str = Project) -> dict[str, Any]:
    """One SLO with its burn-down series."""
    engine = engine_of(request)
    slo = next((s for s in engine.slos(project) if s.id == slo_id), None)
    if slo is None:
        raise NotFound(f"no SLO {slo_id!r} in project {project!r}; see GET /api/v1/slos")
    return _slo_json(engine, slo, True)


@router.get("/notifications", response_model=m.Notifications)
def list_notifications(
    request: Request, limit: int = integer("limit", 100, 1, 1000), project: str = Project
) -> dict[str, Any]:
    """The outbox: notifications with their state and every delivery attempt."""
    return {
        "items": [_notification_json(n) for n in engine_of(request).notifications(project, limit)]
    }


def _notification_json(item: dict[str, Any]) -> dict[str, Any]:
    note = dict(item["notification"])
    note["window_ms"] = round(note.pop("window_s") * 1000)
    note["started_at"], note["ended_at"] = ms(note["started_at"]), ms_or_none(note["ended_at"])
    times = {k: ms_or_none(item[k]) for k in ("created_at", "next_attempt_at", "delivered_at")}
    log = [{**a, "at": ms(a["at"])} for a in item["attempt_log"]]
    return {**item, **times, "notification": note, "attempt_log": log}
