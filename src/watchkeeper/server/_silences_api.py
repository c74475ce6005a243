"""The silences' endpoints of docs/api.md: list, create (matchers, a start and an end or a
duration, a comment) and expire; each change on the audit log. Times in unix milliseconds
or ISO-8601 in, milliseconds out (the engine counts in seconds)."""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request

from watchkeeper.alerting import Silence, parse_duration, parse_silence
from watchkeeper.errors import NotFound, ValidationError
from watchkeeper.query import MAX_TIME_MS, shown
from watchkeeper.server import _alerts_models as m
from watchkeeper.server._access import needs
from watchkeeper.server._alerts_api import engine_of
from watchkeeper.server._audit import audited
from watchkeeper.server._openapi import refusal
from watchkeeper.server._roles import Role
from watchkeeper.server._services import services
from watchkeeper.server._units import ms

router = APIRouter(prefix="/api/v1", tags=["alerting"])
Project = Depends(needs(Role.VIEWER))  # reading
Editing = Depends(needs(Role.EDITOR))  # creating and expiring

_SILENCE = m.json_body(m.body_schema(m.SilenceIn))
_SILENCE_400: dict[int | str, dict[str, Any]] = {
    400: refusal(
        "the body is refused, with the reason: not a silence, or what no JSON Schema says: "
        "ends_at (or starts_at + duration) not after starts_at or past 2262-04-11; a value "
        "after =~ or !~ that is not a regular expression"
    )
}


def _silence_json(s: Silence, now: float) -> dict[str, Any]:
    return {
        "id": s.id,
        "matchers": [m.model_dump() for m in s.matchers],
        "starts_at": ms(s.starts_at),
        "ends_at": ms(s.ends_at),
        "comment": s.comment,
        "created_by": s.created_by,
        "active": s.starts_at <= now < s.ends_at,
    }


@router.get("/silences", response_model=m.Silences)
def list_silences(request: Request, project: str = Project) -> dict[str, Any]:
    """Active and future silences of the project."""
    now = services(request).clock()
    return {"items": [_silence_json(s, now) for s in engine_of(request).silences(project)]}


@router.post(
    "/silences",
    status_code=201,
    response_model=m.SilenceOut,
    openapi_extra=_SILENCE,
    responses=_SILENCE_400,
)
def create_silence(
    request: Request,
    body: Annotated[dict[str, Any], Body(description=m.SilenceIn.__doc__)],
    project: str = Editing,
) -> dict[str, Any]:
    """Create a silence: `{matchers: ["service=chat", ...], ends_at | duration, comment}`."""
    engine, now = engine_of(request), services(request).clock()
    data = dict(body)
    start = _seconds(data["starts_at"], "starts_at") if "starts_at" in data else now
    if "ends_at" in data:
        data["ends_at"] = _seconds(data["ends_at"], "ends_at")
    elif "duration" in data:
        data["ends_at"] = start + _duration(data.pop("duration"))
    data["starts_at"] = start
    data.setdefault("created_by", "api")
    spec = parse_silence(data)
    if not math.isfinite(spec.starts_at) or not math.isfinite(spec.ends_at):
        raise ValidationError("silence: starts_at and ends_at must be finite times")
    if spec.ends_at <= spec.starts_at:
        raise ValidationError("silence: ends_at must be after starts_at")
    if spec.starts_at < 0 or spec.ends_at > _LAST_S:
        raise ValidationError("silence: starts_at and ends_at must be between 1970 and 2262")
    silence = Silence(
        "", spec.matchers, spec.starts_at, spec.ends_at, spec.comment, spec.created_by, project
    )
    with audited(request, "silence.create", "silence (new)", project) as change:
        silence = engine.add_silence(silence)
        change.target, change.after = f"silence {silence.id}", _silence_json(silence, now)
    return _silence_json(silence, now)


#: The last instant the API shows (unix ms in int64 nanoseconds' range, as the store's).
_LAST_S = MAX_TIME_MS / 1000


def _seconds(value: Any, name: str) -> float:
    """A silence time sent as unix milliseconds or ISO-8601, as the engine's unix seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value / 1000.0
    if isinstance(value, str):
        from datetime import UTC, datetime

        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    raise ValidationError(
        f"silence {name}={shown(str(value))} is not a time: use unix milliseconds or ISO-8601"
    )


def _duration(value: Any) -> float:
    """A silence's duration, milliseconds or text like "2h", in seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = value / 1000.0
    try:
        return parse_duration(value)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"silence duration: {exc}") from None


@router.delete("/silences/{silence_id}", response_model=m.Expired)
def expire_silence(request: Request, silence_id: str, project: str = Editing) -> dict[str, Any]:
    """End a silence now."""
    engine, now = engine_of(request), services(request).clock()
    with audited(request, "silence.expire", f"silence {silence_id}", project) as change:
        old = engine.expire_silence(project, silence_id)
        if old is None:
            raise NotFound(f"no active silence {silence_id!r}; see GET /api/v1/silences")
        before = _silence_json(old, now)
        change.before, change.after = before, {**before, "ends_at": ms(now), "active": False}
    return {"id": silence_id, "expired": True}
