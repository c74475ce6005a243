"""Notification channels: one module per receiver, each rendering a Notification natively.

Build one with `build_channel(parse_channel_spec(mapping), http_client)`; `send` raises
`DeliveryError` with `retryable` and `retry_after` set for the outbox to act on.
"""

from watchkeeper.alerting.channels._alertmanager import AlertmanagerChannel
from watchkeeper.alerting.channels._email import EmailChannel
from watchkeeper.alerting.channels._factory import build_channel
from watchkeeper.alerting.channels._google_chat import GoogleChatChannel
from watchkeeper.alerting.channels._pagerduty import PagerDutyChannel
from watchkeeper.alerting.channels._render import format_number, format_window
from watchkeeper.alerting.channels._slack import SlackChannel
from watchkeeper.alerting.channels._specs import (
    CHANNEL_TYPES,
    AlertmanagerSpec,
    ChannelSpec,
    EmailSpec,
    GoogleChatSpec,
    PagerDutySpec,
    SlackSpec,
    TeamsSpec,
    TelegramSpec,
    WebhookSpec,
    expand_env,
    parse_channel_spec,
    parse_channel_specs,
    secret_fields,
    secret_values,
)
from watchkeeper.alerting.channels._teams import TeamsChannel
from watchkeeper.alerting.channels._telegram import TelegramChannel
from watchkeeper.alerting.channels._webhook import WebhookChannel, verify_signature

__all__ = [
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
    "TeamsChannel",
    "TeamsSpec",
    "TelegramChannel",
    "TelegramSpec",
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
    "verify_signature",
]
