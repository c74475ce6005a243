"""Channel specs: env references, validation messages, and the factory."""

from __future__ import annotations

import pytest

from watchkeeper import errors
from watchkeeper.alerting.channels import (
    AlertmanagerChannel,
    EmailChannel,
    GoogleChatChannel,
    PagerDutyChannel,
    SlackChannel,
    SlackSpec,
    TeamsChannel,
    TelegramChannel,
    TelegramSpec,
    WebhookChannel,
    build_channel,
    parse_channel_spec,
    parse_channel_specs,
)

EXAMPLES = [
    ({"type": "webhook", "url": "http://x/y"}, WebhookChannel),
    ({"type": "slack", "webhook_url": "http://x/y"}, SlackChannel),
    ({"type": "telegram", "bot_token": "1:a", "chat_id": "5"}, TelegramChannel),
    ({"type": "pagerduty", "routing_key": "k"}, PagerDutyChannel),
    ({"type": "google_chat", "webhook_url": "http://x/y"}, GoogleChatChannel),
    ({"type": "teams", "webhook_url": "http://x/y"}, TeamsChannel),
    ({"type": "email", "host": "h", "sender": "a@b", "to": ["c@d"]}, EmailChannel),
    ({"type": "alertmanager", "url": "http://am:9093"}, AlertmanagerChannel),
]


@pytest.mark.parametrize(("data", "cls"), EXAMPLES)
def test_build_channel_returns_the_type_named(data: dict[str, object], cls: type) -> None:
    channel = build_channel(parse_channel_spec({"name": "c", **data}, env={}), None)
    assert isinstance(channel, cls)
    assert channel.name == "c" and channel.type == data["type"]


def test_env_references_are_expanded_and_kept_secret() -> None:
    env = {"SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/abc", "CH": "ops"}
    spec = parse_channel_spec(
        {"name": "s", "type": "slack", "webhook_url": "${SLACK_WEBHOOK_URL}", "channel": "#${CH}"},
        env=env,
    )
    assert isinstance(spec, SlackSpec)
    assert spec.webhook_url.get_secret_value() == env["SLACK_WEBHOOK_URL"]
    assert spec.channel == "#ops"
    assert "abc" not in repr(spec)


def test_missing_env_reference_names_the_variable() -> None:
    with pytest.raises(errors.ValidationError, match=r"channel s: environment variable PD_KEY"):
        parse_channel_spec({"name": "s", "type": "pagerduty", "routing_key": "${PD_KEY}"}, env={})


def test_invalid_specs_say_which_field() -> None:
    with pytest.raises(errors.ValidationError, match=r"channel t: telegram.chat_id"):
        parse_channel_spec({"name": "t", "type": "telegram", "bot_token": "x"}, env={})
    with pytest.raises(errors.ValidationError, match=r"types: webhook, slack"):
        parse_channel_spec({"name": "t", "type": "fax"}, env={})
    with pytest.raises(errors.ValidationError, match=r"two channels share"):
        parse_channel_specs([{"name": "a", "type": "pagerduty", "routing_key": "k"}] * 2, env={})


def test_numeric_telegram_chat_id_as_yaml_reads_it() -> None:
    spec = parse_channel_spec(
        {"name": "t", "type": "telegram", "bot_token": "1:a", "chat_id": -1001234}, env={}
    )
    assert isinstance(spec, TelegramSpec) and spec.chat_id == -1001234


def test_urls_must_be_http() -> None:
    with pytest.raises(errors.ValidationError, match=r"webhook_url: Value error, must be an http"):
        parse_channel_spec({"name": "s", "type": "slack", "webhook_url": "hooks.slack.com/x"}, {})
    with pytest.raises(errors.ValidationError, match=r"api_base"):
        parse_channel_spec(
            {"name": "p", "type": "pagerduty", "routing_key": "k", "api_base": "ftp://x.example"},
            {},
        )
