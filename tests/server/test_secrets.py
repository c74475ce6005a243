"""Channel secrets at rest and in transit through our own output.

A real `watchkeeper serve` process reads channels whose secrets are sealed in its config file
(or come from the environment), sends real notifications — to a webhook receiver, a real SMTP
server with STARTTLS and AUTH, and receivers that refuse and echo back what they got (the URL
path, the body, the Authorization header), as misconfigured servers do. Then every log line,
every API answer, every file under the data directory and the config file are searched for
each secret: none may hold one in clear.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from aiosmtpd.smtp import AuthResult, LoginPassword
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult

from tests.alerting.channels.test_email import Mailbox, cert, smtp_server  # noqa: F401
from tests.alerting.test_e2e import make_spans
from tests.eventually import eventually
from tests.server._process import ServerProcess
from watchkeeper.errors import ConfigError
from watchkeeper.vault import (
    KEY_ENV,
    SEALED_PREFIX,
    RedactingFormatter,
    Redactor,
    SecretBox,
    generate_key,
    open_sealed,
    reseal_text,
)

ADMIN = "secrets-admin-token-" + secrets.token_hex(16)
SERVICE = "secrets-chat"


def _secret(label: str) -> str:
    return f"{label}-{secrets.token_hex(12)}"


@dataclass
class Echo:
    """A receiver that answers as each path says, echoing what it got when it refuses."""

    got: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, str]:
        if path.startswith("/hooks/ok-"):
            return 200, "ok"
        if path.startswith("/services/"):  # Slack: an unknown hook, named by its path
            return 404, f"no such hook: {path}"
        if path.startswith("/bot"):  # Telegram: a proxy that names the URL (retried)
            return 502, f"upstream failed for POST {path}"
        if path == "/v2/enqueue":  # PagerDuty: the event echoed back
            return 400, f"invalid event: {body.decode()}"
        return 401, f"bad credentials: {headers.get('authorization', '')}"  # Alertmanager

    def start(self) -> Echo:
        echo = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                echo.got.append((self.path, headers, body))
                status, text = echo.answer(self.path, headers, body)
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self


@pytest.fixture
def echo() -> Iterator[Echo]:
    e = Echo().start()
    yield e
    assert e.server is not None
    e.server.shutdown()
    e.server.server_close()


SMTP_USER = "alerts"
SMTP_PASSWORD = _secret("smtp-pw")


def _authenticator(_s: Any, _session: Any, _env: Any, _mech: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        SMTP_USER.encode(),
        SMTP_PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp(cert: tuple[Path, Path]) -> Iterator[tuple[Mailbox, int]]:  # noqa: F811
    with smtp_server(cert, _authenticator) as server:
        yield server


@dataclass
class Setup:
    server: ServerProcess
    config: Path
    secrets: dict[str, str]


def _channels(echo: Echo, smtp_port: int, ca: Path, box: SecretBox, s: dict[str, str]) -> Any:
    mail = {
        "type": "email",
        "host": "127.0.0.1",
        "port": smtp_port,
        "sender": "wk@example.com",
        "to": ["oncall@example.com"],
        "username": SMTP_USER,
        "ca_file": str(ca),
        "timeout_s": 5,
    }
    return [
        {
            "type": "webhook",
            "name": "hook",
            "url": box.seal(f"{echo.url}/hooks/ok-{s['hook']}"),
            "secret": box.seal(s["hmac"]),
            "headers": {"Authorization": "${HOOK_AUTH}"},
        },
        {"type": "slack", "name": "team", "webhook_url": "${SLACK_URL}"},
        {
            "type": "telegram",
            "name": "tg",
            "api_base": echo.url,
            "chat_id": 42,
            "bot_token": box.seal(s["telegram"]),
        },
        {
            "type": "pagerduty",
            "name": "pd",
            "api_base": echo.url,
            "routing_key": box.seal(s["pagerduty"]),
        },
        {
            "type": "alertmanager",
            "name": "am",
            "url": echo.url,
            "bearer_token": box.seal(s["alertmanager"]),
        },
        {**mail, "name": "mail", "password": box.seal(SMTP_PASSWORD)},
        {**mail, "name": "mail-bad", "password": box.seal(s["smtp_wrong"])},
    ]


@pytest.fixture
def setup(tmp_path: Path, echo: Echo, smtp: tuple[Mailbox, int], cert: Any) -> Iterator[Setup]:  # noqa: F811
    key = generate_key()
    box = SecretBox([key])
    names = (
        "hook",
        "hmac",
        "header",
        "slack",
        "telegram",
        "pagerduty",
        "alertmanager",
        "smtp_wrong",
    )
    s = {n: _secret(n) for n in names}
    s["telegram"] = f"123456:{s['telegram']}"
    s["smtp"] = SMTP_PASSWORD
    rule = {
        "id": "traffic",
        "kind": "count",
        "project": "shop",
        "window": "1m",
        "threshold": 0,
        "severity": "critical",
        "filters": {"services": [SERVICE], "scope": "requests"},
    }
    alerting = {
        "interval": 1,
        "starter_rules": False,
        "retry_base": 0.5,
        "retry_max": 1,
        "rules": [rule],
        "channels": _channels(echo, smtp[1], cert[0], box, s),
    }
    config = tmp_path / "watchkeeper.yaml"
    config.write_text(yaml.safe_dump({"alerting": alerting}))
    env = {
        KEY_ENV: key,
        "SLACK_URL": f"{echo.url}/services/T0/B0/{s['slack']}",
        "HOOK_AUTH": f"Bearer {s['header']}",
        "WATCHKEEPER_AUTH__ADMIN_TOKEN": ADMIN,
    }
    server = ServerProcess(tmp_path / "data", None, "--config", str(config), env=env)
    server.start()
    try:
        yield Setup(server, config, s)
    finally:
        server.stop()


def _api(setup: Setup, method: str, path: str, token: str = ADMIN, **kw: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.request(method, setup.server.url + path, headers=headers, timeout=30, **kw)


@pytest.mark.slow
def test_no_channel_secret_is_stored_shown_or_logged(
    setup: Setup, echo: Echo, smtp: tuple[Mailbox, int]
) -> None:
    answers: list[str] = []
    made = _api(setup, "POST", "/api/v1/keys", json={"project": "shop", "role": "admin"})
    assert made.status_code == 201, made.text
    key = made.json()["token"]
    exporter = OTLPSpanExporter(
        endpoint=f"{setup.server.url}/v1/traces", headers={"Authorization": f"Bearer {key}"}
    )
    assert exporter.export(make_spans(3, 0, SERVICE)) is SpanExportResult.SUCCESS

    def outbox() -> list[dict[str, Any]]:
        r = _api(setup, "GET", "/api/v1/notifications", key, params={"limit": 1000})
        answers.append(r.text)
        return list(r.json()["items"])

    def settled() -> bool:  # every channel tried, the refusing ones failed for good
        states = {n["channel"]: n["state"] for n in outbox()}
        return (
            len(states) == 7
            and states["hook"] == "delivered"
            and states["mail"] == ("delivered")
            and all(n["attempts"] for n in outbox())
        )

    assert eventually(settled, 60), outbox()
    assert eventually(lambda: len(smtp[0].messages) >= 1, 30)
    for name in ("hook", "team", "tg", "pd", "am", "mail", "mail-bad"):
        answers.append(_api(setup, "POST", f"/api/v1/channels/{name}/test", key).text)
    for path in (
        "/api/v1/channels",
        "/api/v1/rules",
        "/api/v1/alerts",
        "/api/v1/audit",
        "/api/v1/audit/export",
        "/openapi.json",
    ):
        r = _api(setup, "GET", path, key)
        assert r.status_code == 200, (path, r.text)
        answers.append(r.text)
    answers.append(_api(setup, "GET", "/api/v1/audit").text)  # the server's own entries
    setup.server.stop()  # every log line written

    # The secrets did their work: opened from the file and the environment, and sent.
    paths = [p for p, _h, _b in echo.got]
    assert f"/hooks/ok-{setup.secrets['hook']}" in paths
    assert f"/bot{setup.secrets['telegram']}/sendMessage" in paths
    assert any(
        h.get("authorization") == f"Bearer {setup.secrets['header']}" for _p, h, _b in echo.got
    )
    # The receivers echoed them back, and what we kept of that says *** instead.
    errors = json.dumps(outbox_errors(answers))
    assert "no such hook: ***" in errors and "bad credentials: Bearer ***" in errors
    assert "upstream failed for POST /bot***/sendMessage" in errors
    assert "invalid event" in errors  # the event, routing key and all: checked below
    assert "SMTP 535" in errors

    log = setup.server.output()
    lines = log.splitlines()
    assert any("delivery to team refused for good" in line for line in lines)
    assert any("delivery to tg failed, retry" in line for line in lines)
    stored = {p: p.read_bytes() for p in (setup.server.data_dir).rglob("*") if p.is_file()}
    config_text = setup.config.read_text()
    assert config_text.count(SEALED_PREFIX) == 7
    for name, value in setup.secrets.items():
        assert not [line for line in lines if value in line], f"{name} is in the log"
        assert not [a for a in answers if value in a], f"{name} is in an API answer"
        assert not [p for p, data in stored.items() if value.encode() in data], (
            f"{name} is stored in the data directory"
        )
        assert value not in config_text, f"{name} is in clear in the config file"


def outbox_errors(answers: list[str]) -> list[str]:
    """Every delivery error in the /notifications answers collected."""
    out = []
    for text in answers:
        try:
            items = json.loads(text).get("items", [])
        except (ValueError, AttributeError):
            continue
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict) and "attempt_log" in item:
                out += [a["error"] for a in item["attempt_log"] if a.get("error")]
    return out


def test_a_sealed_value_opens_with_any_listed_key_and_reseals_under_the_first() -> None:
    old, new = generate_key(), generate_key()
    sealed = SecretBox([old]).seal("https://hooks.example/T0/B0/abcdef")
    assert sealed.startswith(SEALED_PREFIX) and "abcdef" not in sealed
    text = f"channels:\n  - url: {sealed}  # team\n  - token: ${{TOKEN}}\n"
    rotated, count = reseal_text(text, SecretBox([new, old]))
    assert count == 1 and sealed not in rotated and "# team" in rotated and "${TOKEN}" in rotated
    value = yaml.safe_load(rotated)["channels"][0]["url"]
    assert open_sealed({"u": value}, {KEY_ENV: new}) == {"u": "https://hooks.example/T0/B0/abcdef"}
    with pytest.raises(ConfigError, match="sealed under a key the server does not have"):
        open_sealed(value, {KEY_ENV: old}, "channel team")
    with pytest.raises(ConfigError, match=f"no server key is set: export {KEY_ENV}"):
        open_sealed([value], {}, "channel team")
    with pytest.raises(ConfigError, match="not a valid key"):
        SecretBox(["not-a-key"])


def test_the_key_may_come_from_a_file(tmp_path: Path) -> None:
    key = generate_key()
    path = tmp_path / "secret.key"
    path.write_text(f"# current first\n{generate_key()}\n{key}\n")
    sealed = SecretBox([key]).seal("hunter2-password")
    assert open_sealed(sealed, {"WATCHKEEPER_SECRET_KEY_FILE": str(path)}) == "hunter2-password"


def test_log_lines_are_scrubbed_whole_tracebacks_included() -> None:
    redactor = Redactor()
    redactor.add("https://hooks.slack.com/services/T0/B0/XYZsecret1", "tok-123456", "abc")
    stream: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            stream.append(self.format(record))

    handler = Collect()
    handler.setFormatter(RedactingFormatter(logging.Formatter("%(message)s"), redactor))
    logger = logging.getLogger("test.vault")
    logger.addHandler(handler)
    try:
        logger.warning("posting to %s", "https://hooks.slack.com/services/T0/B0/XYZsecret1")
        logger.warning("echoed path: /services/T0/B0/XYZsecret1 and abc stays")
        try:
            raise RuntimeError("token tok-123456 refused")
        except RuntimeError:
            logger.exception("send failed")
    finally:
        logger.removeHandler(handler)
    text = "\n".join(stream)
    assert "XYZsecret1" not in text and "tok-123456" not in text
    assert "posting to ***" in text and "echoed path: *** and abc stays" in text
    assert "RuntimeError: token *** refused" in text


def _cli(*args: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "watchkeeper", "secrets", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )


@pytest.mark.slow
def test_the_secrets_commands_make_a_key_seal_and_rotate(tmp_path: Path) -> None:
    old = _cli("keygen", env={}).stdout.strip()
    sealed = _cli("seal", env={KEY_ENV: old}, stdin="https://hooks.example/T0/B0/s3cr3t\n")
    assert sealed.returncode == 0 and sealed.stdout.startswith(SEALED_PREFIX)
    assert "s3cr3t" not in sealed.stdout + sealed.stderr
    assert _cli("seal", env={KEY_ENV: ""}, stdin="x\n").returncode == 2  # no key: refused
    config = tmp_path / "watchkeeper.yaml"
    config.write_text(f"# ours\nalerting:\n  channels:\n    - url: {sealed.stdout.strip()}\n")
    new = _cli("keygen", env={}).stdout.strip()
    rotated = _cli("reseal", str(config), env={KEY_ENV: f"{new},{old}"})
    assert rotated.returncode == 0 and "re-sealed 1 values" in rotated.stdout
    text = config.read_text()
    assert text.startswith("# ours") and sealed.stdout.strip() not in text
    url = yaml.safe_load(text)["alerting"]["channels"][0]["url"]
    assert open_sealed(url, {KEY_ENV: new}) == "https://hooks.example/T0/B0/s3cr3t"


def test_a_sealed_secret_without_its_key_stops_the_server_naming_the_variable(
    make_server: Any,
) -> None:
    sealed = SecretBox([generate_key()]).seal("https://hooks.example/T0/B0/sealed-path")
    hook = {"type": "webhook", "name": "hook", "url": sealed}
    with pytest.raises(ConfigError, match=f"channel hook is sealed .* export {KEY_ENV}") as exc:
        make_server(alerting={"channels": [hook]})
    assert "sealed-path" not in str(exc.value) and sealed not in str(exc.value)


def test_the_alertmanager_export_holding_secrets_is_readable_by_its_owner_only(
    tmp_path: Path,
) -> None:
    from watchkeeper.cli._export import export_main

    key = generate_key()
    hook = {
        "type": "slack",
        "name": "team",
        "webhook_url": SecretBox([key]).seal("https://hooks.slack.com/services/T0/B0/exported"),
    }
    config = tmp_path / "watchkeeper.yaml"
    config.write_text(yaml.safe_dump({"alerting": {"channels": [hook]}}))
    out = tmp_path / "out"
    argv = ["alertmanager-config", "--config", str(config), "--out", str(out)]
    assert export_main(argv, env={KEY_ENV: key}) == 0
    written = out / "alertmanager.yml"
    assert "exported" in written.read_text()  # Alertmanager needs the value itself
    assert written.stat().st_mode & 0o777 == 0o600
