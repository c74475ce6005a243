"""Query parameters we parse ourselves, typed as they are in the OpenAPI document.

FastAPI parses a typed parameter itself and answers a bad one with a 422 of its own shape. We
take each parameter as text and parse it with `query._params`, so a bad value is a 400
`{"error": ...}` that names the parameter and its range; the schema in /openapi.json still
says what the value is (an integer in a range, a number, a time), for clients and SDKs.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Query

from watchkeeper.errors import ValidationError
from watchkeeper.query import (
    MAX_DURATION_MS,
    MAX_TIME_MS,
    parse_int,
)

#: Unix milliseconds or ISO-8601, as `parse_time` reads them.
TIME_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "number", "minimum": 0, "maximum": MAX_TIME_MS, "title": "unix milliseconds"},
        {
            "type": "string",
            "format": "date-time",
            # years the store can hold whatever the offset (1971-2261; unix ms covers the rest)
            "pattern": "^(19[7-9][1-9]|19[89]0|2[01][0-9]{2}|22[0-5][0-9]|226[01])-",
            "title": "ISO-8601",
        },
    ]
}
#: Milliseconds, as `parse_number` reads them.
DURATION_SCHEMA: dict[str, Any] = {"type": "number", "minimum": 0, "maximum": MAX_DURATION_MS}


def published_as(schema: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    """`json_schema_extra` publishing a parameter or field as `schema` (keeping its title and
    description): for what the route reads and checks itself."""

    def publish(generated: dict[str, Any]) -> None:
        keep = {k: generated[k] for k in ("title", "description") if k in generated}
        generated.clear()
        generated.update(schema, **keep)

    return publish


def typed(schema: dict[str, Any], description: str | None = None, **query: Any) -> Any:
    """`Query(...)` of a parameter that arrives as text but is published as `schema`."""
    return Query(description=description, json_schema_extra=published_as(schema), **query)


def _with_default(description: str | None, default: object) -> str:
    # the published schema carries no default (FastAPI drops it), so the description says it
    return f"{description}; default {default}" if description else f"default {default}"


def refuse_empty(value: str | list[str] | None, name: str) -> None:
    """A 400 for `name=` given without a value: its schema takes none (leave it out)."""
    if value == "" or (isinstance(value, list) and "" in value):
        raise ValidationError(f"{name} is empty: give it a value or leave it out")


def boolean(default: bool, description: str | None = None) -> Any:
    """`Query(...)` of a true/false parameter (`parse_bool` reads it)."""
    return typed({"type": "boolean"}, _with_default(description, str(default).lower()))


def integer(
    name: str,
    default: int,
    low: int,
    high: int,
    description: str | None = None,
    *,
    multiple_of: int = 1,
) -> Any:
    """A dependency giving the integer parameter `name`: `default` when absent, else checked
    to be in [low, high] and a multiple of `multiple_of` (a 400 naming the rule when not)."""
    schema: dict[str, Any] = {"type": "integer", "minimum": low, "maximum": high}
    if multiple_of != 1:
        schema["multipleOf"] = multiple_of
    description = _with_default(description, default)

    def parse(value: str | None = None) -> int:
        refuse_empty(value, name)
        number = parse_int(value, name, default, low, high)
        if number % multiple_of:
            raise ValidationError(f"{name}={number} is not a multiple of {multiple_of}")
        return number

    # FastAPI reads the parameter from the signature: text, under `name`, published with the
    # schema (an object, so nothing is left to resolve from this module's names).
    text = Annotated[str | None, typed(schema, description, alias=name)]
    value = inspect.Parameter(
        "value", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=text
    )
    parse.__signature__ = inspect.Signature([value], return_annotation=int)  # type: ignore[attr-defined]
    return Depends(parse)
