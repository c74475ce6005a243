"""What alert rules and channels can be: `GET /api/v1/rule-kinds` and
`GET /api/v1/channel-types`, read from the registries so the UI (and any editor) never lists
kinds or fields of its own."""

from __future__ import annotations

from typing import Any, get_args

from fastapi import APIRouter, Depends
from pydantic import BaseModel, SecretStr

from watchkeeper.alerting import Rule
from watchkeeper.alerting.channels import CHANNEL_SPECS, Spec, type_name
from watchkeeper.alerting.kinds import RULE_KINDS, kind_name, own_fields
from watchkeeper.server._access import needs
from watchkeeper.server._roles import Role

router = APIRouter(prefix="/api/v1", tags=["alerting"])
Project = Depends(needs(Role.VIEWER))


class RuleKindInfo(BaseModel):
    """One rule kind: its name, what it watches, and the parameters it adds to every rule's."""

    kind: str
    label: str
    about: str
    groupable: bool
    parameters: dict[str, dict[str, Any]]  # name → JSON schema (type, default, enum, ...)
    example: dict[str, Any]


class RuleKinds(BaseModel):
    """Every rule kind, in the registry's order."""

    items: list[RuleKindInfo]


class ChannelTypeInfo(BaseModel):
    """One channel type: its name, what it sends to, its fields and which of them are secret."""

    type: str
    label: str
    about: str
    fields: dict[str, dict[str, Any]]  # name → JSON schema
    required: list[str]
    secrets: list[str]


class ChannelTypes(BaseModel):
    """Every channel type, in the registry's order."""

    items: list[ChannelTypeInfo]


def _properties(model: type[BaseModel], names: list[str]) -> dict[str, dict[str, Any]]:
    props: dict[str, dict[str, Any]] = model.model_json_schema(mode="validation")["properties"]
    alias = {n: f.alias or n for n, f in model.model_fields.items()}
    return {n: props[alias[n]] for n in names}


def kind_info(model: type[Rule]) -> RuleKindInfo:
    """What the API says about one rule kind."""
    return RuleKindInfo(
        kind=kind_name(model),
        label=model.label,
        about=model.about,
        groupable=model.groupable,
        parameters=_properties(model, own_fields(model)),
        example=model.example,
    )


def _is_secret(model: type[Spec], name: str) -> bool:
    annotation = model.model_fields[name].annotation
    return annotation is SecretStr or SecretStr in get_args(annotation)


def channel_info(model: type[Spec]) -> ChannelTypeInfo:
    """What the API says about one channel type."""
    names = [n for n in model.model_fields if n != "type"]
    return ChannelTypeInfo(
        type=type_name(model),
        label=model.label,
        about=model.about,
        fields=_properties(model, names),
        required=[n for n in names if model.model_fields[n].is_required()],
        secrets=[n for n in names if _is_secret(model, n)],
    )


@router.get("/rule-kinds", response_model=RuleKinds, summary="The kinds a rule can be")
def list_rule_kinds(_project: str = Project) -> RuleKinds:
    """Every rule kind with its parameters (a JSON schema each) and an example."""
    return RuleKinds(items=[kind_info(m) for m in RULE_KINDS])


@router.get("/channel-types", response_model=ChannelTypes, summary="The types a channel can be")
def list_channel_types(_project: str = Project) -> ChannelTypes:
    """Every channel type with its fields (a JSON schema each) and which are secret."""
    return ChannelTypes(items=[channel_info(m) for m in CHANNEL_SPECS])
