"""The error answers of every operation, written into /openapi.json.

FastAPI documents a route's success and a 422 it never sends here (`_errors` turns validation
errors into a 400). Every error is `{"error": ...}`; which codes an operation can answer
follows from what it is, so they are derived here once rather than repeated on 50 routes:

- 400: any request can be unreadable (a parameter or body refused, a client gone);
- 401, 403: every route that asks for a credential (all but the open ones below);
- 404: a route with a path parameter (no such trace, rule...) and every alerting route
  (alerting may be disabled);
- 408, 413: a route that reads a body (too slow, too large);
- 415: a route that reads a body in a content type it names;
- 429: every route (the request limits of `_limits`), with `Retry-After`.

A rule that joins parameters, which no JSON Schema can say, is named in the 400's description:
here for the query parameters (`start` before `end`; `step_ms` over the range; increasing
`bounds`), by the route itself for its body (`refusal`).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

#: Routes that never ask for a credential.
OPEN = {"/healthz", "/readyz", "/api/v1/auth", "/api/v1/oidc/login", "/api/v1/oidc/callback"}
#: Tags and paths whose routes all answer 404 when their service is off.
MAY_BE_OFF = {"alerting"}
MAY_BE_OFF_PATHS = ("/api/v1/oidc/",)
_ERROR = {"$ref": "#/components/schemas/Error"}
_REASONS = {
    "400": "the request cannot be read: a parameter or body refused, with the reason",
    "401": "no credential, or one that is unknown, revoked or expired",
    "403": "the credential does not grant this (role, project, origin or CSRF token)",
    "404": "no such resource in the caller's project, or its service is disabled",
    "408": "the body did not arrive in time",
    "413": "the body is larger than the server takes",
    "415": "the body's content type is not one this route reads",
    "429": "too many requests from this credential or address: retry after `Retry-After`",
}
#: 400s of schema-valid requests, by a parameter the operation takes: the rule it breaks.
_JOINED = {
    "end": "`start` not before `end`",
    "step_ms": "a `step_ms` that makes more than 20,000 buckets over the range",
    "bounds": "`bounds` not increasing (to the nanosecond)",
}
_RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}}


def _codes(path: str, method: str, op: dict[str, Any]) -> list[str]:
    codes = ["400", "429"]
    if path not in OPEN:
        codes += ["401", "403"]
    off = MAY_BE_OFF & set(op.get("tags", ())) or path.startswith(MAY_BE_OFF_PATHS)
    if "{" in path or off:
        codes.append("404")
    body = op.get("requestBody")
    if body is not None or method in ("post", "put", "patch"):
        codes += ["408", "413"]
    if body is not None and len(body.get("content", {})) > 1:
        codes.append("415")
    return codes


def refusal(description: str) -> dict[str, Any]:
    """A route's own description of an error answer (`responses={400: refusal(...)}`)."""
    return {"description": description, "content": {"application/json": {"schema": _ERROR}}}


def _joined(op: dict[str, Any]) -> str:
    names = {p.get("name") for p in op.get("parameters", ()) if p.get("in") == "query"}
    rules = [rule for name, rule in _JOINED.items() if name in names]
    return f"; also {' or '.join(rules)}" if rules else ""


def document_errors(spec: dict[str, Any]) -> dict[str, Any]:
    """`spec` with every operation's error answers (in place; returned for chaining)."""
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = {
        "title": "Error",
        "type": "object",
        "properties": {"error": {"type": "string", "description": "what to do about it"}},
        "required": ["error"],
    }
    for path, operations in spec.get("paths", {}).items():
        for method, op in operations.items():
            responses = op.setdefault("responses", {})
            if responses.get("422", {}).get("description") == "Validation Error":
                responses.pop("422")  # FastAPI's: answered as a 400 (see _errors)
            for code in _codes(path, method, op):
                reason = _REASONS[code] + (_joined(op) if code == "400" else "")
                entry = responses.setdefault(code, {"description": reason})
                entry.setdefault("content", {"application/json": {"schema": _ERROR}})
                if code == "429":
                    entry.setdefault("headers", _RETRY_AFTER)
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    return spec


def install(app: FastAPI) -> None:
    """Make `app.openapi()` give the document with every error answer (built once)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_errors(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
