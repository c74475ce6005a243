"""E-mail through a real local SMTP server with STARTTLS (self-signed cert) and AUTH."""

from __future__ import annotations

import email
import email.policy
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.alerting.channels._support import notification, resolved
from watchkeeper.alerting._notification import DeliveryError
from watchkeeper.alerting.channels import EmailChannel, EmailSpec


@dataclass
class Mailbox:
    """What the SMTP server accepted."""

    messages: list[tuple[str, list[str], EmailMessage]] = field(default_factory=list)
    refuse_with: str | None = None

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if self.refuse_with:
            return self.refuse_with
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), msg))
        return "250 Message accepted"


def _authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, data: Any
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"alerts", b"pw")
    return AuthResult(success=ok, handled=False)


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI is not installed")
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem"), "-days", "1",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return d / "cert.pem", d / "key.pem"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def smtp_server(cert: tuple[Path, Path], authenticator: Any) -> Iterator[tuple[Mailbox, int]]:
    """A real SMTP server on loopback: STARTTLS required, then AUTH checked by `authenticator`."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert[0]), str(cert[1]))
    box = Mailbox()
    port = _free_port()
    controller = Controller(
        box,
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        auth_required=True,
        auth_require_tls=True,
        authenticator=authenticator,
    )
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


@pytest.fixture
def smtp(cert: tuple[Path, Path]) -> Iterator[tuple[Mailbox, int]]:
    with smtp_server(cert, _authenticator) as server:
        yield server


def spec(port: int, cert: Path | None, **extra: Any) -> EmailSpec:
    fields: dict[str, Any] = {
        "name": "mail",
        "host": "127.0.0.1",
        "port": port,
        "sender": "Watchkeeper <alerts@wk.example>",
        "to": ["oncall@example.com", "lead@example.com"],
        "username": "alerts",
        "password": "pw",
        "ca_file": cert,
        "timeout_s": 5,
    }
    return EmailSpec.model_validate(fields | extra)


async def test_multipart_mail_over_starttls_with_auth(
    smtp: tuple[Mailbox, int], cert: tuple[Path, Path]
) -> None:
    box, port = smtp
    channel = EmailChannel(spec(port, cert[0]), clock=lambda: 1_763_900_100.0)
    await channel.send(notification())
    await channel.send(resolved())
    (sender, rcpts, msg), (_, _, done) = box.messages
    assert sender == "alerts@wk.example"
    assert rcpts == ["oncall@example.com", "lead@example.com"]
    assert msg["Subject"] == (
        "[Watchkeeper] [FIRING] Chat p95 latency (Critical): p95 latency of chat-api is above 2 s"
    )
    assert msg["References"] == done["References"] == "<fp0123456789abcdef@watchkeeper>"
    assert msg.get_content_type() == "multipart/alternative"
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert text is not None and html is not None
    plain = text.get_content()
    assert "observed 2875 ms > threshold 2000 ms over 5m" in plain
    assert "Window: 5m" in plain
    assert plain.count("http://wk.example/traces/") == 5
    page = html.get_content()
    assert "&lt;since deploy&gt; &amp; rising" in page
    assert page.count('<a href="http://wk.example/traces/') == 5
    assert '<a href="http://wk.example/alerts/r-latency">Open in Watchkeeper</a>' in page
    assert done["Subject"].startswith("[Watchkeeper] [RESOLVED]")


async def test_wrong_password_is_final(smtp: tuple[Mailbox, int], cert: tuple[Path, Path]) -> None:
    _, port = smtp
    with pytest.raises(DeliveryError) as err:
        await EmailChannel(spec(port, cert[0], password="nope")).send(notification())
    assert not err.value.retryable
    assert "535" in str(err.value)


async def test_untrusted_certificate_is_final(smtp: tuple[Mailbox, int]) -> None:
    _, port = smtp
    with pytest.raises(DeliveryError) as err:
        await EmailChannel(spec(port, None)).send(notification())
    assert not err.value.retryable
    assert "certificate" in str(err.value).lower()


async def test_temporary_refusal_is_retryable_and_permanent_is_not(
    smtp: tuple[Mailbox, int], cert: tuple[Path, Path]
) -> None:
    box, port = smtp
    box.refuse_with = "450 mailbox busy"
    with pytest.raises(DeliveryError) as err:
        await EmailChannel(spec(port, cert[0])).send(notification())
    assert err.value.retryable
    box.refuse_with = "550 no such user"
    with pytest.raises(DeliveryError) as err:
        await EmailChannel(spec(port, cert[0])).send(notification())
    assert not err.value.retryable


async def test_server_down_is_retryable() -> None:
    with pytest.raises(DeliveryError) as err:
        await EmailChannel(spec(_free_port(), None)).send(notification())
    assert err.value.retryable


async def test_implicit_tls_without_auth(cert: tuple[Path, Path]) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert[0]), str(cert[1]))
    box, port = Mailbox(), _free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port, ssl_context=context)
    controller.start()
    try:
        channel = EmailChannel(spec(port, cert[0], security="ssl", username=None, password=None))
        await channel.send(notification())
    finally:
        controller.stop()
    ((_, rcpts, msg),) = box.messages
    assert rcpts == ["oncall@example.com", "lead@example.com"]
    assert msg["X-Watchkeeper-Status"] == "firing"


async def test_line_breaks_in_names_do_not_break_headers(
    smtp: tuple[Mailbox, int], cert: tuple[Path, Path]
) -> None:
    box, port = smtp
    n = notification(rule_name="Bad\r\nBcc: victim@example.com", summary="two\nlines")
    await EmailChannel(spec(port, cert[0])).send(n)
    ((_, rcpts, msg),) = box.messages
    assert rcpts == ["oncall@example.com", "lead@example.com"]
    assert msg["Bcc"] is None
    assert "Bad Bcc: victim@example.com" in msg["Subject"]
