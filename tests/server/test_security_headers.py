"""Every response carries the security headers; the docs pages get a CSP that fits them."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest

from tests.server.conftest import ADMIN_TOKEN, Running

BASE = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


@pytest.fixture
def server(make_server: Callable[..., Running]) -> Running:
    """A keyed server (auth on)."""
    return make_server(auth={"admin_token": ADMIN_TOKEN})


def _directives(policy: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for part in policy.split(";"):
        name, *values = part.split()
        out[name] = values
    return out


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/", 200),
        ("GET", "/ui/index.html", 200),
        ("GET", "/ui/js/app.js", 200),
        ("GET", "/docs", 200),
        ("GET", "/redoc", 200),
        ("GET", "/openapi.json", 200),
        ("GET", "/metrics", 200),
        ("GET", "/healthz", 200),
        ("GET", "/api/v1/traces", 401),
        ("POST", "/v1/traces", 401),
        ("GET", "/api/v1/keys", 401),
        ("GET", "/api/v1/no-such-route", 404),
    ],
)
@pytest.mark.slow
def test_every_response_carries_the_security_headers(
    server: Running, method: str, path: str, status: int
) -> None:
    r = server.request(method, path)
    assert r.status_code == status
    for name, value in BASE.items():
        assert r.headers.get(name) == value, name
    policy = _directives(r.headers["content-security-policy"])
    assert policy["frame-ancestors"] == ["'none'"]
    if path not in ("/docs", "/redoc"):
        assert policy["script-src"] == ["'self'"] and policy["default-src"] == ["'self'"]


@pytest.mark.slow
@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_docs_policy_allows_exactly_what_the_page_loads(server: Running, path: str) -> None:
    r = server.get(path)
    policy = _directives(r.headers["content-security-policy"])
    assert policy["default-src"] == ["'none'"]
    assert "'unsafe-eval'" not in r.headers["content-security-policy"]
    scripts = policy["script-src"]
    assert "'unsafe-inline'" not in scripts
    inline = re.findall(r"<script>(.*?)</script>", r.text, re.S)
    for body in inline:
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in scripts
    assert len([s for s in scripts if s.startswith("'sha256-")]) == len(inline)
    # Every asset comes from this server (the pages work offline), so 'self' is enough.
    assert scripts[0] == "'self'" and policy["style-src"][0] == "'self'"
    assert not [v for vs in policy.values() for v in vs if "://" in v]
    for src in re.findall(r'<script src="([^"]+)"', r.text):
        assert _origin(src) == "://" and server.get(src).status_code == 200
    for href in re.findall(r'<link[^>]*rel="stylesheet"[^>]*>', r.text):
        url = re.search(r'href="([^"]+)"', href)
        assert url and _origin(url.group(1)) == "://"
    assert "'self'" in policy["connect-src"]  # the page fetches /openapi.json
    if path == "/docs":
        assert len(inline) == 1 and "SwaggerUIBundle" in inline[0]


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
