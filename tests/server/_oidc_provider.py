"""A local OpenID Connect provider speaking the wire format of a real one, for the tests.

Discovery, JWKS, an authorization endpoint that signs its one user in at once (it checks
the client, the redirect and the S256 code challenge), and a token endpoint that checks the
client's secret (HTTP Basic), the code (single use) and the PKCE verifier, and answers with
an ID token signed by its RSA key. `tamper` makes it misbehave the way an attacker or a
broken provider would: a token signed by another key, expired, for another audience or
issuer, with another nonce, or unsigned (`alg: none`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import RSAKey

CLIENT_ID = "watchkeeper-test"
CLIENT_SECRET = "provider-secret-0123456789abcdef"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class Provider:
    """The provider; `claims` are its user's, `tamper` how the next ID token is spoiled."""

    claims: dict[str, Any] = field(
        default_factory=lambda: {
            "sub": "u-100",
            "preferred_username": "carol",
            "name": "Carol Example",
            "groups": ["wk-viewers"],
        }
    )
    tamper: str | None = None
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "k1"}))
    rogue: RSAKey = field(
        default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "k1"})
    )
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    authorize_requests: list[dict[str, str]] = field(default_factory=list)
    url: str = ""
    _closed: bool = False

    def start(self) -> Provider:
        """Serve on an ephemeral loopback port."""
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                pass

            def do_GET(self) -> None:
                provider._get(self)

            def do_POST(self) -> None:
                provider._post(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def close(self) -> None:
        """Stop serving (again: nothing)."""
        if self.url and not self._closed:
            self._closed = True
            self._server.shutdown()
            self._server.server_close()

    # -- endpoints -------------------------------------------------------------------------
    def _get(self, req: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(req.path)
        if parts.path == "/.well-known/openid-configuration":
            _json(req, 200, self.discovery())
        elif parts.path == "/jwks":
            _json(req, 200, {"keys": [self.key.as_dict(private=False)]})
        elif parts.path == "/authorize":
            self._authorize(req, {k: v[0] for k, v in parse_qs(parts.query).items()})
        else:
            _json(req, 404, {"error": "not_found"})

    def discovery(self) -> dict[str, Any]:
        """What `/.well-known/openid-configuration` answers."""
        return {
            "issuer": self.url,
            "authorization_endpoint": f"{self.url}/authorize",
            "token_endpoint": f"{self.url}/token",
            "jwks_uri": f"{self.url}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        }

    def _authorize(self, req: BaseHTTPRequestHandler, q: dict[str, str]) -> None:
        self.authorize_requests.append(q)
        ok = (
            q.get("client_id") == CLIENT_ID
            and q.get("response_type") == "code"
            and "openid" in q.get("scope", "").split()
            and q.get("code_challenge_method") == "S256"
            and q.get("code_challenge")
            and q.get("redirect_uri", "").startswith("http://127.0.0.1:")
        )
        if not ok:
            _json(req, 400, {"error": "invalid_request"})
            return
        code = secrets.token_urlsafe(16)
        self.codes[code] = q
        back = {"code": code, "state": q.get("state", "")}
        req.send_response(302)
        req.send_header("Location", f"{q['redirect_uri']}?{urlencode(back)}")
        req.send_header("Content-Length", "0")
        req.end_headers()

    def _post(self, req: BaseHTTPRequestHandler) -> None:
        if urlsplit(req.path).path != "/token":
            _json(req, 404, {"error": "not_found"})
            return
        body = req.rfile.read(int(req.headers.get("Content-Length") or 0)).decode()
        form = {k: v[0] for k, v in parse_qs(body).items()}
        basic = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if req.headers.get("Authorization") != basic:
            _json(req, 401, {"error": "invalid_client"})
            return
        asked = self.codes.pop(form.get("code", ""), None)  # a code is good once
        verifier = form.get("code_verifier", "")
        challenge = _b64(hashlib.sha256(verifier.encode()).digest())
        if (
            asked is None
            or form.get("grant_type") != "authorization_code"
            or form.get("redirect_uri") != asked["redirect_uri"]
            or challenge != asked["code_challenge"]
        ):
            _json(req, 400, {"error": "invalid_grant"})
            return
        _json(req, 200, {"access_token": secrets.token_urlsafe(16), "token_type": "Bearer",
                         "expires_in": 300, "id_token": self.id_token(asked["nonce"])})  # fmt: skip

    def id_token(self, nonce: str) -> str:
        """An ID token for the user, spoiled as `tamper` says."""
        now = int(time.time())
        claims = {"iss": self.url, "aud": CLIENT_ID, "iat": now, "exp": now + 300,
                  "nonce": nonce, **self.claims}  # fmt: skip
        key = self.key
        if self.tamper == "forged":
            key = self.rogue
        elif self.tamper == "expired":
            claims.update(iat=now - 3600, exp=now - 1800)
        elif self.tamper == "nonce":
            claims["nonce"] = "not-the-nonce-we-were-given"
        elif self.tamper == "audience":
            claims["aud"] = "some-other-client"
        elif self.tamper == "issuer":
            claims["iss"] = "http://127.0.0.1:1/evil"
        elif self.tamper == "unsigned":
            head = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
            return f"{head}.{_b64(json.dumps(claims).encode())}."
        return jwt.encode({"alg": "RS256", "kid": "k1"}, claims, key)


def _json(req: BaseHTTPRequestHandler, status: int, body: Any) -> None:
    data = json.dumps(body).encode()
    req.send_response(status)
    req.send_header("Content-Type", "application/json")
    req.send_header("Content-Length", str(len(data)))
    req.end_headers()
    req.wfile.write(data)
