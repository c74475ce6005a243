"""`build_channel`: a channel from its spec."""

from __future__ import annotations

import httpx

from watchkeeper.alerting._notification import Channel
from watchkeeper.alerting.channels._alertmanager import AlertmanagerChannel
from watchkeeper.alerting.channels._email import EmailChannel
from watchkeeper.alerting.channels._google_chat import GoogleChatChannel
from watchkeeper.alerting.channels._pagerduty import PagerDutyChannel
from watchkeeper.alerting.channels._slack import SlackChannel
from watchkeeper.alerting.channels._specs import (
    AlertmanagerSpec,
    ChannelSpec,
    EmailSpec,
    GoogleChatSpec,
    PagerDutySpec,
    SlackSpec,
    TeamsSpec,
    TelegramSpec,
    WebhookSpec,
)
from watchkeeper.alerting.channels._teams import TeamsChannel
from watchkeeper.alerting.channels._telegram import TelegramChannel
from watchkeeper.alerting.channels._webhook import WebhookChannel


def build_channel(spec: ChannelSpec, http_client: httpx.AsyncClient | None = None) -> Channel:
    """The channel a spec describes, sending through `http_client` (or its own per send)."""
    match spec:
        case WebhookSpec():
            return WebhookChannel(spec, http_client)
        case SlackSpec():
            return SlackChannel(spec, http_client)
        case TelegramSpec():
            return TelegramChannel(spec, http_client)
        case PagerDutySpec():
            return PagerDutyChannel(spec, http_client)
        case GoogleChatSpec():
            return GoogleChatChannel(spec, http_client)
        case TeamsSpec():
            return TeamsChannel(spec, http_client)
        case EmailSpec():
            return EmailChannel(spec)
        case AlertmanagerSpec():
            return AlertmanagerChannel(spec, http_client)
