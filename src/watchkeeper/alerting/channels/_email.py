"""E-mail over SMTP with the standard library: STARTTLS or implicit TLS, AUTH, text + HTML.

`smtplib` blocks, so each delivery runs in a worker thread. Every notification about one alert
carries `References: <fingerprint@watchkeeper>`, so mail clients thread firing and resolved
messages together.
"""

from __future__ import annotations

import asyncio
import html
import smtplib
import ssl
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any, Literal

import httpx
from pydantic import Field, SecretStr

from watchkeeper.alerting._notification import Channel, DeliveryError, Notification
from watchkeeper.alerting.channels import _render
from watchkeeper.alerting.channels._specs import Spec


class EmailSpec(Spec):
    """E-mail over SMTP, multipart text and HTML."""

    label = "E-mail"
    about = "E-mail over SMTP (STARTTLS, TLS or none), multipart text and HTML."

    type: Literal["email"] = "email"
    host: str
    port: int = Field(587, ge=1, le=65535)
    sender: str
    to: tuple[str, ...] = Field(min_length=1)
    username: str | None = None
    password: SecretStr | None = None
    security: Literal["starttls", "ssl", "none"] = "starttls"
    ca_file: Path | None = None  # extra CA to trust (a private or self-signed server cert)
    subject_prefix: str = "[Watchkeeper]"

    def build(self, http: httpx.AsyncClient | None = None) -> Channel:
        """The channel (SMTP: `http` is not used)."""
        return EmailChannel(self)

    def alertmanager(self, version: str) -> tuple[str, dict[str, Any]] | str:
        """Alertmanager's receiver config for this channel."""
        cfg: dict[str, Any] = {
            "to": ", ".join(self.to),
            "from": self.sender,
            "smarthost": f"{self.host}:{self.port}",
            "require_tls": self.security == "starttls",
            "send_resolved": self.send_resolved,
        }
        if self.username:
            cfg["auth_username"] = self.username
            cfg["auth_password"] = self.password.get_secret_value() if self.password else ""
        if self.ca_file:
            cfg["tls_config"] = {"ca_file": str(self.ca_file)}
        return "email_configs", cfg


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _a(text: str, url: str) -> str:
    return f'<a href="{_esc(url)}">{_esc(text)}</a>' if url else f"<code>{_esc(text)}</code>"


def render_html(n: Notification) -> str:
    """The HTML part: headline, summary, facts table, example traces and links."""
    colour = _render.colour(n)
    parts = [
        f'<h2 style="color:#{colour};margin:0 0 8px">{_esc(_render.title(n))}</h2>',
        f"<p><strong>{_esc(n.summary)}</strong></p>" if n.summary else "",
    ]
    body = _render.body_text(n)
    if body:
        parts.append(f'<pre style="white-space:pre-wrap;font-family:inherit">{_esc(body)}</pre>')
    if _render.value_text(n):
        parts.append(f"<p>{_esc(_render.value_text(n))}</p>")
    rows = "".join(
        f'<tr><th align="left" style="padding:2px 12px 2px 0">{_esc(k)}</th><td>{_esc(v)}</td></tr>'
        for k, v in _render.facts(n)
    )
    parts.append(f'<table cellspacing="0">{rows}</table>')
    traces = _render.trace_links(n)
    if traces:
        items = "".join(f"<li>{_a(t.text, t.url)}</li>" for t in traces)
        parts.append(f"<p><strong>Example traces</strong></p><ul>{items}</ul>")
    links = " · ".join(_a(link.text, link.url) for link in _render.links(n))
    if links:
        parts.append(f"<p>{links}</p>")
    content = "\n".join(p for p in parts if p)
    return (
        f'<!doctype html>\n<html><body style="font-family:sans-serif">\n{content}\n</body></html>\n'
    )


def render(n: Notification, spec: EmailSpec, now: float) -> EmailMessage:
    """The multipart/alternative message (text first, HTML preferred by clients)."""
    msg = EmailMessage()
    subject = f"{spec.subject_prefix} {_render.title(n)}: {n.summary}".strip()
    msg["Subject"] = " ".join(subject.split())  # a line break would be a header injection
    msg["From"] = spec.sender
    msg["To"] = ", ".join(spec.to)
    msg["Date"] = format_datetime(datetime.fromtimestamp(now, UTC))
    domain = spec.sender.rpartition("@")[2] or "watchkeeper"
    msg["Message-ID"] = make_msgid("watchkeeper", domain=domain.strip(">"))
    thread_id = f"<{n.fingerprint}@watchkeeper>"
    msg["References"] = thread_id
    msg["In-Reply-To"] = thread_id
    msg["X-Watchkeeper-Fingerprint"] = n.fingerprint
    msg["X-Watchkeeper-Status"] = n.status
    msg.set_content(_render.plain_text(n))
    msg.add_alternative(render_html(n), subtype="html")
    return msg


def _classify(what: str, exc: Exception) -> DeliveryError:
    # 4xx SMTP replies are transient by definition (RFC 5321), 5xx permanent.
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        transient = any(400 <= code < 500 for code in codes)
        return DeliveryError(f"{what}: recipients refused: {exc.recipients}", transient)
    if isinstance(exc, smtplib.SMTPResponseException):
        detail = (
            exc.smtp_error.decode(errors="replace")
            if isinstance(exc.smtp_error, bytes)
            else (str(exc.smtp_error))
        )
        return DeliveryError(f"{what}: SMTP {exc.smtp_code}: {detail}", 400 <= exc.smtp_code < 500)
    if isinstance(exc, smtplib.SMTPNotSupportedError | ssl.SSLCertVerificationError):
        return DeliveryError(f"{what}: {exc}", retryable=False)
    return DeliveryError(f"{what}: {exc!r}", retryable=True)


class EmailChannel:
    """Sends e-mail through an SMTP server."""

    def __init__(self, spec: EmailSpec, clock: Callable[[], float] = time.time) -> None:
        self.name = spec.name
        self._spec = spec
        self._clock = clock

    @property
    def type(self) -> str:
        """`email`, as the spec says."""
        return self._spec.type

    def _tls(self) -> ssl.SSLContext:
        ca = str(self._spec.ca_file) if self._spec.ca_file else None
        return ssl.create_default_context(cafile=ca)

    def _connect(self) -> smtplib.SMTP:
        spec = self._spec
        if spec.security == "ssl":
            return smtplib.SMTP_SSL(
                spec.host, spec.port, timeout=spec.timeout_s, context=self._tls()
            )
        smtp = smtplib.SMTP(spec.host, spec.port, timeout=spec.timeout_s)
        if spec.security == "starttls":
            smtp.ehlo()
            smtp.starttls(context=self._tls())
            smtp.ehlo()
        return smtp

    def send_blocking(self, message: EmailMessage) -> None:
        """Connect, secure, log in and send one message (blocking)."""
        spec = self._spec
        with self._connect() as smtp:
            if spec.username:
                password = spec.password.get_secret_value() if spec.password else ""
                smtp.login(spec.username, password)
            smtp.send_message(message)

    async def send(self, notification: Notification) -> None:
        """Deliver one notification, or raise DeliveryError."""
        if notification.status == "resolved" and not self._spec.send_resolved:
            return
        message = render(notification, self._spec, self._clock())
        try:
            await asyncio.to_thread(self.send_blocking, message)
        except (smtplib.SMTPException, OSError) as exc:
            raise _classify(f"email {self.name}", exc) from exc
