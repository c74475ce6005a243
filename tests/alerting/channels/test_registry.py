"""A walk over the channel registry: every registered type is one module whose spec validates,
keeps its secrets out of every view, tells the redactor all of them, and delivers to a real
receiver (HTTP on loopback, or an SMTP server with STARTTLS and AUTH).

A new channel fails here until it has an entry in CONFIGS: a working config for the receivers
below, with its secrets written as `${NAME}` references to SECRETS.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.alerting.channels._support import notification
from tests.alerting.channels.conftest import Receiver, Reply
from tests.alerting.channels.test_email import _authenticator, cert, smtp_server
from watchkeeper.alerting.channels import (
    CHANNEL_SPECS,
    CHANNEL_TYPES,
    Spec,
    build_channel,
    parse_channel_spec,
    secret_fields,
    secret_values,
    type_name,
)
from watchkeeper.server._kinds_api import channel_info

__all__ = ["cert"]  # the module-scoped certificate fixture of the e-mail tests

SECRETS = {
    "HOOK_PATH": "hook-path-5ecret",
    "HOOK_KEY": "hmac-5ecret",
    "HOOK_AUTH": "Bearer header-5ecret",
    "BOT_TOKEN": "123456:bot-5ecret",
    "ROUTING_KEY": "routing-5ecret-0123456789abcdef",
    "SMTP_PASSWORD": "pw",
    "AM_TOKEN": "am-bearer-5ecret",
}


class Where:
    """Where the config of a channel points: the HTTP receiver and the SMTP server."""

    def __init__(self, http_url: str, smtp_port: int, ca: Path) -> None:
        self.http_url, self.smtp_port, self.ca = http_url, smtp_port, ca


Config = Callable[[Where], dict[str, Any]]
CONFIGS: dict[str, Config] = {
    "webhook": lambda w: {
        "url": f"{w.http_url}/${{HOOK_PATH}}",
        "secret": "${HOOK_KEY}",
        "headers": {"Authorization": "${HOOK_AUTH}"},
    },
    "slack": lambda w: {"webhook_url": f"{w.http_url}/services/${{HOOK_PATH}}"},
    "telegram": lambda w: {"bot_token": "${BOT_TOKEN}", "chat_id": 42, "api_base": w.http_url},
    "pagerduty": lambda w: {"routing_key": "${ROUTING_KEY}", "api_base": w.http_url},
    "google_chat": lambda w: {"webhook_url": f"{w.http_url}/v1/spaces/${{HOOK_PATH}}"},
    "teams": lambda w: {"webhook_url": f"{w.http_url}/workflows/${{HOOK_PATH}}"},
    "email": lambda w: {
        "host": "127.0.0.1",
        "port": w.smtp_port,
        "sender": "alerts@wk.example",
        "to": ["oncall@example.com"],
        "username": "alerts",
        "password": "${SMTP_PASSWORD}",
        "ca_file": str(w.ca),
    },
    "alertmanager": lambda w: {"url": w.http_url, "bearer_token": "${AM_TOKEN}"},
}


@pytest.fixture
def where(receiver: Receiver, cert: tuple[Path, Path]) -> Iterator[tuple[Where, Any]]:
    # Telegram reads the answer; every other receiver only needs a 2xx.
    receiver.default = Reply(200, {"Content-Type": "application/json"}, b'{"ok":true}')
    with smtp_server(cert, _authenticator) as (mailbox, port):
        yield Where(receiver.url, port, cert[0]), mailbox


def test_every_registered_type_has_a_config_here_and_one_module() -> None:
    assert sorted(CONFIGS) == sorted(CHANNEL_TYPES), "add the new channel type to CONFIGS"
    for model in CHANNEL_SPECS:
        assert model.__module__ == f"watchkeeper.alerting.channels._{type_name(model)}"
        assert model.label and model.about, type_name(model)


def _secrets_in(raw: dict[str, Any]) -> set[str]:
    text = json.dumps(raw)
    return {value for name, value in SECRETS.items() if "${" + name + "}" in text}


def _views(spec: Spec) -> list[str]:
    """Every way a spec is shown: repr, str, its masked view, the channel-types API's entry."""
    return [
        repr(spec),
        str(spec),
        json.dumps(spec.masked()),
        channel_info(type(spec)).model_dump_json(),
    ]


@pytest.mark.parametrize("model", CHANNEL_SPECS, ids=type_name)
async def test_config_validates_masks_its_secrets_and_delivers(
    model: type[Spec],
    where: tuple[Where, Any],
    receiver: Receiver,
    http: httpx.AsyncClient,
) -> None:
    name = type_name(model)
    place, mailbox = where
    raw = {"type": name, "name": f"walk-{name}", **CONFIGS[name](place)}
    spec = parse_channel_spec(raw, env=SECRETS)
    assert type(spec) is model and spec.type == name

    secrets = _secrets_in(raw)
    assert secrets, f"the {name} config holds no secret: write its secrets as ${{NAME}}"
    known = secret_values(spec)  # what the redactor learns: every secret is within one
    assert all(any(s in value for value in known) for s in secrets), (secrets, known)
    assert set(secret_fields(spec)) <= set(channel_info(model).secrets)
    for view in _views(spec):
        leaked = [s for s in secrets if s in view]
        assert not leaked, f"{name}: {leaked} shown in clear"

    channel = build_channel(spec, http)
    assert (channel.name, channel.type) == (spec.name, name)
    sent = notification()
    await channel.send(sent)
    if name == "email":
        (_, to, message) = mailbox.messages[-1]
        assert to == ["oncall@example.com"] and sent.summary in message.as_string()
        return
    (request,) = receiver.requests
    delivered = request.target + json.dumps(request.headers) + request.body.decode()
    assert sent.summary in request.body.decode()
    # The request carries what identifies it to the receiver (a secret URL, token or key),
    # except the HMAC key, which only signs.
    assert any(s in delivered for s in secrets - {SECRETS["HOOK_KEY"]}), delivered


def test_a_password_in_a_url_is_masked_and_redacted_like_a_secret_field() -> None:
    spec = parse_channel_spec(
        {"type": "alertmanager", "name": "am", "url": "http://wk:${PW}@127.0.0.1:9093"},
        env={"PW": "url-5ecret"},
    )
    assert "url-5ecret" in secret_values(spec)
    assert all("url-5ecret" not in view for view in _views(spec))
    assert spec.masked()["url"] == "http://wk:**********@127.0.0.1:9093"
