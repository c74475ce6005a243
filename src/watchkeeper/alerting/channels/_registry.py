"""The channel types, registered in one place, and parsing a spec into its type's model.

`CHANNEL_SPECS` lists one spec model per channel module: adding a channel is its module and one
line here (see CONTRIBUTING.md). A spec's `type:` is written once, in its model's `Literal`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any, Union

import httpx
from pydantic import Field, TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from watchkeeper import errors
from watchkeeper.alerting._notification import Channel
from watchkeeper.alerting.channels._alertmanager import AlertmanagerSpec
from watchkeeper.alerting.channels._email import EmailSpec
from watchkeeper.alerting.channels._google_chat import GoogleChatSpec
from watchkeeper.alerting.channels._pagerduty import PagerDutySpec
from watchkeeper.alerting.channels._slack import SlackSpec
from watchkeeper.alerting.channels._specs import Spec, expand_env
from watchkeeper.alerting.channels._teams import TeamsSpec
from watchkeeper.alerting.channels._telegram import TelegramSpec
from watchkeeper.alerting.channels._webhook import WebhookSpec
from watchkeeper.vault import open_sealed

#: Every channel type, in the order they are listed (one line per channel).
CHANNEL_SPECS: tuple[type[Spec], ...] = (
    WebhookSpec,
    SlackSpec,
    TelegramSpec,
    PagerDutySpec,
    GoogleChatSpec,
    TeamsSpec,
    EmailSpec,
    AlertmanagerSpec,
)


def type_name(model: type[Spec]) -> str:
    """The `type:` a spec model answers to (the default of its `type` field)."""
    name: str = model.model_fields["type"].default
    return name


CHANNEL_TYPES: tuple[str, ...] = tuple(type_name(m) for m in CHANNEL_SPECS)

if TYPE_CHECKING:
    ChannelSpec = Spec
else:
    #: Any channel's spec, told apart by `type`.
    ChannelSpec = Annotated[Union[CHANNEL_SPECS], Field(discriminator="type")]  # noqa: UP007
_ADAPTER: TypeAdapter[ChannelSpec] = TypeAdapter(ChannelSpec)


def parse_channel_spec(
    data: Mapping[str, Any], env: Mapping[str, str] | None = None
) -> ChannelSpec:
    """Validate one channel spec (after expanding `${ENV}` references)."""
    env = os.environ if env is None else env
    where = f"channel {data.get('name', '?')!s}"
    expanded = open_sealed(expand_env(dict(data), env, where), env, where)
    try:
        return _ADAPTER.validate_python(expanded)
    except PydanticValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}"
            for e in exc.errors()
        )
        kinds = ", ".join(CHANNEL_TYPES)
        raise errors.ValidationError(f"{where}: {problems} (types: {kinds})") from None


def parse_channel_specs(
    items: Sequence[Mapping[str, Any]], env: Mapping[str, str] | None = None
) -> list[ChannelSpec]:
    """Validate a list of channel specs; names must be unique."""
    specs = [parse_channel_spec(item, env) for item in items]
    seen: set[str] = set()
    for spec in specs:
        if spec.name in seen:
            raise errors.ValidationError(f"channel {spec.name}: two channels share this name")
        seen.add(spec.name)
    return specs


def build_channel(spec: ChannelSpec, http_client: httpx.AsyncClient | None = None) -> Channel:
    """The channel a spec describes, sending through `http_client` (or its own per send)."""
    return spec.build(http_client)
