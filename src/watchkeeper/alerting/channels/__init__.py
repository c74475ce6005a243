"""Notification channels: one module per receiver, each rendering a Notification natively.

A channel module holds its spec (config model, secrets, Alertmanager receiver) and its sender;
`CHANNEL_SPECS` in `_registry` lists them. Build one with
`build_channel(parse_channel_spec(mapping), http_client)`; `send` raises `DeliveryError` with
`retryable` and `retry_after` set for the outbox to act on.
"""

from watchkeeper.alerting.channels._alertmanager import AlertmanagerChannel, AlertmanagerSpec
from watchkeeper.alerting.channels._email import EmailChannel, EmailSpec
from watchkeeper.alerting.channels._google_chat import GoogleChatChannel, GoogleChatSpec
from watchkeeper.alerting.channels._pagerduty import PagerDutyChannel, PagerDutySpec
from watchkeeper.alerting.channels._registry import (
    CHANNEL_SPECS,
    CHANNEL_TYPES,
    ChannelSpec,
    build_channel,
    parse_channel_spec,
    parse_channel_specs,
    type_name,
)
from watchkeeper.alerting.channels._render import format_number, format_window
from watchkeeper.alerting.channels._slack import SlackChannel, SlackSpec
from watchkeeper.alerting.channels._specs import (
    Spec,
    UrlSpec,
    expand_env,
    secret_fields,
    secret_values,
)
from watchkeeper.alerting.channels._teams import TeamsChannel, TeamsSpec
from watchkeeper.alerting.channels._telegram import TelegramChannel, TelegramSpec
from watchkeeper.alerting.channels._webhook import WebhookChannel, WebhookSpec, verify_signature

__all__ = [
    "CHANNEL_SPECS",
    "CHANNEL_TYPES",
    "AlertmanagerChannel",
    "AlertmanagerSpec",
    "ChannelSpec",
    "EmailChannel",
    "EmailSpec",
    "GoogleChatChannel",
    "GoogleChatSpec",
    "PagerDutyChannel",
    "PagerDutySpec",
    "SlackChannel",
    "SlackSpec",
    "Spec",
    "TeamsChannel",
    "TeamsSpec",
    "TelegramChannel",
    "TelegramSpec",
    "UrlSpec",
    "WebhookChannel",
    "WebhookSpec",
    "build_channel",
    "expand_env",
    "format_number",
    "format_window",
    "parse_channel_spec",
    "parse_channel_specs",
    "secret_fields",
    "secret_values",
    "type_name",
    "verify_signature",
]
