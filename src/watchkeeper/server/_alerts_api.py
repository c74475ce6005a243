"""The alerting endpoints of docs/api.md: rules, alerts, silences, channels, SLOs, outbox log.

Handlers are thin: they validate, call the `AlertingEngine` in `Services.alerting` (or the
alerting repository on the meta DB), and shape JSON.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from watchkeeper.alerting import (
    AlertingEngine,
    AlertState,
    Rule,
    Silence,
    burn_rules,
    parse_rule,
    parse_silence,
    render_summary,
    rule_to_data,
    slo_of,
    slo_status,
    unix_seconds,
)
from watchkeeper.alerting import _repo as repo
from watchkeeper.errors import NotFound, ValidationError
from watchkeeper.query import shown
from watchkeeper.server._access import needs
from watchkeeper.server._audit import audited, who
from watchkeeper.server._params import integer
from watchkeeper.server._roles import Role
from watchkeeper.server._services import services

router = APIRouter(prefix="/api/v1", tags=["alerting"])
# What each route needs; its value is the project the request acts for.
Project = Depends(needs(Role.VIEWER))  # reading
Editing = Depends(needs(Role.EDITOR))  # rules and silences
Administering = Depends(needs(Role.ADMIN))  # channels
ALERT_STATES = ("firing", "pending", "resolved")


def _engine(request: Request) -> AlertingEngine:
    engine: AlertingEngine | None = services(request).alerting
    if engine is None:
        raise NotFound("alerting is disabled (alerting.enabled: false in the config file)")
    return engine


def _now(request: Request) -> float:
    return services(request).clock()


def _file_rule_ids(engine: AlertingEngine) -> set[str]:
    ids = {r.id for r in engine.config.rules}
    ids.update(r.id for s in engine.config.slos for r in burn_rules(s))
    return ids


def _rule_json(engine: AlertingEngine, rule: Rule) -> dict[str, Any]:
    source = "config" if rule.id in _file_rule_ids(engine) else "api"
    return {**rule_to_data(rule), "source": source}


def _get_rule(engine: AlertingEngine, project: str, rule_id: str) -> Rule:
    rule = engine.rule(project, rule_id)
    if rule is None:
        raise NotFound(f"no rule {rule_id!r} in project {project!r}; see GET /api/v1/rules")
    return rule


def _validated(engine: AlertingEngine, data: dict[str, Any], project: str) -> Rule:
    if not isinstance(data, dict):
        raise ValidationError("the body must be a JSON object describing a rule")
    rule = parse_rule({**data, "project": project})
    if rule.kind == "burn_rate" and slo_of(rule, {s.id: s for s in engine.config.slos}) is None:
        raise ValidationError(
            f"rule {rule.id}: no SLO {rule.slo!r} in project {project!r}; see GET /api/v1/slos"
        )
    unknown = [c for c in rule.channels if c not in engine.channels]
    if unknown:
        raise ValidationError(
            f"rule {rule.id}: unknown channels {unknown}; configured: {sorted(engine.channels)}"
        )
    return rule


# --- rules -------------------------------------------------------------------------------------


@router.get("/rules")
def list_rules(request: Request, project: str = Project) -> dict[str, Any]:
    """Every rule of the project (config, starter, SLO burn-rate and API rules)."""
    engine = _engine(request)
    return {"items": [_rule_json(engine, r) for r in engine.rules(project)]}


@router.post("/rules", status_code=201)
def create_rule(
    request: Request, body: dict[str, Any] = Body(...), project: str = Editing
) -> dict[str, Any]:
    """Create a rule; 400 when its id is taken."""
    engine = _engine(request)
    rule = _validated(engine, body, project)
    if any(r.id == rule.id for r in engine.rules(project)):
        raise ValidationError(f"a rule with id {rule.id!r} exists; PUT /api/v1/rules/{rule.id}")
    with audited(request, "rule.create", f"rule {rule.id}", project) as change:
        row = repo.RuleRow(rule.id, project, rule, None, False)
        repo.upsert_rule_row(engine.meta, row, _now(request))
        change.after = rule_to_data(rule)
    return _rule_json(engine, rule)


@router.get("/rules/{rule_id}")
def get_rule(request: Request, rule_id: str, project: str = Project) -> dict[str, Any]:
    """One rule."""
    engine = _engine(request)
    return _rule_json(engine, _get_rule(engine, project, rule_id))


@router.put("/rules/{rule_id}")
def update_rule(
    request: Request, rule_id: str, body: dict[str, Any] = Body(...), project: str = Editing
) -> dict[str, Any]:
    """Replace a rule (a rule of the config file is overridden in the meta DB)."""
    engine = _engine(request)
    old = _get_rule(engine, project, rule_id)
    rule = _validated(engine, {**body, "id": rule_id}, project)
    with audited(request, "rule.update", f"rule {rule_id}", project) as change:
        row = repo.RuleRow(rule_id, project, rule, None, False)
        repo.upsert_rule_row(engine.meta, row, _now(request))
        change.before, change.after = rule_to_data(old), rule_to_data(rule)
    return _rule_json(engine, rule)


@router.delete("/rules/{rule_id}", status_code=204)
def delete_rule(request: Request, rule_id: str, project: str = Editing) -> None:
    """Delete a rule (a config rule is hidden until deleted from the file too)."""
    engine = _engine(request)
    old = _get_rule(engine, project, rule_id)
    with audited(request, "rule.delete", f"rule {rule_id}", project) as change:
        if rule_id in _file_rule_ids(engine):
            row = repo.RuleRow(rule_id, project, None, None, True)
            repo.upsert_rule_row(engine.meta, row, _now(request))
        else:
            repo.delete_rule_row(engine.meta, project, rule_id)
        change.before = rule_to_data(old)


def _set_enabled(request: Request, rule_id: str, project: str, enabled: bool) -> dict[str, Any]:
    engine = _engine(request)
    rule = _get_rule(engine, project, rule_id)
    rows = {(r.project, r.id): r for r in repo.load_rule_rows(engine.meta)}
    row = rows.get((project, rule_id))
    stored = row.rule if row is not None else None
    new = repo.RuleRow(rule_id, project, stored, enabled, False)
    action = "rule.enable" if enabled else "rule.disable"
    with audited(request, action, f"rule {rule_id}", project) as change:
        repo.upsert_rule_row(engine.meta, new, _now(request))
        change.before, change.after = {"enabled": rule.enabled}, {"enabled": enabled}
    return _rule_json(engine, rule.model_copy(update={"enabled": enabled}))


@router.post("/rules/{rule_id}/enable")
def enable_rule(request: Request, rule_id: str, project: str = Editing) -> dict[str, Any]:
    """Enable a rule."""
    return _set_enabled(request, rule_id, project, True)


@router.post("/rules/{rule_id}/disable")
def disable_rule(request: Request, rule_id: str, project: str = Editing) -> dict[str, Any]:
    """Disable a rule (its alerts are forgotten without a notification)."""
    return _set_enabled(request, rule_id, project, False)


@router.post("/rules/test")
def test_draft_rule(
    request: Request, body: dict[str, Any] = Body(...), project: str = Editing
) -> dict[str, Any]:
    """Evaluate a rule that is not saved (a draft from an editor) now; nothing is stored."""
    engine = _engine(request)
    return _test_json(engine, _validated(engine, body, project), _now(request))


@router.post("/rules/{rule_id}/test")
def test_rule(request: Request, rule_id: str, project: str = Editing) -> dict[str, Any]:
    """Evaluate a rule now, without changing alert state or notifying."""
    engine = _engine(request)
    return _test_json(engine, _get_rule(engine, project, rule_id), _now(request))


def _test_json(engine: AlertingEngine, rule: Rule, now: float) -> dict[str, Any]:
    decision = engine.evaluator.test(rule, now)
    return {
        "rule_id": rule.id,
        "at": decision.at,
        "breaching": any(o.breaching for o in decision.observations),
        "observations": [
            {**dataclasses.asdict(o), "labels": dict(o.labels)} for o in decision.observations
        ],
    }


# --- alerts ----------------------------------------------------------------------------------


@router.get("/alerts")
def list_alerts(
    request: Request,
    state: str | None = Query(None, description="firing|pending|resolved"),
    project: str = Project,
) -> dict[str, Any]:
    """Current alerts (pending, firing, recently resolved) of the project."""
    if state is not None and state not in ALERT_STATES:
        raise ValidationError(f"state={shown(state)} is not one of {', '.join(ALERT_STATES)}")
    engine = _engine(request)
    rules = {r.id: r for r in engine.rules(project)}
    items = [
        _alert_json(s, rules.get(s.rule_id))
        for s in engine.evaluator.states()
        if s.project == project and (state is None or s.status == state)
    ]
    items.sort(key=lambda s: (s["status"] != "firing", -(s["firing_since"] or 0.0)))
    return {"items": items}


def _alert_json(state: AlertState, rule: Rule | None) -> dict[str, Any]:
    out = {**dataclasses.asdict(state), "labels": dict(state.labels)}
    if rule is not None:
        out.update(
            rule_name=rule.title,
            severity=rule.severity,
            kind=rule.kind,
            comparison=rule.comparison,
            summary=render_summary(rule, state),
        )
    return out


@router.get("/alerts/history")
def alert_history(
    request: Request,
    limit: int = integer("limit", 200, 1, 5000),
    rule: str | None = None,
    project: str = Project,
) -> dict[str, Any]:
    """Alert events (firing, resolved, repeat), newest first, with why any was muted."""
    return {"items": repo.history(_engine(request).meta, project, limit, rule)}


# --- silences --------------------------------------------------------------------------------


def _silence_json(s: Silence, now: float) -> dict[str, Any]:
    return {
        "id": s.id,
        "matchers": [m.model_dump() for m in s.matchers],
        "starts_at": s.starts_at,
        "ends_at": s.ends_at,
        "comment": s.comment,
        "created_by": s.created_by,
        "active": s.starts_at <= now < s.ends_at,
    }


@router.get("/silences")
def list_silences(request: Request, project: str = Project) -> dict[str, Any]:
    """Active and future silences of the project."""
    now = _now(request)
    items = repo.load_silences(_engine(request).meta, project, now)
    return {"items": [_silence_json(s, now) for s in items]}


@router.post("/silences", status_code=201)
def create_silence(
    request: Request, body: dict[str, Any] = Body(...), project: str = Editing
) -> dict[str, Any]:
    """Create a silence: `{matchers: ["service=chat", ...], ends_at | duration, comment}`."""
    now = _now(request)
    data = dict(body)
    if "duration" in data and "ends_at" not in data:
        data["ends_at"] = _start(data.get("starts_at", now)) + _duration(data.pop("duration"))
    data.setdefault("starts_at", now)
    data.setdefault("created_by", "api")
    spec = parse_silence(data)
    if not math.isfinite(spec.starts_at) or not math.isfinite(spec.ends_at):
        raise ValidationError("silence: starts_at and ends_at must be finite times")
    if spec.ends_at <= spec.starts_at:
        raise ValidationError("silence: ends_at must be after starts_at")
    silence = Silence(
        "", spec.matchers, spec.starts_at, spec.ends_at, spec.comment, spec.created_by, project
    )
    with audited(request, "silence.create", "silence (new)", project) as change:
        silence = repo.add_silence(_engine(request).meta, silence, now)
        change.target, change.after = f"silence {silence.id}", _silence_json(silence, now)
    return _silence_json(silence, now)


def _start(value: Any) -> float:
    """A silence's `starts_at` as unix seconds, to add its `duration` to."""
    try:
        start = unix_seconds(value)
        if isinstance(start, bool):
            raise TypeError
        return float(start)
    except (TypeError, ValueError):
        raise ValidationError(
            f"silence starts_at={shown(str(value))} is not a time: use unix seconds or ISO-8601"
        ) from None


def _duration(value: Any) -> float:
    from watchkeeper.alerting import parse_duration

    try:
        return parse_duration(value)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"silence duration: {exc}") from None


@router.delete("/silences/{silence_id}")
def expire_silence(request: Request, silence_id: str, project: str = Editing) -> dict[str, Any]:
    """End a silence now."""
    meta, now = _engine(request).meta, _now(request)
    old = next((s for s in repo.load_silences(meta, project, now) if s.id == silence_id), None)
    with audited(request, "silence.expire", f"silence {silence_id}", project) as change:
        if old is None or not repo.expire_silence(meta, project, silence_id, now):
            raise NotFound(f"no active silence {silence_id!r}; see GET /api/v1/silences")
        before = _silence_json(old, now)
        change.before, change.after = before, {**before, "ends_at": now, "active": False}
    return {"id": silence_id, "expired": True}


# --- channels, SLOs, notifications -----------------------------------------------------------


@router.get("/channels")
def list_channels(request: Request, _project: str = Project) -> dict[str, Any]:
    """Configured channels (names, types and severities; never their secrets)."""
    engine = _engine(request)
    items = []
    for name, channel in engine.channels.items():
        spec = engine.channel_specs.get(name)
        severities = list(spec.severities) if spec is not None else []
        items.append({"name": name, "type": channel.type, "severities": severities})
    return {"items": items}


@router.post("/channels/{name}/test")
async def test_channel(request: Request, name: str, _project: str = Administering) -> JSONResponse:
    """Send a test notification to a channel now; 502 with the reason when it fails."""
    engine = _engine(request)
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


@router.get("/slos")
def list_slos(request: Request, project: str = Project) -> dict[str, Any]:
    """SLOs of the project with SLI, budget left and burn rates (no series)."""
    engine = _engine(request)
    now = _now(request)
    slos = [s for s in engine.config.slos if s.project == project]
    return {"items": [slo_status(engine.store, s, now, series=False) for s in slos]}


@router.get("/slos/{slo_id}")
def get_slo(request: Request, slo_id: str, project: str = Project) -> dict[str, Any]:
    """One SLO with its burn-down series."""
    engine = _engine(request)
    slo = next((s for s in engine.config.slos if s.id == slo_id and s.project == project), None)
    if slo is None:
        raise NotFound(f"no SLO {slo_id!r} in project {project!r}; see GET /api/v1/slos")
    return slo_status(engine.store, slo, _now(request))


@router.get("/notifications")
def list_notifications(
    request: Request, limit: int = integer("limit", 100, 1, 1000), project: str = Project
) -> dict[str, Any]:
    """The outbox: notifications with their state and every delivery attempt."""
    engine = _engine(request)
    items = repo.notification_log(engine.meta, project, limit)
    for item in items:  # errors stored before redaction existed, too
        for entry in [item, *item["attempt_log"]]:
            for field in ("last_error", "error"):
                if isinstance(entry.get(field), str):
                    entry[field] = engine.redact(entry[field])
    return {"items": items}
